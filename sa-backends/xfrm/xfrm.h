/* The kernel SA backend (XFRM through netlink): what it offers beyond sa_backend.h — the
 * probe that `backend = auto|xfrm` relies on and the hooks the IKE sockets need. */
#ifndef BURROW_XFRM_H
#define BURROW_XFRM_H

#include <stddef.h>
#include <sys/socket.h>

#include "sa-backends/sa_backend.h"

extern const struct bw_sa_backend_ops bw_sa_backend_xfrm;

/* Whether this kernel (in this network namespace) can hold an ESP SA with UDP
 * encapsulation: adds a short-lived test SA through netlink and deletes it again. Runs
 * once per process; later calls return the same answer. 0 or -errno, and in why one
 * sentence for the log and for `burrow doctor` (it names CONFIG_INET_ESP when ESP is
 * what is missing). */
int bw_xfrm_probe(char *why, size_t len);

/* IKE must never enter the tunnel: a per-socket policy that lets the socket's own packets
 * (both directions) bypass every XFRM policy. Call it on the IKE sockets (UDP 500 and the
 * NAT-T port) right after bind; family is AF_INET or AF_INET6. 0 or -errno. */
int bw_xfrm_socket_bypass(int fd, int family);

/* Makes the kernel take ESP-in-UDP (RFC 3948) that arrives on the NAT-T socket and decrypt
 * it with its SAs; IKE (non-ESP marker) and keepalives are still read by the socket's
 * owner. Only with the xfrm backend: the userspace backend reads ESP from the socket. */
int bw_xfrm_socket_espinudp(int fd);

/* As bw_us_route_exception (userspace.h): pins the current route to the gateway as a host
 * route before add_route covers it (host-to-everywhere), so that IKE and the kernel's
 * ESP keep the original path. Recorded and undone like every other route. */
int bw_xfrm_route_exception(struct bw_sa_conn *c, const struct sockaddr *gateway);

#endif

/* The userspace SA backend (TUN device + ESP in this process): the calls it offers beyond
 * the generic interface of sa_backend.h, and the numbers callers and tests rely on. */
#ifndef BURROW_USERSPACE_H
#define BURROW_USERSPACE_H

#include <net/if.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "sa-backends/sa_backend.h"
#include "sa-backends/userspace/esp.h"

/* Inner MTU of the TUN device: an outer IPv4 header, the UDP header of ESP-in-UDP
 * (RFC 3948) and the worst-case ESP overhead must still fit a 1500-byte path,
 * rounded down to a multiple of 8. An IPv6 outer path costs 20 bytes more and relies
 * on PMTU discovery. */
#define BW_US_MTU (((1500 - 20 - 8 - BW_ESP_MAX_OVERHEAD) / 8) * 8)

/* Packets read from the TUN device per wakeup, so that one busy tunnel cannot starve
 * the rest of the event loop. */
#define BW_US_READ_BATCH 64

/* Pins the current route to the IKE gateway as a host route (same gateway, same
 * interface) so that the tunnel's own IKE and ESP packets keep using the original path
 * once routes through the tunnel cover the gateway: add_route(0.0.0.0/0) installs
 * 0.0.0.0/1 + 128.0.0.0/1, which do cover it. Call it BEFORE add_route for a network that
 * contains the gateway (after, the lookup finds the tunnel and this returns -ELOOP).
 * Recorded in the state file and removed by conn_close / cleanup_stale. Returns 0 when
 * nothing is needed (the gateway is a local address, or the same host route already
 * exists and is not ours), else -errno. */
int bw_us_route_exception(struct bw_sa_conn *c, const struct sockaddr *gateway);
/* Transport mode: routes peer (a host address) through the device for every packet that does
 * not carry BW_IKE_FWMARK, from src; a rule and a route in a table of the connection's own,
 * both recorded and undone on close or after a crash. */
int bw_us_transport_route(struct bw_sa_conn *c, const struct bw_cidr *peer, const struct bw_cidr *src);

/* The backend's input_burst: n ESP packets that arrived together, decapsulated, checked and
 * counted one by one as input does, with the inner TCP segments coalesced (tun_offload.h)
 * into as few TUN writes as possible; everything is written before it returns. Returns how
 * many packets were dropped; errs (may be NULL) gets the -errno of each packet. Without TUN
 * offloads it is a loop over input. */
size_t bw_us_input_burst(struct bw_sa_conn *c, const struct iovec *pkts, size_t n, int *errs);

#endif

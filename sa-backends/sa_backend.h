/* The interface every SA backend implements: SAs, traffic selectors, the address and the
 * routes of one connection, byte counters, expiry. Errors are -errno. */
#ifndef BURROW_SA_BACKEND_H
#define BURROW_SA_BACKEND_H

/* Burrow's own IKE and ESP-in-UDP packets carry this firewall mark (SO_MARK on the IKE
 * sockets): routing rules that send a host's traffic into a tunnel skip them. */
#define BW_IKE_FWMARK 0x62770000u

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "algs.h"
#include "config/config.h"

struct ev_loop;
struct bw_sa_conn;	/* one per connection, owned by the backend */

enum bw_sa_dir { BW_SA_IN, BW_SA_OUT };

struct bw_sa_params {
	enum bw_sa_dir dir;
	uint32_t spi;			/* network value as a host integer */
	struct bw_p2_proposal alg;
	uint8_t keymat[128];
	size_t keymat_len;
	enum bw_ipsec_mode mode;
	struct sockaddr_storage local;	/* outer addresses, with ports when udp_encap */
	struct sockaddr_storage remote;
	bool udp_encap;			/* ESP in UDP (RFC 3948) */
	uint32_t lifetime_s;		/* hard lifetime; the IKE side rekeys before it */
};

struct bw_sa_counters {
	uint64_t bytes_in, bytes_out;
	uint64_t packets_in, packets_out;
	uint64_t errors_in, errors_out;
};

/* What the backend tells its connection. */
struct bw_sa_conn_cbs {
	void *ctx;
	/* Userspace backend: send an ESP packet (starting at the SPI) to the peer; the owner of
	 * the UDP socket adds nothing for port 4500 (ESP has a non-zero SPI, RFC 3948 2.2). */
	int (*send_esp)(void *ctx, const uint8_t *pkt, size_t len);
	/* Optional. A burst of send_esp calls is over (the end of one read batch): the owner may
	 * hold what send_esp gave it until then and send it in as few syscalls as it can. pkt
	 * was copied by then; send_esp may return 0 for a packet that later fails to leave. */
	void (*flush_esp)(void *ctx);
	/* An SA expired (hard) or was removed by the kernel. */
	void (*expired)(void *ctx, uint32_t spi, enum bw_sa_dir dir, bool hard);
};

/* What a backend can and cannot do, for the engine to ask instead of naming backends. */
enum bw_sa_caps {
	/* ESP travels only inside UDP (RFC 3948): NAT-T is forced, nat_traversal = off refused. */
	BW_SA_CAP_ESP_IN_UDP_ONLY = 1u << 0,
	/* The kernel decrypts ESP: the IKE sockets need prepare_ike_socket before first use. */
	BW_SA_CAP_KERNEL_ESP = 1u << 1,
};

struct bw_sa_backend_ops {
	const char *name;
	unsigned caps;			/* enum bw_sa_caps */
	/* Optional. Prepares one of burrowd's IKE sockets (natt: the one on port 4500) for this
	 * datapath; the sockets are shared by every connection. */
	int (*prepare_ike_socket)(int fd, bool natt);
	/* Creates the connection's datapath (userspace: TUN device bw-NAME). state_dir records
	 * what was installed so that a later run undoes it after a crash. */
	int (*conn_open)(struct ev_loop *loop, const char *conn_name, const char *state_dir,
			 const struct bw_sa_conn_cbs *cbs, struct bw_sa_conn **out);
	int (*add_sa)(struct bw_sa_conn *c, const struct bw_sa_params *p);
	int (*del_sa)(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir);
	/* Traffic selector pair carried by the outbound SA out_spi and inbound SA in_spi. */
	int (*add_policy)(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			  const struct bw_cidr *remote_ts, uint32_t out_spi, uint32_t in_spi);
	int (*del_policy)(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			  const struct bw_cidr *remote_ts);
	/* The virtual or local address put on the connection's interface. */
	int (*set_address)(struct bw_sa_conn *c, const struct bw_cidr *addr);
	/* A route to net through the tunnel; src is the address to use as source (may be NULL). */
	int (*add_route)(struct bw_sa_conn *c, const struct bw_cidr *net, const struct bw_cidr *src);
	/* Host-to-everywhere: pins the current route to the gateway as a host route outside the
	 * tunnel, so that IKE and ESP do not loop into it (-ELOOP if it already would). */
	int (*route_exception)(struct bw_sa_conn *c, const struct sockaddr *gateway);
	/* Optional. Transport mode: sends this host's traffic to peer into the datapath, except
	 * burrowd's own (BW_IKE_FWMARK). NULL when the kernel's policies select that traffic. */
	int (*transport_route)(struct bw_sa_conn *c, const struct bw_cidr *peer, const struct bw_cidr *src);
	/* Userspace backend: an ESP packet that arrived for this connection. */
	int (*input)(struct bw_sa_conn *c, const uint8_t *pkt, size_t len);
	/* Optional (NULL: call input per packet). n ESP packets that arrived together, for this
	 * connection, in order; all handled before it returns. Returns how many were dropped;
	 * errs (may be NULL) gets input's return value for each. */
	size_t (*input_burst)(struct bw_sa_conn *c, const struct iovec *pkts, size_t n, int *errs);
	int (*counters)(struct bw_sa_conn *c, struct bw_sa_counters *out);
	/* Packets one SA has carried (valid ones only); -ENOENT if there is no such SA. */
	int (*sa_packets)(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir, uint64_t *packets);
	/* Name of the interface (e.g. "bw-office"), for status and DNS. */
	const char *(*ifname)(struct bw_sa_conn *c);
	/* Removes every SA, policy, route and address, then the device; frees c. */
	void (*conn_close)(struct bw_sa_conn *c);
	/* Undoes what a crashed run recorded in state_dir for conn_name. */
	void (*cleanup_stale)(const char *conn_name, const char *state_dir);
};

extern const struct bw_sa_backend_ops bw_sa_backend_userspace;

/* Every backend, NULL-terminated: for what must be done whichever one ran before. */
extern const struct bw_sa_backend_ops *const bw_sa_backends[];

/* Undoes what a crashed run of any backend recorded in state_dir for conn_name. */
void bw_sa_backends_cleanup_stale(const char *conn_name, const char *state_dir);

/* Picks the backend for `backend = auto|userspace|xfrm`; NULL with a one-sentence reason in
 * err when the choice cannot work on this kernel. */
const struct bw_sa_backend_ops *bw_sa_backend_pick(enum bw_backend want, char *err, size_t errlen);

#endif

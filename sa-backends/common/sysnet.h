/* Below both SA backends (sn_: system networking): what a datapath changes in the system
 * (TUN device, addresses, routes, rules) and the state records (NAME.userspace, NAME.xfrm)
 * that let a later run undo it. Nothing above sa-backends/ includes this. */
#ifndef BURROW_SYSNET_H
#define BURROW_SYSNET_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"

#define SN_MAX_ADDRS 8
#define SN_MAX_ROUTES 48	/* BW_MAX_NETS split in two for /0, plus exceptions */
#define SN_MAX_RULES 2
/* Transport mode: the route to the peer through the TUN lives in a table of its own that a
 * rule consults for every packet not marked BW_IKE_FWMARK (so IKE never enters it). */
#define SN_RULE_PRIO 25207
#define SN_RULE_TABLE_BASE 0x62770000u	/* + the TUN device's ifindex */

struct nl_sock;

/* The connection's interface name: "bw-NAME", or "bw-" + 7 characters + "-" + 4 hex digits of
 * a hash when NAME is too long or has characters an interface name cannot hold. */
void sn_ifname(const char *conn_name, char out[IFNAMSIZ]);

/* One route Burrow installed: through the TUN device, or an exception towards the
 * gateway through the original interface. */
struct sn_route {
	struct bw_cidr dst;
	bool has_src;
	struct bw_cidr src;		/* preferred source (host address) */
	bool has_via;
	struct bw_cidr via;		/* next-hop gateway (exceptions only) */
	char ifname[IFNAMSIZ];		/* the record names interfaces; indexes change */
	uint32_t table;
	bool exception;
};

/* Everything one connection installed; the state file mirrors it line by line. */
/* "not fwmark BW_IKE_FWMARK lookup table" at priority prio, for one address family. */
struct sn_rule {
	sa_family_t family;
	uint32_t table;
	uint32_t prio;
};

struct sn_record {
	char ifname[IFNAMSIZ];
	struct bw_cidr addrs[SN_MAX_ADDRS];
	size_t n_addrs;
	struct sn_route routes[SN_MAX_ROUTES];
	size_t n_routes;
	struct sn_rule rules[SN_MAX_RULES];
	size_t n_rules;
};

/* CIDR text ("10.1.0.0/24", "fd00::1/128") without depending on the config module. */
int sn_cidr_format(const struct bw_cidr *c, char *buf, size_t len);
int sn_cidr_parse(const char *s, struct bw_cidr *out);
bool sn_cidr_valid(const struct bw_cidr *c);
bool sn_cidr_contains(const struct bw_cidr *net, sa_family_t family, const uint8_t *addr);
bool sn_cidr_equal(const struct bw_cidr *a, const struct bw_cidr *b);

/* state_dir/NAME.userspace. Written atomically (temporary file, fsync, rename). */
int sn_record_path(const char *state_dir, const char *conn_name, char *buf, size_t len);
int sn_record_write(const char *path, const char *conn_name, const struct sn_record *r);
/* -ENOENT when there is no record; lines it cannot read are logged and skipped. */
int sn_record_read(const char *path, struct sn_record *r);
/* Shared with the xfrm backend's record: a route line (written and read back), and the
 * atomic write (a temporary file in tmp, then fsync and rename; err != 0 discards it). */
int sn_record_put_route(FILE *f, const struct sn_route *r);
int sn_record_parse_route(char **save, bool exception, struct sn_route *r);
/* The ifname, address and route lines both records hold, written by sn_record_put_net and
 * read by sn_record_net_line: 1 when key was one of them and read, 0 for another key,
 * -EINVAL when it was one of them but could not be read (or there is no room). */
struct sn_rec_net {
	char *ifname;			/* IFNAMSIZ */
	struct bw_cidr *addrs;
	size_t *n_addrs;
	struct sn_route *routes;
	size_t *n_routes;
};
int sn_record_put_net(FILE *f, const struct sn_rec_net *n);
int sn_record_net_line(const char *key, char **save, const struct sn_rec_net *n);
/* Reads a record line by line: blank lines and comments skipped, the first word of every other
 * line to line() with the rest in save (strtok_r). A line it refuses (< 0) is logged, naming
 * backend, and skipped. -errno when path cannot be opened. */
int sn_record_read_lines(const char *path, const char *backend,
			 int (*line)(void *ctx, const char *key, char **save), void *ctx);
FILE *sn_record_create(const char *path, char *tmp, size_t tmplen, int *err);
int sn_record_finish(FILE *f, const char *tmp, const char *path, int err);

/* Creates (or attaches to) TUN device ifname: IFF_TUN|IFF_NO_PI, non-blocking, close-on-exec. */
int sn_tun_open(const char *ifname, int *fd_out);
/* No IPv6 link-local, no multicast (nothing the kernel sends on its own hits the tunnel),
 * the given MTU, link up. Returns the ifindex or -errno. */
int sn_link_setup(struct nl_sock *nl, const char *ifname, int mtu);
/* The addresses and routes one connection put on the system, as both backends keep them in
 * their records: each change is recorded (save) before it is made, and the record is put
 * back when the change fails. */
struct sn_net {
	struct nl_sock *nl;
	const char *conn;		/* for the log */
	int ifindex;
	const char *ifname;
	struct bw_cidr *addrs;
	size_t *n_addrs;
	struct sn_route *routes;
	size_t *n_routes;
	int (*save)(void *ctx);
	void *ctx;
};

/* The address on the device (again: nothing to do). */
int sn_net_add_address(const struct sn_net *n, const struct bw_cidr *addr);
/* -EEXIST when the kernel has that route already (it is then not ours and not recorded). */
int sn_net_route_install(const struct sn_net *n, const struct sn_route *r);
/* The routes that send net through the device (sn_routes_for_net). */
int sn_net_add_routes(const struct sn_net *n, const struct bw_cidr *net, const struct bw_cidr *src);
/* The host route that keeps the gateway outside the tunnel (sn_gateway_exception). */
int sn_net_route_exception(const struct sn_net *n, const struct sockaddr *gateway);

/* Removes a TUN device left behind (persistent). -EBUSY when a live process holds it,
 * -ENOENT when there is none, -EINVAL when ifname is not a TUN device. */
int sn_tun_remove_stale(const char *ifname);

int sn_nl_open(struct nl_sock **out);
void sn_nl_close(struct nl_sock *nl);
int sn_addr_add(struct nl_sock *nl, int ifindex, const struct bw_cidr *a);
int sn_addr_del(struct nl_sock *nl, int ifindex, const struct bw_cidr *a);
/* -EEXIST when the same route exists already (it is then not ours). */
int sn_route_add(struct nl_sock *nl, const struct sn_route *r);
int sn_route_del(struct nl_sock *nl, const struct sn_route *r);
/* -EEXIST when an identical rule exists (it is then not ours); del: -ENOENT when gone. */
int sn_rule_add(struct nl_sock *nl, const struct sn_rule *r);
int sn_rule_del(struct nl_sock *nl, const struct sn_rule *r);
/* The kernel's current route to a host address (RTM_GETROUTE): fills ifname, table and
 * via; *is_local when the address is one of this host's. Returns ifindex or -errno. */
int sn_route_get(struct nl_sock *nl, const struct bw_cidr *host, struct sn_route *out,
		 bool *is_local);

/* Shared by both backends. The routes that send net through ifname: one route, or for 0/0
 * two halves more specific than the default route, which stays as it is. install() records
 * and adds one route; undo() takes back the last one installed when the second half fails. */
int sn_routes_for_net(const char *ifname, const struct bw_cidr *net, const struct bw_cidr *src,
		      int (*install)(void *ctx, const struct sn_route *r),
		      void (*undo)(void *ctx, const struct sn_route *r), void *ctx);
/* The host route that keeps the gateway outside the tunnel: *out is the gateway's current
 * route, marked as an exception. Returns 1 when it must be installed, 0 when the gateway is
 * a local address, or -errno (-ELOOP when the route already goes through the tunnel). */
int sn_gateway_exception(struct nl_sock *rt, const struct sockaddr *gateway, int tunnel_ifindex,
			 const char *tunnel_ifname, const char *conn, struct sn_route *out);

#endif

/* What the userspace backend changes in the system — the TUN device, addresses, routes —
 * through libnl-route, and the state record that lets a later run undo it after a crash. */
#include "sa-backends/common/sysnet.h"
#include "sa-backends/sa_backend.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fib_rules.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <netlink/addr.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/link/inet6.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/rule.h>
#include <netlink/route/route.h>

#include "log.h"
#include "util.h"

#ifndef IN6_ADDR_GEN_MODE_NONE
#define IN6_ADDR_GEN_MODE_NONE 1
#endif

/* libnl reports NLE_* codes; the backend interface speaks -errno. */
static int nlerr(int e)
{
	switch (e < 0 ? -e : e) {
	case 0: return 0;
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NODEV: return -ENODEV;
	case NLE_NOADDR: return -EADDRNOTAVAIL;
	case NLE_PERM: return -EPERM;
	case NLE_NOACCESS: return -EACCES;
	case NLE_INVAL: return -EINVAL;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_BUSY: return -EBUSY;
	case NLE_RANGE: return -ERANGE;
	case NLE_AF_NOSUPPORT: return -EAFNOSUPPORT;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	default: return -EIO;
	}
}

static size_t alen(sa_family_t family)
{
	return family == AF_INET ? 4 : 16;
}

bool sn_cidr_valid(const struct bw_cidr *c)
{
	return (c->family == AF_INET && c->prefix <= 32) ||
	       (c->family == AF_INET6 && c->prefix <= 128);
}

int sn_cidr_format(const struct bw_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	int n;

	if (!sn_cidr_valid(c) || !inet_ntop(c->family, c->addr, a, sizeof(a)))
		return -EINVAL;
	n = snprintf(buf, len, "%s/%u", a, c->prefix);
	return n < 0 || (size_t)n >= len ? -ENOSPC : 0;
}

int sn_cidr_parse(const char *s, struct bw_cidr *out)
{
	char a[INET6_ADDRSTRLEN];
	const char *slash = strchr(s, '/');
	struct bw_cidr c = { 0 };
	size_t n = slash ? (size_t)(slash - s) : strlen(s);
	char *end;
	unsigned long p;

	if (n == 0 || n >= sizeof(a))
		return -EINVAL;
	memcpy(a, s, n);
	a[n] = '\0';
	if (inet_pton(AF_INET, a, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, a, c.addr) == 1)
		c.family = AF_INET6;
	else
		return -EINVAL;
	c.prefix = (uint8_t)(alen(c.family) * 8);
	if (slash) {
		errno = 0;
		p = strtoul(slash + 1, &end, 10);
		if (errno || end == slash + 1 || *end || p > c.prefix)
			return -EINVAL;
		c.prefix = (uint8_t)p;
	}
	*out = c;
	return 0;
}

bool sn_cidr_contains(const struct bw_cidr *net, sa_family_t family, const uint8_t *addr)
{
	unsigned full = net->prefix / 8, rest = net->prefix % 8;

	if (net->family != family)
		return false;
	if (memcmp(net->addr, addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xff << (8 - rest));
		if ((net->addr[full] & mask) != (addr[full] & mask))
			return false;
	}
	return true;
}

bool sn_cidr_equal(const struct bw_cidr *a, const struct bw_cidr *b)
{
	return a->family == b->family && a->prefix == b->prefix &&
	       memcmp(a->addr, b->addr, alen(a->family)) == 0;
}

static bool ifname_char_ok(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
	       ch == '-' || ch == '_' || ch == '.';
}

void sn_ifname(const char *conn_name, char out[IFNAMSIZ])
{
	size_t n = strlen(conn_name), room = IFNAMSIZ - 1 - 3;
	bool clean = n > 0;
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (size_t i = 0; i < n; i++) {
		clean = clean && ifname_char_ok(conn_name[i]);
		h = (h ^ (uint8_t)conn_name[i]) * 16777619u;
	}
	memcpy(out, "bw-", 3);
	if (clean && n <= room) {
		memcpy(out + 3, conn_name, n + 1);
		return;
	}
	/* "bw-" + 7 + "-" + 4 hex = 15 characters */
	size_t k = 0;
	for (size_t i = 0; i < n && k < 7; i++)
		out[3 + k++] = ifname_char_ok(conn_name[i]) ? conn_name[i] : '_';
	snprintf(out + 3 + k, IFNAMSIZ - 3 - k, "-%04x", (unsigned)((h ^ (h >> 16)) & 0xffff));
}

/* ---- the state record ---- */

int sn_record_path(const char *state_dir, const char *conn_name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.userspace", state_dir, conn_name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int sn_record_put_route(FILE *f, const struct sn_route *r)
{
	char dst[64], src[64], via[64];

	if (sn_cidr_format(&r->dst, dst, sizeof(dst)) < 0 ||
	    (r->has_src && sn_cidr_format(&r->src, src, sizeof(src)) < 0) ||
	    (r->has_via && sn_cidr_format(&r->via, via, sizeof(via)) < 0))
		return -EINVAL;
	fprintf(f, "%s %s dev %s table %u", r->exception ? "exception" : "route", dst,
		r->ifname, r->table);
	if (r->has_src)
		fprintf(f, " src %s", src);
	if (r->has_via)
		fprintf(f, " via %s", via);
	fputc('\n', f);
	return 0;
}

FILE *sn_record_create(const char *path, char *tmp, size_t tmplen, int *err)
{
	FILE *f;
	int fd;

	if (snprintf(tmp, tmplen, "%s.tmp", path) >= (int)tmplen) {
		*err = -ENAMETOOLONG;
		return NULL;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0) {
		*err = -errno;
		return NULL;
	}
	f = fdopen(fd, "w");
	if (!f) {
		*err = -errno;
		close(fd);
		unlink(tmp);
		return NULL;
	}
	*err = 0;
	return f;
}

int sn_record_finish(FILE *f, const char *tmp, const char *path, int err)
{
	if (!err && (fflush(f) != 0 || fsync(fileno(f)) != 0))
		err = -errno;
	if (fclose(f) != 0 && !err)
		err = -errno;
	if (!err && rename(tmp, path) != 0)
		err = -errno;
	if (err)
		unlink(tmp);
	return err;
}

int sn_record_put_net(FILE *f, const struct sn_rec_net *n)
{
	char a[64];

	if (n->ifname[0])
		fprintf(f, "ifname %s\n", n->ifname);
	for (size_t i = 0; i < *n->n_addrs; i++) {
		if (sn_cidr_format(&n->addrs[i], a, sizeof(a)) < 0)
			return -EINVAL;
		fprintf(f, "address %s\n", a);
	}
	for (size_t i = 0; i < *n->n_routes; i++) {
		int err = sn_record_put_route(f, &n->routes[i]);

		if (err < 0)
			return err;
	}
	return 0;
}

int sn_record_net_line(const char *key, char **save, const struct sn_rec_net *n)
{
	if (strcmp(key, "ifname") == 0) {
		char *v = strtok_r(NULL, " \t", save);

		return !v || bw_strlcpy(n->ifname, v, IFNAMSIZ) < 0 ? -EINVAL : 1;
	}
	if (strcmp(key, "address") == 0) {
		char *v = strtok_r(NULL, " \t", save);

		if (!v || *n->n_addrs == SN_MAX_ADDRS || sn_cidr_parse(v, &n->addrs[*n->n_addrs]) < 0)
			return -EINVAL;
		(*n->n_addrs)++;
		return 1;
	}
	if (strcmp(key, "route") == 0 || strcmp(key, "exception") == 0) {
		if (*n->n_routes == SN_MAX_ROUTES ||
		    sn_record_parse_route(save, key[0] == 'e', &n->routes[*n->n_routes]) < 0)
			return -EINVAL;
		(*n->n_routes)++;
		return 1;
	}
	return 0;
}

int sn_record_read_lines(const char *path, const char *backend,
			 int (*line)(void *ctx, const char *key, char **save), void *ctx)
{
	char buf[512];
	FILE *f = fopen(path, "re");
	int lineno = 0;

	if (!f)
		return -errno;
	while (fgets(buf, sizeof(buf), f)) {
		char *save = NULL, *key;

		lineno++;
		buf[strcspn(buf, "\r\n")] = '\0';
		key = strtok_r(buf, " \t", &save);
		if (!key || key[0] == '#')
			continue;
		if (line(ctx, key, &save) < 0)
			bw_warn("%s:%d: skipping a line the %s backend cannot read", path, lineno, backend);
	}
	fclose(f);
	return 0;
}

static struct sn_rec_net rec_net_of(struct sn_record *r)
{
	return (struct sn_rec_net){ .ifname = r->ifname, .addrs = r->addrs, .n_addrs = &r->n_addrs,
				    .routes = r->routes, .n_routes = &r->n_routes };
}

int sn_record_write(const char *path, const char *conn_name, const struct sn_record *r)
{
	char tmp[PATH_MAX];
	struct sn_rec_net rec_net = rec_net_of((struct sn_record *)r);
	int err;
	FILE *f = sn_record_create(path, tmp, sizeof(tmp), &err);

	if (!f)
		return err;
	fprintf(f, "# What Burrow's userspace backend installed for connection %s.\n"
		   "# Removed when the connection closes; undone at the next start after a crash.\n",
		conn_name);
	err = sn_record_put_net(f, &rec_net);
	for (size_t i = 0; i < r->n_rules && !err; i++)
		fprintf(f, "rule inet%s table %u pref %u\n", r->rules[i].family == AF_INET6 ? "6" : "",
			r->rules[i].table, r->rules[i].prio);
	return sn_record_finish(f, tmp, path, err);
}

/* "route|exception DST dev IF table N [src A] [via G]", the tokens after the key */
int sn_record_parse_route(char **save, bool exception, struct sn_route *r)
{
	char *tok, *val;
	bool has_dev = false;

	memset(r, 0, sizeof(*r));
	r->exception = exception;
	r->table = RT_TABLE_MAIN;
	tok = strtok_r(NULL, " \t", save);
	if (!tok || sn_cidr_parse(tok, &r->dst) < 0)
		return -EINVAL;
	while ((tok = strtok_r(NULL, " \t", save))) {
		val = strtok_r(NULL, " \t", save);
		if (!val)
			return -EINVAL;
		if (strcmp(tok, "dev") == 0) {
			if (bw_strlcpy(r->ifname, val, sizeof(r->ifname)) < 0)
				return -EINVAL;
			has_dev = true;
		} else if (strcmp(tok, "table") == 0) {
			char *end;
			unsigned long t;

			errno = 0;
			t = strtoul(val, &end, 10);
			if (errno || *end || t == 0 || t > UINT32_MAX)
				return -EINVAL;
			r->table = (uint32_t)t;
		} else if (strcmp(tok, "src") == 0) {
			if (sn_cidr_parse(val, &r->src) < 0)
				return -EINVAL;
			r->has_src = true;
		} else if (strcmp(tok, "via") == 0) {
			if (sn_cidr_parse(val, &r->via) < 0)
				return -EINVAL;
			r->has_via = true;
		} else {
			return -EINVAL;
		}
	}
	return has_dev ? 0 : -EINVAL;
}

/* "rule inet|inet6 table N pref P" */
static int parse_rule_line(char *rest, struct sn_rule *r)
{
	char fam[8];
	unsigned long table, prio;
	int used = 0;

	if (sscanf(rest, "%7s table %lu pref %lu %n", fam, &table, &prio, &used) != 3 || rest[used] != '\0' ||
	    table == 0 || table > UINT32_MAX || prio > UINT32_MAX)
		return -EINVAL;
	if (strcmp(fam, "inet") == 0)
		r->family = AF_INET;
	else if (strcmp(fam, "inet6") == 0)
		r->family = AF_INET6;
	else
		return -EINVAL;
	r->table = (uint32_t)table;
	r->prio = (uint32_t)prio;
	return 0;
}

static int record_line(void *ctx, const char *key, char **save)
{
	struct sn_record *r = ctx;
	struct sn_rec_net n = rec_net_of(r);
	int rc = sn_record_net_line(key, save, &n);

	if (rc != 0)
		return rc;
	if (strcmp(key, "rule") != 0 || r->n_rules == SN_MAX_RULES ||
	    parse_rule_line(*save ? *save : (char *)"", &r->rules[r->n_rules]) < 0)
		return -EINVAL;
	r->n_rules++;
	return 1;
}

int sn_record_read(const char *path, struct sn_record *r)
{
	memset(r, 0, sizeof(*r));
	return sn_record_read_lines(path, "userspace", record_line, r);
}

/* ---- the TUN device ---- */

static int tun_attach(const char *ifname, int *fd_out)
{
	struct ifreq ifr = { 0 };
	int fd, err;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
	bw_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*fd_out = fd;
	return 0;
}

int sn_tun_open(const char *ifname, int *fd_out)
{
	return tun_attach(ifname, fd_out);
}

int sn_tun_remove_stale(const char *ifname)
{
	int fd = -1, err;

	if (if_nametoindex(ifname) == 0)
		return -ENOENT;
	/* Attaching fails with EBUSY while a live process holds the device and with EINVAL
	 * when it is not a TUN device: either way it is not ours to delete. */
	err = tun_attach(ifname, &fd);
	if (err < 0)
		return err;
	if (ioctl(fd, TUNSETPERSIST, 0) < 0)
		err = -errno;
	close(fd);	/* the last file of a non-persistent device takes the device along */
	return err;
}

int sn_nl_open(struct nl_sock **out)
{
	struct nl_sock *nl = nl_socket_alloc();
	int err;

	if (!nl)
		return -ENOMEM;
	err = nl_connect(nl, NETLINK_ROUTE);
	if (err < 0) {
		nl_socket_free(nl);
		return nlerr(err);
	}
	*out = nl;
	return 0;
}

void sn_nl_close(struct nl_sock *nl)
{
	nl_socket_free(nl);
}

int sn_link_setup(struct nl_sock *nl, const char *ifname, int mtu)
{
	struct rtnl_link *orig = NULL, *chg = NULL;
	struct ifreq ifr = { 0 };
	int ifindex, s, err = 0;

	ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0)
		return -errno;
	/* Before the link goes up, so that no link-local address (and no router
	 * solicitation) ever appears; without IPv6 in the kernel this fails harmlessly. */
	orig = rtnl_link_alloc();
	chg = rtnl_link_alloc();
	if (!orig || !chg) {
		err = -ENOMEM;
		goto out;
	}
	rtnl_link_set_ifindex(orig, ifindex);
	if (rtnl_link_inet6_set_addr_gen_mode(chg, IN6_ADDR_GEN_MODE_NONE) == 0) {
		int e = rtnl_link_change(nl, orig, chg, 0);
		if (e < 0)
			bw_debug("%s: cannot turn off IPv6 address generation: %s", ifname,
				 nl_geterror(e));
	}

	s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (s < 0) {
		err = -errno;
		goto out;
	}
	bw_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
	ifr.ifr_mtu = mtu;
	if (ioctl(s, SIOCSIFMTU, &ifr) < 0)
		err = -errno;
	if (!err && ioctl(s, SIOCGIFFLAGS, &ifr) < 0)
		err = -errno;
	if (!err) {
		ifr.ifr_flags = (short)((ifr.ifr_flags | IFF_UP) & ~IFF_MULTICAST);
		if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
			err = -errno;
	}
	close(s);
out:
	rtnl_link_put(orig);
	rtnl_link_put(chg);
	return err < 0 ? err : ifindex;
}

/* ---- addresses and routes ---- */

static struct nl_addr *nl_addr_of(const struct bw_cidr *c)
{
	struct nl_addr *a = nl_addr_build(c->family, c->addr, alen(c->family));

	if (a)
		nl_addr_set_prefixlen(a, c->prefix);
	return a;
}

static int addr_change(struct nl_sock *nl, int ifindex, const struct bw_cidr *c, bool add)
{
	struct rtnl_addr *ra;
	struct nl_addr *local;
	int err;

	if (!sn_cidr_valid(c))
		return -EINVAL;
	ra = rtnl_addr_alloc();
	local = nl_addr_of(c);
	if (!ra || !local) {
		rtnl_addr_put(ra);
		nl_addr_put(local);
		return -ENOMEM;
	}
	rtnl_addr_set_ifindex(ra, ifindex);
	rtnl_addr_set_family(ra, c->family);
	rtnl_addr_set_local(ra, local);
	rtnl_addr_set_prefixlen(ra, c->prefix);
	if (c->family == AF_INET6)
		rtnl_addr_set_flags(ra, IFA_F_NODAD);
	err = add ? rtnl_addr_add(nl, ra, 0) : rtnl_addr_delete(nl, ra, 0);
	nl_addr_put(local);
	rtnl_addr_put(ra);
	return nlerr(err);
}

int sn_addr_add(struct nl_sock *nl, int ifindex, const struct bw_cidr *a)
{
	return addr_change(nl, ifindex, a, true);
}

int sn_addr_del(struct nl_sock *nl, int ifindex, const struct bw_cidr *a)
{
	int err = addr_change(nl, ifindex, a, false);

	return err == -EADDRNOTAVAIL || err == -ENODEV ? -ENOENT : err;
}

static int route_change(struct nl_sock *nl, const struct sn_route *r, bool add)
{
	struct rtnl_route *rt = NULL;
	struct rtnl_nexthop *nh = NULL;
	struct nl_addr *dst = NULL, *src = NULL, *via = NULL;
	int ifindex, err;

	if (!sn_cidr_valid(&r->dst) || (r->has_src && r->src.family != r->dst.family) ||
	    (r->has_via && r->via.family != r->dst.family))
		return -EINVAL;
	ifindex = (int)if_nametoindex(r->ifname);
	if (ifindex == 0)
		return -ENODEV;
	rt = rtnl_route_alloc();
	nh = rtnl_route_nh_alloc();
	dst = nl_addr_of(&r->dst);
	if (r->has_src)
		src = nl_addr_build(r->src.family, r->src.addr, alen(r->src.family));
	if (r->has_via)
		via = nl_addr_build(r->via.family, r->via.addr, alen(r->via.family));
	if (!rt || !nh || !dst || (r->has_src && !src) || (r->has_via && !via)) {
		err = -ENOMEM;
		rtnl_route_nh_free(nh);
		goto out;
	}
	rtnl_route_set_family(rt, (uint8_t)r->dst.family);
	rtnl_route_set_dst(rt, dst);
	rtnl_route_set_table(rt, r->table);
	rtnl_route_set_type(rt, RTN_UNICAST);
	/* Deletion matches the protocol too, so only a route Burrow added goes. */
	rtnl_route_set_protocol(rt, RTPROT_STATIC);
	if (add) {
		/* IPv4 routes without a gateway are on-link; IPv6 has one scope for all. */
		rtnl_route_set_scope(rt, r->dst.family == AF_INET && !r->has_via ?
				     RT_SCOPE_LINK : RT_SCOPE_UNIVERSE);
	} else {
		rtnl_route_set_scope(rt, RT_SCOPE_NOWHERE);	/* any scope */
	}
	if (src)
		rtnl_route_set_pref_src(rt, src);
	rtnl_route_nh_set_ifindex(nh, ifindex);
	if (via)
		rtnl_route_nh_set_gateway(nh, via);
	rtnl_route_add_nexthop(rt, nh);	/* rt owns nh from here */
	err = nlerr(add ? rtnl_route_add(nl, rt, NLM_F_EXCL) : rtnl_route_delete(nl, rt, 0));
out:
	nl_addr_put(dst);
	nl_addr_put(src);
	nl_addr_put(via);
	rtnl_route_put(rt);
	return err;
}

int sn_route_add(struct nl_sock *nl, const struct sn_route *r)
{
	return route_change(nl, r, true);
}

int sn_route_del(struct nl_sock *nl, const struct sn_route *r)
{
	int err = route_change(nl, r, false);

	return err == -ENODEV || err == -ESRCH ? -ENOENT : err;
}

static int rule_change(struct nl_sock *nl, const struct sn_rule *r, bool add)
{
	struct rtnl_rule *rule;
	struct nl_msg *msg = NULL;
	int err;

	if ((r->family != AF_INET && r->family != AF_INET6) || r->table == 0)
		return -EINVAL;
	rule = rtnl_rule_alloc();
	if (!rule)
		return -ENOMEM;
	rtnl_rule_set_family(rule, r->family);
	rtnl_rule_set_prio(rule, r->prio);
	rtnl_rule_set_mark(rule, BW_IKE_FWMARK);
	rtnl_rule_set_mask(rule, 0xffffffffu);
	rtnl_rule_set_table(rule, r->table);
	rtnl_rule_set_action(rule, FR_ACT_TO_TBL);
	/* libnl has no setter for "not": the request is built, then FIB_RULE_INVERT set in it, so
	 * the rule holds for every packet except Burrow's own IKE and ESP-in-UDP ones. */
	err = nlerr(add ? rtnl_rule_build_add_request(rule, NLM_F_CREATE | NLM_F_EXCL, &msg)
			: rtnl_rule_build_delete_request(rule, 0, &msg));
	rtnl_rule_put(rule);
	if (err < 0)
		return err;
	((struct fib_rule_hdr *)nlmsg_data(nlmsg_hdr(msg)))->flags |= FIB_RULE_INVERT;
	err = nlerr(nl_send_sync(nl, msg));	/* frees msg */
	return err;
}

int sn_rule_add(struct nl_sock *nl, const struct sn_rule *r)
{
	return rule_change(nl, r, true);
}

int sn_rule_del(struct nl_sock *nl, const struct sn_rule *r)
{
	int err = rule_change(nl, r, false);

	return err == -ESRCH ? -ENOENT : err;
}

int sn_route_get(struct nl_sock *nl, const struct bw_cidr *host, struct sn_route *out,
		 bool *is_local)
{
	struct rtnl_route *res = NULL;
	struct rtnl_nexthop *nh;
	struct nl_addr *dst, *gw;
	char name[IF_NAMESIZE];
	int ifindex, err;

	*is_local = false;
	dst = nl_addr_build(host->family, host->addr, alen(host->family));
	if (!dst)
		return -ENOMEM;
	err = rtnl_route_lookup(nl, dst, &res);
	nl_addr_put(dst);
	if (err < 0)
		return nlerr(err);
	memset(out, 0, sizeof(*out));
	out->dst = *host;
	out->dst.prefix = (uint8_t)(alen(host->family) * 8);
	out->table = rtnl_route_get_table(res);
	if (out->table == 0 || out->table == RT_TABLE_LOCAL)
		out->table = RT_TABLE_MAIN;
	if (rtnl_route_get_type(res) == RTN_LOCAL) {
		*is_local = true;
		rtnl_route_put(res);
		return 0;
	}
	nh = rtnl_route_get_nnexthops(res) > 0 ? rtnl_route_nexthop_n(res, 0) : NULL;
	if (!nh || rtnl_route_get_type(res) != RTN_UNICAST) {
		rtnl_route_put(res);
		return -ENETUNREACH;
	}
	ifindex = rtnl_route_nh_get_ifindex(nh);
	gw = rtnl_route_nh_get_gateway(nh);
	if (gw && nl_addr_get_family(gw) == host->family &&
	    nl_addr_get_len(gw) == alen(host->family)) {
		out->has_via = true;
		out->via.family = host->family;
		memcpy(out->via.addr, nl_addr_get_binary_addr(gw), alen(host->family));
		out->via.prefix = (uint8_t)(alen(host->family) * 8);
	}
	rtnl_route_put(res);
	if (ifindex <= 0 || !if_indextoname((unsigned)ifindex, name))
		return -ENETUNREACH;
	bw_strlcpy(out->ifname, name, sizeof(out->ifname));
	return ifindex;
}

int sn_routes_for_net(const char *ifname, const struct bw_cidr *net, const struct bw_cidr *src,
		      int (*install)(void *ctx, const struct sn_route *r),
		      void (*undo)(void *ctx, const struct sn_route *r), void *ctx)
{
	struct sn_route r = { .table = RT_TABLE_MAIN };
	int err;

	if (!sn_cidr_valid(net) || (src && (!sn_cidr_valid(src) || src->family != net->family)))
		return -EINVAL;
	bw_strlcpy(r.ifname, ifname, sizeof(r.ifname));
	r.dst = *net;
	if (src) {
		r.has_src = true;
		r.src = *src;
		r.src.prefix = net->family == AF_INET ? 32 : 128;
	}
	if (net->prefix != 0)
		return install(ctx, &r);
	/* Everything: two halves more specific than the default route (the way OpenVPN and
	 * wg-quick do it); the caller pins the gateway first with sn_gateway_exception(). */
	r.dst.prefix = 1;
	memset(r.dst.addr, 0, sizeof(r.dst.addr));
	err = install(ctx, &r);
	if (err < 0)
		return err;
	r.dst.addr[0] = 0x80;
	err = install(ctx, &r);
	if (err < 0) {
		r.dst.addr[0] = 0;
		undo(ctx, &r);
	}
	return err;
}

int sn_gateway_exception(struct nl_sock *rt, const struct sockaddr *gateway, int tunnel_ifindex,
			 const char *tunnel_ifname, const char *conn, struct sn_route *out)
{
	struct bw_cidr host = { 0 };
	bool is_local;
	char g[64];
	int ifindex;

	if (gateway->sa_family == AF_INET) {
		host.family = AF_INET;
		memcpy(host.addr, &((const struct sockaddr_in *)(const void *)gateway)->sin_addr, 4);
		host.prefix = 32;
	} else if (gateway->sa_family == AF_INET6) {
		host.family = AF_INET6;
		memcpy(host.addr, &((const struct sockaddr_in6 *)(const void *)gateway)->sin6_addr, 16);
		host.prefix = 128;
	} else {
		return -EAFNOSUPPORT;
	}
	sn_cidr_format(&host, g, sizeof(g));
	ifindex = sn_route_get(rt, &host, out, &is_local);
	if (ifindex < 0) {
		bw_log(BW_LOG_ERROR, conn, "no route to the gateway %s: %s", g, strerror(-ifindex));
		return ifindex;
	}
	if (is_local)
		return 0;
	if (ifindex == tunnel_ifindex) {
		bw_log(BW_LOG_ERROR, conn, "the route to the gateway %s already goes through %s; pin it "
		       "before adding tunnel routes", g, tunnel_ifname);
		return -ELOOP;
	}
	out->exception = true;
	return 1;
}

/* ---- addresses and routes, recorded (both backends) ---- */

int sn_net_add_address(const struct sn_net *n, const struct bw_cidr *addr)
{
	char a[64];
	int err;

	if (!sn_cidr_valid(addr))
		return -EINVAL;
	for (size_t i = 0; i < *n->n_addrs; i++)
		if (sn_cidr_equal(&n->addrs[i], addr))
			return 0;
	if (*n->n_addrs == SN_MAX_ADDRS)
		return -ENOSPC;
	n->addrs[(*n->n_addrs)++] = *addr;
	err = n->save(n->ctx);
	if (err == 0)
		err = sn_addr_add(n->nl, n->ifindex, addr);
	sn_cidr_format(addr, a, sizeof(a));
	if (err < 0) {
		(*n->n_addrs)--;
		n->save(n->ctx);
		bw_log(BW_LOG_ERROR, n->conn, "cannot put address %s on %s: %s", a, n->ifname, strerror(-err));
		return err;
	}
	bw_log(BW_LOG_INFO, n->conn, "address %s on %s", a, n->ifname);
	return 0;
}

/* Records a route first and installs it second: a crash in between leaves a record of
 * something that is not there, which cleanup tolerates, never the other way round. */
int sn_net_route_install(const struct sn_net *n, const struct sn_route *r)
{
	char d[64];
	int err;

	if (*n->n_routes == SN_MAX_ROUTES)
		return -ENOSPC;
	n->routes[(*n->n_routes)++] = *r;
	err = n->save(n->ctx);
	if (err == 0)
		err = sn_route_add(n->nl, r);
	sn_cidr_format(&r->dst, d, sizeof(d));
	if (err < 0) {
		(*n->n_routes)--;
		n->save(n->ctx);
		if (err != -EEXIST)
			bw_log(BW_LOG_ERROR, n->conn, "cannot add route %s dev %s: %s", d, r->ifname, strerror(-err));
		return err;
	}
	bw_log(BW_LOG_INFO, n->conn, "route %s dev %s%s", d, r->ifname,
	       r->exception ? " (to the gateway, outside the tunnel)" : "");
	return 0;
}

static int net_install_cb(void *ctx, const struct sn_route *r)
{
	return sn_net_route_install(ctx, r);
}

static void net_undo_cb(void *ctx, const struct sn_route *r)
{
	const struct sn_net *n = ctx;

	sn_route_del(n->nl, r);
	(*n->n_routes)--;
	n->save(n->ctx);
}

int sn_net_add_routes(const struct sn_net *n, const struct bw_cidr *net, const struct bw_cidr *src)
{
	return sn_routes_for_net(n->ifname, net, src, net_install_cb, net_undo_cb, (void *)n);
}

int sn_net_route_exception(const struct sn_net *n, const struct sockaddr *gateway)
{
	struct sn_route r;
	int err = sn_gateway_exception(n->nl, gateway, n->ifindex, n->ifname, n->conn, &r);

	if (err <= 0)
		return err;
	err = sn_net_route_install(n, &r);
	return err == -EEXIST ? 0 : err;
}

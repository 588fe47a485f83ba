/* The pure parts of the split-DNS forwarder (dnsmasq) used without systemd-resolved: reading
 * the previous /etc/resolv.conf, the forwarder's address, its configuration and the
 * resolv.conf that points at it. No I/O here; ike_dns.c runs the forwarder. */
#ifndef BURROW_DNS_FWD_H
#define BURROW_DNS_FWD_H

#include <stdbool.h>
#include <stddef.h>

#define BW_RESOLV_MAX_NS 3		/* the nameservers glibc's resolver uses (MAXNS) */
#define BW_RESOLV_MAX_SEARCH 6
#define BW_DNS_ADDR_MAX 64		/* an IPv6 address with a %interface scope */
#define BW_DNS_NAME_MAX 254

/* The forwarders listen on 127.0.87.1-250, one address a connection, on port 53. */
#define BW_DNS_FWD_NET "127.0.87."

struct bw_resolv_prev {
	char ns[BW_RESOLV_MAX_NS][BW_DNS_ADDR_MAX];
	size_t n_ns;
	size_t n_skipped;		/* nameservers left out: ours, invalid, or past the limit */
	char search[BW_RESOLV_MAX_SEARCH][BW_DNS_NAME_MAX];
	size_t n_search;
};

/* Reads resolv.conf text as glibc does: "nameserver ADDR" lines (IPv4, IPv6, fe80::1%eth0),
 * the last "search" or "domain" line, comments (# ;) ignored. Our own forwarders' addresses
 * are skipped: after a crash the file may still name one. */
void bw_resolv_parse(const char *text, struct bw_resolv_prev *out);

/* A DNS name that is safe in a dnsmasq line and a resolv.conf line: letters, digits, - _ .,
 * labels of at most 63 characters, not empty. */
bool bw_dns_name_ok(const char *name);

/* Whether addr is one of the forwarders' loopback addresses. */
bool bw_dns_fwd_is_ours(const char *addr);

/* The loopback address of the connection's forwarder: 127.0.87.N, N from a hash of the name,
 * the next one for each further attempt (when another program holds it). */
void bw_dns_fwd_address(const char *conn_name, unsigned attempt, char *out, size_t len);

struct bw_dns_fwd_spec {
	const char *conn_name;
	const char *listen;			/* address from bw_dns_fwd_address */
	const char *const *domains;		/* names that go to the tunnel's servers */
	size_t n_domains;
	const char *const *servers;		/* the tunnel's DNS servers */
	size_t n_servers;
	const struct bw_resolv_prev *prev;	/* everything else goes to these */
};

/* dnsmasq's configuration: no resolv.conf, no hosts file, no pid file, only the listen
 * address, one server=/domain/addr line per domain and server, one server=addr line per
 * previous nameserver. Names that are not bw_dns_name_ok are left out. Length written,
 * or -1 when out is too small. */
int bw_dns_fwd_conf(const struct bw_dns_fwd_spec *s, char *out, size_t len);

/* /etc/resolv.conf while the forwarder runs: its address, the tunnel's search domains then
 * the previous ones (at most 6 in all). Length written, or -1 when out is too small. */
int bw_dns_fwd_resolv(const struct bw_dns_fwd_spec *s, const char *const *search, size_t n_search,
		      char *out, size_t len);

#endif

/* The pure parts of the split-DNS forwarder: see dns_fwd.h. */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ike/dns_fwd.h"
#include "util.h"

bool bw_dns_name_ok(const char *name)
{
	size_t label = 0, n = strlen(name);

	if (n == 0 || n >= BW_DNS_NAME_MAX || name[0] == '.' || name[0] == '-')
		return false;
	for (const char *p = name; *p; p++) {
		if (*p == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
			if (++label > 63)
				return false;
		} else {
			return false;
		}
	}
	return true;
}

bool bw_dns_fwd_is_ours(const char *addr)
{
	return strncmp(addr, BW_DNS_FWD_NET, strlen(BW_DNS_FWD_NET)) == 0;
}

/* An address of a nameserver line: IPv4, or IPv6 with an optional %scope. */
static bool ns_addr_ok(const char *addr)
{
	char head[BW_DNS_ADDR_MAX];
	unsigned char bin[16];
	const char *pct = strchr(addr, '%');
	size_t n = pct ? (size_t)(pct - addr) : strlen(addr);

	if (n == 0 || n >= sizeof(head) || strlen(addr) >= BW_DNS_ADDR_MAX)
		return false;
	memcpy(head, addr, n);
	head[n] = '\0';
	if (inet_pton(AF_INET, head, bin) == 1)
		return !pct;
	if (inet_pton(AF_INET6, head, bin) != 1)
		return false;
	if (pct) {
		for (const char *p = pct + 1; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-' && *p != '_' && *p != '.')
				return false;
		return pct[1] != '\0';
	}
	return true;
}

/* The next whitespace-separated word of *p into out (cut to len); false at the line's end or
 * a comment. */
static bool next_word(const char **p, char *out, size_t len)
{
	const char *s = *p;
	size_t n;

	s += strspn(s, " \t");
	n = strcspn(s, " \t\n");
	if (n == 0 || *s == '#' || *s == ';')
		return false;
	snprintf(out, len, "%.*s", (int)(n < len ? n : len - 1), s);
	*p = s + n;
	return n < len;		/* a word cut short is no word */
}

static void parse_search(const char *p, struct bw_resolv_prev *out)
{
	char w[BW_DNS_NAME_MAX + 1];

	out->n_search = 0;	/* the last search or domain line wins */
	while (*p && *p != '\n') {
		const char *before = p;

		if (!next_word(&p, w, sizeof(w))) {
			if (p == before)
				break;
			continue;
		}
		if (out->n_search < BW_RESOLV_MAX_SEARCH && bw_dns_name_ok(w))
			bw_strlcpy(out->search[out->n_search++], w, BW_DNS_NAME_MAX);
	}
}

static void parse_line(const char *line, struct bw_resolv_prev *out)
{
	char key[16], w[BW_DNS_ADDR_MAX + 1];
	const char *p = line;

	if (!next_word(&p, key, sizeof(key)))
		return;
	if (strcmp(key, "nameserver") == 0) {
		if (!next_word(&p, w, sizeof(w)) || !ns_addr_ok(w) || bw_dns_fwd_is_ours(w) ||
		    out->n_ns == BW_RESOLV_MAX_NS) {
			out->n_skipped++;
			return;
		}
		bw_strlcpy(out->ns[out->n_ns++], w, BW_DNS_ADDR_MAX);
	} else if (strcmp(key, "search") == 0 || strcmp(key, "domain") == 0) {
		parse_search(p, out);
	}
}

void bw_resolv_parse(const char *text, struct bw_resolv_prev *out)
{
	memset(out, 0, sizeof(*out));
	for (const char *line = text; line && *line; ) {
		const char *nl = strchr(line, '\n');

		parse_line(line, out);
		line = nl ? nl + 1 : NULL;
	}
}

void bw_dns_fwd_address(const char *conn_name, unsigned attempt, char *out, size_t len)
{
	uint32_t h = 2166136261u;	/* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)conn_name; *p; p++)
		h = (h ^ *p) * 16777619u;
	snprintf(out, len, BW_DNS_FWD_NET "%u", (unsigned)(1 + (h % 250 + attempt) % 250));
}

struct buf {
	char *p;
	size_t len, used;
	bool full;
};

static void put(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->full)
		return;
	va_start(ap, fmt);
	n = vsnprintf(b->p + b->used, b->len - b->used, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= b->len - b->used)
		b->full = true;
	else
		b->used += (size_t)n;
}

static int done(const struct buf *b)
{
	return b->full ? -1 : (int)b->used;
}

int bw_dns_fwd_conf(const struct bw_dns_fwd_spec *s, char *out, size_t len)
{
	struct buf b = { out, len, 0, len == 0 };

	put(&b, "# written by burrowd for connection %s; removed when it stops\n", s->conn_name);
	put(&b, "no-resolv\nno-hosts\nno-poll\npid-file=\nlog-facility=-\n");
	put(&b, "listen-address=%s\nbind-interfaces\nport=53\n", s->listen);
	for (size_t d = 0; d < s->n_domains; d++) {
		if (!bw_dns_name_ok(s->domains[d]))
			continue;
		for (size_t i = 0; i < s->n_servers; i++)
			put(&b, "server=/%s/%s\n", s->domains[d], s->servers[i]);
	}
	for (size_t i = 0; s->prev && i < s->prev->n_ns; i++)
		put(&b, "server=%s\n", s->prev->ns[i]);
	return done(&b);
}

int bw_dns_fwd_resolv(const struct bw_dns_fwd_spec *s, const char *const *search, size_t n_search,
		      char *out, size_t len)
{
	struct buf b = { out, len, 0, len == 0 };
	size_t n = 0;

	put(&b, "# written by burrowd for connection %s; restored when it stops\n", s->conn_name);
	put(&b, "nameserver %s\n", s->listen);
	for (size_t i = 0; i < n_search && n < BW_RESOLV_MAX_SEARCH; i++)
		if (bw_dns_name_ok(search[i]))
			put(&b, "%s %s", n++ ? "" : "search", search[i]);
	for (size_t i = 0; s->prev && i < s->prev->n_search && n < BW_RESOLV_MAX_SEARCH; i++)
		put(&b, "%s %s", n++ ? "" : "search", s->prev->search[i]);
	if (n)
		put(&b, "\n");
	return done(&b);
}

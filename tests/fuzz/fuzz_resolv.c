/* libFuzzer target for the previous /etc/resolv.conf as the DNS forwarder reads it
 * (bw_resolv_parse): a DHCP client writes that file from what the network sent. What it keeps
 * goes into dnsmasq's configuration and back into resolv.conf, so every kept nameserver and
 * search name must be terminated, free of line breaks and slashes, and within the limits;
 * the generated files must then build without overflow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/dns_fwd.h"

static void check(int cond)
{
	if (!cond)
		abort();
}

static void clean_word(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	check(n > 0 && n < cap);
	for (size_t i = 0; i < n; i++)
		check(s[i] != '\n' && s[i] != '\r' && s[i] != '/' && s[i] != ' ' && s[i] != '\t');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), conf[8192], resolv[4096];
	struct bw_resolv_prev prev;
	const char *domains[] = { "corp.example" }, *servers[] = { "10.1.0.53" };
	const char *search[BW_RESOLV_MAX_SEARCH];
	struct bw_dns_fwd_spec spec = { .conn_name = "office", .listen = "127.0.87.1", .domains = domains,
					.n_domains = 1, .servers = servers, .n_servers = 1, .prev = &prev };

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	bw_resolv_parse(text, &prev);
	check(prev.n_ns <= BW_RESOLV_MAX_NS && prev.n_search <= BW_RESOLV_MAX_SEARCH);
	for (size_t i = 0; i < prev.n_ns; i++) {
		clean_word(prev.ns[i], sizeof(prev.ns[i]));
		check(!bw_dns_fwd_is_ours(prev.ns[i]));
	}
	for (size_t i = 0; i < prev.n_search; i++) {
		clean_word(prev.search[i], sizeof(prev.search[i]));
		search[i] = prev.search[i];
	}
	if (bw_dns_fwd_conf(&spec, conf, sizeof(conf)) >= 0)
		check(strlen(conf) < sizeof(conf));
	if (bw_dns_fwd_resolv(&spec, search, prev.n_search, resolv, sizeof(resolv)) >= 0)
		check(strlen(resolv) < sizeof(resolv));
	free(text);
	return 0;
}

/* libFuzzer target for the Mode Config answer as Burrow uses it: the attribute payload parser
 * (isakmp_parse_attr) followed by ike_modecfg_read, which turns the gateway's addresses, texts
 * and split networks into the values that reach routes, resolv.conf and the log. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ikev1.h"
#include "ike/isakmp.h"

static struct isakmp_cfg cfg;

static void check(int cond)
{
	if (!cond)
		abort();
}

/* NUL-terminated within cap, no control character but newline and tab. */
static void clean_text(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	check(n < cap);
	for (size_t i = 0; i < n; i++)
		check((unsigned char)s[i] >= 0x20 || s[i] == '\n' || s[i] == '\t');
}

static void host_bits_clear(const struct bw_cidr *c)
{
	uint32_t a = (uint32_t)c->addr[0] << 24 | (uint32_t)c->addr[1] << 16 | (uint32_t)c->addr[2] << 8 | c->addr[3];

	check(c->family == AF_INET && c->prefix <= 32);
	check(c->prefix == 32 || (a & (0xffffffffu >> c->prefix)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isakmp_payload pl = { .type = ISAKMP_PL_ATTR, .data = data, .len = size, .off = 0 };
	struct ike_modecfg mc;
	size_t ignored;

	if (isakmp_parse_attr(&pl, &cfg) != 0)
		return 0;
	ignored = ike_modecfg_read(&cfg, &mc);
	check(ignored <= cfg.n_attrs);
	check(mc.n_dns <= IKE_MAX_DNS && mc.n_nbns <= 2 && mc.n_split <= BW_MAX_NETS &&
	      mc.n_split_dns <= IKE_MAX_SPLIT_DNS);
	if (mc.have_vip)
		check(mc.vip.family == AF_INET && mc.vip.prefix == 32);
	for (size_t i = 0; i < mc.n_dns; i++)
		check(mc.dns[i].family == AF_INET && mc.dns[i].prefix == 32);
	for (size_t i = 0; i < mc.n_split; i++) {
		host_bits_clear(&mc.split[i]);
		for (size_t j = 0; j < i; j++)
			check(memcmp(&mc.split[i], &mc.split[j], sizeof(mc.split[i])) != 0);
	}
	clean_text(mc.banner, sizeof(mc.banner));
	clean_text(mc.domain, sizeof(mc.domain));
	for (size_t i = 0; i < mc.n_split_dns; i++) {
		clean_text(mc.split_dns[i], sizeof(mc.split_dns[i]));
		check(mc.split_dns[i][0] != '\0' && strpbrk(mc.split_dns[i], ", \n\t") == NULL);
	}
	return 0;
}

/* Tests for ike_modecfg_read: what Burrow takes from a gateway's Mode Config answer. The input is
 * built here byte by byte (draft-dukes-ike-mode-cfg attribute layout, Cisco Unity attributes) and
 * parsed by the real attribute parser first, as on the wire. */
#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "ike/ikev1.h"
#include "ike/isakmp.h"

static uint8_t buf[2048];
static size_t blen;
static struct isakmp_cfg cfg;

static void begin(void)
{
	buf[0] = ISAKMP_CFG_REPLY;
	buf[1] = 0;
	buf[2] = 0x12;
	buf[3] = 0x34;
	blen = 4;
}

static void tlv(uint16_t type, const void *v, size_t len)
{
	buf[blen++] = (uint8_t)(type >> 8);
	buf[blen++] = (uint8_t)type;
	buf[blen++] = (uint8_t)(len >> 8);
	buf[blen++] = (uint8_t)len;
	memcpy(buf + blen, v, len);
	blen += len;
}

static void ip(uint16_t type, const char *a)
{
	uint8_t b[4];

	inet_pton(AF_INET, a, b);
	tlv(type, b, 4);
}

static void text(uint16_t type, const char *s)
{
	tlv(type, s, strlen(s));
}

static size_t read_it(struct ike_modecfg *mc)
{
	struct isakmp_payload pl = { .type = ISAKMP_PL_ATTR, .data = buf, .len = blen };

	memset(mc, 0xa5, sizeof(*mc));
	if (isakmp_parse_attr(&pl, &cfg) != 0) {
		tap_diag("the attribute payload did not parse");
		return (size_t)-1;
	}
	return ike_modecfg_read(&cfg, mc);
}

static const char *cidr(const struct bw_cidr *c)
{
	static char s[4][64];
	static int k;

	k = (k + 1) % 4;
	bw_cidr_format(c, s[k], sizeof(s[k]));
	return s[k];
}

static void test_full_answer(void)
{
	struct ike_modecfg mc;
	uint8_t split[14 * 3 - 6] = { 0 };
	size_t ignored;

	begin();
	ip(ISAKMP_CFG_INTERNAL_IP4_ADDRESS, "10.9.0.2");
	ip(ISAKMP_CFG_INTERNAL_IP4_NETMASK, "255.255.255.255");
	ip(ISAKMP_CFG_INTERNAL_IP4_DNS, "10.1.0.53");
	ip(ISAKMP_CFG_INTERNAL_IP4_DNS, "10.1.0.54");
	ip(ISAKMP_CFG_INTERNAL_IP4_NBNS, "10.1.0.60");
	text(ISAKMP_CFG_UNITY_BANNER, "Welcome\n\x1b[31mAuthorised use only\x07");
	text(ISAKMP_CFG_UNITY_DEF_DOMAIN, "office.example");
	text(ISAKMP_CFG_UNITY_SPLITDNS_NAME, "corp.example, lab.example,,");
	/* 10.1.0.0/24, 10.2.0.0/16, and 10.1.0.7/24 again (host bits set), the last without padding. */
	inet_pton(AF_INET, "10.1.0.0", split);
	inet_pton(AF_INET, "255.255.255.0", split + 4);
	inet_pton(AF_INET, "10.2.0.0", split + 14);
	inet_pton(AF_INET, "255.255.0.0", split + 18);
	inet_pton(AF_INET, "10.1.0.7", split + 28);
	inet_pton(AF_INET, "255.255.255.0", split + 32);
	tlv(ISAKMP_CFG_UNITY_SPLIT_INCLUDE, split, sizeof(split));
	text(ISAKMP_CFG_APPLICATION_VERSION, "strongSwan");
	ignored = read_it(&mc);

	tap_is_int(ignored, 1, "one attribute Burrow does not use (APPLICATION_VERSION) is counted as ignored");
	tap_ok(mc.have_vip && mc.vip.prefix == 32 && strcmp(cidr(&mc.vip), "10.9.0.2") == 0,
	       "virtual address 10.9.0.2/32 (%s)", cidr(&mc.vip));
	tap_ok(mc.n_dns == 2 && strcmp(cidr(&mc.dns[0]), "10.1.0.53") == 0 &&
	       strcmp(cidr(&mc.dns[1]), "10.1.0.54") == 0, "two DNS servers in order");
	tap_ok(mc.n_nbns == 1 && strcmp(cidr(&mc.nbns[0]), "10.1.0.60") == 0, "one WINS server");
	tap_is_str(mc.banner, "Welcome\n[31mAuthorised use only", "the banner keeps newlines and loses control characters");
	tap_is_str(mc.domain, "office.example", "default domain");
	tap_ok(mc.n_split_dns == 2 && strcmp(mc.split_dns[0], "corp.example") == 0 &&
	       strcmp(mc.split_dns[1], "lab.example") == 0, "split DNS: two domains, empty entries dropped");
	tap_ok(mc.n_split == 2 && strcmp(cidr(&mc.split[0]), "10.1.0.0/24") == 0 &&
	       strcmp(cidr(&mc.split[1]), "10.2.0.0/16") == 0,
	       "split networks 10.1.0.0/24 and 10.2.0.0/16; a repeat with host bits set is folded in (%zu)", mc.n_split);
}

static void test_bad_values(void)
{
	struct ike_modecfg mc;
	uint8_t three[3] = { 10, 9, 0 }, split[8] = { 10, 0, 0, 0, 255, 0, 255, 0 };

	begin();
	tlv(ISAKMP_CFG_INTERNAL_IP4_ADDRESS, three, sizeof(three));
	tlv(ISAKMP_CFG_INTERNAL_IP4_DNS, "", 0);
	tlv(ISAKMP_CFG_UNITY_SPLIT_INCLUDE, split, sizeof(split));
	read_it(&mc);
	tap_ok(!mc.have_vip, "a 3-byte address is no address");
	tap_is_int(mc.n_dns, 0, "an empty DNS attribute is no server");
	tap_is_int(mc.n_split, 0, "a split network with a non-contiguous mask (255.0.255.0) is refused");

	begin();
	{
		uint8_t host[8] = { 10, 1, 0, 9, 255, 255, 255, 255 }, all[8] = { 10, 1, 0, 9, 0, 0, 0, 0 };

		tlv(ISAKMP_CFG_UNITY_SPLIT_INCLUDE, host, sizeof(host));
		tlv(ISAKMP_CFG_UNITY_SPLIT_INCLUDE, all, sizeof(all));
	}
	read_it(&mc);
	tap_ok(mc.n_split == 2 && strcmp(cidr(&mc.split[0]), "10.1.0.9") == 0 && mc.split[0].prefix == 32 &&
	       mc.split[1].prefix == 0 && strcmp(cidr(&mc.split[1]), "0.0.0.0/0") == 0,
	       "split networks with masks 255.255.255.255 and 0.0.0.0: 10.1.0.9/32 and 0.0.0.0/0 (%s, %s)",
	       cidr(&mc.split[0]), cidr(&mc.split[1]));

	begin();
	for (int i = 0; i < IKE_MAX_DNS + 3; i++)
		ip(ISAKMP_CFG_INTERNAL_IP4_DNS, "10.1.0.53");
	read_it(&mc);
	tap_is_int(mc.n_dns, IKE_MAX_DNS, "DNS servers beyond %d are dropped", IKE_MAX_DNS);

	begin();
	{
		static char big[1500];

		memset(big, 'b', sizeof(big) - 1);
		text(ISAKMP_CFG_UNITY_BANNER, big);
	}
	read_it(&mc);
	tap_is_int(strlen(mc.banner), sizeof(mc.banner) - 1, "a long banner is cut at %zu bytes, terminated",
		   sizeof(mc.banner) - 1);

	begin();
	ip(ISAKMP_CFG_INTERNAL_IP4_ADDRESS, "10.9.0.2");
	tlv(ISAKMP_CFG_INTERNAL_IP4_ADDRESS, three, sizeof(three));
	ip(ISAKMP_CFG_INTERNAL_IP4_ADDRESS, "10.9.0.3");
	read_it(&mc);
	tap_ok(mc.have_vip && strcmp(cidr(&mc.vip), "10.9.0.2") == 0,
	       "of several addresses the first valid one counts; a malformed one after it does not undo it (%s)",
	       cidr(&mc.vip));
}

int main(void)
{
	test_full_answer();
	test_bad_values();
	return tap_done_testing();
}

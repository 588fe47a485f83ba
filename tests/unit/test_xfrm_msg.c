/* The XFRM netlink messages of the kernel backend, byte by byte, and the parsers of the
 * kernel's replies and events, from constructed messages: no kernel involved. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netlink.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/msg.h>
#include <netlink/netlink.h>

#include "sa-backends/xfrm/xfrm_msg.h"
#include "tap.h"

static struct bw_cidr cidr(const char *a, int prefix)
{
	struct bw_cidr c = { 0 };

	if (inet_pton(AF_INET, a, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, a, c.addr) == 1)
		c.family = AF_INET6;
	c.prefix = (uint8_t)prefix;
	return c;
}

static void sin_set(struct sockaddr_storage *ss, const char *a, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, a, &sin.sin_addr);
	memset(ss, 0, sizeof(*ss));
	memcpy(ss, &sin, sizeof(sin));
}

static bool addr4_is(const xfrm_address_t *x, const char *a)
{
	struct in_addr in;

	inet_pton(AF_INET, a, &in);
	return memcmp(&x->a4, &in, 4) == 0;
}

static struct bw_sa_params params(enum bw_sa_dir dir, enum bw_esp_encr encr, uint16_t bits,
				  enum bw_esp_auth auth, size_t keylen)
{
	struct bw_sa_params p = { .dir = dir, .spi = 0xc0ffee01, .mode = BW_MODE_TUNNEL,
				  .lifetime_s = 3660 };

	p.alg.encr = encr;
	p.alg.key_bits = bits;
	p.alg.auth = auth;
	for (size_t i = 0; i < keylen; i++)
		p.keymat[i] = (uint8_t)(i + 1);
	p.keymat_len = keylen;
	sin_set(&p.local, "192.0.2.2", 500);
	sin_set(&p.remote, "192.0.2.1", 500);
	return p;
}

/* The payload struct in front of the attributes, copied out. */
static void payload(struct nl_msg *m, void *out, size_t len)
{
	memcpy(out, nlmsg_data(nlmsg_hdr(m)), len);
}

static struct nlattr *attr(struct nl_msg *m, size_t hdrlen, int type)
{
	return nlmsg_find_attr(nlmsg_hdr(m), (int)hdrlen, type);
}

static void test_algorithms(void)
{
	struct bw_p2_proposal p = { .encr = BW_ESP_AES_CBC, .key_bits = 256, .auth = BW_ESP_AUTH_HMAC_SHA256 };
	struct bw_xfrm_alg a;

	tap_ok(bw_xfrm_alg_map(&p, &a) == 0 && strcmp(a.enc_name, "cbc(aes)") == 0 && a.enc_key_len == 32 &&
	       strcmp(a.auth_name, "hmac(sha256)") == 0 && a.auth_key_len == 32 && a.auth_trunc_bits == 128 &&
	       !a.aead_name && bw_xfrm_keymat_len(&a) == 64,
	       "AES-256-CBC with HMAC-SHA256: cbc(aes) 32-byte key, hmac(sha256) truncated to 128 bits");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_3DES, .key_bits = 192, .auth = BW_ESP_AUTH_HMAC_SHA1 };
	tap_ok(bw_xfrm_alg_map(&p, &a) == 0 && strcmp(a.enc_name, "cbc(des3_ede)") == 0 && a.enc_key_len == 24 &&
	       strcmp(a.auth_name, "hmac(sha1)") == 0 && a.auth_trunc_bits == 96 && bw_xfrm_keymat_len(&a) == 44,
	       "3DES with HMAC-SHA1: cbc(des3_ede) 24 bytes, hmac(sha1) 96 bits");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_AES_CBC, .key_bits = 128, .auth = BW_ESP_AUTH_HMAC_SHA512 };
	tap_ok(bw_xfrm_alg_map(&p, &a) == 0 && a.auth_key_len == 64 && a.auth_trunc_bits == 256,
	       "HMAC-SHA512: 64-byte key, 256-bit ICV (RFC 4868)");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_AES_GCM16, .key_bits = 128 };
	tap_ok(bw_xfrm_alg_map(&p, &a) == 0 && strcmp(a.aead_name, "rfc4106(gcm(aes))") == 0 &&
	       a.aead_key_len == 20 && a.aead_icv_bits == 128 && !a.enc_name && bw_xfrm_keymat_len(&a) == 20,
	       "AES-128-GCM-16: rfc4106(gcm(aes)), key plus 4-byte salt, 128-bit ICV");
	p.encr = BW_ESP_AES_GCM8;
	p.key_bits = 256;
	tap_ok(bw_xfrm_alg_map(&p, &a) == 0 && a.aead_icv_bits == 64 && a.aead_key_len == 36,
	       "AES-256-GCM-8: 64-bit ICV, 36 bytes of key and salt");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_AES_CBC, .key_bits = 128, .auth = BW_ESP_AUTH_NONE };
	tap_is_int(bw_xfrm_alg_map(&p, &a), -EOPNOTSUPP, "AES-CBC without integrity is refused");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_AES_GCM16, .key_bits = 128, .auth = BW_ESP_AUTH_HMAC_SHA1 };
	tap_is_int(bw_xfrm_alg_map(&p, &a), -EOPNOTSUPP, "GCM with a separate HMAC is refused");
	p = (struct bw_p2_proposal){ .encr = BW_ESP_AES_CBC, .key_bits = 100, .auth = BW_ESP_AUTH_HMAC_SHA1 };
	tap_is_int(bw_xfrm_alg_map(&p, &a), -EOPNOTSUPP, "an AES key of 100 bits is refused");
}

static void test_sa_cbc_out(void)
{
	struct bw_sa_params p = params(BW_SA_OUT, BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA256, 64);
	struct bw_xfrm_life life;
	struct xfrm_usersa_info sa;
	struct xfrm_algo_auth auth;
	struct xfrm_algo crypt;
	struct nl_msg *m = NULL;
	struct nlattr *a;
	int rc;

	bw_xfrm_life_from(3660, 0, &life);
	rc = bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 0xb7123401, &life, &m);
	if (!tap_is_int(rc, 0, "NEWSA for an outbound AES-CBC/SHA256 SA is built"))
		return;
	tap_is_int(nlmsg_hdr(m)->nlmsg_type, XFRM_MSG_NEWSA, "message type XFRM_MSG_NEWSA");
	payload(m, &sa, sizeof(sa));
	tap_ok(sa.id.spi == htonl(0xc0ffee01) && sa.id.proto == IPPROTO_ESP && sa.family == AF_INET,
	       "SPI in network order, protocol ESP, family inet");
	tap_ok(addr4_is(&sa.id.daddr, "192.0.2.1") && addr4_is(&sa.saddr, "192.0.2.2"),
	       "outbound: from the local address to the gateway");
	tap_ok(sa.mode == XFRM_MODE_TUNNEL && sa.reqid == 0xb7123401 && sa.replay_window == 0,
	       "tunnel mode, the reqid given, no replay window on an outbound SA");
	tap_ok(sa.lft.hard_add_expires_seconds == 3660 && sa.lft.soft_add_expires_seconds == 3294 &&
	       sa.lft.hard_byte_limit == XFRM_INF && sa.lft.soft_packet_limit == XFRM_INF,
	       "hard lifetime 3660 s, soft at 90%% (3294 s), no byte or packet limit");
	tap_ok(sa.sel.family == AF_INET && sa.sel.prefixlen_d == 0 && sa.sel.prefixlen_s == 0,
	       "the SA's own selector takes everything (policies select)");

	a = attr(m, sizeof(sa), XFRMA_ALG_CRYPT);
	if (tap_ok(a && nla_len(a) == (int)sizeof(crypt) + 32, "XFRMA_ALG_CRYPT with a 32-byte key")) {
		memcpy(&crypt, nla_data(a), sizeof(crypt));
		tap_ok(strcmp(crypt.alg_name, "cbc(aes)") == 0 && crypt.alg_key_len == 256 &&
		       memcmp((uint8_t *)nla_data(a) + sizeof(crypt), p.keymat, 32) == 0,
		       "cipher cbc(aes), 256 bits, the first 32 bytes of keying material");
	}
	a = attr(m, sizeof(sa), XFRMA_ALG_AUTH_TRUNC);
	if (tap_ok(a && nla_len(a) == (int)sizeof(auth) + 32, "XFRMA_ALG_AUTH_TRUNC with a 32-byte key")) {
		memcpy(&auth, nla_data(a), sizeof(auth));
		tap_ok(strcmp(auth.alg_name, "hmac(sha256)") == 0 && auth.alg_key_len == 256 &&
		       auth.alg_trunc_len == 128 &&
		       memcmp((uint8_t *)nla_data(a) + sizeof(auth), p.keymat + 32, 32) == 0,
		       "hmac(sha256), 256-bit key after the cipher key, truncated to 128 bits");
	}
	tap_ok(!attr(m, sizeof(sa), XFRMA_ENCAP) && !attr(m, sizeof(sa), XFRMA_ALG_AEAD),
	       "no UDP encapsulation and no AEAD attribute when not asked for");
	bw_xfrm_msg_free(m);
}

static void test_sa_gcm_in_encap(void)
{
	struct bw_sa_params p = params(BW_SA_IN, BW_ESP_AES_GCM16, 128, BW_ESP_AUTH_NONE, 20);
	struct xfrm_usersa_info sa;
	struct xfrm_algo_aead aead;
	struct xfrm_encap_tmpl enc;
	struct nl_msg *m = NULL;
	struct nlattr *a;

	p.udp_encap = true;
	sin_set(&p.local, "10.99.0.2", 4500);
	sin_set(&p.remote, "192.0.2.1", 500);	/* the engine leaves the IKE port here */
	if (!tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 7, NULL, &m), 0,
			"NEWSA for an inbound AES-GCM SA in UDP is built"))
		return;
	payload(m, &sa, sizeof(sa));
	tap_ok(addr4_is(&sa.id.daddr, "10.99.0.2") && addr4_is(&sa.saddr, "192.0.2.1") &&
	       sa.replay_window == BW_XFRM_REPLAY_WINDOW,
	       "inbound: from the gateway to us, with a replay window of %d", BW_XFRM_REPLAY_WINDOW);
	tap_ok(sa.lft.hard_add_expires_seconds == 0 && sa.lft.soft_byte_limit == XFRM_INF,
	       "without lifetimes the SA does not expire");
	a = attr(m, sizeof(sa), XFRMA_ALG_AEAD);
	if (tap_ok(a && nla_len(a) == (int)sizeof(aead) + 20, "XFRMA_ALG_AEAD with key and salt (20 bytes)")) {
		memcpy(&aead, nla_data(a), sizeof(aead));
		tap_ok(strcmp(aead.alg_name, "rfc4106(gcm(aes))") == 0 && aead.alg_key_len == 160 &&
		       aead.alg_icv_len == 128 && memcmp((uint8_t *)nla_data(a) + sizeof(aead), p.keymat, 20) == 0,
		       "rfc4106(gcm(aes)), 160 bits of key and salt, 128-bit ICV");
	}
	tap_ok(!attr(m, sizeof(sa), XFRMA_ALG_CRYPT) && !attr(m, sizeof(sa), XFRMA_ALG_AUTH_TRUNC),
	       "no separate cipher or integrity attribute with AEAD");
	a = attr(m, sizeof(sa), XFRMA_ENCAP);
	if (tap_ok(a && nla_len(a) == (int)sizeof(enc), "XFRMA_ENCAP present")) {
		memcpy(&enc, nla_data(a), sizeof(enc));
		tap_ok(enc.encap_type == 2 /* UDP_ENCAP_ESPINUDP */ && ntohs(enc.encap_sport) == 4500 &&
		       ntohs(enc.encap_dport) == 4500,
		       "ESP in UDP, from the gateway's 4500 (not its IKE port 500) to our NAT-T port");
	}
	bw_xfrm_msg_free(m);

	p.dir = BW_SA_OUT;
	sin_set(&p.local, "10.99.0.2", 45012);
	sin_set(&p.remote, "192.0.2.1", 4500);
	if (tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_UPDSA, &p, 7, NULL, &m), 0, "UPDSA for the outbound twin")) {
		tap_is_int(nlmsg_hdr(m)->nlmsg_type, XFRM_MSG_UPDSA, "message type XFRM_MSG_UPDSA");
		a = attr(m, sizeof(sa), XFRMA_ENCAP);
		memset(&enc, 0, sizeof(enc));
		if (a)
			memcpy(&enc, nla_data(a), sizeof(enc));
		tap_ok(a && ntohs(enc.encap_sport) == 45012 && ntohs(enc.encap_dport) == 4500,
		       "outbound encapsulation from our NAT-T port (45012) to the gateway's 4500");
		bw_xfrm_msg_free(m);
	}
}

static void test_sa_errors(void)
{
	struct bw_sa_params p = params(BW_SA_OUT, BW_ESP_AES_CBC, 128, BW_ESP_AUTH_HMAC_SHA1, 36);
	struct xfrm_usersa_info sa;
	struct nl_msg *m = NULL;

	p.mode = BW_MODE_TRANSPORT;
	if (tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 1, NULL, &m), 0, "transport mode SA is built")) {
		payload(m, &sa, sizeof(sa));
		tap_is_int(sa.mode, XFRM_MODE_TRANSPORT, "with XFRM_MODE_TRANSPORT");
		bw_xfrm_msg_free(m);
	}
	p.keymat_len = 35;
	tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 1, NULL, &m), -EINVAL,
		   "keying material one byte short is refused");
	tap_ok(m == NULL, "and no message is left behind");
	p.keymat_len = 36;
	p.spi = 0;
	tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 1, NULL, &m), -EINVAL, "SPI 0 is refused");
	p.spi = 0x1000;
	{
		struct sockaddr_in6 s6 = { .sin6_family = AF_INET6 };
		memset(&p.remote, 0, sizeof(p.remote));
		memcpy(&p.remote, &s6, sizeof(s6));
	}
	tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, 1, NULL, &m), -EAFNOSUPPORT,
		   "an IPv4 local and an IPv6 remote address are refused");
	tap_is_int(bw_xfrm_msg_sa(XFRM_MSG_GETSA, &p, 1, NULL, &m), -EINVAL,
		   "only NEWSA and UPDSA carry an SA");
}

static void test_sa_id(void)
{
	struct bw_cidr dst = cidr("192.0.2.1", 32);
	struct xfrm_usersa_id id;
	struct nl_msg *m = NULL;

	if (!tap_is_int(bw_xfrm_msg_sa_id(XFRM_MSG_DELSA, &dst, 0x11223344, &m), 0, "DELSA is built"))
		return;
	payload(m, &id, sizeof(id));
	tap_ok(nlmsg_hdr(m)->nlmsg_type == XFRM_MSG_DELSA && id.spi == htonl(0x11223344) &&
	       id.proto == IPPROTO_ESP && id.family == AF_INET && addr4_is(&id.daddr, "192.0.2.1") &&
	       nlmsg_datalen(nlmsg_hdr(m)) == (int)sizeof(id),
	       "DELSA names destination, SPI and ESP, and nothing else");
	bw_xfrm_msg_free(m);
	dst.prefix = 33;
	tap_is_int(bw_xfrm_msg_sa_id(XFRM_MSG_GETSA, &dst, 1, &m), -EINVAL, "an IPv4 prefix of 33 is refused");
}

static void test_policies(void)
{
	struct bw_cidr l = cidr("10.9.0.2", 32), r = cidr("10.1.0.0", 24), all = cidr("0.0.0.0", 0);
	struct bw_cidr ol = cidr("192.0.2.2", 32), orr = cidr("192.0.2.1", 32);
	struct bw_xfrm_policy p[3];
	struct xfrm_userpolicy_info pi;
	struct xfrm_user_tmpl t;
	struct nl_msg *m = NULL;
	struct nlattr *a;

	bw_xfrm_policies_for(&l, &r, &ol, &orr, BW_MODE_TUNNEL, 0xb7000101, p);
	tap_ok(p[0].dir == XFRM_POLICY_OUT && p[1].dir == XFRM_POLICY_IN && p[2].dir == XFRM_POLICY_FWD,
	       "three policies: out, in, fwd");
	tap_ok(p[0].sel_src.prefix == 32 && p[0].sel_dst.prefix == 24 && p[1].sel_src.prefix == 24 &&
	       p[1].sel_dst.prefix == 32 && p[2].sel_src.prefix == 24,
	       "out selects local -> remote, in and fwd remote -> local");
	tap_ok(memcmp(p[0].tmpl_dst.addr, orr.addr, 4) == 0 && memcmp(p[1].tmpl_dst.addr, ol.addr, 4) == 0 &&
	       memcmp(p[1].tmpl_src.addr, orr.addr, 4) == 0,
	       "templates: out to the gateway, in and fwd from it");
	tap_ok(bw_xfrm_priority(&l, &r) < bw_xfrm_priority(&l, &all),
	       "a /24 remote network has precedence over 0.0.0.0/0 (lower priority value)");

	if (!tap_is_int(bw_xfrm_msg_policy(XFRM_MSG_NEWPOLICY, &p[1], &m), 0, "NEWPOLICY (in) is built"))
		return;
	payload(m, &pi, sizeof(pi));
	tap_ok(nlmsg_hdr(m)->nlmsg_type == XFRM_MSG_NEWPOLICY && pi.dir == XFRM_POLICY_IN &&
	       pi.action == XFRM_POLICY_ALLOW && pi.priority == bw_xfrm_priority(&l, &r),
	       "inbound, action allow, the selector's priority");
	tap_ok(pi.sel.family == AF_INET && addr4_is(&pi.sel.saddr, "10.1.0.0") && pi.sel.prefixlen_s == 24 &&
	       addr4_is(&pi.sel.daddr, "10.9.0.2") && pi.sel.prefixlen_d == 32 && pi.sel.proto == 0 &&
	       pi.sel.dport == 0,
	       "selector 10.1.0.0/24 -> 10.9.0.2/32, any protocol and port");
	tap_ok(pi.lft.hard_byte_limit == XFRM_INF && pi.lft.hard_add_expires_seconds == 0,
	       "the policy itself never expires");
	a = attr(m, sizeof(pi), XFRMA_TMPL);
	if (tap_ok(a && nla_len(a) == (int)sizeof(t), "exactly one XFRMA_TMPL")) {
		memcpy(&t, nla_data(a), sizeof(t));
		tap_ok(t.id.proto == IPPROTO_ESP && t.id.spi == 0 && t.mode == XFRM_MODE_TUNNEL &&
		       t.reqid == 0xb7000101 && t.family == AF_INET && addr4_is(&t.saddr, "192.0.2.1") &&
		       addr4_is(&t.id.daddr, "192.0.2.2") && t.aalgos == ~0u && t.ealgos == ~0u && t.optional == 0,
		       "template: ESP tunnel gateway -> us, reqid ties it to the SA pair, any algorithm");
	}
	bw_xfrm_msg_free(m);

	if (tap_is_int(bw_xfrm_msg_policy_id(XFRM_MSG_DELPOLICY, XFRM_POLICY_OUT, &l, &r, &m), 0,
		       "DELPOLICY is built")) {
		struct xfrm_userpolicy_id id;
		payload(m, &id, sizeof(id));
		tap_ok(id.dir == XFRM_POLICY_OUT && addr4_is(&id.sel.saddr, "10.9.0.2") &&
		       id.sel.prefixlen_s == 32 && addr4_is(&id.sel.daddr, "10.1.0.0") && id.sel.prefixlen_d == 24 &&
		       id.index == 0,
		       "DELPOLICY names the selector and the direction, no index");
		bw_xfrm_msg_free(m);
	}
	p[0].sel_dst = cidr("fd00::", 64);
	tap_is_int(bw_xfrm_msg_policy(XFRM_MSG_NEWPOLICY, &p[0], &m), -EINVAL,
		   "a selector mixing IPv4 and IPv6 is refused");
}

static void test_reqid_and_life(void)
{
	uint32_t a = bw_xfrm_reqid("office", 1), b = bw_xfrm_reqid("office", 2), c = bw_xfrm_reqid("home", 1);
	struct bw_xfrm_life life;

	tap_ok(bw_xfrm_reqid_is_ours(a) && bw_xfrm_reqid_is_ours(c) && a == bw_xfrm_reqid("office", 1),
	       "reqids carry Burrow's tag and are stable for a connection and slot");
	tap_ok(a != b && a != c, "slots and connections get different reqids");
	tap_ok(!bw_xfrm_reqid_is_ours(1) && !bw_xfrm_reqid_is_ours(0x10000),
	       "strongSwan's reqids (counted from 1) are not Burrow's");
	bw_xfrm_life_from(30, 1000000, &life);
	tap_ok(life.hard_s == 30 && life.soft_s == 27 && life.hard_bytes == 1000000 && life.soft_bytes == 900000,
	       "soft lifetimes at 90%% of the hard ones (time and bytes)");
	bw_xfrm_life_from(5, 0, &life);
	tap_ok(life.soft_s == 4 && life.soft_s < life.hard_s, "a short lifetime still gets a soft limit before it");
}

/* ---- replies and events, built the way the kernel builds them ---- */

static struct nlmsghdr *mk(void *buf, uint16_t type, const void *payload_, size_t len)
{
	struct nlmsghdr *h = buf;

	memset(buf, 0, NLMSG_SPACE(len) + 256);
	h->nlmsg_type = type;
	h->nlmsg_len = NLMSG_LENGTH(len);
	memcpy(NLMSG_DATA(h), payload_, len);
	return h;
}

static void add_attr(struct nlmsghdr *h, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(void *)((uint8_t *)h + NLMSG_ALIGN(h->nlmsg_len));

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((uint8_t *)a + NLA_HDRLEN, data, len);
	h->nlmsg_len = NLMSG_ALIGN(h->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

static void test_replies(void)
{
	static uint8_t buf[1024] __attribute__((aligned(8)));
	struct nlmsgerr e = { 0 };
	struct xfrm_usersa_info s = { 0 };
	struct xfrm_user_expire x = { 0 };
	struct xfrm_usersa_id id = { 0 };
	struct bw_xfrm_sa_info info;
	struct nlmsghdr *h;
	bool hard = true;
	uint32_t reqid = 0;

	h = mk(buf, NLMSG_ERROR, &e, sizeof(e));
	tap_is_int(bw_xfrm_parse_ack(h), 0, "an ACK (error 0) is success");
	e.error = -EEXIST;
	h = mk(buf, NLMSG_ERROR, &e, sizeof(e));
	tap_is_int(bw_xfrm_parse_ack(h), -EEXIST, "an error reply gives the kernel's -errno");
	e.error = -EPROTONOSUPPORT;
	h = mk(buf, NLMSG_ERROR, &e, sizeof(e));
	tap_is_int(bw_xfrm_parse_ack(h), -EPROTONOSUPPORT, "no ESP in the kernel: -EPROTONOSUPPORT");
	h->nlmsg_len = NLMSG_LENGTH(2);
	tap_is_int(bw_xfrm_parse_ack(h), -EBADMSG, "a truncated error reply is -EBADMSG");
	h = mk(buf, XFRM_MSG_NEWSA, &s, sizeof(s));
	tap_is_int(bw_xfrm_parse_ack(h), 1, "anything else is not an ACK");

	s.family = AF_INET;
	s.id.proto = IPPROTO_ESP;
	s.id.spi = htonl(0xdeadbeef);
	inet_pton(AF_INET, "192.0.2.2", &s.id.daddr.a4);
	inet_pton(AF_INET, "192.0.2.1", &s.saddr.a4);
	s.reqid = 0xb7000102;
	s.curlft.bytes = 123456;
	s.curlft.packets = 789;
	s.stats.replay = 3;
	s.stats.integrity_failed = 2;
	h = mk(buf, XFRM_MSG_NEWSA, &s, sizeof(s));
	tap_ok(bw_xfrm_parse_sa(h, &info, &hard) == 0 && info.spi == 0xdeadbeef && info.reqid == 0xb7000102 &&
	       info.bytes == 123456 && info.packets == 789 && info.replay_drops == 3 &&
	       info.integrity_failed == 2 && !hard && info.dst.prefix == 32 &&
	       memcmp(info.dst.addr, &s.id.daddr.a4, 4) == 0,
	       "a GETSA reply gives SPI, reqid, byte and packet counters, replay and integrity drops");
	h->nlmsg_len = NLMSG_LENGTH(sizeof(s) - 8);
	tap_is_int(bw_xfrm_parse_sa(h, &info, NULL), -EBADMSG, "a truncated SA is -EBADMSG");

	x.state = s;
	x.hard = 1;
	h = mk(buf, XFRM_MSG_EXPIRE, &x, sizeof(x));
	tap_ok(bw_xfrm_parse_sa(h, &info, &hard) == 0 && hard && info.spi == 0xdeadbeef && info.bytes == 123456,
	       "a hard XFRM_MSG_EXPIRE is read as hard, with the SA's final counters");
	x.hard = 0;
	h = mk(buf, XFRM_MSG_EXPIRE, &x, sizeof(x));
	tap_ok(bw_xfrm_parse_sa(h, &info, &hard) == 0 && !hard, "a soft XFRM_MSG_EXPIRE is read as soft");
	x.state.family = 99;
	h = mk(buf, XFRM_MSG_EXPIRE, &x, sizeof(x));
	tap_is_int(bw_xfrm_parse_sa(h, &info, &hard), -EAFNOSUPPORT, "an unknown address family is refused");

	id.family = AF_INET;
	id.proto = IPPROTO_ESP;
	id.spi = htonl(0xdeadbeef);
	id.daddr = s.id.daddr;
	h = mk(buf, XFRM_MSG_DELSA, &id, sizeof(id));
	tap_ok(bw_xfrm_parse_delsa(h, &info) == 0 && info.spi == 0xdeadbeef && info.reqid == 0 &&
	       info.proto == IPPROTO_ESP,
	       "a DELSA notification without the SA attribute gives destination and SPI");
	add_attr(h, XFRMA_SA, &s, sizeof(s));
	tap_ok(bw_xfrm_parse_delsa(h, &info) == 0 && info.reqid == 0xb7000102 && info.bytes == 123456,
	       "with XFRMA_SA it also gives the reqid and final counters");

	{
		struct xfrm_userpolicy_info pi = { .dir = XFRM_POLICY_OUT };
		struct xfrm_user_tmpl t = { .reqid = 0xb7000103 };

		pi.sel.family = AF_INET;
		h = mk(buf, XFRM_MSG_NEWPOLICY, &pi, sizeof(pi));
		tap_ok(bw_xfrm_parse_policy_reqid(h, &reqid) == 0 && reqid == 0,
		       "a policy without a template has reqid 0");
		add_attr(h, XFRMA_TMPL, &t, sizeof(t));
		tap_ok(bw_xfrm_parse_policy_reqid(h, &reqid) == 0 && reqid == 0xb7000103,
		       "a GETPOLICY reply gives its template's reqid");
		h = mk(buf, XFRM_MSG_NEWPOLICY, &pi, sizeof(pi));
		add_attr(h, XFRMA_TMPL, &t, 8);
		tap_is_int(bw_xfrm_parse_policy_reqid(h, &reqid), -EBADMSG, "a truncated template is -EBADMSG");
	}
}

static void test_probe_reasons(void)
{
	char why[256];

	bw_xfrm_probe_reason(-EPROTONOSUPPORT, why, sizeof(why));
	tap_ok(strstr(why, "CONFIG_INET_ESP") && strstr(why, "esp4") && !strchr(why, '\n'),
	       "no ESP: the reason names CONFIG_INET_ESP and the esp4 module");
	tap_diag("%s", why);
	bw_xfrm_probe_reason(-ESOCKTNOSUPPORT, why, sizeof(why));
	tap_ok(strstr(why, "CONFIG_XFRM_USER") != NULL,
	       "no XFRM netlink: names CONFIG_XFRM_USER");
	bw_xfrm_probe_reason(-EPERM, why, sizeof(why));
	tap_ok(strstr(why, "root") != NULL, "not root: says so");
	bw_xfrm_probe_reason(-ENOSYS, why, sizeof(why));
	tap_ok(strstr(why, "cipher") != NULL, "crypto templates missing: names the ciphers");
	bw_xfrm_probe_reason(-EMLINK, why, sizeof(why));
	tap_ok(strstr(why, strerror(EMLINK)) != NULL, "anything else: the kernel's own reason");
}

int main(void)
{
	test_algorithms();
	test_sa_cbc_out();
	test_sa_gcm_in_encap();
	test_sa_errors();
	test_sa_id();
	test_policies();
	test_reqid_and_life();
	test_replies();
	test_probe_reasons();
	return tap_done_testing();
}

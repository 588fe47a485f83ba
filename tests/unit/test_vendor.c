/* Tests for the Vendor ID table: every entry's bytes are re-derived here (RFC text, or MD5 of the
 * documented string with OpenSSL), and the matcher handles version and capability suffixes. */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

#include "tap.h"
#include "ike/vendor.h"

/* RFC 3706 section 5.1, typed from the RFC: 14 bytes, then major 0x01, minor 0x00. */
static const uint8_t rfc3706_dpd[16] = {
	0xAF, 0xCA, 0xD7, 0x13, 0x68, 0xA1, 0xF1, 0xC9,
	0x6B, 0x86, 0x96, 0xFC, 0x77, 0x57, 0x01, 0x00,
};

static int md5(const char *s, uint8_t out[16])
{
	unsigned int len = 0;

	return EVP_Digest(s, strlen(s), out, &len, EVP_md5(), NULL) == 1 && len == 16;
}

static void test_table_verified(void)
{
	size_t n, verified = 0;
	const struct bw_vendor *t = bw_vendor_table(&n);

	tap_ok(n >= 12, "table lists at least the 12 verifiable vendor IDs");
	for (size_t i = 0; i < n; i++) {
		uint8_t h[16];

		if (t[i].md5_of) {
			int ok = md5(t[i].md5_of, h) && t[i].match_len <= 16 &&
				 memcmp(h, t[i].bytes, t[i].match_len) == 0;

			tap_ok(ok, "%s: first %zu bytes are MD5 of its documented string", t[i].name,
			       t[i].match_len);
			verified += ok;
		} else if (t[i].id == BW_VID_DPD) {
			int ok = t[i].len == 16 && memcmp(t[i].bytes, rfc3706_dpd, 16) == 0;

			tap_ok(ok, "%s: bytes equal RFC 3706 section 5.1", t[i].name);
			verified += ok;
		}
		tap_ok(t[i].match_len <= t[i].len && t[i].min_len >= t[i].match_len &&
		       t[i].min_len <= t[i].max_len, "%s: match, minimum and maximum lengths are coherent",
		       t[i].name);
	}
	tap_is_int(verified, n, "every table entry is verified against RFC text or an MD5");
}

static void test_specific_bytes(void)
{
	uint8_t h[16];
	const struct bw_vendor *v;

	v = bw_vendor_get(BW_VID_NATT_RFC3947);
	tap_ok(v && md5("RFC 3947", h) && v->len == 16 && memcmp(v->bytes, h, 16) == 0,
	       "NAT-T RFC 3947 VID is the full MD5 of \"RFC 3947\"");
	v = bw_vendor_get(BW_VID_NATT_DRAFT_02N);
	tap_ok(v && md5("draft-ietf-ipsec-nat-t-ike-02\n", h) && memcmp(v->bytes, h, 16) == 0 &&
	       v->bytes[0] == 0x90, "draft-02\\n VID hashes the trailing newline (90cb...)");
	v = bw_vendor_get(BW_VID_XAUTH);
	tap_ok(v && v->len == 8 && md5("draft-ietf-ipsra-isakmp-xauth-06.txt", h) &&
	       memcmp(v->bytes, h, 8) == 0, "XAUTH VID is the first 8 bytes of the draft name's MD5");
	v = bw_vendor_get(BW_VID_CISCO_UNITY);
	tap_ok(v && v->len == 16 && md5("CISCO-UNITY", h) && memcmp(v->bytes, h, 14) == 0 &&
	       v->bytes[14] == 1 && v->bytes[15] == 0,
	       "Cisco Unity VID is MD5(\"CISCO-UNITY\") with version 1.0 in the last two bytes");
	v = bw_vendor_get(BW_VID_FRAGMENTATION);
	tap_ok(v && v->len == 20 && md5("FRAGMENTATION", h) && memcmp(v->bytes, h, 16) == 0 &&
	       v->bytes[16] == 0x80 && v->bytes[19] == 0,
	       "fragmentation VID is MD5(\"FRAGMENTATION\") plus capability 0x80000000");
}

static void test_match(void)
{
	uint8_t buf[32];
	size_t len;
	const uint8_t *b;
	const struct bw_vendor *v;

	b = bw_vendor_bytes(BW_VID_NATT_RFC3947, &len);
	v = b ? bw_vendor_match(b, len) : NULL;
	tap_ok(v && v->id == BW_VID_NATT_RFC3947, "match: the RFC 3947 VID is recognized");
	tap_ok(b && bw_vendor_match(b, len - 1) == NULL, "match: a truncated RFC 3947 VID is not");

	memcpy(buf, rfc3706_dpd, 16);
	buf[15] = 0x01;	/* DPD version 1.1 */
	v = bw_vendor_match(buf, 16);
	tap_ok(v && v->id == BW_VID_DPD, "match: DPD with another minor version is still DPD");
	buf[13] ^= 0xff;
	tap_ok(bw_vendor_match(buf, 16) == NULL, "match: a DPD VID with a changed byte is unknown");

	b = bw_vendor_bytes(BW_VID_CISCO_UNITY, &len);
	memcpy(buf, b, len);
	buf[15] = 0x02;
	v = bw_vendor_match(buf, 16);
	tap_ok(v && v->id == BW_VID_CISCO_UNITY, "match: Cisco Unity with version bytes 1.2");

	b = bw_vendor_bytes(BW_VID_FRAGMENTATION, &len);
	v = bw_vendor_match(b, 16);
	tap_ok(v && v->id == BW_VID_FRAGMENTATION,
	       "match: fragmentation without capability bytes (as Windows sends it)");
	memcpy(buf, b, 16);
	memcpy(buf + 16, "\xc0\x00\x00\x00", 4);
	v = bw_vendor_match(buf, 20);
	tap_ok(v && v->id == BW_VID_FRAGMENTATION, "match: fragmentation with Cisco's 0xc0000000");
	tap_ok(bw_vendor_match(buf, 21) == NULL, "match: fragmentation with 5 extra bytes is unknown");

	v = bw_vendor_get(BW_VID_MS_NT5);
	memcpy(buf, v->bytes, 16);
	memcpy(buf + 16, "\x00\x00\x00\x09", 4);
	v = bw_vendor_match(buf, 20);
	tap_ok(v && v->id == BW_VID_MS_NT5, "match: MS NT5 ISAKMPOAKLEY with a Windows version");

	v = bw_vendor_get(BW_VID_CISCO_VPN3000);
	memcpy(buf, v->bytes, 14);
	memcpy(buf + 14, "\x04\x07", 2);
	v = bw_vendor_match(buf, 16);
	tap_ok(v && v->id == BW_VID_CISCO_VPN3000, "match: Cisco VPN 3000 with version 4.0.7 bytes");

	memset(buf, 0x5a, sizeof(buf));
	tap_ok(bw_vendor_match(buf, 16) == NULL, "match: unknown bytes give NULL");
	tap_ok(bw_vendor_match(NULL, 0) == NULL, "match: no data gives NULL");
}

static void test_sendable(void)
{
	static const enum bw_vendor_id sent[] = {
		BW_VID_NATT_RFC3947, BW_VID_NATT_DRAFT_02N, BW_VID_DPD, BW_VID_XAUTH,
		BW_VID_CISCO_UNITY, BW_VID_FRAGMENTATION,
	};
	size_t len = 0;

	for (size_t i = 0; i < sizeof(sent) / sizeof(sent[0]); i++) {
		const uint8_t *b = bw_vendor_bytes(sent[i], &len);
		const struct bw_vendor *v = b ? bw_vendor_match(b, len) : NULL;

		tap_ok(v && v->id == sent[i], "bytes: %s is sendable and matches itself",
		       v ? v->name : "(missing)");
	}
	tap_ok(bw_vendor_bytes(BW_VID_STRONGSWAN, &len) == NULL,
	       "bytes: Burrow does not impersonate strongSwan");
	tap_ok(bw_vendor_bytes(BW_VID_UNKNOWN, &len) == NULL, "bytes: unknown id gives NULL");
	tap_ok(bw_vendor_get(BW_VID_COUNT) == NULL, "get: out-of-range id gives NULL");
}

int main(void)
{
	test_table_verified();
	test_specific_bytes();
	test_match();
	test_sendable();
	return tap_done_testing();
}

/* Known IKEv1 Vendor IDs and the matcher that names them. Every entry's bytes are checked by
 * tests/unit/test_vendor.c against RFC text or the MD5 of the string recorded in md5_of. */
#include "ike/vendor.h"

#include <string.h>

/* RFC 3947 section 3.1. */
static const uint8_t vid_natt_rfc[] = {
	0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45,
	0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
};
static const uint8_t vid_natt_02[] = {
	0xcd, 0x60, 0x46, 0x43, 0x35, 0xdf, 0x21, 0xf8,
	0x7c, 0xfd, 0xb2, 0xfc, 0x68, 0xb6, 0xa4, 0x48,
};
static const uint8_t vid_natt_02n[] = {
	0x90, 0xcb, 0x80, 0x91, 0x3e, 0xbb, 0x69, 0x6e,
	0x08, 0x63, 0x81, 0xb5, 0xec, 0x42, 0x7b, 0x1f,
};
static const uint8_t vid_natt_03[] = {
	0x7d, 0x94, 0x19, 0xa6, 0x53, 0x10, 0xca, 0x6f,
	0x2c, 0x17, 0x9d, 0x92, 0x15, 0x52, 0x9d, 0x56,
};
/* RFC 3706 5.1: 14 fixed bytes, then major 0x01 and minor 0x00. Peers with other minor
 * versions still speak the same protocol, so only the 14 bytes are matched. */
static const uint8_t vid_dpd[] = {
	0xaf, 0xca, 0xd7, 0x13, 0x68, 0xa1, 0xf1, 0xc9,
	0x6b, 0x86, 0x96, 0xfc, 0x77, 0x57, 0x01, 0x00,
};
static const uint8_t vid_xauth[] = {
	0x09, 0x00, 0x26, 0x89, 0xdf, 0xd6, 0xb7, 0x12,
};
static const uint8_t vid_unity[] = {
	0x12, 0xf5, 0xf2, 0x8c, 0x45, 0x71, 0x68, 0xa9,
	0x70, 0x2d, 0x9f, 0xe2, 0x74, 0xcc, 0x01, 0x00,
};
/* The capability word 0x80000000 announces fragmentation of Main and Aggressive Mode messages,
 * which is what Cisco and strongSwan both send. */
static const uint8_t vid_frag[] = {
	0x40, 0x48, 0xb7, 0xd5, 0x6e, 0xbc, 0xe8, 0x85,
	0x25, 0xe7, 0xde, 0x7f, 0x00, 0xd6, 0xc2, 0xd3,
	0x80, 0x00, 0x00, 0x00,
};
static const uint8_t vid_strongswan[] = {
	0x88, 0x2f, 0xe5, 0x6d, 0x6f, 0xd2, 0x0d, 0xbc,
	0x22, 0x51, 0x61, 0x3b, 0x2e, 0xbe, 0x5b, 0xeb,
};
static const uint8_t vid_cisco3k[] = {
	0x1f, 0x07, 0xf7, 0x0e, 0xaa, 0x65, 0x14, 0xd3,
	0xb0, 0xfa, 0x96, 0x54, 0x2a, 0x50,
};
static const uint8_t vid_ms_nt5[] = {
	0x1e, 0x2b, 0x51, 0x69, 0x05, 0x99, 0x1c, 0x7d,
	0x7c, 0x96, 0xfc, 0xbf, 0xb5, 0x87, 0xe4, 0x61,
};
static const uint8_t vid_racoon[] = {
	0x70, 0x03, 0xcb, 0xc1, 0x09, 0x7d, 0xbe, 0x9c,
	0x26, 0x00, 0xba, 0x69, 0x83, 0xbc, 0x8b, 0x35,
};

#define V(id_, name_, arr_, match_, min_, max_, md5_, send_) \
	{ id_, name_, arr_, sizeof(arr_), match_, min_, max_, md5_, send_ }

static const struct bw_vendor vendors[] = {
	V(BW_VID_NATT_RFC3947, "NAT-T (RFC 3947)", vid_natt_rfc, 16, 16, 16, "RFC 3947", 1),
	V(BW_VID_NATT_DRAFT_02, "NAT-T (draft-ietf-ipsec-nat-t-ike-02)", vid_natt_02, 16, 16, 16,
	  "draft-ietf-ipsec-nat-t-ike-02", 0),
	V(BW_VID_NATT_DRAFT_02N, "NAT-T (draft-ietf-ipsec-nat-t-ike-02\\n)", vid_natt_02n, 16, 16,
	  16, "draft-ietf-ipsec-nat-t-ike-02\n", 1),
	V(BW_VID_NATT_DRAFT_03, "NAT-T (draft-ietf-ipsec-nat-t-ike-03)", vid_natt_03, 16, 16, 16,
	  "draft-ietf-ipsec-nat-t-ike-03", 0),
	V(BW_VID_DPD, "Dead Peer Detection (RFC 3706)", vid_dpd, 14, 16, 16, NULL, 1),
	V(BW_VID_XAUTH, "XAUTH", vid_xauth, 8, 8, 8, "draft-ietf-ipsra-isakmp-xauth-06.txt", 1),
	V(BW_VID_CISCO_UNITY, "Cisco Unity", vid_unity, 14, 16, 16, "CISCO-UNITY", 1),
	V(BW_VID_FRAGMENTATION, "IKE fragmentation", vid_frag, 16, 16, 20, "FRAGMENTATION", 1),
	V(BW_VID_STRONGSWAN, "strongSwan", vid_strongswan, 16, 16, 16, "strongSwan", 0),
	V(BW_VID_CISCO_VPN3000, "Cisco VPN 3000 concentrator", vid_cisco3k, 14, 16, 16,
	  "ALTIGA GATEWAY", 0),
	V(BW_VID_MS_NT5, "Microsoft Windows (MS NT5 ISAKMPOAKLEY)", vid_ms_nt5, 16, 16, 20,
	  "MS NT5 ISAKMPOAKLEY", 0),
	V(BW_VID_KAME_RACOON, "KAME racoon", vid_racoon, 16, 16, 16, "KAME/racoon", 0),
};

const struct bw_vendor *bw_vendor_match(const uint8_t *data, size_t len)
{
	if (data == NULL)
		return NULL;
	for (size_t i = 0; i < sizeof(vendors) / sizeof(vendors[0]); i++) {
		const struct bw_vendor *v = &vendors[i];

		if (len < v->min_len || len > v->max_len)
			continue;
		if (memcmp(data, v->bytes, v->match_len) == 0)
			return v;
	}
	return NULL;
}

const struct bw_vendor *bw_vendor_get(enum bw_vendor_id id)
{
	for (size_t i = 0; i < sizeof(vendors) / sizeof(vendors[0]); i++)
		if (vendors[i].id == id)
			return &vendors[i];
	return NULL;
}

const uint8_t *bw_vendor_bytes(enum bw_vendor_id id, size_t *len)
{
	const struct bw_vendor *v = bw_vendor_get(id);

	if (v == NULL || !v->sendable)
		return NULL;
	*len = v->len;
	return v->bytes;
}

const struct bw_vendor *bw_vendor_table(size_t *n)
{
	*n = sizeof(vendors) / sizeof(vendors[0]);
	return vendors;
}

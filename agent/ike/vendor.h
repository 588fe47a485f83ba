/* IKEv1 Vendor ID payloads: recognizing what a gateway announces and the bytes Burrow announces.
 * Only VIDs whose bytes can be re-derived (RFC text, or MD5 of a documented string) are listed. */
#ifndef BURROW_IKE_VENDOR_H
#define BURROW_IKE_VENDOR_H

#include <stddef.h>
#include <stdint.h>

enum bw_vendor_id {
	BW_VID_UNKNOWN = 0,
	BW_VID_NATT_RFC3947,		/* MD5("RFC 3947") */
	BW_VID_NATT_DRAFT_02,		/* MD5("draft-ietf-ipsec-nat-t-ike-02") */
	BW_VID_NATT_DRAFT_02N,		/* MD5("draft-ietf-ipsec-nat-t-ike-02\n"), the draft's own typo */
	BW_VID_NATT_DRAFT_03,		/* MD5("draft-ietf-ipsec-nat-t-ike-03") */
	BW_VID_DPD,			/* RFC 3706 section 5.1, version 1.0 */
	BW_VID_XAUTH,			/* MD5("draft-ietf-ipsra-isakmp-xauth-06.txt"), first 8 bytes */
	BW_VID_CISCO_UNITY,		/* MD5("CISCO-UNITY") with the last two bytes = version 1.0 */
	BW_VID_FRAGMENTATION,		/* MD5("FRAGMENTATION"), optionally + 4 capability bytes */
	BW_VID_STRONGSWAN,		/* MD5("strongSwan") */
	BW_VID_CISCO_VPN3000,		/* MD5("ALTIGA GATEWAY"), first 14 bytes + 2 version bytes */
	BW_VID_MS_NT5,			/* MD5("MS NT5 ISAKMPOAKLEY") + 4-byte Windows version */
	BW_VID_KAME_RACOON,		/* MD5("KAME/racoon") */
	BW_VID_COUNT
};

struct bw_vendor {
	enum bw_vendor_id id;
	const char *name;
	const uint8_t *bytes;	/* what Burrow sends, and the prefix it matches on */
	size_t len;		/* length of bytes */
	size_t match_len;	/* leading bytes compared when matching */
	size_t min_len;		/* a received VID matches when its length is in min_len..max_len */
	size_t max_len;
	const char *md5_of;	/* documented string whose MD5 yields bytes[0..match_len), or NULL */
	int sendable;		/* Burrow announces this one when the feature is on */
};

/* The entry matching a received VID payload's data, or NULL for one we do not know. */
const struct bw_vendor *bw_vendor_match(const uint8_t *data, size_t len);

/* The table entry for id, or NULL. */
const struct bw_vendor *bw_vendor_get(enum bw_vendor_id id);

/* The bytes to put in a VID payload for a feature Burrow announces (NAT-T RFC 3947 and draft-02\n,
 * DPD, XAUTH, Cisco Unity, fragmentation); NULL for the others. */
const uint8_t *bw_vendor_bytes(enum bw_vendor_id id, size_t *len);

/* For walking the whole table (tests, `burrow doctor`). */
const struct bw_vendor *bw_vendor_table(size_t *n);

#endif

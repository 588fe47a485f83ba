/* ISAKMP codec: bounds-checked parsing of headers, payload chains and typed payloads, and a
 * builder that chains next-payload fields itself. No crypto here; the body is encrypted elsewhere. */
#include "ike/isakmp.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

/* ---- Byte order ------------------------------------------------------------------------------ */

static uint16_t get16(const uint8_t *p) { return (uint16_t)((p[0] << 8) | p[1]); }

static uint32_t get32(const uint8_t *p)
{
	return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* ---- Names ----------------------------------------------------------------------------------- */

const char *isakmp_payload_name(unsigned type)
{
	switch (type) {
	case ISAKMP_PL_NONE: return "NONE";
	case ISAKMP_PL_SA: return "SA";
	case ISAKMP_PL_P: return "P";
	case ISAKMP_PL_T: return "T";
	case ISAKMP_PL_KE: return "KE";
	case ISAKMP_PL_ID: return "ID";
	case ISAKMP_PL_CERT: return "CERT";
	case ISAKMP_PL_CR: return "CR";
	case ISAKMP_PL_HASH: return "HASH";
	case ISAKMP_PL_SIG: return "SIG";
	case ISAKMP_PL_NONCE: return "NONCE";
	case ISAKMP_PL_N: return "N";
	case ISAKMP_PL_D: return "D";
	case ISAKMP_PL_VID: return "VID";
	case ISAKMP_PL_ATTR: return "ATTR";
	case ISAKMP_PL_NATD: return "NAT-D";
	case ISAKMP_PL_NATOA: return "NAT-OA";
	case ISAKMP_PL_NATD_DRAFT: return "NAT-D (draft)";
	case ISAKMP_PL_NATOA_DRAFT: return "NAT-OA (draft)";
	}
	return "UNKNOWN";
}

const char *isakmp_exchange_name(unsigned type)
{
	switch (type) {
	case ISAKMP_EXCH_NONE: return "NONE";
	case ISAKMP_EXCH_BASE: return "BASE";
	case ISAKMP_EXCH_MAIN: return "MAIN";
	case ISAKMP_EXCH_AUTH_ONLY: return "AUTH_ONLY";
	case ISAKMP_EXCH_AGGRESSIVE: return "AGGRESSIVE";
	case ISAKMP_EXCH_INFO: return "INFORMATIONAL";
	case ISAKMP_EXCH_TRANSACTION: return "TRANSACTION";
	case ISAKMP_EXCH_QUICK: return "QUICK";
	case ISAKMP_EXCH_NEW_GROUP: return "NEW_GROUP";
	}
	return "UNKNOWN";
}

const char *isakmp_notify_name(unsigned type)
{
	/* Errors 1..30 in RFC 2408 order, so the index is the value. */
	static const char *const errors[] = {
		NULL, "INVALID-PAYLOAD-TYPE", "DOI-NOT-SUPPORTED", "SITUATION-NOT-SUPPORTED",
		"INVALID-COOKIE", "INVALID-MAJOR-VERSION", "INVALID-MINOR-VERSION",
		"INVALID-EXCHANGE-TYPE", "INVALID-FLAGS", "INVALID-MESSAGE-ID",
		"INVALID-PROTOCOL-ID", "INVALID-SPI", "INVALID-TRANSFORM-ID",
		"ATTRIBUTES-NOT-SUPPORTED", "NO-PROPOSAL-CHOSEN", "BAD-PROPOSAL-SYNTAX",
		"PAYLOAD-MALFORMED", "INVALID-KEY-INFORMATION", "INVALID-ID-INFORMATION",
		"INVALID-CERT-ENCODING", "INVALID-CERTIFICATE", "CERT-TYPE-UNSUPPORTED",
		"INVALID-CERT-AUTHORITY", "INVALID-HASH-INFORMATION", "AUTHENTICATION-FAILED",
		"INVALID-SIGNATURE", "ADDRESS-NOTIFICATION", "NOTIFY-SA-LIFETIME",
		"CERTIFICATE-UNAVAILABLE", "UNSUPPORTED-EXCHANGE-TYPE", "UNEQUAL-PAYLOAD-LENGTHS",
	};

	if (type > 0 && type < sizeof(errors) / sizeof(errors[0]))
		return errors[type];
	switch (type) {
	case ISAKMP_N_CONNECTED: return "CONNECTED";
	case ISAKMP_N_RESPONDER_LIFETIME: return "RESPONDER-LIFETIME";
	case ISAKMP_N_REPLAY_STATUS: return "REPLAY-STATUS";
	case ISAKMP_N_INITIAL_CONTACT: return "INITIAL-CONTACT";
	case ISAKMP_N_DPD_R_U_THERE: return "R-U-THERE";
	case ISAKMP_N_DPD_R_U_THERE_ACK: return "R-U-THERE-ACK";
	}
	return "UNKNOWN";
}

const char *isakmp_cfg_attr_name(unsigned type)
{
	switch (type) {
	case ISAKMP_CFG_INTERNAL_IP4_ADDRESS: return "INTERNAL_IP4_ADDRESS";
	case ISAKMP_CFG_INTERNAL_IP4_NETMASK: return "INTERNAL_IP4_NETMASK";
	case ISAKMP_CFG_INTERNAL_IP4_DNS: return "INTERNAL_IP4_DNS";
	case ISAKMP_CFG_INTERNAL_IP4_NBNS: return "INTERNAL_IP4_NBNS";
	case ISAKMP_CFG_INTERNAL_ADDRESS_EXPIRY: return "INTERNAL_ADDRESS_EXPIRY";
	case ISAKMP_CFG_INTERNAL_IP4_DHCP: return "INTERNAL_IP4_DHCP";
	case ISAKMP_CFG_APPLICATION_VERSION: return "APPLICATION_VERSION";
	case ISAKMP_CFG_SUPPORTED_ATTRIBUTES: return "SUPPORTED_ATTRIBUTES";
	case ISAKMP_CFG_XAUTH_TYPE: return "XAUTH_TYPE";
	case ISAKMP_CFG_XAUTH_USER_NAME: return "XAUTH_USER_NAME";
	case ISAKMP_CFG_XAUTH_USER_PASSWORD: return "XAUTH_USER_PASSWORD";
	case ISAKMP_CFG_XAUTH_PASSCODE: return "XAUTH_PASSCODE";
	case ISAKMP_CFG_XAUTH_MESSAGE: return "XAUTH_MESSAGE";
	case ISAKMP_CFG_XAUTH_CHALLENGE: return "XAUTH_CHALLENGE";
	case ISAKMP_CFG_XAUTH_DOMAIN: return "XAUTH_DOMAIN";
	case ISAKMP_CFG_XAUTH_STATUS: return "XAUTH_STATUS";
	case ISAKMP_CFG_XAUTH_NEXT_PIN: return "XAUTH_NEXT_PIN";
	case ISAKMP_CFG_XAUTH_ANSWER: return "XAUTH_ANSWER";
	case ISAKMP_CFG_UNITY_BANNER: return "UNITY_BANNER";
	case ISAKMP_CFG_UNITY_SAVE_PASSWD: return "UNITY_SAVE_PASSWD";
	case ISAKMP_CFG_UNITY_DEF_DOMAIN: return "UNITY_DEF_DOMAIN";
	case ISAKMP_CFG_UNITY_SPLITDNS_NAME: return "UNITY_SPLITDNS_NAME";
	case ISAKMP_CFG_UNITY_SPLIT_INCLUDE: return "UNITY_SPLIT_INCLUDE";
	case ISAKMP_CFG_UNITY_NATT_PORT: return "UNITY_NATT_PORT";
	case ISAKMP_CFG_UNITY_LOCAL_LAN: return "UNITY_LOCAL_LAN";
	case ISAKMP_CFG_UNITY_PFS: return "UNITY_PFS";
	case ISAKMP_CFG_UNITY_FW_TYPE: return "UNITY_FW_TYPE";
	case ISAKMP_CFG_UNITY_BACKUP_SERVERS: return "UNITY_BACKUP_SERVERS";
	case ISAKMP_CFG_UNITY_DDNS_HOSTNAME: return "UNITY_DDNS_HOSTNAME";
	}
	return "UNKNOWN";
}

/* ---- Header and payload chain ---------------------------------------------------------------- */

int isakmp_hdr_parse(const uint8_t *buf, size_t len, struct isakmp_hdr *out)
{
	struct isakmp_hdr h;

	if (buf == NULL || len < ISAKMP_HDR_LEN) {
		bw_debug("ISAKMP header: message of %zu bytes is shorter than the header's %d",
			 buf ? len : 0, ISAKMP_HDR_LEN);
		return -1;
	}
	memcpy(h.icookie, buf, ISAKMP_COOKIE_LEN);
	memcpy(h.rcookie, buf + 8, ISAKMP_COOKIE_LEN);
	h.np = buf[16];
	h.version = buf[17];
	h.exchange = buf[18];
	h.flags = buf[19];
	h.msgid = get32(buf + 20);
	h.length = get32(buf + 24);

	if ((h.version >> 4) != 1) {
		bw_debug("ISAKMP header: major version %u, only 1 is spoken", h.version >> 4);
		return -1;
	}
	if ((h.version & 0x0f) != 0) {
		bw_debug("ISAKMP header: minor version %u, only 0 is spoken", h.version & 0x0f);
		return -1;
	}
	if (h.flags & ~ISAKMP_FLAGS_KNOWN) {
		bw_debug("ISAKMP header: flags 0x%02x carry bits outside 0x%02x", h.flags,
			 ISAKMP_FLAGS_KNOWN);
		return -1;
	}
	if (h.length < ISAKMP_HDR_LEN) {
		bw_debug("ISAKMP header: length %u is below the header size %d", h.length,
			 ISAKMP_HDR_LEN);
		return -1;
	}
	if (h.length > len) {
		bw_debug("ISAKMP header: length %u exceeds the %zu bytes received", h.length, len);
		return -1;
	}
	*out = h;
	return 0;
}

void isakmp_hdr_write(const struct isakmp_hdr *hdr, uint8_t *out)
{
	memcpy(out, hdr->icookie, ISAKMP_COOKIE_LEN);
	memcpy(out + 8, hdr->rcookie, ISAKMP_COOKIE_LEN);
	out[16] = hdr->np;
	out[17] = hdr->version;
	out[18] = hdr->exchange;
	out[19] = hdr->flags;
	put32(out + 20, hdr->msgid);
	put32(out + 24, hdr->length);
}

int isakmp_payloads_parse(uint8_t first_np, const uint8_t *body, size_t body_len,
			  struct isakmp_payloads *out)
{
	struct isakmp_payloads pl;
	uint8_t type = first_np;
	size_t off = 0;

	if (body == NULL)
		body_len = 0;
	pl.n = 0;
	while (type != ISAKMP_PL_NONE) {
		uint16_t plen;

		/* RFC 2408 3.5/3.6: P and T exist only inside an SA payload. */
		if (type == ISAKMP_PL_P || type == ISAKMP_PL_T) {
			bw_debug("payload chain: %s payload outside an SA", isakmp_payload_name(type));
			return -1;
		}
		if (pl.n == ISAKMP_MAX_PAYLOADS) {
			bw_debug("payload chain: more than %d payloads", ISAKMP_MAX_PAYLOADS);
			return -1;
		}
		if (body_len - off < ISAKMP_GEN_HDR_LEN) {
			bw_debug("%s payload: %zu bytes left, below the generic header's %d",
				 isakmp_payload_name(type), body_len - off, ISAKMP_GEN_HDR_LEN);
			return -1;
		}
		plen = get16(body + off + 2);
		if (plen < ISAKMP_GEN_HDR_LEN) {
			bw_debug("%s payload: length %u is below the generic header's %d",
				 isakmp_payload_name(type), plen, ISAKMP_GEN_HDR_LEN);
			return -1;
		}
		if (plen > body_len - off) {
			bw_debug("%s payload: length %u exceeds the %zu bytes left",
				 isakmp_payload_name(type), plen, body_len - off);
			return -1;
		}
		pl.p[pl.n].type = type;
		pl.p[pl.n].data = body + off + ISAKMP_GEN_HDR_LEN;
		pl.p[pl.n].len = plen - ISAKMP_GEN_HDR_LEN;
		pl.p[pl.n].off = off;
		pl.n++;
		type = body[off];	/* the reserved byte at off + 1 is ignored, as RFC 2408 asks */
		off += plen;
	}
	pl.used = off;
	pl.trailing = body_len - off;
	*out = pl;
	return 0;
}

int isakmp_payloads_find(const struct isakmp_payloads *pl, uint8_t type, size_t start)
{
	for (size_t i = start; i < pl->n; i++)
		if (pl->p[i].type == type)
			return (int)i;
	return -1;
}

size_t isakmp_payloads_count(const struct isakmp_payloads *pl, uint8_t type)
{
	size_t n = 0;

	for (size_t i = 0; i < pl->n; i++)
		n += pl->p[i].type == type;
	return n;
}

/* ---- Attributes ------------------------------------------------------------------------------ */

int isakmp_parse_attrs(const uint8_t *buf, size_t len, struct isakmp_attr *out, size_t max,
		       size_t *n_out, int reject_dups, const char *what)
{
	struct isakmp_attr tmp[ISAKMP_MAX_CFG_ATTRS];
	size_t off = 0, n = 0;

	if (max > ISAKMP_MAX_CFG_ATTRS)
		max = ISAKMP_MAX_CFG_ATTRS;
	if (buf == NULL)
		len = 0;
	while (off < len) {
		struct isakmp_attr a;
		uint16_t t, lv;

		memset(&a, 0, sizeof(a));
		if (len - off < 4) {
			bw_debug("%s attribute: %zu bytes left, below the attribute header's 4", what,
				 len - off);
			return -1;
		}
		t = get16(buf + off);
		lv = get16(buf + off + 2);
		a.type = t & 0x7fff;
		if (t & ISAKMP_ATTR_AF) {
			a.fmt = ISAKMP_ATTR_TV;
			a.len = 2;
			a.value = lv;
			a.has_value = 1;
			a.data = buf + off + 2;
			off += 4;
		} else {
			if (lv > len - off - 4) {
				bw_debug("%s attribute %u: length %u exceeds the %zu bytes left", what,
					 a.type, lv, len - off - 4);
				return -1;
			}
			a.fmt = ISAKMP_ATTR_TLV;
			a.len = lv;
			a.data = lv ? buf + off + 4 : NULL;
			if (lv <= 8) {
				for (uint16_t i = 0; i < lv; i++)
					a.value = (a.value << 8) | a.data[i];
				a.has_value = 1;
			}
			off += 4 + (size_t)lv;
		}
		if (n == max) {
			bw_debug("%s: more than %zu attributes", what, max);
			return -1;
		}
		if (reject_dups) {
			for (size_t i = 0; i < n; i++) {
				if (tmp[i].type == a.type) {
					bw_debug("%s: attribute %u appears twice", what, a.type);
					return -1;
				}
			}
		}
		tmp[n++] = a;
	}
	if (n)
		memcpy(out, tmp, n * sizeof(tmp[0]));
	*n_out = n;
	return 0;
}

const struct isakmp_attr *isakmp_attr_find(const struct isakmp_attr *attrs, size_t n, uint16_t type)
{
	for (size_t i = 0; i < n; i++)
		if (attrs[i].type == type)
			return &attrs[i];
	return NULL;
}

/* ---- SA -------------------------------------------------------------------------------------- */

/* Walks an SA payload. With dst NULL it only validates; the caller runs it again with dst once
 * the first pass succeeded, so out is written only for a payload known to be good without a
 * 75 KiB copy on the stack. */
static int sa_walk(const uint8_t *d, size_t len, struct isakmp_sa *dst)
{
	struct isakmp_transform scratch;
	uint8_t np = ISAKMP_PL_P;
	size_t off = 8, np_count = 0;
	uint32_t doi, sit;

	if (len < 8) {
		bw_debug("SA payload: length %zu is below the minimum 8", len);
		return -1;
	}
	doi = get32(d);
	sit = get32(d + 4);
	if (doi != ISAKMP_DOI_IPSEC) {
		bw_debug("SA payload: DOI %u is not IPSEC (%d)", doi, ISAKMP_DOI_IPSEC);
		return -1;
	}
	/* Secrecy and integrity situations append labelled-domain fields nobody deploys. */
	if (sit != ISAKMP_SIT_IDENTITY_ONLY) {
		bw_debug("SA payload: situation 0x%x is not SIT_IDENTITY_ONLY", sit);
		return -1;
	}
	if (len == 8) {
		bw_debug("SA payload: length 8 leaves no room for a proposal");
		return -1;
	}
	while (off < len) {
		uint8_t pnp, spi_size, ntr, tnp = ISAKMP_PL_T;
		uint16_t plen;
		size_t toff, end, count = 0;

		if (np != ISAKMP_PL_P) {
			bw_debug("SA payload: %zu bytes follow the last proposal", len - off);
			return -1;
		}
		if (np_count == ISAKMP_MAX_PROPOSALS) {
			bw_debug("SA payload: more than %d proposals", ISAKMP_MAX_PROPOSALS);
			return -1;
		}
		if (len - off < 8) {
			bw_debug("P payload: %zu bytes left in the SA, below the minimum 8", len - off);
			return -1;
		}
		pnp = d[off];
		plen = get16(d + off + 2);
		spi_size = d[off + 6];
		ntr = d[off + 7];
		if (pnp != ISAKMP_PL_P && pnp != ISAKMP_PL_NONE) {
			bw_debug("P payload: next payload %u is neither P (2) nor NONE (0)", pnp);
			return -1;
		}
		if (plen < 8) {
			bw_debug("P payload: length %u is below the minimum 8", plen);
			return -1;
		}
		if (plen > len - off) {
			bw_debug("P payload: length %u exceeds the %zu bytes left in the SA", plen,
				 len - off);
			return -1;
		}
		if (spi_size > ISAKMP_MAX_SPI) {
			bw_debug("P payload: SPI size %u exceeds the maximum %d", spi_size,
				 ISAKMP_MAX_SPI);
			return -1;
		}
		if (spi_size > plen - 8) {
			bw_debug("P payload: SPI size %u exceeds the %u bytes after the fixed fields",
				 spi_size, plen - 8);
			return -1;
		}
		if (ntr == 0 || ntr > ISAKMP_MAX_TRANSFORMS) {
			bw_debug("P payload: %u transforms declared, allowed 1..%d", ntr,
				 ISAKMP_MAX_TRANSFORMS);
			return -1;
		}
		if (dst) {
			struct isakmp_proposal *p = &dst->p[np_count];

			p->num = d[off + 4];
			p->proto = d[off + 5];
			p->spi_size = spi_size;
			memset(p->spi, 0, sizeof(p->spi));
			memcpy(p->spi, d + off + 8, spi_size);
		}

		toff = off + 8 + spi_size;
		end = off + plen;
		while (toff < end) {
			struct isakmp_transform *tr = dst ? &dst->p[np_count].t[count] : &scratch;
			uint8_t tnp2;
			uint16_t tlen;

			if (tnp != ISAKMP_PL_T) {
				bw_debug("P payload: %zu bytes follow the last transform", end - toff);
				return -1;
			}
			if (count == ntr) {
				bw_debug("P payload: more transforms than the %u declared", ntr);
				return -1;
			}
			if (end - toff < 8) {
				bw_debug("T payload: %zu bytes left in the proposal, below the minimum 8",
					 end - toff);
				return -1;
			}
			tnp2 = d[toff];
			tlen = get16(d + toff + 2);
			if (tnp2 != ISAKMP_PL_T && tnp2 != ISAKMP_PL_NONE) {
				bw_debug("T payload: next payload %u is neither T (3) nor NONE (0)", tnp2);
				return -1;
			}
			if (tlen < 8) {
				bw_debug("T payload: length %u is below the minimum 8", tlen);
				return -1;
			}
			if (tlen > end - toff) {
				bw_debug("T payload: length %u exceeds the %zu bytes left in the proposal",
					 tlen, end - toff);
				return -1;
			}
			if (isakmp_parse_attrs(d + toff + 8, tlen - 8u, tr->attrs, ISAKMP_MAX_ATTRS,
					       &tr->n_attrs, 1, "T payload") < 0)
				return -1;
			tr->num = d[toff + 4];
			tr->id = d[toff + 5];
			count++;
			toff += tlen;
			tnp = tnp2;
		}
		if (count != ntr) {
			bw_debug("P payload: %u transforms declared, %zu present", ntr, count);
			return -1;
		}
		if (tnp == ISAKMP_PL_T) {
			bw_debug("P payload: the last transform announces another that is not there");
			return -1;
		}
		if (dst)
			dst->p[np_count].n_transforms = count;
		np_count++;
		off += plen;
		np = pnp;
	}
	if (np == ISAKMP_PL_P) {
		bw_debug("SA payload: the last proposal announces another that is not there");
		return -1;
	}
	if (dst) {
		dst->doi = doi;
		dst->situation = sit;
		dst->n_proposals = np_count;
	}
	return 0;
}

int isakmp_parse_sa(const struct isakmp_payload *pl, struct isakmp_sa *out)
{
	if (sa_walk(pl->data, pl->len, NULL) < 0)
		return -1;
	return sa_walk(pl->data, pl->len, out);
}

/* ---- Simple payloads ------------------------------------------------------------------------- */

static int parse_blob(const struct isakmp_payload *pl, const char *name, size_t min, size_t max,
		      struct isakmp_blob *out)
{
	if (pl->len < min) {
		bw_debug("%s payload: length %zu is below the minimum %zu", name, pl->len, min);
		return -1;
	}
	if (max && pl->len > max) {
		bw_debug("%s payload: length %zu exceeds the maximum %zu", name, pl->len, max);
		return -1;
	}
	out->data = pl->data;
	out->len = pl->len;
	return 0;
}

int isakmp_parse_ke(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "KE", 1, 0, out);
}

int isakmp_parse_nonce(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "NONCE", ISAKMP_NONCE_MIN, ISAKMP_NONCE_MAX, out);
}

int isakmp_parse_hash(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "HASH", 1, 0, out);
}

int isakmp_parse_sig(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "SIG", 1, 0, out);
}

int isakmp_parse_vid(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "VID", 1, 0, out);
}

int isakmp_parse_natd(const struct isakmp_payload *pl, struct isakmp_blob *out)
{
	return parse_blob(pl, "NAT-D", 1, 0, out);
}

/* Exact data size of address ID types, 0 for variable-length types, -1 for unknown ones. */
static int id_data_size(uint8_t type)
{
	switch (type) {
	case ISAKMP_ID_IPV4_ADDR: return 4;
	case ISAKMP_ID_IPV4_ADDR_SUBNET:
	case ISAKMP_ID_IPV4_ADDR_RANGE: return 8;
	case ISAKMP_ID_IPV6_ADDR: return 16;
	case ISAKMP_ID_IPV6_ADDR_SUBNET:
	case ISAKMP_ID_IPV6_ADDR_RANGE: return 32;
	case ISAKMP_ID_FQDN:
	case ISAKMP_ID_USER_FQDN:
	case ISAKMP_ID_DER_ASN1_DN:
	case ISAKMP_ID_DER_ASN1_GN:
	case ISAKMP_ID_KEY_ID: return 0;
	}
	return -1;
}

static const char *id_type_name(uint8_t type)
{
	static const char *const names[] = {
		"RESERVED", "IPV4_ADDR", "FQDN", "USER_FQDN", "IPV4_ADDR_SUBNET", "IPV6_ADDR",
		"IPV6_ADDR_SUBNET", "IPV4_ADDR_RANGE", "IPV6_ADDR_RANGE", "DER_ASN1_DN",
		"DER_ASN1_GN", "KEY_ID",
	};

	return type < sizeof(names) / sizeof(names[0]) ? names[type] : "UNKNOWN";
}

/* Checks ID data against its type; shared by the parser and the builder. */
static int id_check(uint8_t type, size_t len)
{
	int want = id_data_size(type);

	if (type == 0) {
		bw_debug("ID payload: type 0 is reserved");
		return -1;
	}
	if (want > 0 && len != (size_t)want) {
		bw_debug("ID payload: %s data of %zu bytes, expected %d", id_type_name(type), len,
			 want);
		return -1;
	}
	if (want == 0 && len == 0) {
		bw_debug("ID payload: %s data of 0 bytes, expected at least 1", id_type_name(type));
		return -1;
	}
	return 0;
}

int isakmp_parse_id(const struct isakmp_payload *pl, struct isakmp_id *out)
{
	struct isakmp_id id;

	if (pl->len < 4) {
		bw_debug("ID payload: length %zu is below the minimum 4", pl->len);
		return -1;
	}
	id.type = pl->data[0];
	id.proto = pl->data[1];
	id.port = get16(pl->data + 2);
	id.data = pl->data + 4;
	id.len = pl->len - 4;
	if (id_check(id.type, id.len) < 0)
		return -1;
	*out = id;
	return 0;
}

static int parse_cert_like(const struct isakmp_payload *pl, const char *name, size_t min_data,
			   struct isakmp_cert *out)
{
	if (pl->len < 1 + min_data) {
		bw_debug("%s payload: length %zu is below the minimum %zu", name, pl->len,
			 1 + min_data);
		return -1;
	}
	out->encoding = pl->data[0];
	out->data = pl->data + 1;
	out->len = pl->len - 1;
	return 0;
}

int isakmp_parse_cert(const struct isakmp_payload *pl, struct isakmp_cert *out)
{
	return parse_cert_like(pl, "CERT", 1, out);
}

/* A CR may name no CA at all: "any certificate of this type". */
int isakmp_parse_cr(const struct isakmp_payload *pl, struct isakmp_cert *out)
{
	return parse_cert_like(pl, "CR", 0, out);
}

int isakmp_parse_notify(const struct isakmp_payload *pl, struct isakmp_notify *out)
{
	struct isakmp_notify n;

	if (pl->len < 8) {
		bw_debug("N payload: length %zu is below the minimum 8", pl->len);
		return -1;
	}
	n.doi = get32(pl->data);
	n.proto = pl->data[4];
	n.spi_size = pl->data[5];
	n.type = get16(pl->data + 6);
	if (n.spi_size > ISAKMP_MAX_SPI) {
		bw_debug("N payload: SPI size %u exceeds the maximum %d", n.spi_size,
			 ISAKMP_MAX_SPI);
		return -1;
	}
	if (n.spi_size > pl->len - 8) {
		bw_debug("N payload: SPI size %u exceeds the %zu bytes after the fixed fields",
			 n.spi_size, pl->len - 8);
		return -1;
	}
	memset(n.spi, 0, sizeof(n.spi));
	memcpy(n.spi, pl->data + 8, n.spi_size);
	n.data = pl->data + 8 + n.spi_size;
	n.len = pl->len - 8 - n.spi_size;
	*out = n;
	return 0;
}

int isakmp_parse_delete(const struct isakmp_payload *pl, struct isakmp_delete *out)
{
	struct isakmp_delete d;

	if (pl->len < 8) {
		bw_debug("D payload: length %zu is below the minimum 8", pl->len);
		return -1;
	}
	d.doi = get32(pl->data);
	d.proto = pl->data[4];
	d.spi_size = pl->data[5];
	d.n_spis = get16(pl->data + 6);
	d.spis = pl->data + 8;
	if (d.spi_size == 0 || d.spi_size > ISAKMP_MAX_SPI) {
		bw_debug("D payload: SPI size %u, allowed 1..%d", d.spi_size, ISAKMP_MAX_SPI);
		return -1;
	}
	if (d.n_spis == 0) {
		bw_debug("D payload: no SPIs");
		return -1;
	}
	/* The SPIs fill the payload exactly (RFC 2408 3.15); both factors are small, no overflow. */
	if ((size_t)d.spi_size * d.n_spis != pl->len - 8) {
		bw_debug("D payload: %u SPIs of %u bytes need %zu bytes, %zu present", d.n_spis,
			 d.spi_size, (size_t)d.spi_size * d.n_spis, pl->len - 8);
		return -1;
	}
	*out = d;
	return 0;
}

int isakmp_parse_nat_oa(const struct isakmp_payload *pl, struct isakmp_nat_oa *out)
{
	struct isakmp_nat_oa oa;
	size_t want;

	if (pl->len < 4) {
		bw_debug("NAT-OA payload: length %zu is below the minimum 4", pl->len);
		return -1;
	}
	oa.id_type = pl->data[0];
	if (oa.id_type == ISAKMP_ID_IPV4_ADDR)
		want = 4;
	else if (oa.id_type == ISAKMP_ID_IPV6_ADDR)
		want = 16;
	else {
		bw_debug("NAT-OA payload: ID type %u is neither IPV4_ADDR nor IPV6_ADDR", oa.id_type);
		return -1;
	}
	if (pl->len - 4 != want) {
		bw_debug("NAT-OA payload: %s address of %zu bytes, expected %zu",
			 id_type_name(oa.id_type), pl->len - 4, want);
		return -1;
	}
	memset(oa.addr, 0, sizeof(oa.addr));
	memcpy(oa.addr, pl->data + 4, want);
	oa.addr_len = (uint8_t)want;
	*out = oa;
	return 0;
}

int isakmp_parse_attr(const struct isakmp_payload *pl, struct isakmp_cfg *out)
{
	size_t n;

	if (pl->len < 4) {
		bw_debug("ATTR payload: length %zu is below the minimum 4", pl->len);
		return -1;
	}
	/* parse_attrs writes out->attrs only on success, so out stays untouched on failure. */
	if (isakmp_parse_attrs(pl->data + 4, pl->len - 4, out->attrs, ISAKMP_MAX_CFG_ATTRS, &n, 0,
			       "ATTR payload") < 0)
		return -1;
	out->type = pl->data[0];
	out->id = get16(pl->data + 2);
	out->n_attrs = n;
	return 0;
}

/* ---- Builder --------------------------------------------------------------------------------- */

#define B_SEALED ((size_t)-1)	/* np_off after set_body: the body is opaque now */

static int b_fail(struct isakmp_builder *b)
{
	b->err = 1;
	return -1;
}

/* Makes room for n more bytes and returns their offset; never hands out a pointer, since a
 * growable buffer moves. */
static int b_reserve(struct isakmp_builder *b, size_t n, size_t *at)
{
	if (b->err)
		return -1;
	if (n > ISAKMP_MAX_MSG - b->len) {
		bw_debug("ISAKMP builder: %zu more bytes exceed the message maximum %d (now %zu)", n,
			 ISAKMP_MAX_MSG, b->len);
		return b_fail(b);
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		uint8_t *nb;

		if (!b->owned) {
			bw_debug("ISAKMP builder: %zu more bytes exceed the capacity %zu (now %zu)",
				 n, b->cap, b->len);
			return b_fail(b);
		}
		while (cap < b->len + n)
			cap *= 2;
		if (cap > ISAKMP_MAX_MSG)
			cap = ISAKMP_MAX_MSG;
		nb = realloc(b->buf, cap);
		if (nb == NULL) {
			bw_debug("ISAKMP builder: out of memory growing to %zu bytes", cap);
			return b_fail(b);
		}
		b->buf = nb;
		b->cap = cap;
	}
	*at = b->len;
	b->len += n;
	return 0;
}

/* Appends a generic header for a body of body_len bytes, chains it, and returns the offset of
 * the body in *at. */
static int b_begin(struct isakmp_builder *b, uint8_t type, size_t body_len, size_t *at)
{
	size_t start;

	if (b->err)
		return -1;
	if (b->np_off == B_SEALED) {
		bw_debug("%s payload: the body was already replaced", isakmp_payload_name(type));
		return b_fail(b);
	}
	if (body_len > 0xffff - ISAKMP_GEN_HDR_LEN) {
		bw_debug("%s payload: length %zu exceeds the maximum %d", isakmp_payload_name(type),
			 body_len, 0xffff - ISAKMP_GEN_HDR_LEN);
		return b_fail(b);
	}
	if (b_reserve(b, ISAKMP_GEN_HDR_LEN + body_len, &start) < 0)
		return -1;
	b->buf[b->np_off] = type;
	b->buf[start] = ISAKMP_PL_NONE;
	b->buf[start + 1] = 0;
	put16(b->buf + start + 2, (uint16_t)(ISAKMP_GEN_HDR_LEN + body_len));
	b->np_off = start;
	*at = start + ISAKMP_GEN_HDR_LEN;
	return 0;
}

static int b_start(struct isakmp_builder *b, const struct isakmp_hdr *hdr)
{
	size_t at;

	b->len = 0;
	b->err = 0;
	b->np_off = 16;
	if (b_reserve(b, ISAKMP_HDR_LEN, &at) < 0)
		return -1;
	isakmp_hdr_write(hdr, b->buf);
	b->buf[16] = ISAKMP_PL_NONE;
	put32(b->buf + 24, ISAKMP_HDR_LEN);
	return 0;
}

int isakmp_b_init(struct isakmp_builder *b, const struct isakmp_hdr *hdr)
{
	memset(b, 0, sizeof(*b));
	b->owned = 1;
	return b_start(b, hdr);
}

int isakmp_b_init_fixed(struct isakmp_builder *b, uint8_t *buf, size_t cap,
			const struct isakmp_hdr *hdr)
{
	memset(b, 0, sizeof(*b));
	b->buf = buf;
	b->cap = buf ? cap : 0;
	return b_start(b, hdr);
}

void isakmp_b_free(struct isakmp_builder *b)
{
	if (b == NULL)
		return;
	if (b->owned)
		free(b->buf);
	memset(b, 0, sizeof(*b));
}

uint8_t *isakmp_b_buf(struct isakmp_builder *b) { return b->buf; }
size_t isakmp_b_len(const struct isakmp_builder *b) { return b->len; }

uint8_t *isakmp_b_body(struct isakmp_builder *b, size_t *len)
{
	*len = b->len >= ISAKMP_HDR_LEN ? b->len - ISAKMP_HDR_LEN : 0;
	return b->buf ? b->buf + ISAKMP_HDR_LEN : NULL;
}

int isakmp_b_finish(struct isakmp_builder *b)
{
	if (b->err || b->buf == NULL || b->len < ISAKMP_HDR_LEN)
		return -1;
	put32(b->buf + 24, (uint32_t)b->len);
	return 0;
}

int isakmp_b_set_body(struct isakmp_builder *b, const void *body, size_t len, int encrypted)
{
	uintptr_t p = (uintptr_t)body, lo = (uintptr_t)b->buf;
	int inside = b->buf && p >= lo && p < lo + b->cap;
	size_t at, body_off = inside ? (size_t)(p - lo) : 0;

	if (b->err || b->len < ISAKMP_HDR_LEN)
		return -1;
	if (len && body == NULL)
		return b_fail(b);
	if (inside && len > b->cap - body_off) {
		bw_debug("ISAKMP builder: a body of %zu bytes at offset %zu runs past the capacity %zu",
			 len, body_off, b->cap);
		return b_fail(b);
	}
	b->len = ISAKMP_HDR_LEN;
	if (b_reserve(b, len, &at) < 0)
		return -1;
	/* The caller may have encrypted in place, inside our own buffer, which b_reserve may
	 * just have moved: find the body again by its offset, and memmove since it may overlap. */
	if (inside)
		body = b->buf + body_off;
	if (len)
		memmove(b->buf + at, body, len);
	if (encrypted)
		b->buf[19] |= ISAKMP_FLAG_ENC;
	else
		b->buf[19] &= (uint8_t)~ISAKMP_FLAG_ENC;
	b->np_off = B_SEALED;
	return isakmp_b_finish(b);
}

int isakmp_b_payload(struct isakmp_builder *b, uint8_t type, const void *data, size_t len)
{
	size_t at;

	if (len && data == NULL)
		return b_fail(b);
	if (b_begin(b, type, len, &at) < 0)
		return -1;
	if (len)
		memcpy(b->buf + at, data, len);
	return 0;
}

int isakmp_b_ke(struct isakmp_builder *b, const void *data, size_t len)
{
	return isakmp_b_payload(b, ISAKMP_PL_KE, data, len);
}

int isakmp_b_nonce(struct isakmp_builder *b, const void *data, size_t len)
{
	if (len < ISAKMP_NONCE_MIN || len > ISAKMP_NONCE_MAX) {
		bw_debug("NONCE payload: length %zu is outside %d..%d", len, ISAKMP_NONCE_MIN,
			 ISAKMP_NONCE_MAX);
		return b_fail(b);
	}
	return isakmp_b_payload(b, ISAKMP_PL_NONCE, data, len);
}

int isakmp_b_hash(struct isakmp_builder *b, const void *data, size_t len)
{
	return isakmp_b_payload(b, ISAKMP_PL_HASH, data, len);
}

int isakmp_b_hash_reserve(struct isakmp_builder *b, size_t len, size_t *off)
{
	size_t at;

	if (len == 0) {
		bw_debug("HASH payload: cannot reserve 0 bytes");
		return b_fail(b);
	}
	if (b_begin(b, ISAKMP_PL_HASH, len, &at) < 0)
		return -1;
	memset(b->buf + at, 0, len);
	*off = at;
	return 0;
}

int isakmp_b_sig(struct isakmp_builder *b, const void *data, size_t len)
{
	return isakmp_b_payload(b, ISAKMP_PL_SIG, data, len);
}

int isakmp_b_vid(struct isakmp_builder *b, const void *data, size_t len)
{
	return isakmp_b_payload(b, ISAKMP_PL_VID, data, len);
}

int isakmp_b_natd(struct isakmp_builder *b, const void *hash, size_t len)
{
	return isakmp_b_payload(b, ISAKMP_PL_NATD, hash, len);
}

int isakmp_b_id(struct isakmp_builder *b, const struct isakmp_id *id)
{
	size_t at;

	if (id_check(id->type, id->len) < 0 || (id->len && id->data == NULL))
		return b_fail(b);
	if (b_begin(b, ISAKMP_PL_ID, 4 + id->len, &at) < 0)
		return -1;
	b->buf[at] = id->type;
	b->buf[at + 1] = id->proto;
	put16(b->buf + at + 2, id->port);
	memcpy(b->buf + at + 4, id->data, id->len);
	return 0;
}

static int b_cert_like(struct isakmp_builder *b, uint8_t type, const struct isakmp_cert *c)
{
	size_t at;

	if (c->len && c->data == NULL)
		return b_fail(b);
	if (b_begin(b, type, 1 + c->len, &at) < 0)
		return -1;
	b->buf[at] = c->encoding;
	if (c->len)
		memcpy(b->buf + at + 1, c->data, c->len);
	return 0;
}

int isakmp_b_cert(struct isakmp_builder *b, const struct isakmp_cert *cert)
{
	if (cert->len == 0) {
		bw_debug("CERT payload: no certificate data");
		return b_fail(b);
	}
	return b_cert_like(b, ISAKMP_PL_CERT, cert);
}

int isakmp_b_cr(struct isakmp_builder *b, const struct isakmp_cert *cr)
{
	return b_cert_like(b, ISAKMP_PL_CR, cr);
}

int isakmp_b_notify(struct isakmp_builder *b, const struct isakmp_notify *n)
{
	size_t at;

	if (n->spi_size > ISAKMP_MAX_SPI) {
		bw_debug("N payload: SPI size %u exceeds the maximum %d", n->spi_size,
			 ISAKMP_MAX_SPI);
		return b_fail(b);
	}
	if (n->len && n->data == NULL)
		return b_fail(b);
	if (b_begin(b, ISAKMP_PL_N, 8 + (size_t)n->spi_size + n->len, &at) < 0)
		return -1;
	put32(b->buf + at, n->doi);
	b->buf[at + 4] = n->proto;
	b->buf[at + 5] = n->spi_size;
	put16(b->buf + at + 6, n->type);
	memcpy(b->buf + at + 8, n->spi, n->spi_size);
	if (n->len)
		memcpy(b->buf + at + 8 + n->spi_size, n->data, n->len);
	return 0;
}

int isakmp_b_delete(struct isakmp_builder *b, const struct isakmp_delete *d)
{
	size_t at, spis_len = (size_t)d->spi_size * d->n_spis;

	if (d->spi_size == 0 || d->spi_size > ISAKMP_MAX_SPI || d->n_spis == 0 ||
	    d->spis == NULL) {
		bw_debug("D payload: %u SPIs of %u bytes cannot be sent", d->n_spis, d->spi_size);
		return b_fail(b);
	}
	if (b_begin(b, ISAKMP_PL_D, 8 + spis_len, &at) < 0)
		return -1;
	put32(b->buf + at, d->doi);
	b->buf[at + 4] = d->proto;
	b->buf[at + 5] = d->spi_size;
	put16(b->buf + at + 6, d->n_spis);
	memcpy(b->buf + at + 8, d->spis, spis_len);
	return 0;
}

int isakmp_b_nat_oa(struct isakmp_builder *b, const struct isakmp_nat_oa *oa)
{
	size_t at, want = oa->id_type == ISAKMP_ID_IPV4_ADDR ? 4 :
			  oa->id_type == ISAKMP_ID_IPV6_ADDR ? 16 : 0;

	if (want == 0 || oa->addr_len != want) {
		bw_debug("NAT-OA payload: ID type %u with a %u-byte address cannot be sent",
			 oa->id_type, oa->addr_len);
		return b_fail(b);
	}
	if (b_begin(b, ISAKMP_PL_NATOA, 4 + want, &at) < 0)
		return -1;
	b->buf[at] = oa->id_type;
	b->buf[at + 1] = 0;
	put16(b->buf + at + 2, 0);
	memcpy(b->buf + at + 4, oa->addr, want);
	return 0;
}

/* Encoded size of one attribute, or 0 when it cannot be encoded as asked. */
static size_t attr_size(const struct isakmp_attr *a)
{
	if (a->type > 0x7fff)
		return 0;
	switch (a->fmt) {
	case ISAKMP_ATTR_TV:
		return a->value <= 0xffff ? 4 : 0;
	case ISAKMP_ATTR_TLV:
		if (a->data || a->len == 0)
			return a->len == 0 && a->value != 0 ? 0 : 4 + (size_t)a->len;
		/* An integer in exactly len bytes: it must fit. */
		if (a->len > 8 || (a->len < 8 && (a->value >> (8 * a->len)) != 0))
			return 0;
		return 4 + (size_t)a->len;
	case ISAKMP_ATTR_AUTO:
		if (a->data)
			return 4 + (size_t)a->len;
		if (a->value <= 0xffff)
			return 4;
		return a->value <= 0xffffffffu ? 8 : 12;
	}
	return 0;
}

static size_t attr_write(uint8_t *p, const struct isakmp_attr *a)
{
	size_t vlen;

	if (a->fmt == ISAKMP_ATTR_TV || (a->fmt == ISAKMP_ATTR_AUTO && !a->data &&
					 a->value <= 0xffff)) {
		put16(p, (uint16_t)(a->type | ISAKMP_ATTR_AF));
		put16(p + 2, (uint16_t)a->value);
		return 4;
	}
	put16(p, a->type);
	if (a->data) {
		put16(p + 2, a->len);
		memcpy(p + 4, a->data, a->len);
		return 4 + (size_t)a->len;
	}
	vlen = a->fmt == ISAKMP_ATTR_TLV ? a->len : a->value <= 0xffffffffu ? 4 : 8;
	put16(p + 2, (uint16_t)vlen);
	for (size_t i = 0; i < vlen; i++)
		p[4 + i] = (uint8_t)(a->value >> (8 * (vlen - 1 - i)));
	return 4 + vlen;
}

/* Total encoded size of n attributes into *out; -1 when one cannot be encoded as asked. */
static int attrs_size(const struct isakmp_attr *attrs, size_t n, const char *what, size_t *out)
{
	size_t total = 0;

	for (size_t i = 0; i < n; i++) {
		size_t s = attr_size(&attrs[i]);

		if (s == 0) {
			bw_debug("%s: attribute %u (format %u, value %llu, length %u) cannot be encoded",
				 what, attrs[i].type, attrs[i].fmt,
				 (unsigned long long)attrs[i].value, attrs[i].len);
			return -1;
		}
		total += s;
	}
	*out = total;
	return 0;
}

static size_t transform_size(const struct isakmp_transform *t)
{
	size_t s;

	if (t->n_attrs > ISAKMP_MAX_ATTRS) {
		bw_debug("T payload: %zu attributes exceed the maximum %d", t->n_attrs,
			 ISAKMP_MAX_ATTRS);
		return 0;
	}
	if (attrs_size(t->attrs, t->n_attrs, "T payload", &s) < 0)
		return 0;
	s += 8;
	if (s > 0xffff) {
		bw_debug("T payload: length %zu exceeds the maximum 65535", s);
		return 0;
	}
	return s;
}

static size_t proposal_size(const struct isakmp_proposal *p)
{
	size_t s = 8 + (size_t)p->spi_size;

	if (p->spi_size > ISAKMP_MAX_SPI || p->n_transforms == 0 ||
	    p->n_transforms > ISAKMP_MAX_TRANSFORMS) {
		bw_debug("P payload: SPI size %u with %zu transforms cannot be sent", p->spi_size,
			 p->n_transforms);
		return 0;
	}
	for (size_t i = 0; i < p->n_transforms; i++) {
		size_t t = transform_size(&p->t[i]);

		if (t == 0)
			return 0;
		s += t;
	}
	if (s > 0xffff) {
		bw_debug("P payload: length %zu exceeds the maximum 65535", s);
		return 0;
	}
	return s;
}

int isakmp_b_sa(struct isakmp_builder *b, const struct isakmp_sa *sa)
{
	size_t total = 8, at;

	if (b->err)
		return -1;
	if (sa->n_proposals == 0 || sa->n_proposals > ISAKMP_MAX_PROPOSALS) {
		bw_debug("SA payload: %zu proposals, allowed 1..%d", sa->n_proposals,
			 ISAKMP_MAX_PROPOSALS);
		return b_fail(b);
	}
	for (size_t i = 0; i < sa->n_proposals; i++) {
		size_t s = proposal_size(&sa->p[i]);

		if (s == 0)
			return b_fail(b);
		total += s;
	}
	if (b_begin(b, ISAKMP_PL_SA, total, &at) < 0)
		return -1;

	put32(b->buf + at, sa->doi);
	put32(b->buf + at + 4, sa->situation);
	at += 8;
	for (size_t i = 0; i < sa->n_proposals; i++) {
		const struct isakmp_proposal *p = &sa->p[i];
		uint8_t *ph = b->buf + at;

		ph[0] = i + 1 < sa->n_proposals ? ISAKMP_PL_P : ISAKMP_PL_NONE;
		ph[1] = 0;
		put16(ph + 2, (uint16_t)proposal_size(p));
		ph[4] = p->num;
		ph[5] = p->proto;
		ph[6] = p->spi_size;
		ph[7] = (uint8_t)p->n_transforms;
		memcpy(ph + 8, p->spi, p->spi_size);
		at += 8 + p->spi_size;
		for (size_t j = 0; j < p->n_transforms; j++) {
			const struct isakmp_transform *t = &p->t[j];
			uint8_t *th = b->buf + at;

			th[0] = j + 1 < p->n_transforms ? ISAKMP_PL_T : ISAKMP_PL_NONE;
			th[1] = 0;
			put16(th + 2, (uint16_t)transform_size(t));
			th[4] = t->num;
			th[5] = t->id;
			th[6] = 0;
			th[7] = 0;
			at += 8;
			for (size_t k = 0; k < t->n_attrs; k++)
				at += attr_write(b->buf + at, &t->attrs[k]);
		}
	}
	return 0;
}

int isakmp_b_attr(struct isakmp_builder *b, const struct isakmp_cfg *cfg)
{
	size_t s, at;

	if (b->err)
		return -1;
	if (cfg->n_attrs > ISAKMP_MAX_CFG_ATTRS) {
		bw_debug("ATTR payload: %zu attributes exceed the maximum %d", cfg->n_attrs,
			 ISAKMP_MAX_CFG_ATTRS);
		return b_fail(b);
	}
	if (attrs_size(cfg->attrs, cfg->n_attrs, "ATTR payload", &s) < 0)
		return b_fail(b);
	if (b_begin(b, ISAKMP_PL_ATTR, 4 + s, &at) < 0)
		return -1;
	b->buf[at] = cfg->type;
	b->buf[at + 1] = 0;
	put16(b->buf + at + 2, cfg->id);
	at += 4;
	for (size_t k = 0; k < cfg->n_attrs; k++)
		at += attr_write(b->buf + at, &cfg->attrs[k]);
	return 0;
}

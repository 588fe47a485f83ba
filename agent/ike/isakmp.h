/* ISAKMP message codec (RFC 2408 as used by IKEv1, RFC 2409; NAT-T RFC 3947; Mode Config/XAUTH drafts).
 * Parses untrusted datagrams into bounded views and builds messages with automatic payload chaining. */
#ifndef BURROW_IKE_ISAKMP_H
#define BURROW_IKE_ISAKMP_H

#include <stddef.h>
#include <stdint.h>

/* ---- Wire constants ------------------------------------------------------------------------ */

#define ISAKMP_HDR_LEN		28
#define ISAKMP_GEN_HDR_LEN	4	/* next payload, reserved, payload length */
#define ISAKMP_COOKIE_LEN	8
#define ISAKMP_VERSION		0x10	/* major 1, minor 0 */
#define ISAKMP_ATTR_AF		0x8000	/* attribute format bit: set means TV */

/* Bounds of the parsed representation; a peer that needs more is refused, never truncated. */
#define ISAKMP_MAX_PAYLOADS	32
#define ISAKMP_MAX_PROPOSALS	8
#define ISAKMP_MAX_TRANSFORMS	16
#define ISAKMP_MAX_ATTRS	24
#define ISAKMP_MAX_CFG_ATTRS	64
#define ISAKMP_MAX_SPI		16
#define ISAKMP_NONCE_MIN	8	/* RFC 2409 section 5: 8..256 bytes */
#define ISAKMP_NONCE_MAX	256
#define ISAKMP_MAX_MSG		65535	/* the builder's ceiling; IKE over UDP never gets larger */

enum isakmp_exchange {
	ISAKMP_EXCH_NONE = 0,
	ISAKMP_EXCH_BASE = 1,
	ISAKMP_EXCH_MAIN = 2,		/* Identity Protection */
	ISAKMP_EXCH_AUTH_ONLY = 3,
	ISAKMP_EXCH_AGGRESSIVE = 4,
	ISAKMP_EXCH_INFO = 5,
	ISAKMP_EXCH_TRANSACTION = 6,	/* Mode Config / XAUTH */
	ISAKMP_EXCH_QUICK = 32,
	ISAKMP_EXCH_NEW_GROUP = 33,
};

enum isakmp_flag {
	ISAKMP_FLAG_ENC = 0x01,
	ISAKMP_FLAG_COMMIT = 0x02,
	ISAKMP_FLAG_AUTH_ONLY = 0x04,
};
#define ISAKMP_FLAGS_KNOWN 0x07

enum isakmp_payload_type {
	ISAKMP_PL_NONE = 0,
	ISAKMP_PL_SA = 1,
	ISAKMP_PL_P = 2,
	ISAKMP_PL_T = 3,
	ISAKMP_PL_KE = 4,
	ISAKMP_PL_ID = 5,
	ISAKMP_PL_CERT = 6,
	ISAKMP_PL_CR = 7,
	ISAKMP_PL_HASH = 8,
	ISAKMP_PL_SIG = 9,
	ISAKMP_PL_NONCE = 10,
	ISAKMP_PL_N = 11,
	ISAKMP_PL_D = 12,
	ISAKMP_PL_VID = 13,
	ISAKMP_PL_ATTR = 14,
	ISAKMP_PL_NATD = 20,		/* RFC 3947 */
	ISAKMP_PL_NATOA = 21,
	ISAKMP_PL_NATD_DRAFT = 130,	/* draft-ietf-ipsec-nat-t-ike-02/03: recognized, never sent */
	ISAKMP_PL_NATOA_DRAFT = 131,
};

enum isakmp_doi {
	ISAKMP_DOI_ISAKMP = 0,
	ISAKMP_DOI_IPSEC = 1,
};

enum isakmp_situation {
	ISAKMP_SIT_IDENTITY_ONLY = 1,
	ISAKMP_SIT_SECRECY = 2,
	ISAKMP_SIT_INTEGRITY = 4,
};

enum isakmp_proto {
	ISAKMP_PROTO_ISAKMP = 1,
	ISAKMP_PROTO_AH = 2,
	ISAKMP_PROTO_ESP = 3,
	ISAKMP_PROTO_IPCOMP = 4,
};

enum isakmp_transform_id {
	ISAKMP_KEY_IKE = 1,		/* the only phase-1 transform id */
};

/* Phase 1 (Oakley) attribute types, RFC 2409 appendix A. */
enum isakmp_p1_attr {
	ISAKMP_P1_ENCR = 1,
	ISAKMP_P1_HASH = 2,
	ISAKMP_P1_AUTH = 3,
	ISAKMP_P1_GROUP = 4,
	ISAKMP_P1_LIFE_TYPE = 11,
	ISAKMP_P1_LIFE_DURATION = 12,
	ISAKMP_P1_KEY_LENGTH = 14,
};

enum isakmp_life_type {
	ISAKMP_LIFE_SECONDS = 1,
	ISAKMP_LIFE_KILOBYTES = 2,
};

enum isakmp_auth_method {
	ISAKMP_AUTH_PSK = 1,
	ISAKMP_AUTH_DSS = 2,
	ISAKMP_AUTH_RSA_SIG = 3,
	ISAKMP_AUTH_ECDSA_256 = 9,	/* RFC 4754 */
	ISAKMP_AUTH_ECDSA_384 = 10,
	ISAKMP_AUTH_ECDSA_521 = 11,
	ISAKMP_AUTH_XAUTH_INIT_PSK = 65001,	/* draft-ietf-ipsec-isakmp-xauth-06, private range */
	ISAKMP_AUTH_XAUTH_RESP_PSK = 65002,
	ISAKMP_AUTH_XAUTH_INIT_RSA = 65005,
	ISAKMP_AUTH_XAUTH_RESP_RSA = 65006,
};

/* Phase 2 (IPsec DOI) attribute types, RFC 2407 section 4.5. */
enum isakmp_p2_attr {
	ISAKMP_P2_LIFE_TYPE = 1,
	ISAKMP_P2_LIFE_DURATION = 2,
	ISAKMP_P2_GROUP = 3,
	ISAKMP_P2_ENCAP = 4,
	ISAKMP_P2_AUTH = 5,
	ISAKMP_P2_KEY_LENGTH = 6,
};

enum isakmp_encap_mode {
	ISAKMP_ENCAP_TUNNEL = 1,
	ISAKMP_ENCAP_TRANSPORT = 2,
	ISAKMP_ENCAP_UDP_TUNNEL = 3,		/* RFC 3947 */
	ISAKMP_ENCAP_UDP_TRANSPORT = 4,
	ISAKMP_ENCAP_UDP_TUNNEL_DRAFT = 61443,	/* draft-ietf-ipsec-nat-t-ike */
	ISAKMP_ENCAP_UDP_TRANSPORT_DRAFT = 61444,
};

/* Identification types, RFC 2407 section 4.6.2.1. */
enum isakmp_id_type {
	ISAKMP_ID_IPV4_ADDR = 1,
	ISAKMP_ID_FQDN = 2,
	ISAKMP_ID_USER_FQDN = 3,
	ISAKMP_ID_IPV4_ADDR_SUBNET = 4,
	ISAKMP_ID_IPV6_ADDR = 5,
	ISAKMP_ID_IPV6_ADDR_SUBNET = 6,
	ISAKMP_ID_IPV4_ADDR_RANGE = 7,
	ISAKMP_ID_IPV6_ADDR_RANGE = 8,
	ISAKMP_ID_DER_ASN1_DN = 9,
	ISAKMP_ID_DER_ASN1_GN = 10,
	ISAKMP_ID_KEY_ID = 11,
};

/* Certificate encodings, RFC 2408 section 3.9. */
enum isakmp_cert_encoding {
	ISAKMP_CERT_PKCS7 = 1,
	ISAKMP_CERT_PGP = 2,
	ISAKMP_CERT_DNS_KEY = 3,
	ISAKMP_CERT_X509_SIG = 4,
	ISAKMP_CERT_X509_KE = 5,
	ISAKMP_CERT_KERBEROS = 6,
	ISAKMP_CERT_CRL = 7,
	ISAKMP_CERT_ARL = 8,
	ISAKMP_CERT_SPKI = 9,
	ISAKMP_CERT_X509_ATTR = 10,
};

/* Notify message types: RFC 2408 3.14.1 errors, RFC 2407 4.6.3 status, RFC 3706 DPD. */
enum isakmp_notify_type {
	ISAKMP_N_INVALID_PAYLOAD_TYPE = 1,
	ISAKMP_N_DOI_NOT_SUPPORTED = 2,
	ISAKMP_N_SITUATION_NOT_SUPPORTED = 3,
	ISAKMP_N_INVALID_COOKIE = 4,
	ISAKMP_N_INVALID_MAJOR_VERSION = 5,
	ISAKMP_N_INVALID_MINOR_VERSION = 6,
	ISAKMP_N_INVALID_EXCHANGE_TYPE = 7,
	ISAKMP_N_INVALID_FLAGS = 8,
	ISAKMP_N_INVALID_MESSAGE_ID = 9,
	ISAKMP_N_INVALID_PROTOCOL_ID = 10,
	ISAKMP_N_INVALID_SPI = 11,
	ISAKMP_N_INVALID_TRANSFORM_ID = 12,
	ISAKMP_N_ATTRIBUTES_NOT_SUPPORTED = 13,
	ISAKMP_N_NO_PROPOSAL_CHOSEN = 14,
	ISAKMP_N_BAD_PROPOSAL_SYNTAX = 15,
	ISAKMP_N_PAYLOAD_MALFORMED = 16,
	ISAKMP_N_INVALID_KEY_INFORMATION = 17,
	ISAKMP_N_INVALID_ID_INFORMATION = 18,
	ISAKMP_N_INVALID_CERT_ENCODING = 19,
	ISAKMP_N_INVALID_CERTIFICATE = 20,
	ISAKMP_N_CERT_TYPE_UNSUPPORTED = 21,
	ISAKMP_N_INVALID_CERT_AUTHORITY = 22,
	ISAKMP_N_INVALID_HASH_INFORMATION = 23,
	ISAKMP_N_AUTHENTICATION_FAILED = 24,
	ISAKMP_N_INVALID_SIGNATURE = 25,
	ISAKMP_N_ADDRESS_NOTIFICATION = 26,
	ISAKMP_N_NOTIFY_SA_LIFETIME = 27,
	ISAKMP_N_CERTIFICATE_UNAVAILABLE = 28,
	ISAKMP_N_UNSUPPORTED_EXCHANGE_TYPE = 29,
	ISAKMP_N_UNEQUAL_PAYLOAD_LENGTHS = 30,
	ISAKMP_N_CONNECTED = 16384,	/* RFC 2408 3.14.1: the commit bit's confirmation */
	ISAKMP_N_RESPONDER_LIFETIME = 24576,
	ISAKMP_N_REPLAY_STATUS = 24577,
	ISAKMP_N_INITIAL_CONTACT = 24578,
	ISAKMP_N_DPD_R_U_THERE = 36136,
	ISAKMP_N_DPD_R_U_THERE_ACK = 36137,
};

/* Mode Config message types (draft-dukes-ike-mode-cfg). */
enum isakmp_cfg_type {
	ISAKMP_CFG_REQUEST = 1,
	ISAKMP_CFG_REPLY = 2,
	ISAKMP_CFG_SET = 3,
	ISAKMP_CFG_ACK = 4,
};

/* Mode Config, XAUTH and Cisco Unity attribute types. */
enum isakmp_cfg_attr {
	ISAKMP_CFG_INTERNAL_IP4_ADDRESS = 1,
	ISAKMP_CFG_INTERNAL_IP4_NETMASK = 2,
	ISAKMP_CFG_INTERNAL_IP4_DNS = 3,
	ISAKMP_CFG_INTERNAL_IP4_NBNS = 4,
	ISAKMP_CFG_INTERNAL_ADDRESS_EXPIRY = 5,
	ISAKMP_CFG_INTERNAL_IP4_DHCP = 6,
	ISAKMP_CFG_APPLICATION_VERSION = 7,
	ISAKMP_CFG_SUPPORTED_ATTRIBUTES = 14,
	ISAKMP_CFG_XAUTH_TYPE = 16520,
	ISAKMP_CFG_XAUTH_USER_NAME = 16521,
	ISAKMP_CFG_XAUTH_USER_PASSWORD = 16522,
	ISAKMP_CFG_XAUTH_PASSCODE = 16523,
	ISAKMP_CFG_XAUTH_MESSAGE = 16524,
	ISAKMP_CFG_XAUTH_CHALLENGE = 16525,
	ISAKMP_CFG_XAUTH_DOMAIN = 16526,
	ISAKMP_CFG_XAUTH_STATUS = 16527,
	ISAKMP_CFG_XAUTH_NEXT_PIN = 16528,
	ISAKMP_CFG_XAUTH_ANSWER = 16529,
	ISAKMP_CFG_UNITY_BANNER = 28672,
	ISAKMP_CFG_UNITY_SAVE_PASSWD = 28673,
	ISAKMP_CFG_UNITY_DEF_DOMAIN = 28674,
	ISAKMP_CFG_UNITY_SPLITDNS_NAME = 28675,
	ISAKMP_CFG_UNITY_SPLIT_INCLUDE = 28676,
	ISAKMP_CFG_UNITY_NATT_PORT = 28677,
	ISAKMP_CFG_UNITY_LOCAL_LAN = 28678,
	ISAKMP_CFG_UNITY_PFS = 28679,
	ISAKMP_CFG_UNITY_FW_TYPE = 28680,
	ISAKMP_CFG_UNITY_BACKUP_SERVERS = 28681,
	ISAKMP_CFG_UNITY_DDNS_HOSTNAME = 28682,
};

/* Names for logs; never NULL ("UNKNOWN" for values not listed above). */
const char *isakmp_payload_name(unsigned type);
const char *isakmp_notify_name(unsigned type);
const char *isakmp_exchange_name(unsigned type);
const char *isakmp_cfg_attr_name(unsigned type);

/* ---- Parsed views ----------------------------------------------------------------------------
 * Every pointer in these structs points into the caller's packet buffer: a view lives exactly as
 * long as that buffer. Parsers write *out only when they return 0. */

struct isakmp_hdr {
	uint8_t icookie[ISAKMP_COOKIE_LEN];
	uint8_t rcookie[ISAKMP_COOKIE_LEN];
	uint8_t np;		/* type of the first payload */
	uint8_t version;
	uint8_t exchange;
	uint8_t flags;
	uint32_t msgid;
	uint32_t length;	/* whole message, header included */
};

struct isakmp_payload {
	uint8_t type;
	const uint8_t *data;	/* after the 4-byte generic header */
	size_t len;		/* of data */
	size_t off;		/* offset of the generic header from the start of the body */
};

struct isakmp_payloads {
	size_t n;
	struct isakmp_payload p[ISAKMP_MAX_PAYLOADS];
	size_t used;		/* bytes of the body the chain covers */
	size_t trailing;	/* bytes after the last payload (padding after decryption) */
};

/* Build: fmt picks the encoding (AUTO: TV when data is NULL and value < 65536, else TLV).
 * Parse: fmt is TV or TLV; has_value says value holds the integer (TV, or TLV of at most
 * 8 bytes); data/len always point at the value bytes on the wire. */
enum isakmp_attr_fmt {
	ISAKMP_ATTR_AUTO = 0,
	ISAKMP_ATTR_TV = 1,
	ISAKMP_ATTR_TLV = 2,
};

struct isakmp_attr {
	uint16_t type;		/* without the AF bit */
	uint8_t fmt;		/* enum isakmp_attr_fmt */
	uint8_t has_value;
	uint16_t len;		/* TLV: value length; TV: 2 */
	uint64_t value;
	const uint8_t *data;	/* TLV value (may be NULL when len is 0); build: NULL = encode value */
};

struct isakmp_transform {
	uint8_t num;
	uint8_t id;
	size_t n_attrs;
	struct isakmp_attr attrs[ISAKMP_MAX_ATTRS];
};

struct isakmp_proposal {
	uint8_t num;
	uint8_t proto;		/* enum isakmp_proto */
	uint8_t spi_size;
	uint8_t spi[ISAKMP_MAX_SPI];
	size_t n_transforms;
	struct isakmp_transform t[ISAKMP_MAX_TRANSFORMS];
};

/* About 75 KiB: keep it static, on the heap, or in a long-lived exchange struct. */
struct isakmp_sa {
	uint32_t doi;
	uint32_t situation;
	size_t n_proposals;
	struct isakmp_proposal p[ISAKMP_MAX_PROPOSALS];
};

struct isakmp_blob {
	const uint8_t *data;
	size_t len;
};

struct isakmp_id {
	uint8_t type;		/* enum isakmp_id_type */
	uint8_t proto;		/* IP protocol, 0 = any */
	uint16_t port;		/* 0 = any */
	const uint8_t *data;
	size_t len;
};

struct isakmp_cert {
	uint8_t encoding;	/* enum isakmp_cert_encoding; for CR the requested type */
	const uint8_t *data;	/* certificate, or for CR the CA name (may be empty) */
	size_t len;
};

struct isakmp_notify {
	uint32_t doi;
	uint8_t proto;
	uint8_t spi_size;
	uint16_t type;		/* enum isakmp_notify_type */
	uint8_t spi[ISAKMP_MAX_SPI];
	const uint8_t *data;
	size_t len;
};

struct isakmp_delete {
	uint32_t doi;
	uint8_t proto;
	uint8_t spi_size;
	uint16_t n_spis;
	const uint8_t *spis;	/* n_spis * spi_size bytes, back to back */
};

struct isakmp_nat_oa {
	uint8_t id_type;	/* ISAKMP_ID_IPV4_ADDR or ISAKMP_ID_IPV6_ADDR */
	uint8_t addr[16];
	uint8_t addr_len;	/* 4 or 16 */
};

struct isakmp_cfg {
	uint8_t type;		/* enum isakmp_cfg_type */
	uint16_t id;		/* identifier that pairs REQUEST/REPLY and SET/ACK */
	size_t n_attrs;
	struct isakmp_attr attrs[ISAKMP_MAX_CFG_ATTRS];
};

/* ---- Parsing --------------------------------------------------------------------------------- */

/* The 28-byte header. The header's length may be smaller than len (trailing bytes are the caller's
 * to ignore) but never larger. Version must be 1.0, flags only ENC/COMMIT/AUTH-ONLY. */
int isakmp_hdr_parse(const uint8_t *buf, size_t len, struct isakmp_hdr *out);

/* Walks the generic payload chain of a (decrypted) body starting with first_np. Payload types are
 * not interpreted except that P and T are refused outside an SA. */
int isakmp_payloads_parse(uint8_t first_np, const uint8_t *body, size_t body_len,
			  struct isakmp_payloads *out);

/* The index of the next payload of type at or after start, or -1. */
int isakmp_payloads_find(const struct isakmp_payloads *pl, uint8_t type, size_t start);
size_t isakmp_payloads_count(const struct isakmp_payloads *pl, uint8_t type);

/* Data attributes (RFC 2408 3.3) back to back in buf; max is capped at ISAKMP_MAX_CFG_ATTRS.
 * what names the payload in logs.
 * reject_dups refuses a type seen twice (SA transforms); Mode Config repeats types (DNS). */
int isakmp_parse_attrs(const uint8_t *buf, size_t len, struct isakmp_attr *out, size_t max,
		       size_t *n_out, int reject_dups, const char *what);

/* Typed payload parsers: each takes one view from isakmp_payloads_parse. */
int isakmp_parse_sa(const struct isakmp_payload *pl, struct isakmp_sa *out);
int isakmp_parse_ke(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_nonce(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_id(const struct isakmp_payload *pl, struct isakmp_id *out);
int isakmp_parse_hash(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_sig(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_cert(const struct isakmp_payload *pl, struct isakmp_cert *out);
int isakmp_parse_cr(const struct isakmp_payload *pl, struct isakmp_cert *out);
int isakmp_parse_notify(const struct isakmp_payload *pl, struct isakmp_notify *out);
int isakmp_parse_delete(const struct isakmp_payload *pl, struct isakmp_delete *out);
int isakmp_parse_vid(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_natd(const struct isakmp_payload *pl, struct isakmp_blob *out);
int isakmp_parse_nat_oa(const struct isakmp_payload *pl, struct isakmp_nat_oa *out);
int isakmp_parse_attr(const struct isakmp_payload *pl, struct isakmp_cfg *out);

/* The first attribute of type in a transform or Mode Config payload, or NULL. */
const struct isakmp_attr *isakmp_attr_find(const struct isakmp_attr *attrs, size_t n, uint16_t type);

/* ---- Building ---------------------------------------------------------------------------------
 * Each payload helper appends one payload and patches the previous payload's (or the header's)
 * next-payload field. On the first failure (capacity, bad argument) the builder latches err and
 * every later call does nothing: check once, at isakmp_b_finish. */

struct isakmp_builder {
	uint8_t *buf;
	size_t cap;
	size_t len;
	size_t np_off;		/* where the next payload's type goes */
	int owned;		/* buf is ours to grow and free */
	int err;
};

/* Growable builder (heap, up to ISAKMP_MAX_MSG); free with isakmp_b_free. */
int isakmp_b_init(struct isakmp_builder *b, const struct isakmp_hdr *hdr);
/* Caller-bounded builder writing into buf[cap]; nothing to free. */
int isakmp_b_init_fixed(struct isakmp_builder *b, uint8_t *buf, size_t cap,
			const struct isakmp_hdr *hdr);
void isakmp_b_free(struct isakmp_builder *b);

int isakmp_b_payload(struct isakmp_builder *b, uint8_t type, const void *data, size_t len);
int isakmp_b_sa(struct isakmp_builder *b, const struct isakmp_sa *sa);
int isakmp_b_ke(struct isakmp_builder *b, const void *data, size_t len);
int isakmp_b_nonce(struct isakmp_builder *b, const void *data, size_t len);
int isakmp_b_id(struct isakmp_builder *b, const struct isakmp_id *id);
int isakmp_b_hash(struct isakmp_builder *b, const void *data, size_t len);
/* Appends a zeroed HASH payload of len bytes; *off is where its data sits in the buffer, to be
 * filled once the payloads that follow it exist (Quick Mode HASH(1), Informational HASH). */
int isakmp_b_hash_reserve(struct isakmp_builder *b, size_t len, size_t *off);
int isakmp_b_sig(struct isakmp_builder *b, const void *data, size_t len);
int isakmp_b_cert(struct isakmp_builder *b, const struct isakmp_cert *cert);
int isakmp_b_cr(struct isakmp_builder *b, const struct isakmp_cert *cr);
int isakmp_b_notify(struct isakmp_builder *b, const struct isakmp_notify *n);
int isakmp_b_delete(struct isakmp_builder *b, const struct isakmp_delete *d);
int isakmp_b_vid(struct isakmp_builder *b, const void *data, size_t len);
int isakmp_b_natd(struct isakmp_builder *b, const void *hash, size_t len);
int isakmp_b_nat_oa(struct isakmp_builder *b, const struct isakmp_nat_oa *oa);
int isakmp_b_attr(struct isakmp_builder *b, const struct isakmp_cfg *cfg);

/* Writes the total length into the header; 0, or -1 when any earlier step failed. */
int isakmp_b_finish(struct isakmp_builder *b);

uint8_t *isakmp_b_buf(struct isakmp_builder *b);
size_t isakmp_b_len(const struct isakmp_builder *b);
/* The body (everything after the header): what the encryption module encrypts. */
uint8_t *isakmp_b_body(struct isakmp_builder *b, size_t *len);
/* Replaces the body with len bytes (e.g. the ciphertext), sets or clears the ENC flag as asked
 * and rewrites the header length. body may point into the builder's own buffer (in-place
 * encryption) as long as it stays within the capacity. No payload may be appended afterwards. */
int isakmp_b_set_body(struct isakmp_builder *b, const void *body, size_t len, int encrypted);

/* Writes hdr into out[ISAKMP_HDR_LEN] as is (length included). */
void isakmp_hdr_write(const struct isakmp_hdr *hdr, uint8_t *out);

#endif

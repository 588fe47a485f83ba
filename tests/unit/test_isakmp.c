/* Tests for the ISAKMP codec: RFC layout of hand-made bytes, round trips of every payload,
 * and rejection of malformed headers, chains and nested SA structures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "tap.h"
#include "log.h"
#include "ike/isakmp.h"

/* Captures the last log line so tests can check that errors name the payload and both sizes. */
static char last_log[1024];

static void sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)conn;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

static const char *last_line(void) { return last_log; }

static struct isakmp_payload view(uint8_t type, const uint8_t *d, size_t len)
{
	struct isakmp_payload p = { type, d, len, 0 };
	return p;
}

static const uint8_t icookie[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
static const uint8_t rfc3947_vid[16] = {
	0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45,
	0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
};

/* Main Mode message 1 written out by hand from RFC 2408 3.1-3.6 and RFC 2409 appendix A:
 * SA (1 proposal, 1 transform, AES-256/SHA2-256/PSK/MODP-2048, 86400 s) and the RFC 3947 VID. */
static const uint8_t mm1_wire[] = {
	/* header */
	0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,	/* initiator cookie */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,	/* responder cookie */
	0x01, 0x10, 0x02, 0x00,				/* np SA, v1.0, Main Mode, flags */
	0x00, 0x00, 0x00, 0x00,				/* message id */
	0x00, 0x00, 0x00, 0x6c,				/* length 108 */
	/* SA payload */
	0x0d, 0x00, 0x00, 0x3c,				/* np VID, length 60 */
	0x00, 0x00, 0x00, 0x01,				/* DOI IPSEC */
	0x00, 0x00, 0x00, 0x01,				/* SIT_IDENTITY_ONLY */
	/* proposal */
	0x00, 0x00, 0x00, 0x30,				/* last, length 48 */
	0x01, 0x01, 0x00, 0x01,				/* #1, PROTO_ISAKMP, SPI size 0, 1 transform */
	/* transform */
	0x00, 0x00, 0x00, 0x28,				/* last, length 40 */
	0x01, 0x01, 0x00, 0x00,				/* #1, KEY_IKE, reserved */
	0x80, 0x01, 0x00, 0x07,				/* encryption AES-CBC (TV) */
	0x80, 0x02, 0x00, 0x04,				/* hash SHA2-256 */
	0x80, 0x03, 0x00, 0x01,				/* auth PSK */
	0x80, 0x04, 0x00, 0x0e,				/* group 14 */
	0x80, 0x0b, 0x00, 0x01,				/* life type seconds */
	0x00, 0x0c, 0x00, 0x04, 0x00, 0x01, 0x51, 0x80,	/* life duration 86400 (TLV, 4 bytes) */
	0x80, 0x0e, 0x01, 0x00,				/* key length 256 */
	/* VID payload */
	0x00, 0x00, 0x00, 0x14,				/* last, length 20 */
	0x4a, 0x13, 0x1c, 0x81, 0x07, 0x03, 0x58, 0x45,
	0x5c, 0x57, 0x28, 0xf2, 0x0e, 0x95, 0x45, 0x2f,
};
#define MM1_SA_DATA_OFF (ISAKMP_HDR_LEN + 4)
#define MM1_SA_DATA_LEN 56

static struct isakmp_sa sa_a, sa_b;	/* too large for comfortable stack use */
static struct isakmp_cfg cfg_a, cfg_b;

static void set_attr(struct isakmp_attr *a, uint16_t type, uint64_t value)
{
	memset(a, 0, sizeof(*a));
	a->type = type;
	a->value = value;
}

static void fill_p1_sa(struct isakmp_sa *sa)
{
	struct isakmp_transform *t;

	memset(sa, 0, sizeof(*sa));
	sa->doi = ISAKMP_DOI_IPSEC;
	sa->situation = ISAKMP_SIT_IDENTITY_ONLY;
	sa->n_proposals = 1;
	sa->p[0].num = 1;
	sa->p[0].proto = ISAKMP_PROTO_ISAKMP;
	sa->p[0].n_transforms = 1;
	t = &sa->p[0].t[0];
	t->num = 1;
	t->id = ISAKMP_KEY_IKE;
	set_attr(&t->attrs[0], ISAKMP_P1_ENCR, 7);
	set_attr(&t->attrs[1], ISAKMP_P1_HASH, 4);
	set_attr(&t->attrs[2], ISAKMP_P1_AUTH, ISAKMP_AUTH_PSK);
	set_attr(&t->attrs[3], ISAKMP_P1_GROUP, 14);
	set_attr(&t->attrs[4], ISAKMP_P1_LIFE_TYPE, ISAKMP_LIFE_SECONDS);
	set_attr(&t->attrs[5], ISAKMP_P1_LIFE_DURATION, 86400);
	set_attr(&t->attrs[6], ISAKMP_P1_KEY_LENGTH, 256);
	t->n_attrs = 7;
}

/* Quick Mode SA with ESP proposals and SPIs: two proposals, the first with two transforms. */
static void fill_qm_sa(struct isakmp_sa *sa)
{
	memset(sa, 0, sizeof(*sa));
	sa->doi = ISAKMP_DOI_IPSEC;
	sa->situation = ISAKMP_SIT_IDENTITY_ONLY;
	sa->n_proposals = 2;
	for (int i = 0; i < 2; i++) {
		struct isakmp_proposal *p = &sa->p[i];

		p->num = (uint8_t)(i + 1);
		p->proto = ISAKMP_PROTO_ESP;
		p->spi_size = 4;
		memcpy(p->spi, "\xc0\xff\xee\x01", 4);
		p->spi[3] = (uint8_t)(i + 1);
	}
	{
		struct isakmp_transform *t = &sa->p[0].t[0];

		sa->p[0].n_transforms = 2;
		t->num = 1;
		t->id = 12;	/* ESP_AES */
		set_attr(&t->attrs[0], ISAKMP_P2_ENCAP, ISAKMP_ENCAP_UDP_TUNNEL);
		set_attr(&t->attrs[1], ISAKMP_P2_AUTH, 5);
		set_attr(&t->attrs[2], ISAKMP_P2_KEY_LENGTH, 256);
		set_attr(&t->attrs[3], ISAKMP_P2_LIFE_TYPE, ISAKMP_LIFE_SECONDS);
		set_attr(&t->attrs[4], ISAKMP_P2_LIFE_DURATION, 3600);
		set_attr(&t->attrs[5], ISAKMP_P2_GROUP, 14);
		t->n_attrs = 6;
		t = &sa->p[0].t[1];
		t->num = 2;
		t->id = 20;	/* ESP_AES_GCM_16 */
		set_attr(&t->attrs[0], ISAKMP_P2_ENCAP, ISAKMP_ENCAP_UDP_TUNNEL_DRAFT);
		set_attr(&t->attrs[1], ISAKMP_P2_KEY_LENGTH, 128);
		set_attr(&t->attrs[2], ISAKMP_P2_LIFE_DURATION, 4608000);	/* kilobytes, > 16 bits */
		t->n_attrs = 3;
		t = &sa->p[1].t[0];
		sa->p[1].n_transforms = 1;
		t->num = 1;
		t->id = 3;	/* ESP_3DES */
		set_attr(&t->attrs[0], ISAKMP_P2_ENCAP, ISAKMP_ENCAP_TUNNEL);
		set_attr(&t->attrs[1], ISAKMP_P2_AUTH, 2);
		t->n_attrs = 2;
	}
}

static void fill_hdr(struct isakmp_hdr *h, uint8_t exch, uint32_t msgid)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->icookie, icookie, 8);
	h->version = ISAKMP_VERSION;
	h->exchange = exch;
	h->msgid = msgid;
}

static int attrs_equal(const struct isakmp_attr *a, const struct isakmp_attr *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].type != b[i].type || a[i].fmt != b[i].fmt || a[i].len != b[i].len ||
		    a[i].has_value != b[i].has_value || a[i].value != b[i].value)
			return 0;
		if (a[i].len && memcmp(a[i].data, b[i].data, a[i].len) != 0)
			return 0;
	}
	return 1;
}

/* Same type, format and value bytes: what a sender controls. */
static int attrs_wire_equal(const struct isakmp_attr *a, const struct isakmp_attr *b, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (a[i].type != b[i].type || a[i].fmt != b[i].fmt || a[i].len != b[i].len)
			return 0;
		if (a[i].len && memcmp(a[i].data, b[i].data, a[i].len) != 0)
			return 0;
	}
	return 1;
}

static int sa_equal(const struct isakmp_sa *a, const struct isakmp_sa *b)
{
	if (a->doi != b->doi || a->situation != b->situation || a->n_proposals != b->n_proposals)
		return 0;
	for (size_t i = 0; i < a->n_proposals; i++) {
		const struct isakmp_proposal *p = &a->p[i], *q = &b->p[i];

		if (p->num != q->num || p->proto != q->proto || p->spi_size != q->spi_size ||
		    memcmp(p->spi, q->spi, p->spi_size) != 0 || p->n_transforms != q->n_transforms)
			return 0;
		for (size_t j = 0; j < p->n_transforms; j++) {
			if (p->t[j].num != q->t[j].num || p->t[j].id != q->t[j].id ||
			    p->t[j].n_attrs != q->t[j].n_attrs ||
			    !attrs_equal(p->t[j].attrs, q->t[j].attrs, p->t[j].n_attrs))
				return 0;
		}
	}
	return 1;
}

/* Same proposals, transforms and attribute values, whatever encoding AUTO picked. */
static int sa_values_equal(const struct isakmp_sa *a, const struct isakmp_sa *b)
{
	if (a->doi != b->doi || a->situation != b->situation || a->n_proposals != b->n_proposals)
		return 0;
	for (size_t i = 0; i < a->n_proposals; i++) {
		const struct isakmp_proposal *p = &a->p[i], *q = &b->p[i];

		if (p->num != q->num || p->proto != q->proto || p->spi_size != q->spi_size ||
		    p->n_transforms != q->n_transforms)
			return 0;
		for (size_t j = 0; j < p->n_transforms; j++) {
			if (p->t[j].id != q->t[j].id || p->t[j].n_attrs != q->t[j].n_attrs)
				return 0;
			for (size_t k = 0; k < p->t[j].n_attrs; k++)
				if (p->t[j].attrs[k].type != q->t[j].attrs[k].type ||
				    p->t[j].attrs[k].value != q->t[j].attrs[k].value ||
				    !q->t[j].attrs[k].has_value)
					return 0;
		}
	}
	return 1;
}

/* Parses wire[off..off+len) as an SA payload's data after copying it into a scratch buffer that
 * the caller mutates. */
static uint8_t sa_scratch[256];

static int parse_sa_mutated(size_t len)
{
	struct isakmp_payload pl = view(ISAKMP_PL_SA, sa_scratch, len);

	return isakmp_parse_sa(&pl, &sa_b);
}

static void reset_sa_scratch(void)
{
	memcpy(sa_scratch, mm1_wire + MM1_SA_DATA_OFF, MM1_SA_DATA_LEN);
}

static void test_rfc_layout(void)
{
	struct isakmp_hdr h;
	struct isakmp_payloads pl;
	struct isakmp_builder b;
	const struct isakmp_transform *t;
	const struct isakmp_attr *life;

	tap_ok(isakmp_hdr_parse(mm1_wire, sizeof(mm1_wire), &h) == 0,
	       "hand-made Main Mode message 1 header parses");
	tap_ok(memcmp(h.icookie, icookie, 8) == 0 && h.np == ISAKMP_PL_SA &&
	       h.version == 0x10 && h.exchange == ISAKMP_EXCH_MAIN && h.flags == 0 &&
	       h.msgid == 0 && h.length == 108,
	       "header fields sit at the RFC 2408 3.1 offsets (cookies, np, version, exchange, length)");
	tap_ok(isakmp_payloads_parse(h.np, mm1_wire + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN,
				     &pl) == 0 && pl.n == 2 && pl.p[0].type == ISAKMP_PL_SA &&
	       pl.p[1].type == ISAKMP_PL_VID && pl.trailing == 0,
	       "payload chain of the hand-made message is SA then VID with nothing left over");
	tap_ok(pl.p[1].len == 16 && memcmp(pl.p[1].data, rfc3947_vid, 16) == 0,
	       "VID view points at the 16 bytes after the generic header");
	tap_ok(isakmp_parse_sa(&pl.p[0], &sa_a) == 0, "hand-made SA payload parses");
	t = &sa_a.p[0].t[0];
	tap_ok(sa_a.doi == 1 && sa_a.situation == 1 && sa_a.n_proposals == 1 &&
	       sa_a.p[0].num == 1 && sa_a.p[0].proto == ISAKMP_PROTO_ISAKMP &&
	       sa_a.p[0].spi_size == 0 && sa_a.p[0].n_transforms == 1,
	       "SA: DOI, situation and proposal fields read as laid out in RFC 2408 3.4/3.5");
	tap_ok(t->num == 1 && t->id == ISAKMP_KEY_IKE && t->n_attrs == 7,
	       "transform: number, KEY_IKE and 7 attributes (RFC 2408 3.6)");
	tap_ok(t->attrs[0].type == ISAKMP_P1_ENCR && t->attrs[0].fmt == ISAKMP_ATTR_TV &&
	       t->attrs[0].value == 7, "TV attribute: AF bit stripped from the type, 2-byte value");
	life = isakmp_attr_find(t->attrs, t->n_attrs, ISAKMP_P1_LIFE_DURATION);
	tap_ok(life && life->fmt == ISAKMP_ATTR_TLV && life->len == 4 && life->has_value &&
	       life->value == 86400, "TLV attribute: life duration 86400 read from 4 bytes");

	/* The builder must produce exactly these bytes, so it cannot be merely self-consistent. */
	{
		struct isakmp_hdr hh;

		fill_hdr(&hh, ISAKMP_EXCH_MAIN, 0);
		fill_p1_sa(&sa_b);
		isakmp_b_init(&b, &hh);
		isakmp_b_sa(&b, &sa_b);
		isakmp_b_vid(&b, rfc3947_vid, 16);
		tap_ok(isakmp_b_finish(&b) == 0, "builder finishes Main Mode message 1");
		tap_is_int(isakmp_b_len(&b), sizeof(mm1_wire), "built message has the hand-made length");
		tap_ok(isakmp_b_len(&b) == sizeof(mm1_wire) &&
		       memcmp(isakmp_b_buf(&b), mm1_wire, sizeof(mm1_wire)) == 0,
		       "built message is byte for byte the hand-made RFC layout (AUTO picks TV, and TLV for 86400)");
		isakmp_b_free(&b);
	}
}

static void test_notify_layout(void)
{
	/* RFC 2408 3.14 / RFC 3706 5.3: R-U-THERE with the 16-byte cookie pair as SPI, 4-byte seq. */
	static const uint8_t n_wire[] = {
		0x00, 0x00, 0x00, 0x01,		/* DOI */
		0x01, 0x10, 0x8d, 0x28,		/* PROTO_ISAKMP, SPI size 16, type 36136 */
		1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
		0x00, 0x00, 0x00, 0x2a,		/* sequence number 42 */
	};
	struct isakmp_payload pl = view(ISAKMP_PL_N, n_wire, sizeof(n_wire));
	struct isakmp_notify n;

	tap_ok(isakmp_parse_notify(&pl, &n) == 0 && n.doi == 1 && n.proto == 1 &&
	       n.spi_size == 16 && n.type == ISAKMP_N_DPD_R_U_THERE && n.spi[0] == 1 &&
	       n.spi[15] == 16 && n.len == 4 && n.data[3] == 0x2a,
	       "hand-made R-U-THERE notify: DOI, protocol, SPI size, type 36136, SPI, data");
}

static void test_header(void)
{
	uint8_t m[64];
	struct isakmp_hdr h, untouched;

	memset(&untouched, 0xa5, sizeof(untouched));
	memcpy(m, mm1_wire, ISAKMP_HDR_LEN);
	m[27] = ISAKMP_HDR_LEN;		/* a header-only message */

	h = untouched;
	tap_ok(isakmp_hdr_parse(m, ISAKMP_HDR_LEN - 1, &h) < 0, "header: 27 bytes are rejected");
	tap_ok(memcmp(&h, &untouched, sizeof(h)) == 0, "header: a rejected parse leaves out untouched");
	tap_ok(isakmp_hdr_parse(m, ISAKMP_HDR_LEN, &h) == 0 && h.length == 28,
	       "header: a header-only message of exactly 28 bytes is accepted");
	tap_ok(isakmp_hdr_parse(m, 40, &h) == 0, "header: length below the datagram size is accepted");
	m[27] = 29;
	tap_ok(isakmp_hdr_parse(m, 28, &h) < 0, "header: length beyond the buffer is rejected");
	tap_ok(strstr(last_log, "29") && strstr(last_log, "28"),
	       "header: the error names both the declared length and the bytes received");
	m[27] = 27;
	tap_ok(isakmp_hdr_parse(m, 28, &h) < 0, "header: length smaller than the header is rejected");
	m[27] = 28;
	m[17] = 0x20;
	tap_ok(isakmp_hdr_parse(m, 28, &h) < 0, "header: major version 2 is rejected");
	m[17] = 0x11;
	tap_ok(isakmp_hdr_parse(m, 28, &h) < 0, "header: minor version 1 is rejected");
	m[17] = 0x10;
	m[19] = 0x08;
	tap_ok(isakmp_hdr_parse(m, 28, &h) < 0, "header: unknown flag bits are rejected");
	m[19] = ISAKMP_FLAG_ENC | ISAKMP_FLAG_COMMIT;
	tap_ok(isakmp_hdr_parse(m, 28, &h) == 0 && h.flags == 3,
	       "header: ENC and COMMIT flags are accepted");
}

static void test_chain(void)
{
	struct isakmp_payloads pl, untouched;
	/* KE(4 bytes) -> NONCE(8 bytes), then 3 bytes of padding */
	static const uint8_t body[] = {
		0x0a, 0x00, 0x00, 0x08, 0xaa, 0xbb, 0xcc, 0xdd,
		0x00, 0x00, 0x00, 0x0c, 1, 2, 3, 4, 5, 6, 7, 8,
		0x00, 0x00, 0x03,
	};
	uint8_t m[sizeof(body)];
	uint8_t many[4 * (ISAKMP_MAX_PAYLOADS + 1)];

	tap_ok(isakmp_payloads_parse(ISAKMP_PL_KE, body, sizeof(body), &pl) == 0 && pl.n == 2 &&
	       pl.p[0].type == ISAKMP_PL_KE && pl.p[0].len == 4 && pl.p[0].off == 0 &&
	       pl.p[1].type == ISAKMP_PL_NONCE && pl.p[1].len == 8 && pl.p[1].off == 8,
	       "chain: types come from the previous payload's next-payload field");
	tap_ok(pl.used == 20 && pl.trailing == 3,
	       "chain: padding after the last payload is allowed and reported as trailing");
	tap_ok(isakmp_payloads_find(&pl, ISAKMP_PL_NONCE, 0) == 1 &&
	       isakmp_payloads_find(&pl, ISAKMP_PL_SA, 0) == -1 &&
	       isakmp_payloads_count(&pl, ISAKMP_PL_KE) == 1, "chain: find and count");

	memcpy(m, body, sizeof(m));
	m[1] = 0xff;
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_KE, m, sizeof(m), &pl) == 0,
	       "chain: the reserved byte is ignored");

	memset(&untouched, 0x5a, sizeof(untouched));
	pl = untouched;
	memcpy(m, body, sizeof(m));
	m[11] = 3;
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_KE, m, sizeof(m), &pl) < 0,
	       "chain: a payload length below 4 is rejected");
	tap_ok(memcmp(&pl, &untouched, sizeof(pl)) == 0, "chain: a rejected parse leaves out untouched");
	tap_ok(strstr(last_log, "NONCE payload") && strstr(last_log, "3") && strstr(last_log, "4"),
	       "chain: the error names the payload, its length and the minimum");

	memcpy(m, body, sizeof(m));
	m[11] = 16;	/* NONCE claims 16 bytes, 15 are left */
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_KE, m, sizeof(m), &pl) < 0,
	       "chain: a payload running past the end of the body is rejected");
	memcpy(m, body, sizeof(m));
	m[8] = ISAKMP_PL_VID;	/* NONCE announces a VID, but only 3 bytes follow */
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_KE, m, sizeof(m), &pl) < 0,
	       "chain: a next payload announced where fewer than 4 bytes remain is rejected");
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_P, body, sizeof(body), &pl) < 0,
	       "chain: a proposal payload outside an SA is rejected");
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_NONE, NULL, 0, &pl) == 0 && pl.n == 0,
	       "chain: an empty body with no first payload is accepted");

	for (size_t i = 0; i < ISAKMP_MAX_PAYLOADS + 1; i++) {
		many[4 * i] = i + 1 < ISAKMP_MAX_PAYLOADS + 1 ? ISAKMP_PL_VID : 0;
		many[4 * i + 1] = 0;
		many[4 * i + 2] = 0;
		many[4 * i + 3] = 4;
	}
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_VID, many, 4 * ISAKMP_MAX_PAYLOADS, &pl) < 0,
	       "chain: a chain announcing more than fits is rejected");
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_VID, many, sizeof(many), &pl) < 0,
	       "chain: more than ISAKMP_MAX_PAYLOADS payloads are refused");
	many[4 * (ISAKMP_MAX_PAYLOADS - 1)] = 0;
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_VID, many, sizeof(many), &pl) == 0 &&
	       pl.n == ISAKMP_MAX_PAYLOADS && pl.trailing == 4,
	       "chain: exactly ISAKMP_MAX_PAYLOADS payloads are accepted");
}

static void test_sa_malformed(void)
{
	reset_sa_scratch();
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) == 0, "SA: the unmutated copy parses");

	memset(&sa_b, 0x77, sizeof(sa_b));
	memcpy(&sa_a, &sa_b, sizeof(sa_a));
	reset_sa_scratch();
	sa_scratch[14] = 17;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: SPI size 17 is rejected");
	tap_ok(memcmp(&sa_a, &sa_b, sizeof(sa_a)) == 0, "SA: a rejected parse leaves out untouched");
	tap_ok(strstr(last_log, "SPI size 17") && strstr(last_log, "16"),
	       "SA: the SPI error names the size and the maximum");

	reset_sa_scratch();
	sa_scratch[15] = 2;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: 2 transforms declared but 1 present is rejected");
	reset_sa_scratch();
	sa_scratch[15] = 0;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a proposal declaring 0 transforms is rejected");

	reset_sa_scratch();
	sa_scratch[11] = 49;	/* proposal longer than the SA */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a proposal longer than the SA is rejected");
	reset_sa_scratch();
	sa_scratch[11] = 47;	/* proposal shorter than its transform */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: a transform longer than its proposal is rejected");
	reset_sa_scratch();
	sa_scratch[19] = 7;	/* transform shorter than its fixed part */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a transform length below 8 is rejected");
	reset_sa_scratch();
	sa_scratch[16] = ISAKMP_PL_T;	/* last transform announces another */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: a transform announcing a missing successor is rejected");
	reset_sa_scratch();
	sa_scratch[8] = ISAKMP_PL_P;	/* last proposal announces another */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: a proposal announcing a missing successor is rejected");
	reset_sa_scratch();
	sa_scratch[8] = ISAKMP_PL_KE;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a proposal chained to a KE is rejected");
	reset_sa_scratch();
	memset(sa_scratch + MM1_SA_DATA_LEN, 0, 8);
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN + 8) < 0,
	       "SA: bytes after the last proposal are rejected");

	reset_sa_scratch();
	sa_scratch[47] = 9;	/* life duration TLV claims 9 bytes, 8 remain after its header */
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: a TLV attribute longer than the transform's remaining bytes is rejected");
	tap_ok(strstr(last_log, "length 9") && strstr(last_log, "8 bytes left"),
	       "SA: the TLV error names the attribute length and the bytes left");
	reset_sa_scratch();
	sa_scratch[52] = 0x80;	/* key length attribute type 14 -> 1 (duplicate) */
	sa_scratch[53] = 0x01;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0,
	       "SA: a duplicate attribute in one transform is rejected");
	reset_sa_scratch();
	sa_scratch[3] = 2;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a DOI other than IPSEC is rejected");
	reset_sa_scratch();
	sa_scratch[7] = ISAKMP_SIT_SECRECY;
	tap_ok(parse_sa_mutated(MM1_SA_DATA_LEN) < 0, "SA: a SECRECY situation is rejected");
	reset_sa_scratch();
	tap_ok(parse_sa_mutated(8) < 0, "SA: an SA without proposals is rejected");
	tap_ok(parse_sa_mutated(7) < 0, "SA: an SA shorter than DOI and situation is rejected");
}

static void test_sa_limits(void)
{
	struct isakmp_hdr h;
	struct isakmp_builder b;
	struct isakmp_payloads pl;

	/* Nine proposals: the builder refuses, so hand-assemble the SA payload. */
	size_t off = 8;

	memcpy(sa_scratch, mm1_wire + MM1_SA_DATA_OFF, 8);
	for (int i = 0; i < 9; i++) {
		uint8_t *p = sa_scratch + off;

		p[0] = i < 8 ? ISAKMP_PL_P : 0;
		p[1] = 0;
		p[2] = 0;
		p[3] = 16;
		p[4] = (uint8_t)(i + 1);
		p[5] = ISAKMP_PROTO_ISAKMP;
		p[6] = 0;
		p[7] = 1;
		memcpy(p + 8, "\x00\x00\x00\x08\x01\x01\x00\x00", 8);
		off += 16;
	}
	tap_ok(parse_sa_mutated(off) < 0, "SA: 9 proposals exceed ISAKMP_MAX_PROPOSALS and are refused");
	sa_scratch[8 + 7 * 16] = 0;
	tap_ok(parse_sa_mutated(8 + 8 * 16) == 0 && sa_b.n_proposals == 8 &&
	       sa_b.p[7].num == 8 && sa_b.p[7].t[0].n_attrs == 0,
	       "SA: 8 proposals with attribute-less transforms are accepted");

	fill_hdr(&h, ISAKMP_EXCH_MAIN, 0);
	memset(&sa_a, 0, sizeof(sa_a));
	sa_a.doi = 1;
	sa_a.situation = 1;
	tap_ok(isakmp_b_init(&b, &h) == 0 && isakmp_b_sa(&b, &sa_a) < 0 && b.err,
	       "builder: an SA without proposals is refused");
	isakmp_b_free(&b);

	fill_qm_sa(&sa_a);
	fill_hdr(&h, ISAKMP_EXCH_QUICK, 0x12345678);
	isakmp_b_init(&b, &h);
	isakmp_b_sa(&b, &sa_a);
	tap_ok(isakmp_b_finish(&b) == 0, "Quick Mode SA with two ESP proposals builds");
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_SA, isakmp_b_buf(&b) + ISAKMP_HDR_LEN,
				     isakmp_b_len(&b) - ISAKMP_HDR_LEN, &pl) == 0 &&
	       isakmp_parse_sa(&pl.p[0], &sa_b) == 0, "Quick Mode SA parses back");
	tap_ok(sa_b.n_proposals == 2 && sa_b.p[0].proto == ISAKMP_PROTO_ESP &&
	       sa_b.p[0].spi_size == 4 && memcmp(sa_b.p[0].spi, "\xc0\xff\xee\x01", 4) == 0 &&
	       memcmp(sa_b.p[1].spi, "\xc0\xff\xee\x02", 4) == 0,
	       "Quick Mode SA: ESP protocol and both 4-byte SPIs survive");
	tap_ok(sa_b.p[0].n_transforms == 2 && sa_b.p[0].t[1].id == 20 &&
	       sa_b.p[0].t[1].attrs[0].value == ISAKMP_ENCAP_UDP_TUNNEL_DRAFT &&
	       sa_b.p[0].t[1].attrs[2].fmt == ISAKMP_ATTR_TLV && sa_b.p[0].t[1].attrs[2].len == 4 &&
	       sa_b.p[0].t[1].attrs[2].value == 4608000,
	       "Quick Mode SA: draft encapsulation 61443 as TV and a 4608000 lifetime as 4-byte TLV");
	{
		/* Compare with the formats the parser reports, which AUTO chose. */
		int ok = sa_b.p[0].t[0].n_attrs == 6 && sa_b.p[0].t[0].attrs[4].fmt == ISAKMP_ATTR_TV &&
			 sa_b.p[0].t[0].attrs[4].value == 3600;

		tap_ok(ok, "Quick Mode SA: a 3600 s lifetime goes out as TV");
	}

	/* A parsed SA fed back to the builder comes out identical: formats and bytes are kept.
	 * sa_a borrows from b's buffer, so b lives until the comparison is done. */
	{
		struct isakmp_builder b2;

		memcpy(&sa_a, &sa_b, sizeof(sa_a));
		isakmp_b_init(&b2, &h);
		isakmp_b_sa(&b2, &sa_a);
		tap_ok(isakmp_b_finish(&b2) == 0 &&
		       isakmp_payloads_parse(ISAKMP_PL_SA, isakmp_b_buf(&b2) + ISAKMP_HDR_LEN,
					     isakmp_b_len(&b2) - ISAKMP_HDR_LEN, &pl) == 0 &&
		       isakmp_parse_sa(&pl.p[0], &sa_b) == 0 && sa_equal(&sa_a, &sa_b),
		       "Quick Mode SA: parse -> build -> parse gives an identical SA");
		isakmp_b_free(&b2);
	}
	isakmp_b_free(&b);
}

static void test_roundtrip_all(void)
{
	struct isakmp_hdr h, h2;
	struct isakmp_builder b;
	struct isakmp_payloads pl;
	uint8_t ke[128], nonce[32], hash[20], sig[64], cert[40], natd[20];
	static const uint8_t ca[] = "CN=Test CA";
	static const uint8_t spis[] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x02, 0x03, 0x04 };
	static const uint8_t v4[4] = { 192, 0, 2, 7 };
	static const uint8_t dns1[4] = { 10, 1, 0, 53 }, dns2[4] = { 10, 1, 0, 54 };
	static const uint8_t banner[] = "Authorized use only";
	struct isakmp_id id = { ISAKMP_ID_IPV4_ADDR_SUBNET, 17, 500,
				(const uint8_t *)"\x0a\x01\x00\x00\xff\xff\xff\x00", 8 };
	struct isakmp_id fqdn = { ISAKMP_ID_FQDN, 0, 0, (const uint8_t *)"vpn.example.com", 15 };
	struct isakmp_cert c = { ISAKMP_CERT_X509_SIG, cert, sizeof(cert) };
	struct isakmp_cert cr = { ISAKMP_CERT_X509_SIG, ca, sizeof(ca) - 1 };
	struct isakmp_cert cr_any = { ISAKMP_CERT_X509_SIG, NULL, 0 };
	struct isakmp_notify n, n2;
	struct isakmp_delete d = { ISAKMP_DOI_IPSEC, ISAKMP_PROTO_ESP, 4, 2, spis }, d2;
	struct isakmp_nat_oa oa4 = { ISAKMP_ID_IPV4_ADDR, { 192, 168, 1, 10 }, 4 }, oa6, oa2;
	struct isakmp_blob blob;
	struct isakmp_id id2;
	struct isakmp_cert c2;
	int i;

	for (size_t k = 0; k < sizeof(ke); k++)
		ke[k] = (uint8_t)k;
	memset(nonce, 0x11, sizeof(nonce));
	memset(hash, 0x22, sizeof(hash));
	memset(sig, 0x33, sizeof(sig));
	memset(cert, 0x44, sizeof(cert));
	memset(natd, 0x55, sizeof(natd));
	memset(&n, 0, sizeof(n));
	n.doi = ISAKMP_DOI_IPSEC;
	n.proto = ISAKMP_PROTO_ESP;
	n.spi_size = 4;
	memcpy(n.spi, spis, 4);
	n.type = ISAKMP_N_RESPONDER_LIFETIME;
	n.data = (const uint8_t *)"\x80\x01\x00\x01";
	n.len = 4;
	memset(&oa6, 0, sizeof(oa6));
	oa6.id_type = ISAKMP_ID_IPV6_ADDR;
	oa6.addr[0] = 0x20;
	oa6.addr[1] = 0x01;
	oa6.addr[15] = 0x01;
	oa6.addr_len = 16;

	memset(&cfg_a, 0, sizeof(cfg_a));
	cfg_a.type = ISAKMP_CFG_REPLY;
	cfg_a.id = 0x4242;
	cfg_a.attrs[0] = (struct isakmp_attr){ .type = ISAKMP_CFG_INTERNAL_IP4_ADDRESS,
					       .fmt = ISAKMP_ATTR_TLV, .len = 4, .data = v4 };
	cfg_a.attrs[1] = (struct isakmp_attr){ .type = ISAKMP_CFG_INTERNAL_IP4_DNS,
					       .fmt = ISAKMP_ATTR_TLV, .len = 4, .data = dns1 };
	cfg_a.attrs[2] = (struct isakmp_attr){ .type = ISAKMP_CFG_INTERNAL_IP4_DNS,
					       .fmt = ISAKMP_ATTR_TLV, .len = 4, .data = dns2 };
	cfg_a.attrs[3] = (struct isakmp_attr){ .type = ISAKMP_CFG_UNITY_BANNER,
					       .fmt = ISAKMP_ATTR_TLV, .len = sizeof(banner) - 1,
					       .data = banner };
	cfg_a.attrs[4] = (struct isakmp_attr){ .type = ISAKMP_CFG_XAUTH_STATUS,
					       .fmt = ISAKMP_ATTR_TV, .value = 1 };
	cfg_a.attrs[5] = (struct isakmp_attr){ .type = ISAKMP_CFG_UNITY_SPLIT_INCLUDE,
					       .fmt = ISAKMP_ATTR_TLV, .len = 0 };
	cfg_a.n_attrs = 6;

	fill_hdr(&h, ISAKMP_EXCH_AGGRESSIVE, 0);
	fill_p1_sa(&sa_a);
	isakmp_b_init(&b, &h);
	isakmp_b_sa(&b, &sa_a);
	isakmp_b_ke(&b, ke, sizeof(ke));
	isakmp_b_nonce(&b, nonce, sizeof(nonce));
	isakmp_b_id(&b, &id);
	isakmp_b_id(&b, &fqdn);
	isakmp_b_hash(&b, hash, sizeof(hash));
	isakmp_b_sig(&b, sig, sizeof(sig));
	isakmp_b_cert(&b, &c);
	isakmp_b_cr(&b, &cr);
	isakmp_b_cr(&b, &cr_any);
	isakmp_b_notify(&b, &n);
	isakmp_b_delete(&b, &d);
	isakmp_b_vid(&b, rfc3947_vid, sizeof(rfc3947_vid));
	isakmp_b_natd(&b, natd, sizeof(natd));
	isakmp_b_nat_oa(&b, &oa4);
	isakmp_b_nat_oa(&b, &oa6);
	isakmp_b_attr(&b, &cfg_a);
	tap_ok(isakmp_b_finish(&b) == 0, "round trip: a message with every payload type builds");
	tap_ok(isakmp_hdr_parse(isakmp_b_buf(&b), isakmp_b_len(&b), &h2) == 0 &&
	       h2.length == isakmp_b_len(&b) && h2.exchange == ISAKMP_EXCH_AGGRESSIVE &&
	       h2.np == ISAKMP_PL_SA, "round trip: finish wrote the total length and the first type");
	tap_ok(isakmp_payloads_parse(h2.np, isakmp_b_buf(&b) + ISAKMP_HDR_LEN,
				     h2.length - ISAKMP_HDR_LEN, &pl) == 0 && pl.n == 17 &&
	       pl.trailing == 0, "round trip: the chain of 17 payloads parses with no leftover");

	i = 0;
	tap_ok(pl.p[i].type == ISAKMP_PL_SA && isakmp_parse_sa(&pl.p[i], &sa_b) == 0 &&
	       sa_values_equal(&sa_a, &sa_b) && sa_b.p[0].t[0].attrs[5].value == 86400 &&
	       sa_b.p[0].t[0].n_attrs == 7, "round trip: SA (values equal, formats resolved from AUTO)");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_KE && isakmp_parse_ke(&pl.p[i], &blob) == 0 &&
	       blob.len == sizeof(ke) && memcmp(blob.data, ke, sizeof(ke)) == 0, "round trip: KE");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_NONCE && isakmp_parse_nonce(&pl.p[i], &blob) == 0 &&
	       blob.len == sizeof(nonce) && memcmp(blob.data, nonce, sizeof(nonce)) == 0,
	       "round trip: NONCE");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_ID && isakmp_parse_id(&pl.p[i], &id2) == 0 &&
	       id2.type == id.type && id2.proto == 17 && id2.port == 500 && id2.len == 8 &&
	       memcmp(id2.data, id.data, 8) == 0, "round trip: ID IPV4_ADDR_SUBNET with protocol and port");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_ID && isakmp_parse_id(&pl.p[i], &id2) == 0 &&
	       id2.type == ISAKMP_ID_FQDN && id2.len == 15 && memcmp(id2.data, "vpn.example.com", 15) == 0,
	       "round trip: ID FQDN");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_HASH && isakmp_parse_hash(&pl.p[i], &blob) == 0 &&
	       blob.len == sizeof(hash) && memcmp(blob.data, hash, sizeof(hash)) == 0, "round trip: HASH");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_SIG && isakmp_parse_sig(&pl.p[i], &blob) == 0 &&
	       blob.len == sizeof(sig) && memcmp(blob.data, sig, sizeof(sig)) == 0, "round trip: SIG");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_CERT && isakmp_parse_cert(&pl.p[i], &c2) == 0 &&
	       c2.encoding == ISAKMP_CERT_X509_SIG && c2.len == sizeof(cert) &&
	       memcmp(c2.data, cert, sizeof(cert)) == 0, "round trip: CERT");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_CR && isakmp_parse_cr(&pl.p[i], &c2) == 0 &&
	       c2.encoding == ISAKMP_CERT_X509_SIG && c2.len == sizeof(ca) - 1 &&
	       memcmp(c2.data, ca, c2.len) == 0, "round trip: CR naming a CA");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_CR && isakmp_parse_cr(&pl.p[i], &c2) == 0 && c2.len == 0,
	       "round trip: CR without a CA");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_N && isakmp_parse_notify(&pl.p[i], &n2) == 0 &&
	       n2.doi == 1 && n2.proto == ISAKMP_PROTO_ESP && n2.spi_size == 4 &&
	       memcmp(n2.spi, spis, 4) == 0 && n2.type == ISAKMP_N_RESPONDER_LIFETIME &&
	       n2.len == 4 && memcmp(n2.data, "\x80\x01\x00\x01", 4) == 0,
	       "round trip: N with SPI and data");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_D && isakmp_parse_delete(&pl.p[i], &d2) == 0 &&
	       d2.doi == 1 && d2.proto == ISAKMP_PROTO_ESP && d2.spi_size == 4 && d2.n_spis == 2 &&
	       memcmp(d2.spis, spis, 8) == 0, "round trip: D with two ESP SPIs");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_VID && isakmp_parse_vid(&pl.p[i], &blob) == 0 &&
	       blob.len == 16 && memcmp(blob.data, rfc3947_vid, 16) == 0, "round trip: VID");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_NATD && isakmp_parse_natd(&pl.p[i], &blob) == 0 &&
	       blob.len == sizeof(natd) && memcmp(blob.data, natd, sizeof(natd)) == 0,
	       "round trip: NAT-D");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_NATOA && isakmp_parse_nat_oa(&pl.p[i], &oa2) == 0 &&
	       oa2.id_type == ISAKMP_ID_IPV4_ADDR && oa2.addr_len == 4 &&
	       memcmp(oa2.addr, oa4.addr, 4) == 0, "round trip: NAT-OA IPv4");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_NATOA && isakmp_parse_nat_oa(&pl.p[i], &oa2) == 0 &&
	       oa2.id_type == ISAKMP_ID_IPV6_ADDR && oa2.addr_len == 16 &&
	       memcmp(oa2.addr, oa6.addr, 16) == 0, "round trip: NAT-OA IPv6");
	i++;
	tap_ok(pl.p[i].type == ISAKMP_PL_ATTR && isakmp_parse_attr(&pl.p[i], &cfg_b) == 0 &&
	       cfg_b.type == ISAKMP_CFG_REPLY && cfg_b.id == 0x4242 && cfg_b.n_attrs == 6 &&
	       attrs_wire_equal(cfg_a.attrs, cfg_b.attrs, 4) && cfg_b.attrs[1].value == 0x0a010035,
	       "round trip: ATTR reply with address, two DNS servers (repeats allowed) and a banner");
	tap_ok(cfg_b.attrs[4].fmt == ISAKMP_ATTR_TV && cfg_b.attrs[4].value == 1 &&
	       cfg_b.attrs[5].fmt == ISAKMP_ATTR_TLV && cfg_b.attrs[5].len == 0,
	       "round trip: ATTR keeps a TV status and an empty TLV request");
	isakmp_b_free(&b);
}

static void test_typed_malformed(void)
{
	static const uint8_t zeros[64];
	struct isakmp_payload pl;
	struct isakmp_blob blob, bl_untouched;
	struct isakmp_id id;
	struct isakmp_notify n;
	struct isakmp_delete d;
	struct isakmp_nat_oa oa;
	struct isakmp_cert c;
	uint8_t buf[64];

	memset(&bl_untouched, 0x3c, sizeof(bl_untouched));
	blob = bl_untouched;
	pl = view(ISAKMP_PL_NONCE, zeros, 3);
	tap_ok(isakmp_parse_nonce(&pl, &blob) < 0, "NONCE: 3 bytes are rejected");
	tap_is_str(last_line(), "NONCE payload: length 3 is below the minimum 8",
		   "NONCE: the error names the payload and both sizes");
	tap_ok(memcmp(&blob, &bl_untouched, sizeof(blob)) == 0,
	       "NONCE: a rejected parse leaves out untouched");
	pl = view(ISAKMP_PL_NONCE, zeros, 8);
	tap_ok(isakmp_parse_nonce(&pl, &blob) == 0, "NONCE: 8 bytes are accepted");
	{
		static uint8_t big[257];

		pl = view(ISAKMP_PL_NONCE, big, 257);
		tap_ok(isakmp_parse_nonce(&pl, &blob) < 0, "NONCE: 257 bytes are rejected");
		pl = view(ISAKMP_PL_NONCE, big, 256);
		tap_ok(isakmp_parse_nonce(&pl, &blob) == 0, "NONCE: 256 bytes are accepted");
	}
	pl = view(ISAKMP_PL_KE, zeros, 0);
	tap_ok(isakmp_parse_ke(&pl, &blob) < 0, "KE: an empty key exchange is rejected");

	memset(buf, 0, sizeof(buf));
	buf[0] = ISAKMP_ID_IPV4_ADDR;
	pl = view(ISAKMP_PL_ID, buf, 4 + 5);
	tap_ok(isakmp_parse_id(&pl, &id) < 0, "ID: IPV4_ADDR with 5 bytes is rejected");
	pl = view(ISAKMP_PL_ID, buf, 4 + 4);
	tap_ok(isakmp_parse_id(&pl, &id) == 0 && id.len == 4, "ID: IPV4_ADDR with 4 bytes is accepted");
	buf[0] = ISAKMP_ID_IPV6_ADDR_SUBNET;
	pl = view(ISAKMP_PL_ID, buf, 4 + 16);
	tap_ok(isakmp_parse_id(&pl, &id) < 0, "ID: IPV6_ADDR_SUBNET with 16 bytes is rejected");
	buf[0] = ISAKMP_ID_FQDN;
	pl = view(ISAKMP_PL_ID, buf, 4);
	tap_ok(isakmp_parse_id(&pl, &id) < 0, "ID: an empty FQDN is rejected");
	pl = view(ISAKMP_PL_ID, buf, 3);
	tap_ok(isakmp_parse_id(&pl, &id) < 0, "ID: a payload shorter than its fixed fields is rejected");

	memset(buf, 0, sizeof(buf));
	buf[3] = 1;
	buf[5] = 17;	/* SPI size 17 */
	pl = view(ISAKMP_PL_N, buf, 8 + 17);
	tap_ok(isakmp_parse_notify(&pl, &n) < 0, "N: SPI size 17 is rejected");
	buf[5] = 16;
	pl = view(ISAKMP_PL_N, buf, 8 + 15);
	tap_ok(isakmp_parse_notify(&pl, &n) < 0, "N: an SPI longer than the payload is rejected");

	memset(buf, 0, sizeof(buf));
	buf[3] = 1;
	buf[4] = ISAKMP_PROTO_ESP;
	buf[5] = 4;
	buf[7] = 3;	/* 3 SPIs of 4 bytes */
	pl = view(ISAKMP_PL_D, buf, 8 + 8);
	tap_ok(isakmp_parse_delete(&pl, &d) < 0, "D: 3 SPIs of 4 bytes in 8 bytes are rejected");
	pl = view(ISAKMP_PL_D, buf, 8 + 16);
	tap_ok(isakmp_parse_delete(&pl, &d) < 0, "D: 3 SPIs of 4 bytes with 4 extra bytes are rejected");
	pl = view(ISAKMP_PL_D, buf, 8 + 12);
	tap_ok(isakmp_parse_delete(&pl, &d) == 0 && d.n_spis == 3, "D: 3 SPIs of 4 bytes in 12 bytes parse");
	buf[7] = 0xff;
	buf[6] = 0xff;
	buf[5] = 16;
	pl = view(ISAKMP_PL_D, buf, 8 + 12);
	tap_ok(isakmp_parse_delete(&pl, &d) < 0, "D: 65535 SPIs of 16 bytes in 12 bytes are rejected");
	buf[5] = 0;
	tap_ok(isakmp_parse_delete(&pl, &d) < 0, "D: SPI size 0 is rejected");

	memset(buf, 0, sizeof(buf));
	buf[0] = ISAKMP_ID_FQDN;
	pl = view(ISAKMP_PL_NATOA, buf, 8);
	tap_ok(isakmp_parse_nat_oa(&pl, &oa) < 0, "NAT-OA: an FQDN is rejected");
	buf[0] = ISAKMP_ID_IPV4_ADDR;
	pl = view(ISAKMP_PL_NATOA, buf, 20);
	tap_ok(isakmp_parse_nat_oa(&pl, &oa) < 0, "NAT-OA: an IPv4 original address of 16 bytes is rejected");

	pl = view(ISAKMP_PL_CERT, buf, 1);
	tap_ok(isakmp_parse_cert(&pl, &c) < 0, "CERT: an encoding without certificate is rejected");

	memset(buf, 0, sizeof(buf));
	buf[0] = ISAKMP_CFG_REQUEST;
	buf[4] = 0x00;	/* INTERNAL_IP4_ADDRESS TLV claiming 8 bytes, 2 present */
	buf[5] = 0x01;
	buf[6] = 0x00;
	buf[7] = 0x08;
	pl = view(ISAKMP_PL_ATTR, buf, 4 + 4 + 2);
	memset(&cfg_b, 0x6e, sizeof(cfg_b));
	memcpy(&cfg_a, &cfg_b, sizeof(cfg_a));
	tap_ok(isakmp_parse_attr(&pl, &cfg_b) < 0, "ATTR: a TLV longer than the payload is rejected");
	tap_ok(memcmp(&cfg_a, &cfg_b, sizeof(cfg_a)) == 0, "ATTR: a rejected parse leaves out untouched");
	pl = view(ISAKMP_PL_ATTR, buf, 4 + 3);
	tap_ok(isakmp_parse_attr(&pl, &cfg_b) < 0, "ATTR: a truncated attribute header is rejected");
}

static void test_builder(void)
{
	struct isakmp_hdr h, h2;
	struct isakmp_builder b;
	struct isakmp_payloads pl;
	uint8_t small[40], nonce[16];
	size_t off, blen;
	uint8_t *body;
	struct isakmp_attr a;
	struct isakmp_id id = { ISAKMP_ID_IPV4_ADDR, 0, 0, (const uint8_t *)"\x0a\x00\x00\x01", 4 };

	memset(nonce, 0x99, sizeof(nonce));
	fill_hdr(&h, ISAKMP_EXCH_QUICK, 0xdeadbeef);
	h.flags = ISAKMP_FLAG_ENC;

	/* Quick Mode layout: HASH(1) first, computed later over what follows it. */
	isakmp_b_init(&b, &h);
	tap_ok(isakmp_b_hash_reserve(&b, 20, &off) == 0 && off == ISAKMP_HDR_LEN + 4,
	       "builder: hash_reserve returns the offset of the HASH data");
	isakmp_b_nonce(&b, nonce, sizeof(nonce));
	isakmp_b_id(&b, &id);
	isakmp_b_id(&b, &id);
	tap_ok(isakmp_b_finish(&b) == 0, "builder: HASH, NONCE, ID, ID finish");
	memset(isakmp_b_buf(&b) + off, 0xab, 20);
	tap_ok(isakmp_b_buf(&b)[16] == ISAKMP_PL_HASH && isakmp_b_buf(&b)[off - 4] == ISAKMP_PL_NONCE &&
	       isakmp_b_buf(&b)[off + 20] == ISAKMP_PL_ID,
	       "builder: header and each payload name the payload that follows");
	tap_ok(isakmp_hdr_parse(isakmp_b_buf(&b), isakmp_b_len(&b), &h2) == 0 &&
	       isakmp_payloads_parse(h2.np, isakmp_b_buf(&b) + ISAKMP_HDR_LEN,
				     isakmp_b_len(&b) - ISAKMP_HDR_LEN, &pl) == 0 &&
	       pl.n == 4 && pl.p[0].len == 20 && pl.p[0].data[0] == 0xab && pl.p[3].type == ISAKMP_PL_ID,
	       "builder: the filled-in reserved HASH parses back");

	body = isakmp_b_body(&b, &blen);
	tap_ok(body == isakmp_b_buf(&b) + ISAKMP_HDR_LEN && blen == isakmp_b_len(&b) - ISAKMP_HDR_LEN,
	       "builder: body starts after the header and runs to the end");
	{
		uint8_t ct[96];

		memset(ct, 0xcd, sizeof(ct));
		tap_ok(isakmp_b_set_body(&b, ct, sizeof(ct), 1) == 0 &&
		       isakmp_b_len(&b) == ISAKMP_HDR_LEN + sizeof(ct) &&
		       isakmp_hdr_parse(isakmp_b_buf(&b), isakmp_b_len(&b), &h2) == 0 &&
		       h2.length == ISAKMP_HDR_LEN + sizeof(ct) && (h2.flags & ISAKMP_FLAG_ENC) &&
		       h2.np == ISAKMP_PL_HASH && h2.msgid == 0xdeadbeef,
		       "builder: set_body swaps in a longer ciphertext and fixes the header length");
		tap_ok(isakmp_b_vid(&b, "x", 1) < 0 && isakmp_b_finish(&b) < 0,
		       "builder: appending after set_body fails and latches the error");
	}
	isakmp_b_free(&b);

	/* In-place "encryption": the body handed back is the builder's own buffer. */
	{
		uint8_t big[600], *own;

		memset(big, 0x61, sizeof(big));
		isakmp_b_init(&b, &h);
		isakmp_b_vid(&b, big, sizeof(big));
		own = isakmp_b_body(&b, &blen);
		tap_ok(isakmp_b_set_body(&b, own, blen, 1) == 0 && isakmp_b_len(&b) == 28 + 604 &&
		       isakmp_b_buf(&b)[28 + 4] == 0x61 && isakmp_b_buf(&b)[28 + 603] == 0x61,
		       "builder: set_body accepts the builder's own body (in-place encryption)");
		isakmp_b_free(&b);
		isakmp_b_init(&b, &h);
		isakmp_b_vid(&b, big, 4);
		own = isakmp_b_body(&b, &blen);
		tap_ok(isakmp_b_set_body(&b, own, b.cap, 1) < 0,
		       "builder: set_body refuses an own-buffer body running past the capacity");
		isakmp_b_free(&b);
	}

	/* Caller-bounded buffer: the payload that does not fit is not written at all. */
	fill_hdr(&h, ISAKMP_EXCH_INFO, 1);
	memset(small, 0xee, sizeof(small));
	isakmp_b_init_fixed(&b, small, sizeof(small), &h);
	tap_ok(isakmp_b_vid(&b, "abcd", 4) == 0 && isakmp_b_len(&b) == 36,
	       "fixed builder: a payload that fits is appended");
	tap_ok(isakmp_b_vid(&b, "abcd", 4) < 0 && b.err && isakmp_b_len(&b) == 36 &&
	       small[36] == 0xee && small[28] == 0,
	       "fixed builder: overflow fails without a partial write or a dangling chain link");
	tap_ok(isakmp_b_vid(&b, "", 0) < 0 && isakmp_b_finish(&b) < 0,
	       "fixed builder: after an overflow every call fails, finish included");

	/* Attribute encodings. */
	isakmp_b_init(&b, &h);
	memset(&a, 0, sizeof(a));
	a.type = ISAKMP_CFG_XAUTH_TYPE;
	a.fmt = ISAKMP_ATTR_TV;
	a.value = 70000;
	memset(&cfg_a, 0, sizeof(cfg_a));
	cfg_a.attrs[0] = a;
	cfg_a.n_attrs = 1;
	tap_ok(isakmp_b_attr(&b, &cfg_a) < 0, "builder: a TV attribute with a value above 65535 is refused");
	isakmp_b_free(&b);

	isakmp_b_init(&b, &h);
	a.fmt = ISAKMP_ATTR_AUTO;
	a.value = 0x100000000ull;	/* needs 8 bytes */
	cfg_a.attrs[0] = a;
	tap_ok(isakmp_b_attr(&b, &cfg_a) == 0 && isakmp_b_finish(&b) == 0 &&
	       isakmp_b_len(&b) == ISAKMP_HDR_LEN + 4 + 4 + 4 + 8 &&
	       isakmp_b_buf(&b)[ISAKMP_HDR_LEN + 8 + 3] == 8,
	       "builder: AUTO encodes a value above 32 bits as an 8-byte TLV");
	isakmp_b_free(&b);

	isakmp_b_init(&b, &h);
	a.fmt = ISAKMP_ATTR_TLV;
	a.value = 0x1ff;
	a.len = 1;
	cfg_a.attrs[0] = a;
	tap_ok(isakmp_b_attr(&b, &cfg_a) < 0, "builder: a TLV integer that does not fit its length is refused");
	isakmp_b_free(&b);

	isakmp_b_init(&b, &h);
	tap_ok(isakmp_b_nonce(&b, nonce, 7) < 0, "builder: a 7-byte nonce is refused");
	isakmp_b_free(&b);
	isakmp_b_init(&b, &h);
	id.len = 3;
	tap_ok(isakmp_b_id(&b, &id) < 0, "builder: an IPV4_ADDR ID of 3 bytes is refused");
	isakmp_b_free(&b);
	{
		static uint8_t huge[70000];

		isakmp_b_init(&b, &h);
		tap_ok(isakmp_b_vid(&b, huge, sizeof(huge)) < 0,
		       "builder: a payload longer than 65535 bytes is refused");
		isakmp_b_free(&b);
	}
	isakmp_b_free(NULL);
}

static void test_names(void)
{
	tap_is_str(isakmp_notify_name(ISAKMP_N_NO_PROPOSAL_CHOSEN), "NO-PROPOSAL-CHOSEN",
		   "names: notify 14");
	tap_is_str(isakmp_notify_name(30), "UNEQUAL-PAYLOAD-LENGTHS", "names: notify 30, the last RFC 2408 error");
	tap_is_str(isakmp_notify_name(ISAKMP_N_INITIAL_CONTACT), "INITIAL-CONTACT", "names: notify 24578");
	tap_is_str(isakmp_notify_name(36137), "R-U-THERE-ACK", "names: notify 36137");
	tap_is_str(isakmp_notify_name(0), "UNKNOWN", "names: notify 0 is unknown");
	tap_is_str(isakmp_payload_name(ISAKMP_PL_NATD), "NAT-D", "names: payload 20");
	tap_is_str(isakmp_exchange_name(ISAKMP_EXCH_QUICK), "QUICK", "names: exchange 32");
	tap_is_str(isakmp_exchange_name(99), "UNKNOWN", "names: exchange 99 is unknown");
	tap_is_str(isakmp_cfg_attr_name(ISAKMP_CFG_UNITY_SPLIT_INCLUDE), "UNITY_SPLIT_INCLUDE",
		   "names: Mode Config attribute 28676");
}

/* Writes a few valid messages for the fuzzer's seed corpus when asked to. */
static void write_corpus(const char *dir)
{
	struct isakmp_hdr h;
	struct isakmp_builder b;
	char path[512];
	FILE *f;
	uint8_t nonce[16];
	static const uint8_t spi16[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
	struct isakmp_notify n;
	size_t off;

	memset(nonce, 0x42, sizeof(nonce));
	mkdir(dir, 0755);

	snprintf(path, sizeof(path), "%s/main_mode_1.bin", dir);
	if ((f = fopen(path, "wb"))) {
		fwrite(mm1_wire, 1, sizeof(mm1_wire), f);
		fclose(f);
	}

	fill_hdr(&h, ISAKMP_EXCH_QUICK, 7);
	isakmp_b_init(&b, &h);
	isakmp_b_hash_reserve(&b, 20, &off);
	isakmp_b_sa(&b, &sa_a);
	isakmp_b_nonce(&b, nonce, sizeof(nonce));
	isakmp_b_finish(&b);
	snprintf(path, sizeof(path), "%s/quick_mode_1.bin", dir);
	if ((f = fopen(path, "wb"))) {
		fwrite(isakmp_b_buf(&b), 1, isakmp_b_len(&b), f);
		fclose(f);
	}
	isakmp_b_free(&b);

	fill_hdr(&h, ISAKMP_EXCH_INFO, 9);
	memset(&n, 0, sizeof(n));
	n.doi = 1;
	n.proto = ISAKMP_PROTO_ISAKMP;
	n.spi_size = 16;
	memcpy(n.spi, spi16, 16);
	n.type = ISAKMP_N_DPD_R_U_THERE;
	n.data = (const uint8_t *)"\x00\x00\x00\x01";
	n.len = 4;
	isakmp_b_init(&b, &h);
	isakmp_b_hash_reserve(&b, 20, &off);
	isakmp_b_notify(&b, &n);
	isakmp_b_finish(&b);
	snprintf(path, sizeof(path), "%s/info_dpd.bin", dir);
	if ((f = fopen(path, "wb"))) {
		fwrite(isakmp_b_buf(&b), 1, isakmp_b_len(&b), f);
		fclose(f);
	}
	isakmp_b_free(&b);

	fill_hdr(&h, ISAKMP_EXCH_TRANSACTION, 11);
	isakmp_b_init(&b, &h);
	isakmp_b_hash_reserve(&b, 20, &off);
	isakmp_b_attr(&b, &cfg_b);
	isakmp_b_finish(&b);
	snprintf(path, sizeof(path), "%s/modecfg_reply.bin", dir);
	if ((f = fopen(path, "wb"))) {
		fwrite(isakmp_b_buf(&b), 1, isakmp_b_len(&b), f);
		fclose(f);
	}
	isakmp_b_free(&b);
}

int main(void)
{
	const char *corpus = getenv("BURROW_ISAKMP_CORPUS");

	bw_log_set_level(getenv("BURROW_DEBUG") ? BW_LOG_DEBUG : BW_LOG_ERROR);
	bw_log_set_sink(sink, NULL);

	test_rfc_layout();
	test_notify_layout();
	test_header();
	test_chain();
	test_sa_malformed();
	test_sa_limits();
	test_roundtrip_all();
	test_typed_malformed();
	test_builder();
	test_names();
	if (corpus) {
		/* cfg_b holds a parsed Mode Config reply only after test_roundtrip_all; rebuild it. */
		fill_qm_sa(&sa_a);
		memset(&cfg_b, 0, sizeof(cfg_b));
		cfg_b.type = ISAKMP_CFG_REPLY;
		cfg_b.id = 1;
		cfg_b.attrs[0] = (struct isakmp_attr){ .type = ISAKMP_CFG_INTERNAL_IP4_ADDRESS,
						       .fmt = ISAKMP_ATTR_TLV, .len = 4,
						       .data = (const uint8_t *)"\x0a\x00\x00\x02" };
		cfg_b.attrs[1] = (struct isakmp_attr){ .type = ISAKMP_CFG_UNITY_SPLIT_INCLUDE,
						       .fmt = ISAKMP_ATTR_TLV, .len = 14,
						       .data = (const uint8_t *)"\x0a\x01\x00\x00\xff\xff\xff\x00\x00\x00\x00\x00\x00\x00" };
		cfg_b.n_attrs = 2;
		write_corpus(corpus);
		tap_diag("seed corpus written to %s", corpus);
	}
	return tap_done_testing();
}

/* libFuzzer target for the ISAKMP codec: header, payload chain, every typed parser on every view,
 * and parse -> build -> parse of SA and Mode Config payloads, which must agree exactly. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/isakmp.h"
#include "ike/vendor.h"

/* Large parsed structs live here, not on the fuzzer's stack. */
static struct isakmp_sa sa1, sa2;
static struct isakmp_cfg cfg1, cfg2;

static void check(int cond)
{
	if (!cond)
		abort();
}

static int attrs_same(const struct isakmp_attr *a, const struct isakmp_attr *b, size_t n)
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

static int sa_same(const struct isakmp_sa *a, const struct isakmp_sa *b)
{
	if (a->doi != b->doi || a->situation != b->situation || a->n_proposals != b->n_proposals)
		return 0;
	for (size_t i = 0; i < a->n_proposals; i++) {
		const struct isakmp_proposal *p = &a->p[i], *q = &b->p[i];

		if (p->num != q->num || p->proto != q->proto || p->spi_size != q->spi_size ||
		    memcmp(p->spi, q->spi, sizeof(p->spi)) != 0 || p->n_transforms != q->n_transforms)
			return 0;
		for (size_t j = 0; j < p->n_transforms; j++)
			if (p->t[j].num != q->t[j].num || p->t[j].id != q->t[j].id ||
			    p->t[j].n_attrs != q->t[j].n_attrs ||
			    !attrs_same(p->t[j].attrs, q->t[j].attrs, p->t[j].n_attrs))
				return 0;
	}
	return 1;
}

/* Rebuilds a parsed payload and parses the result: a valid payload must survive unchanged. */
static void rebuild_sa(void)
{
	struct isakmp_hdr h;
	struct isakmp_builder b;
	struct isakmp_payloads pl;

	memset(&h, 0, sizeof(h));
	h.version = ISAKMP_VERSION;
	check(isakmp_b_init(&b, &h) == 0);
	check(isakmp_b_sa(&b, &sa1) == 0);
	check(isakmp_b_finish(&b) == 0);
	check(isakmp_payloads_parse(ISAKMP_PL_SA, isakmp_b_buf(&b) + ISAKMP_HDR_LEN,
				    isakmp_b_len(&b) - ISAKMP_HDR_LEN, &pl) == 0);
	check(pl.n == 1 && pl.trailing == 0);
	check(isakmp_parse_sa(&pl.p[0], &sa2) == 0);
	check(sa_same(&sa1, &sa2));
	isakmp_b_free(&b);
}

static void rebuild_cfg(void)
{
	struct isakmp_hdr h;
	struct isakmp_builder b;
	struct isakmp_payloads pl;

	memset(&h, 0, sizeof(h));
	h.version = ISAKMP_VERSION;
	check(isakmp_b_init(&b, &h) == 0);
	check(isakmp_b_attr(&b, &cfg1) == 0);
	check(isakmp_b_finish(&b) == 0);
	check(isakmp_payloads_parse(ISAKMP_PL_ATTR, isakmp_b_buf(&b) + ISAKMP_HDR_LEN,
				    isakmp_b_len(&b) - ISAKMP_HDR_LEN, &pl) == 0);
	check(isakmp_parse_attr(&pl.p[0], &cfg2) == 0);
	check(cfg1.type == cfg2.type && cfg1.id == cfg2.id && cfg1.n_attrs == cfg2.n_attrs &&
	      attrs_same(cfg1.attrs, cfg2.attrs, cfg1.n_attrs));
	isakmp_b_free(&b);
}

/* Every typed parser on one view, whatever its type claims to be. */
static void parse_view(const struct isakmp_payload *p)
{
	struct isakmp_blob blob;
	struct isakmp_id id;
	struct isakmp_cert cert;
	struct isakmp_notify n;
	struct isakmp_delete d;
	struct isakmp_nat_oa oa;
	struct isakmp_attr attrs[ISAKMP_MAX_ATTRS];
	size_t n_attrs;

	if (isakmp_parse_sa(p, &sa1) == 0)
		rebuild_sa();
	if (isakmp_parse_attr(p, &cfg1) == 0)
		rebuild_cfg();
	(void)isakmp_parse_ke(p, &blob);
	(void)isakmp_parse_nonce(p, &blob);
	(void)isakmp_parse_hash(p, &blob);
	(void)isakmp_parse_sig(p, &blob);
	(void)isakmp_parse_natd(p, &blob);
	if (isakmp_parse_vid(p, &blob) == 0)
		(void)bw_vendor_match(blob.data, blob.len);
	if (isakmp_parse_id(p, &id) == 0)
		check(id.data + id.len == p->data + p->len);
	(void)isakmp_parse_cert(p, &cert);
	(void)isakmp_parse_cr(p, &cert);
	if (isakmp_parse_notify(p, &n) == 0)
		check(8 + n.spi_size + n.len == p->len);
	if (isakmp_parse_delete(p, &d) == 0)
		check(8 + (size_t)d.spi_size * d.n_spis == p->len);
	(void)isakmp_parse_nat_oa(p, &oa);
	(void)isakmp_parse_attrs(p->data, p->len, attrs, ISAKMP_MAX_ATTRS, &n_attrs, 1, "fuzz");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct isakmp_hdr h;
	struct isakmp_payloads pl;

	/* The input as a bare payload body too, so typed parsers see arbitrary bytes directly. */
	if (size >= 1) {
		struct isakmp_payload raw = { data[0], data + 1, size - 1, 0 };

		parse_view(&raw);
	}

	if (isakmp_hdr_parse(data, size, &h) < 0)
		return 0;
	check(h.length >= ISAKMP_HDR_LEN && h.length <= size);
	if (isakmp_payloads_parse(h.np, data + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN, &pl) < 0)
		return 0;
	check(pl.n <= ISAKMP_MAX_PAYLOADS && pl.used + pl.trailing == h.length - ISAKMP_HDR_LEN);
	for (size_t i = 0; i < pl.n; i++) {
		check(pl.p[i].data >= data + ISAKMP_HDR_LEN &&
		      pl.p[i].data + pl.p[i].len <= data + h.length);
		parse_view(&pl.p[i]);
	}
	return 0;
}

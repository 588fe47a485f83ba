/* libFuzzer target for the TUN offloads: arbitrary vnet header + packet into tun_segment (with
 * an output buffer of a size the input picks, on the heap so overflows are caught), and
 * arbitrary packets into the coalescer, whose super-packets must segment back into as many
 * packets as it says they carry. */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tun_offload.h"

struct seen {
	const uint8_t *in, *seg;	/* a packet passed through whole, or a segment */
	size_t in_len, cap;
	unsigned n;
};

static void seg_fn(void *ctx, uint8_t *pkt, size_t len)
{
	struct seen *s = ctx;

	if (pkt == s->in ? len != s->in_len : pkt != s->seg || len > s->cap)
		abort();
	if (len && (pkt[0] | pkt[len - 1]) == 0x100)	/* touch both ends */
		abort();
	s->n++;
}

static void fuzz_segment(const uint8_t *data, size_t size)
{
	struct tun_vnet h;
	struct seen s = { 0 };
	uint8_t *pkt, *seg;
	int rc;

	if (size < TUN_VNET_HDR_LEN + 2)
		return;
	tun_vnet_parse(data, size, &h);
	s.cap = (size_t)data[TUN_VNET_HDR_LEN] << 4 | 1;
	data += TUN_VNET_HDR_LEN + 1;
	size -= TUN_VNET_HDR_LEN + 1;
	pkt = malloc(size);
	seg = malloc(s.cap);
	memcpy(pkt, data, size);
	s.in = pkt;
	s.in_len = size;
	s.seg = seg;
	rc = tun_segment(&h, pkt, size, seg, s.cap, seg_fn, &s);
	if ((rc < 0 && s.n != 0) || (rc >= 0 && (unsigned)rc != s.n))
		abort();
	free(pkt);
	free(seg);
}

static int emit_fn(void *ctx, const uint8_t hdr[TUN_VNET_HDR_LEN], const uint8_t *pkt,
		   size_t len, unsigned n_segs)
{
	static uint8_t seg[TUN_PKT_MAX];
	struct tun_vnet h;
	struct seen s = { .seg = seg, .cap = sizeof(seg) };
	uint8_t *copy;

	(void)ctx;
	tun_vnet_parse(hdr, TUN_VNET_HDR_LEN, &h);
	if (len > TUN_PKT_MAX || n_segs == 0 || (n_segs == 1) != (h.gso_type == TUN_GSO_NONE))
		abort();
	if (n_segs == 1)
		return 0;
	/* what the kernel will do with it: it must come apart into n_segs valid segments */
	copy = malloc(len);
	memcpy(copy, pkt, len);
	if (tun_segment(&h, copy, len, seg, sizeof(seg), seg_fn, &s) != (int)n_segs)
		abort();
	free(copy);
	return 0;
}

/* Random bytes almost never carry valid checksums, and the coalescer only takes packets whose
 * checksums verify: with fix set, give IPv4/IPv6 TCP-looking packets correct ones first. */
static void fix_checksums(uint8_t *p, size_t n)
{
	size_t l3 = 0;

	if (n >= 40 && p[0] >> 4 == 6)
		l3 = 40;
	else if (n >= 20 && p[0] >> 4 == 4 && (size_t)(p[0] & 0xf) * 4 <= n) {
		l3 = (size_t)(p[0] & 0xf) * 4;
		p[10] = p[11] = 0;
		uint16_t c = (uint16_t)~tun_csum_fold(tun_csum_add(0, p, l3));
		p[10] = (uint8_t)(c >> 8);
		p[11] = (uint8_t)c;
	}
	if (l3 == 0 || n < l3 + 20)
		return;
	p[l3 + 16] = p[l3 + 17] = 0;
	uint16_t c = (uint16_t)~tun_csum_fold(tun_csum_add(tun_csum_pseudo(p, 6, n - l3), p + l3, n - l3));
	p[l3 + 16] = (uint8_t)(c >> 8);
	p[l3 + 17] = (uint8_t)c;
}

/* Packets as [2-byte length][bytes] records; a record that runs past the end is cut short. */
static void fuzz_coalesce(const uint8_t *data, size_t size, bool fix)
{
	struct tun_gro *g = tun_gro_new();

	if (!g)
		abort();
	while (size >= 2) {
		size_t n = (size_t)data[0] << 8 | data[1];
		uint8_t *pkt;

		data += 2;
		size -= 2;
		if (n > size)
			n = size;
		pkt = malloc(n ? n : 1);
		memcpy(pkt, data, n);
		if (fix)
			fix_checksums(pkt, n);
		tun_gro_add(g, pkt, n, emit_fn, NULL);
		free(pkt);
		data += n;
		size -= n;
	}
	tun_gro_flush(g, emit_fn, NULL);
	tun_gro_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	if (data[0] & 1)
		fuzz_coalesce(data + 1, size - 1, data[0] & 2);
	else
		fuzz_segment(data + 1, size - 1);
	return 0;
}

/* TUN offloads: checksums, segmentation of the kernel's TSO/USO super-packets and TCP
 * coalescing (userspace GRO) of decapsulated packets. Pure packet work, no syscalls. */
#include "sa-backends/userspace/tun_offload.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define PROTO_TCP 6
#define PROTO_UDP 17

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_PSH 0x08
#define TCP_ACK 0x10
#define TCP_URG 0x20
#define TCP_ECE 0x40
#define TCP_CWR 0x80

#define GRO_SLOTS 4		/* flows held at once */
#define GRO_MAX_SEGS 64		/* segments in one coalesced packet */

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* ---- the vnet header ---- */

int tun_vnet_parse(const uint8_t *buf, size_t len, struct tun_vnet *out)
{
	uint16_t v[4];

	if (len < TUN_VNET_HDR_LEN)
		return -EINVAL;
	memcpy(v, buf + 2, sizeof(v));
	out->flags = buf[0];
	out->gso_type = buf[1];
	out->hdr_len = le16toh(v[0]);
	out->gso_size = le16toh(v[1]);
	out->csum_start = le16toh(v[2]);
	out->csum_offset = le16toh(v[3]);
	return 0;
}

void tun_vnet_build(const struct tun_vnet *h, uint8_t out[TUN_VNET_HDR_LEN])
{
	uint16_t v[4] = { htole16(h->hdr_len), htole16(h->gso_size), htole16(h->csum_start),
			  htole16(h->csum_offset) };

	out[0] = h->flags;
	out[1] = h->gso_type;
	memcpy(out + 2, v, sizeof(v));
}

/* ---- checksums ---- */

/* Sums native-order words and swaps once at the end: the one's complement sum does not care
 * about byte order (RFC 1071 2(B)). p must sit at an even offset of what is summed. */
uint32_t tun_csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	uint64_t acc = 0;
	uint32_t w32;
	uint16_t w16;

	for (; n >= 4; p += 4, n -= 4) {
		memcpy(&w32, p, 4);
		acc += w32;
	}
	if (n >= 2) {
		memcpy(&w16, p, 2);
		acc += w16;
		p += 2;
		n -= 2;
	}
	if (n) {
		uint8_t last[2] = { p[0], 0 };
		memcpy(&w16, last, 2);
		acc += w16;
	}
	while (acc >> 16)
		acc = (acc & 0xffff) + (acc >> 16);
	return sum + ntohs((uint16_t)acc);
}

uint16_t tun_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

uint32_t tun_csum_pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len)
{
	uint32_t sum = proto + (uint32_t)(l4_len >> 16) + (uint32_t)(l4_len & 0xffff);

	if (ip[0] >> 4 == 6)
		return tun_csum_add(sum, ip + 8, 32);
	return tun_csum_add(sum, ip + 12, 8);
}

static void ip4_set_csum(uint8_t *ip, size_t ihl)
{
	put16(ip + 10, 0);
	put16(ip + 10, (uint16_t)~tun_csum_fold(tun_csum_add(0, ip, ihl)));
}

/* The full L4 checksum of a packet whose L4 header starts at l3. */
static void l4_set_csum(uint8_t *pkt, size_t len, size_t l3, uint8_t proto)
{
	size_t field = l3 + (proto == PROTO_TCP ? 16 : 6);
	uint16_t sum;

	put16(pkt + field, 0);
	sum = (uint16_t)~tun_csum_fold(tun_csum_add(tun_csum_pseudo(pkt, proto, len - l3),
						    pkt + l3, len - l3));
	if (sum == 0 && proto == PROTO_UDP)
		sum = 0xffff;	/* 0 would mean "no checksum" */
	put16(pkt + field, sum);
}

/* ---- segmentation ---- */

/* What the IP and L4 headers of a super-packet say, checked against its length. */
struct seg_hdrs {
	bool v6;
	uint8_t proto;
	size_t len;		/* IP length (<= the read length) */
	size_t l3;		/* IP header length */
	size_t hdr;		/* IP + L4 header length */
};

static int seg_parse(const struct tun_vnet *h, const uint8_t *pkt, size_t len,
		     struct seg_hdrs *s)
{
	uint8_t gso = h->gso_type & (uint8_t)~TUN_GSO_ECN;

	if (len < 1 || h->gso_size == 0)
		return -EINVAL;
	s->v6 = pkt[0] >> 4 == 6;
	if (!s->v6 && pkt[0] >> 4 != 4)
		return -EINVAL;
	if (gso == TUN_GSO_TCPV4 || gso == TUN_GSO_TCPV6)
		s->proto = PROTO_TCP;
	else if (gso == TUN_GSO_UDP_L4)
		s->proto = PROTO_UDP;
	else
		return -EINVAL;
	if ((gso == TUN_GSO_TCPV4 && s->v6) || (gso == TUN_GSO_TCPV6 && !s->v6))
		return -EINVAL;
	if (s->v6) {
		if (len < 40 || pkt[6] != s->proto)	/* no extension headers */
			return -EINVAL;
		s->l3 = 40;
		s->len = 40 + (size_t)get16(pkt + 4);
	} else {
		if (len < 20 || pkt[9] != s->proto || (get16(pkt + 6) & 0x3fff) != 0)
			return -EINVAL;	/* a fragment */
		s->l3 = (size_t)(pkt[0] & 0xf) * 4;
		s->len = get16(pkt + 2);
		if (s->l3 < 20 || s->len < s->l3)
			return -EINVAL;
	}
	if (s->len > len || s->len <= s->l3)
		return -EINVAL;
	if (s->proto == PROTO_TCP) {
		size_t doff;
		if (s->len < s->l3 + 20)
			return -EINVAL;
		doff = (size_t)(pkt[s->l3 + 12] >> 4) * 4;
		if (doff < 20 || s->len < s->l3 + doff)
			return -EINVAL;
		s->hdr = s->l3 + doff;
	} else {
		if (s->len < s->l3 + 8)
			return -EINVAL;
		s->hdr = s->l3 + 8;
	}
	return 0;
}

/* A partial checksum (the field holds the pseudo-header sum): sum from csum_start to the
 * end, the field included, as the kernel's skb_checksum_help does. */
static int csum_complete(const struct tun_vnet *h, uint8_t *pkt, size_t len)
{
	size_t start = h->csum_start, field = start + h->csum_offset;
	uint16_t sum;

	if (start >= len || field + 2 > len || (start & 1))
		return -EINVAL;
	sum = (uint16_t)~tun_csum_fold(tun_csum_add(0, pkt + start, len - start));
	put16(pkt + field, sum ? sum : 0xffff);
	return 0;
}

int tun_segment(const struct tun_vnet *h, uint8_t *pkt, size_t len, uint8_t *seg,
		size_t seg_cap, tun_segment_fn fn, void *ctx)
{
	struct seg_hdrs s;
	size_t payload, n;
	uint32_t seq = 0;
	uint16_t id = 0;

	if ((h->gso_type & (uint8_t)~TUN_GSO_ECN) == TUN_GSO_NONE) {
		if ((h->flags & TUN_VNET_F_NEEDS_CSUM) && csum_complete(h, pkt, len) < 0)
			return -EINVAL;
		fn(ctx, pkt, len);
		return 1;
	}
	if (seg_parse(h, pkt, len, &s) < 0)
		return -EINVAL;
	payload = s.len - s.hdr;
	if (s.hdr + (payload < h->gso_size ? payload : h->gso_size) > seg_cap)
		return -EINVAL;
	if (s.proto == PROTO_TCP)
		seq = get32(pkt + s.l3 + 4);
	if (!s.v6)
		id = get16(pkt + 4);
	/* An empty payload still makes one packet: its headers, checksummed. */
	n = payload == 0 ? 1 : (payload + h->gso_size - 1) / h->gso_size;
	for (size_t i = 0, off = 0; i < n; i++) {
		size_t chunk = payload - off < h->gso_size ? payload - off : h->gso_size;
		size_t seg_len = s.hdr + chunk;

		memcpy(seg, pkt, s.hdr);
		memcpy(seg + s.hdr, pkt + s.hdr + off, chunk);
		if (s.v6) {
			put16(seg + 4, (uint16_t)(seg_len - 40));
		} else {
			put16(seg + 2, (uint16_t)seg_len);
			put16(seg + 4, (uint16_t)(id + i));
			ip4_set_csum(seg, s.l3);
		}
		if (s.proto == PROTO_TCP) {
			put32(seg + s.l3 + 4, seq + (uint32_t)off);
			if (i + 1 < n)
				seg[s.l3 + 13] &= (uint8_t)~(TCP_FIN | TCP_PSH);
			if (i > 0)
				seg[s.l3 + 13] &= (uint8_t)~TCP_CWR;
		} else {
			put16(seg + s.l3 + 4, (uint16_t)(seg_len - s.l3));
		}
		l4_set_csum(seg, seg_len, s.l3, s.proto);
		fn(ctx, seg, seg_len);
		off += chunk;
	}
	return (int)n;
}

/* ---- coalescing ---- */

/* A TCP segment that may join or start a coalesced packet. */
struct gro_pkt {
	bool v6;
	size_t l3, hdr, payload;
	uint32_t seq;
	uint8_t flags;
};

struct gro_slot {
	bool used;
	struct gro_pkt head;	/* the first segment's layout */
	size_t len;
	uint32_t next_seq;
	unsigned n;
	uint8_t buf[TUN_PKT_MAX];
};

struct tun_gro {
	struct gro_slot slot[GRO_SLOTS];
	unsigned victim;	/* slot to give up when all are held */
};

struct tun_gro *tun_gro_new(void)
{
	return calloc(1, sizeof(struct tun_gro));
}

void tun_gro_free(struct tun_gro *g)
{
	if (!g)
		return;
	OPENSSL_cleanse(g, sizeof(*g));	/* cleartext */
	free(g);
}

/* Plain data segments only: no IP options or fragments, no extension headers, ACK with
 * optional PSH, some payload, and a checksum that verifies (we are about to replace it with
 * one the kernel will trust, so a bad one must not be laundered). */
static bool gro_parse(const uint8_t *pkt, size_t len, struct gro_pkt *p)
{
	size_t doff;
	uint8_t fl;

	if (len < 1)
		return false;
	p->v6 = pkt[0] >> 4 == 6;
	if (p->v6) {
		if (len < 40 || pkt[6] != PROTO_TCP || (size_t)get16(pkt + 4) + 40 != len)
			return false;
		p->l3 = 40;
	} else {
		if (pkt[0] != 0x45 || len < 20 || get16(pkt + 2) != len || pkt[9] != PROTO_TCP ||
		    (get16(pkt + 6) & 0x3fff) != 0 || tun_csum_fold(tun_csum_add(0, pkt, 20)) != 0xffff)
			return false;
		p->l3 = 20;
	}
	if (len < p->l3 + 20)
		return false;
	doff = (size_t)(pkt[p->l3 + 12] >> 4) * 4;
	fl = pkt[p->l3 + 13];
	if (doff < 20 || len <= p->l3 + doff || (pkt[p->l3 + 12] & 0x0f) != 0 ||
	    (fl & (uint8_t)~TCP_PSH) != TCP_ACK)
		return false;
	if (tun_csum_fold(tun_csum_add(tun_csum_pseudo(pkt, PROTO_TCP, len - p->l3), pkt + p->l3,
				       len - p->l3)) != 0xffff)
		return false;
	p->hdr = p->l3 + doff;
	p->payload = len - p->hdr;
	p->seq = get32(pkt + p->l3 + 4);
	p->flags = fl;
	return true;
}

/* Same addresses and ports. */
static bool gro_same_flow(const struct gro_slot *s, const uint8_t *pkt, const struct gro_pkt *p)
{
	if (s->head.v6 != p->v6)
		return false;
	if (p->v6)
		return memcmp(s->buf + 8, pkt + 8, 32) == 0 && memcmp(s->buf + 40, pkt + 40, 4) == 0;
	return memcmp(s->buf + 12, pkt + 12, 8) == 0 && memcmp(s->buf + 20, pkt + 20, 4) == 0;
}

/* Whether p continues the flow held in s: every header byte equal but the lengths, IDs,
 * checksums, sequence number and PSH, the next sequence number, no longer than the first. */
static bool gro_continues(const struct gro_slot *s, const uint8_t *pkt, const struct gro_pkt *p)
{
	const uint8_t *h = s->buf;
	size_t t = p->l3;

	if (p->hdr != s->head.hdr || p->seq != s->next_seq || p->payload > s->head.payload ||
	    s->n >= GRO_MAX_SEGS || s->len + p->payload > TUN_PKT_MAX)
		return false;
	if (p->v6) {
		if (memcmp(h, pkt, 4) != 0 || h[7] != pkt[7])	/* class, flow label; hop limit */
			return false;
	} else if (h[1] != pkt[1] || h[6] != pkt[6] || h[8] != pkt[8]) {	/* TOS, DF, TTL */
		return false;
	}
	return memcmp(h + t + 8, pkt + t + 8, 5) == 0 &&	/* ack, data offset */
	       (h[t + 13] & (uint8_t)~TCP_PSH) == (pkt[t + 13] & (uint8_t)~TCP_PSH) &&
	       memcmp(h + t + 14, pkt + t + 14, 2) == 0 &&	/* window */
	       memcmp(h + t + 18, pkt + t + 18, p->hdr - t - 18) == 0;	/* urgent ptr, options */
}

static int gro_emit(struct gro_slot *s, tun_emit_fn emit, void *ctx)
{
	uint8_t vh[TUN_VNET_HDR_LEN] = { 0 };
	int err;

	if (s->n > 1) {
		struct tun_vnet h = {
			.flags = TUN_VNET_F_NEEDS_CSUM,
			.gso_type = s->head.v6 ? TUN_GSO_TCPV6 : TUN_GSO_TCPV4,
			.hdr_len = (uint16_t)s->head.hdr,
			.gso_size = (uint16_t)s->head.payload,
			.csum_start = (uint16_t)s->head.l3,
			.csum_offset = 16,
		};
		if (s->head.v6) {
			put16(s->buf + 4, (uint16_t)(s->len - 40));
		} else {
			put16(s->buf + 2, (uint16_t)s->len);
			ip4_set_csum(s->buf, 20);
		}
		/* CHECKSUM_PARTIAL: the field holds the pseudo-header sum, not inverted */
		put16(s->buf + s->head.l3 + 16,
		      tun_csum_fold(tun_csum_pseudo(s->buf, PROTO_TCP, s->len - s->head.l3)));
		tun_vnet_build(&h, vh);
	}
	s->used = false;
	err = emit(ctx, vh, s->buf, s->len, s->n);
	return err;
}

int tun_gro_flush(struct tun_gro *g, tun_emit_fn emit, void *ctx)
{
	int err = 0;

	for (size_t i = 0; i < GRO_SLOTS; i++)
		if (g->slot[i].used) {
			int e = gro_emit(&g->slot[i], emit, ctx);
			if (e < 0 && err == 0)
				err = e;
		}
	return err;
}

static void gro_start(struct gro_slot *s, const uint8_t *pkt, size_t len, const struct gro_pkt *p)
{
	memcpy(s->buf, pkt, len);
	s->used = true;
	s->head = *p;
	s->len = len;
	s->next_seq = p->seq + (uint32_t)p->payload;
	s->n = 1;
}

int tun_gro_add(struct tun_gro *g, const uint8_t *pkt, size_t len, tun_emit_fn emit, void *ctx)
{
	static const uint8_t zero[TUN_VNET_HDR_LEN];
	struct gro_slot *s = NULL;
	struct gro_pkt p;
	int err = 0, e;

	if (len > TUN_PKT_MAX || !gro_parse(pkt, len, &p)) {
		/* Anything else goes out now, after what is held, so no flow is reordered. */
		err = tun_gro_flush(g, emit, ctx);
		e = emit(ctx, zero, pkt, len, 1);
		return e < 0 ? e : err;
	}
	for (size_t i = 0; i < GRO_SLOTS && !s; i++)
		if (g->slot[i].used && gro_same_flow(&g->slot[i], pkt, &p))
			s = &g->slot[i];
	if (s && gro_continues(s, pkt, &p)) {
		memcpy(s->buf + s->len, pkt + p.hdr, p.payload);
		s->len += p.payload;
		s->next_seq += (uint32_t)p.payload;
		s->n++;
		s->buf[s->head.l3 + 13] |= p.flags & TCP_PSH;
		/* a short segment or PSH ends what the sender sent as one piece */
		if (p.payload < s->head.payload || (p.flags & TCP_PSH))
			return gro_emit(s, emit, ctx);
		return 0;
	}
	if (s) {
		err = gro_emit(s, emit, ctx);
	} else {
		for (size_t i = 0; i < GRO_SLOTS && !s; i++)
			if (!g->slot[i].used)
				s = &g->slot[i];
		if (!s) {
			s = &g->slot[g->victim++ % GRO_SLOTS];
			err = gro_emit(s, emit, ctx);
		}
	}
	gro_start(s, pkt, len, &p);
	if (p.flags & TCP_PSH) {
		e = gro_emit(s, emit, ctx);
		if (e < 0 && err == 0)
			err = e;
	}
	return err;
}

/* TUN offloads without a device: segmentation of TSO/USO super-packets and coalescing of TCP
 * segments, checked byte for byte against packets built here with a checksum of our own. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "sa-backends/sa_backend.h"
#include "sa-backends/userspace/tun_offload.h"
#include "sa-backends/userspace/userspace.h"
#include "tap.h"

/* ---- an independent checksum: RFC 1071 the slow way ---- */

static uint16_t ref_csum(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
	uint32_t sum = 0;
	uint8_t *all = malloc(an + bn + 1);

	memcpy(all, a, an);
	if (bn)
		memcpy(all + an, b, bn);
	all[an + bn] = 0;
	for (size_t i = 0; i < an + bn; i += 2)
		sum += (uint32_t)all[i] << 8 | all[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	free(all);
	return (uint16_t)sum;
}

static uint8_t pseudo_buf[40];

/* The pseudo-header of the packet at ip for l4_len bytes. */
static size_t pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len)
{
	if (ip[0] >> 4 == 6) {
		memcpy(pseudo_buf, ip + 8, 32);
		pseudo_buf[32] = (uint8_t)(l4_len >> 24);
		pseudo_buf[33] = (uint8_t)(l4_len >> 16);
		pseudo_buf[34] = (uint8_t)(l4_len >> 8);
		pseudo_buf[35] = (uint8_t)l4_len;
		pseudo_buf[36] = pseudo_buf[37] = pseudo_buf[38] = 0;
		pseudo_buf[39] = proto;
		return 40;
	}
	memcpy(pseudo_buf, ip + 12, 8);
	pseudo_buf[8] = 0;
	pseudo_buf[9] = proto;
	pseudo_buf[10] = (uint8_t)(l4_len >> 8);
	pseudo_buf[11] = (uint8_t)l4_len;
	return 12;
}

static bool l4_ok(const uint8_t *pkt, size_t len, size_t l3, uint8_t proto)
{
	size_t pn = pseudo(pkt, proto, len - l3);
	uint8_t tmp[40];

	memcpy(tmp, pseudo_buf, pn);
	return ref_csum(tmp, pn, pkt + l3, len - l3) == 0xffff;
}

static bool ip4_ok(const uint8_t *pkt)
{
	return ref_csum(pkt, (size_t)(pkt[0] & 0xf) * 4, NULL, 0) == 0xffff;
}

/* ---- packets built field by field ---- */

struct tcp_spec {
	bool v6;
	size_t ip_opts;		/* IPv4 option bytes (multiple of 4) */
	size_t tcp_opts;	/* TCP option bytes (multiple of 4) */
	uint16_t id;
	uint32_t seq, ack;
	uint8_t flags;
	uint16_t window;
	uint8_t ttl, tos;
	uint16_t sport;
	const uint8_t *payload;
	size_t plen;
	bool partial;		/* checksum field = pseudo-header sum, as the kernel hands it over */
	uint8_t proto;		/* 0: TCP */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static size_t build(uint8_t *out, const struct tcp_spec *s)
{
	uint8_t proto = s->proto ? s->proto : 6;
	size_t l3 = s->v6 ? 40 : 20 + s->ip_opts;
	size_t l4h = proto == 6 ? 20 + s->tcp_opts : 8;
	size_t len = l3 + l4h + s->plen, field = l3 + (proto == 6 ? 16 : 6);
	uint8_t *t = out + l3;
	uint16_t sum;

	memset(out, 0, l3 + l4h);
	if (s->v6) {
		out[0] = 0x60 | (s->tos >> 4);
		out[1] = (uint8_t)(s->tos << 4) | 0x0a;
		out[2] = 0xbc;
		out[3] = 0xde;
		put16(out + 4, (uint16_t)(len - 40));
		out[6] = proto;
		out[7] = s->ttl ? s->ttl : 64;
		for (int i = 0; i < 16; i++) {
			out[8 + i] = (uint8_t)(0xfd + i);
			out[24 + i] = (uint8_t)(0xfd + 2 * i);
		}
	} else {
		out[0] = (uint8_t)(0x40 | (l3 / 4));
		out[1] = s->tos;
		put16(out + 2, (uint16_t)len);
		put16(out + 4, s->id);
		out[6] = 0x40;	/* DF */
		out[8] = s->ttl ? s->ttl : 64;
		out[9] = proto;
		memcpy(out + 12, "\x0a\x4d\x00\x01\x0a\x4d\x00\x02", 8);
		for (size_t i = 20; i < l3; i++)
			out[i] = i == 20 ? 0x94 : i == 21 ? 4 : 0;	/* router alert, then zeros */
		put16(out + 10, (uint16_t)~ref_csum(out, l3, NULL, 0));
	}
	put16(t, s->sport ? s->sport : 40000);
	put16(t + 2, 5201);
	if (proto == 6) {
		t[4] = (uint8_t)(s->seq >> 24);
		t[5] = (uint8_t)(s->seq >> 16);
		t[6] = (uint8_t)(s->seq >> 8);
		t[7] = (uint8_t)s->seq;
		t[8] = (uint8_t)(s->ack >> 24);
		t[9] = (uint8_t)(s->ack >> 16);
		t[10] = (uint8_t)(s->ack >> 8);
		t[11] = (uint8_t)s->ack;
		t[12] = (uint8_t)((l4h / 4) << 4);
		t[13] = s->flags;
		put16(t + 14, s->window ? s->window : 501);
		for (size_t i = 20; i < l4h; i++)	/* NOP NOP timestamps */
			t[i] = i < 22 ? 1 : i == 22 ? 8 : i == 23 ? 10 : (uint8_t)(0x30 + i);
	} else {
		put16(t + 4, (uint16_t)(l4h + s->plen));
	}
	memcpy(out + l3 + l4h, s->payload, s->plen);
	{
		size_t pn = pseudo(out, proto, len - l3);
		uint8_t tmp[40];
		memcpy(tmp, pseudo_buf, pn);
		if (s->partial) {
			put16(out + field, ref_csum(tmp, pn, NULL, 0));
		} else {
			sum = (uint16_t)~ref_csum(tmp, pn, out + l3, len - l3);
			put16(out + field, proto == 17 && sum == 0 ? 0xffff : sum);
		}
	}
	return len;
}

/* ---- capture of what comes out ---- */

struct out {
	int n;
	uint8_t hdr[80][TUN_VNET_HDR_LEN];
	uint8_t *pkt[80];
	size_t len[80];
	unsigned segs[80];
};

static void out_reset(struct out *o)
{
	for (int i = 0; i < o->n; i++)
		free(o->pkt[i]);
	memset(o, 0, sizeof(*o));
}

static void seg_fn(void *ctx, uint8_t *pkt, size_t len)
{
	struct out *o = ctx;

	if (o->n == 80)
		abort();
	o->pkt[o->n] = malloc(len);
	memcpy(o->pkt[o->n], pkt, len);
	o->len[o->n++] = len;
}

static int emit_fn(void *ctx, const uint8_t hdr[TUN_VNET_HDR_LEN], const uint8_t *pkt,
		   size_t len, unsigned segs)
{
	struct out *o = ctx;

	memcpy(o->hdr[o->n], hdr, TUN_VNET_HDR_LEN);
	o->segs[o->n] = segs;
	seg_fn(ctx, (uint8_t *)pkt, len);
	return 0;
}

static const uint8_t zero_hdr[TUN_VNET_HDR_LEN];
static uint8_t payload[100000];
static uint8_t pkt[70000], want[70000], seg[70000];

static struct tun_vnet tso(uint8_t type, uint16_t gso, size_t l3, size_t hdr)
{
	return (struct tun_vnet){ .flags = TUN_VNET_F_NEEDS_CSUM, .gso_type = type,
				  .hdr_len = (uint16_t)hdr, .gso_size = gso,
				  .csum_start = (uint16_t)l3, .csum_offset = type == TUN_GSO_UDP_L4 ? 6 : 16 };
}

/* Segments spec (payload plen) at gso and checks every segment against one built here. */
static void check_split(const char *what, struct tcp_spec s, uint16_t gso, uint8_t type)
{
	size_t l3 = s.v6 ? 40 : 20 + s.ip_opts, hdr = l3 + (s.proto == 17 ? 8 : 20 + s.tcp_opts);
	size_t total = s.plen, nwant = total == 0 ? 1 : (total + gso - 1) / gso;
	struct tun_vnet h = tso(type, gso, l3, hdr);
	struct out o = { 0 };
	size_t len;
	int rc, bad = 0, csum_bad = 0;

	s.partial = true;
	len = build(pkt, &s);
	rc = tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o);
	for (size_t i = 0; i < nwant && (int)i < o.n; i++) {
		struct tcp_spec e = s;
		size_t off = i * gso, wl;
		e.partial = false;
		e.payload = s.payload + off;
		e.plen = total - off < gso ? total - off : gso;
		e.seq = s.seq + (uint32_t)off;
		e.id = (uint16_t)(s.id + i);
		if (i + 1 < nwant)
			e.flags &= (uint8_t)~0x09;	/* FIN, PSH */
		if (i > 0)
			e.flags &= (uint8_t)~0x80;	/* CWR */
		wl = build(want, &e);
		bad += o.len[i] != wl || memcmp(o.pkt[i], want, wl) != 0;
		csum_bad += !l4_ok(o.pkt[i], o.len[i], l3, s.proto ? s.proto : 6) ||
			    (!s.v6 && !ip4_ok(o.pkt[i]));
	}
	tap_ok(rc == (int)nwant && o.n == (int)nwant && bad == 0 && csum_bad == 0,
	       "%s: %zu segments, byte for byte, checksums verify", what, nwant);
	if (rc != (int)nwant || bad || csum_bad)
		tap_diag("  rc %d, got %d, %d differ, %d bad checksums", rc, o.n, bad, csum_bad);
	out_reset(&o);
}

static void test_vnet_and_csum(void)
{
	uint8_t raw[TUN_VNET_HDR_LEN], back[TUN_VNET_HDR_LEN];
	struct tun_vnet h = { 1, 4, 0x1234, 1448, 40, 16 }, g;
	bool ok = true;

	tun_vnet_build(&h, raw);
	tap_ok(raw[0] == 1 && raw[1] == 4 && raw[2] == 0x34 && raw[3] == 0x12 && raw[4] == 0xa8 &&
	       raw[5] == 0x05, "the vnet header is written little-endian");
	tap_ok(tun_vnet_parse(raw, sizeof(raw), &g) == 0 && memcmp(&g, &h, sizeof(g)) == 0,
	       "and read back the same");
	tun_vnet_build(&g, back);
	tap_ok(memcmp(raw, back, sizeof(raw)) == 0, "build(parse(x)) == x");
	tap_is_int(tun_vnet_parse(raw, TUN_VNET_HDR_LEN - 1, &g), -EINVAL,
		   "a read shorter than the vnet header is refused");
	for (size_t n = 0; n < 300 && ok; n++)
		ok = tun_csum_fold(tun_csum_add(0, payload + (n & 3), n)) ==
		     ref_csum(payload + (n & 3), n, NULL, 0);
	tap_ok(ok, "tun_csum_add agrees with a byte-pair checksum for lengths 0..299 at any alignment");
	ok = tun_csum_fold(tun_csum_add(tun_csum_add(0, payload, 1000), payload + 1000, 333)) ==
	     ref_csum(payload, 1333, NULL, 0);
	tap_ok(ok, "sums chain across buffers that split at an even offset");
}

static void test_segment(void)
{
	struct tcp_spec s = { .seq = 0xfffff000u, .ack = 77, .flags = 0x18 | 0x01 | 0x80, .id = 0xfffe,
			      .payload = payload, .plen = 3001, .tcp_opts = 12 };
	struct tun_vnet h;
	struct out o = { 0 };
	size_t len;

	check_split("IPv4 TCP 3001 bytes at 1000 (FIN+PSH on the last, CWR on the first, seq and ID wrap)",
		    s, 1000, TUN_GSO_TCPV4);
	s.plen = 65535 - 20 - 32;
	check_split("IPv4 TCP of 64 KiB at 1348", s, 1348, TUN_GSO_TCPV4);
	s.plen = 2000;
	check_split("IPv4 TCP of exactly two segments", s, 1000, TUN_GSO_TCPV4);
	s.plen = 999;
	check_split("IPv4 TCP shorter than gso_size: one segment", s, 1000, TUN_GSO_TCPV4);
	s.plen = 0;
	check_split("IPv4 TCP without payload: one packet, checksummed", s, 1000, TUN_GSO_TCPV4);
	s.plen = 2501;
	s.ip_opts = 4;
	check_split("IPv4 with IP options: the options are copied and summed", s, 777, TUN_GSO_TCPV4);
	s.ip_opts = 0;
	s.v6 = true;
	s.tos = 0xb8;
	check_split("IPv6 TCP 2501 bytes at 1000", s, 1000, TUN_GSO_TCPV6);
	s.plen = 65535 - 32;
	check_split("IPv6 TCP with a full 64 KiB payload length", s, 1428, TUN_GSO_TCPV6);
	s = (struct tcp_spec){ .proto = 17, .payload = payload, .plen = 4001, .id = 9 };
	check_split("IPv4 UDP (USO) 4001 bytes at 1200", s, 1200, TUN_GSO_UDP_L4);
	s.v6 = true;
	check_split("IPv6 UDP (USO) 4001 bytes at 1200", s, 1200, TUN_GSO_UDP_L4);

	/* NEEDS_CSUM without GSO */
	s = (struct tcp_spec){ .payload = payload, .plen = 501, .flags = 0x18, .partial = true };
	len = build(pkt, &s);
	h = (struct tun_vnet){ .flags = TUN_VNET_F_NEEDS_CSUM, .csum_start = 20, .csum_offset = 16 };
	s.partial = false;
	build(want, &s);
	tap_ok(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o) == 1 && o.n == 1 &&
	       o.len[0] == len && memcmp(o.pkt[0], want, len) == 0 && l4_ok(o.pkt[0], len, 20, 6),
	       "NEEDS_CSUM without GSO: the partial checksum is completed in place");
	out_reset(&o);
	s = (struct tcp_spec){ .proto = 17, .v6 = true, .payload = payload, .plen = 77, .partial = true };
	len = build(pkt, &s);
	h = (struct tun_vnet){ .flags = TUN_VNET_F_NEEDS_CSUM, .csum_start = 40, .csum_offset = 6 };
	s.partial = false;
	build(want, &s);
	tap_ok(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o) == 1 && o.n == 1 &&
	       memcmp(o.pkt[0], want, len) == 0, "and for IPv6 UDP of odd length");
	out_reset(&o);
	h.csum_offset = (uint16_t)(len - 40 - 1);
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a checksum field past the end is refused");
	h.csum_start = (uint16_t)len;
	h.csum_offset = 0;
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a checksum start past the end is refused");
	h = (struct tun_vnet){ 0 };
	tap_ok(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o) == 1 && o.n == 1 &&
	       memcmp(o.pkt[0], pkt, len) == 0, "a packet without offload flags passes unchanged");
	out_reset(&o);

	/* malformed super-packets: nothing comes out */
	s = (struct tcp_spec){ .payload = payload, .plen = 3000, .flags = 0x10, .partial = true };
	len = build(pkt, &s);
	h = tso(TUN_GSO_TCPV4, 0, 20, 40);
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL, "gso_size 0 is refused");
	h = tso(TUN_GSO_TCPV6, 1000, 20, 40);
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a TCPV6 header on an IPv4 packet is refused");
	h = tso(7, 1000, 20, 40);
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "an unknown gso_type is refused");
	h = tso(TUN_GSO_TCPV4, 1000, 20, 40);
	tap_is_int(tun_segment(&h, pkt, 19, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a truncated IPv4 header is refused");
	tap_is_int(tun_segment(&h, pkt, 30, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a truncated TCP header is refused");
	tap_is_int(tun_segment(&h, pkt, len - 1, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "an IP length beyond the read is refused");
	pkt[32] = 0xf0;	/* data offset 60 */
	tap_is_int(tun_segment(&h, pkt, 70, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a TCP data offset beyond the packet is refused");
	pkt[32] = 0x50;
	pkt[6] |= 0x20;	/* MF */
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a fragment is refused");
	pkt[6] &= 0x40;
	pkt[0] = 0x44;	/* IHL 16 bytes */
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "an IHL below 20 is refused");
	pkt[0] = 0x45;
	pkt[9] = 17;
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "a TCPV4 header on a UDP packet is refused");
	pkt[9] = 6;
	tap_is_int(tun_segment(&h, pkt, len, seg, 1039, seg_fn, &o), -EINVAL,
		   "a segment larger than the output buffer is refused");
	s.v6 = true;
	len = build(pkt, &s);
	pkt[6] = 0;	/* hop-by-hop options first */
	h = tso(TUN_GSO_TCPV6, 1000, 40, 60);
	tap_is_int(tun_segment(&h, pkt, len, seg, sizeof(seg), seg_fn, &o), -EINVAL,
		   "IPv6 with an extension header is refused");
	tap_is_int(o.n, 0, "no refused packet produced any output");
}

/* The packets of one flow as a sender would send them: n segments of seg bytes and a last of
 * last bytes (PSH on it), IDs counting up. */
static size_t make_flow(uint8_t **out, size_t *lens, const struct tcp_spec *base, size_t n,
			size_t segsz, size_t last)
{
	size_t off = 0;

	for (size_t i = 0; i <= n; i++) {
		struct tcp_spec s = *base;
		s.payload = payload + off;
		s.plen = i < n ? segsz : last;
		s.seq = base->seq + (uint32_t)off;
		s.id = (uint16_t)(base->id + i);
		s.flags = i == n ? 0x18 : 0x10;
		out[i] = malloc(100 + s.plen);
		lens[i] = build(out[i], &s);
		off += s.plen;
	}
	return n + (last ? 1 : 0);
}

static void free_flow(uint8_t **p, size_t n)
{
	for (size_t i = 0; i <= n; i++)
		free(p[i]);
}

static void test_coalesce(void)
{
	struct tcp_spec s = { .seq = 0xfffffc00u, .ack = 99, .tcp_opts = 12, .id = 500 };
	struct tun_gro *g = tun_gro_new();
	uint8_t *f[70], *f2[70];
	size_t fl[70], fl2[70], n;
	struct tun_vnet h;
	struct out o = { 0 }, back = { 0 };
	bool ok;
	int bad;

	tap_ok(g != NULL, "tun_gro_new");
	/* 10 x 1348 + 500 (PSH) -> one packet */
	n = make_flow(f, fl, &s, 10, 1348, 500);
	for (size_t i = 0; i < n; i++)
		tun_gro_add(g, f[i], fl[i], emit_fn, &o);
	tap_is_int(o.n, 1, "10 full segments and a short PSH one come out as one write, at once");
	tun_vnet_parse(o.hdr[0], TUN_VNET_HDR_LEN, &h);
	tap_ok(h.gso_type == TUN_GSO_TCPV4 && h.flags == TUN_VNET_F_NEEDS_CSUM && h.gso_size == 1348 &&
	       h.hdr_len == 52 && h.csum_start == 20 && h.csum_offset == 16 && o.segs[0] == 11,
	       "with a TCPV4 vnet header: gso_size 1348, hdr_len 52, csum 20+16, 11 segments");
	{
		struct tcp_spec e = s;
		e.payload = payload;
		e.plen = 10 * 1348 + 500;
		e.flags = 0x18;
		e.partial = true;
		n = build(want, &e);
	}
	tap_ok(o.len[0] == n && memcmp(o.pkt[0], want, n) == 0 && ip4_ok(o.pkt[0]),
	       "byte for byte the super-packet the sender would have handed to TSO (partial checksum)");
	/* the kernel's view: segment it again -> the original packets */
	ok = tun_segment(&h, o.pkt[0], o.len[0], seg, sizeof(seg), seg_fn, &back) == 11;
	bad = 0;
	for (int i = 0; ok && i < 11; i++)
		bad += back.len[i] != fl[i] || memcmp(back.pkt[i], f[i], fl[i]) != 0;
	tap_ok(ok && bad == 0, "segmenting it again gives back the 11 original packets byte for byte");
	out_reset(&back);
	out_reset(&o);
	free_flow(f, 10);

	/* held until flush; single packets leave with a zero header */
	n = make_flow(f, fl, &s, 3, 1000, 0);
	tun_gro_add(g, f[0], fl[0], emit_fn, &o);
	tun_gro_add(g, f[1], fl[1], emit_fn, &o);
	tap_is_int(o.n, 0, "full segments without PSH are held");
	tun_gro_flush(g, emit_fn, &o);
	tap_ok(o.n == 1 && o.segs[0] == 2 && o.len[0] == 52 + 2000, "flush writes what is held");
	tun_gro_add(g, f[2], fl[2], emit_fn, &o);
	tun_gro_flush(g, emit_fn, &o);
	tap_ok(o.n == 2 && memcmp(o.hdr[1], zero_hdr, TUN_VNET_HDR_LEN) == 0 && o.len[1] == fl[2] &&
	       memcmp(o.pkt[1], f[2], fl[2]) == 0,
	       "a lone segment goes out unchanged with a zero vnet header");
	out_reset(&o);

	/* out of order */
	tun_gro_add(g, f[0], fl[0], emit_fn, &o);
	tun_gro_add(g, f[2], fl[2], emit_fn, &o);
	tun_gro_flush(g, emit_fn, &o);
	tap_ok(o.n == 2 && memcmp(o.pkt[0], f[0], fl[0]) == 0 && memcmp(o.pkt[1], f[2], fl[2]) == 0,
	       "a gap in the sequence is not bridged: two packets, unchanged, in order");
	out_reset(&o);

	/* a non-candidate flushes first */
	{
		struct tcp_spec u = { .proto = 17, .payload = payload, .plen = 33 };
		uint8_t udp[200];
		size_t ul = build(udp, &u);
		tun_gro_add(g, f[0], fl[0], emit_fn, &o);
		tun_gro_add(g, udp, ul, emit_fn, &o);
		tap_ok(o.n == 2 && o.len[0] == fl[0] && o.len[1] == ul && memcmp(o.pkt[1], udp, ul) == 0 &&
		       memcmp(o.hdr[1], zero_hdr, TUN_VNET_HDR_LEN) == 0,
		       "UDP is written at once, after the TCP held before it");
		out_reset(&o);
	}
	free_flow(f, 3);

	/* two flows interleaved */
	n = make_flow(f, fl, &s, 4, 1000, 0);
	s.sport = 40001;
	make_flow(f2, fl2, &s, 4, 1000, 0);
	s.sport = 0;
	for (size_t i = 0; i < 4; i++) {
		tun_gro_add(g, f[i], fl[i], emit_fn, &o);
		tun_gro_add(g, f2[i], fl2[i], emit_fn, &o);
	}
	tun_gro_flush(g, emit_fn, &o);
	tap_ok(o.n == 2 && o.segs[0] == 4 && o.segs[1] == 4 && get16(o.pkt[0] + 20) == 40000 &&
	       get16(o.pkt[1] + 20) == 40001, "two interleaved flows are coalesced each on its own");
	out_reset(&o);
	free_flow(f2, 4);

	/* differences that must not be merged */
	{
		uint8_t c[1200];
		memcpy(c, f[1], fl[1]);
		c[20 + 30] ^= 1;	/* a timestamp option byte, then a checksum that fits again */
		put16(c + 36, 0);
		{
			size_t pn = pseudo(c, 6, fl[1] - 20);
			uint8_t tmp[40];
			memcpy(tmp, pseudo_buf, pn);
			put16(c + 36, (uint16_t)~ref_csum(tmp, pn, c + 20, fl[1] - 20));
		}
		tun_gro_add(g, f[0], fl[0], emit_fn, &o);
		tun_gro_add(g, c, fl[1], emit_fn, &o);
		tun_gro_flush(g, emit_fn, &o);
		tap_ok(o.n == 2 && o.segs[0] == 1 && o.segs[1] == 1, "different TCP options are not merged");
		out_reset(&o);

		memcpy(c, f[1], fl[1]);
		c[20 + 16] ^= 0x40;	/* break the checksum */
		tun_gro_add(g, f[0], fl[0], emit_fn, &o);
		tun_gro_add(g, c, fl[1], emit_fn, &o);
		tun_gro_flush(g, emit_fn, &o);
		tap_ok(o.n == 2 && o.len[1] == fl[1] && memcmp(o.pkt[1], c, fl[1]) == 0 &&
		       memcmp(o.hdr[1], zero_hdr, TUN_VNET_HDR_LEN) == 0,
		       "a segment with a bad TCP checksum is passed on unchanged, never merged");
		out_reset(&o);
	}
	free_flow(f, 4);

	/* a longer segment after a shorter one, SYN, pure ACK, IP options */
	{
		struct tcp_spec a = s;
		uint8_t p1[2000], p2[2000];
		size_t l1, l2;
		a.payload = payload;
		a.plen = 500;
		a.flags = 0x10;
		l1 = build(p1, &a);
		a.seq += 500;
		a.plen = 1000;
		l2 = build(p2, &a);
		tun_gro_add(g, p1, l1, emit_fn, &o);
		tun_gro_add(g, p2, l2, emit_fn, &o);
		tun_gro_flush(g, emit_fn, &o);
		tap_ok(o.n == 2 && o.segs[0] == 1 && o.segs[1] == 1,
		       "a segment longer than the first is not merged");
		out_reset(&o);
		a.flags = 0x12;
		l1 = build(p1, &a);
		tun_gro_add(g, p1, l1, emit_fn, &o);
		tap_ok(o.n == 1 && memcmp(o.pkt[0], p1, l1) == 0, "SYN+ACK with data is written at once");
		out_reset(&o);
		a.flags = 0x10;
		a.plen = 0;
		l1 = build(p1, &a);
		tun_gro_add(g, p1, l1, emit_fn, &o);
		tap_ok(o.n == 1 && o.len[0] == l1, "a pure ACK is written at once");
		out_reset(&o);
		a.plen = 100;
		a.ip_opts = 4;
		l1 = build(p1, &a);
		a.seq += 100;
		l2 = build(p2, &a);
		tun_gro_add(g, p1, l1, emit_fn, &o);
		tun_gro_add(g, p2, l2, emit_fn, &o);
		tap_ok(o.n == 2 && memcmp(o.pkt[0], p1, l1) == 0 && memcmp(o.pkt[1], p2, l2) == 0,
		       "IPv4 with options is never held or changed");
		out_reset(&o);
		tun_gro_add(g, p1, 19, emit_fn, &o);
		tun_gro_add(g, p1, 0, emit_fn, &o);
		tap_ok(o.n == 2 && o.len[0] == 19 && o.len[1] == 0,
		       "truncated packets are passed on (the kernel drops them), not parsed");
		out_reset(&o);
	}

	/* the 64 KiB limit: 60 segments of 1400 do not fit one IPv4 packet */
	n = make_flow(f, fl, &s, 60, 1400, 0);
	for (size_t i = 0; i < n; i++)
		tun_gro_add(g, f[i], fl[i], emit_fn, &o);
	tun_gro_flush(g, emit_fn, &o);
	ok = o.n == 2 && o.segs[0] + o.segs[1] == 60 && o.len[0] <= 65535;
	bad = 0;
	for (int k = 0; ok && k < 2; k++) {
		tun_vnet_parse(o.hdr[k], TUN_VNET_HDR_LEN, &h);
		bad += tun_segment(&h, o.pkt[k], o.len[k], seg, sizeof(seg), seg_fn, &back) < 0;
	}
	for (int i = 0; ok && i < back.n; i++)
		bad += back.len[i] != fl[i] || memcmp(back.pkt[i], f[i], fl[i]) != 0;
	tap_ok(ok && bad == 0 && back.n == 60,
	       "60 x 1400 bytes become two packets below 64 KiB that segment back to the originals");
	out_reset(&o);
	out_reset(&back);
	free_flow(f, 60);

	/* IPv6 */
	s.v6 = true;
	s.tos = 0x20;
	n = make_flow(f, fl, &s, 5, 1200, 1);
	for (size_t i = 0; i < n; i++)
		tun_gro_add(g, f[i], fl[i], emit_fn, &o);
	tun_vnet_parse(o.n ? o.hdr[0] : zero_hdr, TUN_VNET_HDR_LEN, &h);
	ok = o.n == 1 && h.gso_type == TUN_GSO_TCPV6 && h.csum_start == 40 && h.gso_size == 1200 &&
	     get16(o.pkt[0] + 4) == o.len[0] - 40;
	ok = ok && tun_segment(&h, o.pkt[0], o.len[0], seg, sizeof(seg), seg_fn, &back) == 6;
	bad = 0;
	for (int i = 0; ok && i < 6; i++)
		bad += back.len[i] != fl[i] || memcmp(back.pkt[i], f[i], fl[i]) != 0;
	tap_ok(ok && bad == 0, "IPv6: 5 x 1200 + 1 become one TCPV6 packet that segments back byte for byte");
	out_reset(&o);
	out_reset(&back);
	free_flow(f, 5);
	tun_gro_free(g);
	tun_gro_free(NULL);
	tap_ok(1, "tun_gro_free(NULL) is fine");
}

/* ---- end to end: two backend connections in two namespaces, wired to each other ---- */

#define E2E_BYTES (8 << 20)
#define E2E_QUEUE 4096

struct esp_queue {
	uint8_t *buf[E2E_QUEUE];
	struct iovec iov[E2E_QUEUE];
	size_t n;
};

static int queue_esp(void *ctx, const uint8_t *pkt, size_t len)
{
	struct esp_queue *q = ctx;

	if (q->n == E2E_QUEUE)
		return -ENOBUFS;
	if (!q->buf[q->n])
		q->buf[q->n] = malloc(2048);
	if (len > 2048)
		return -EMSGSIZE;
	memcpy(q->buf[q->n], pkt, len);
	q->iov[q->n] = (struct iovec){ q->buf[q->n], len };
	q->n++;
	return 0;
}

static struct bw_cidr host4(const char *a)
{
	struct bw_cidr c = { .family = AF_INET, .prefix = 32 };

	inet_pton(AF_INET, a, c.addr);
	return c;
}

/* One end: device, both SAs, policy, address, route, in the current namespace. */
static int e2e_end(struct ev_loop *loop, const char *name, const char *dir, struct esp_queue *q,
		   const char *local, const char *remote, uint32_t spi_out, uint32_t spi_in,
		   const uint8_t *key, struct bw_sa_conn **c)
{
	const struct bw_sa_backend_ops *ops = &bw_sa_backend_userspace;
	struct bw_sa_conn_cbs cbs = { .ctx = q, .send_esp = queue_esp };
	struct bw_cidr l = host4(local), r = host4(remote);
	struct bw_sa_params p = { .alg = { BW_ESP_AES_GCM16, 128, BW_ESP_AUTH_NONE, BW_DH_NONE },
				  .keymat_len = 20, .mode = BW_MODE_TUNNEL, .udp_encap = true };

	memcpy(p.keymat, key, 20);
	if (ops->conn_open(loop, name, dir, &cbs, c) < 0)
		return -1;
	p.dir = BW_SA_OUT;
	p.spi = spi_out;
	if (ops->add_sa(*c, &p) < 0)
		return -1;
	p.dir = BW_SA_IN;
	p.spi = spi_in;
	if (ops->add_sa(*c, &p) < 0 || ops->add_policy(*c, &l, &r, spi_out, spi_in) < 0 ||
	    ops->set_address(*c, &l) < 0 || ops->add_route(*c, &r, &l) < 0)
		return -1;
	return 0;
}

static unsigned long long link_stat(const char *ifname, const char *what)
{
	char cmd[160], buf[64] = "";
	FILE *f;

	snprintf(cmd, sizeof(cmd), "ip -j -s link show %s | jq '.[0].stats64.%s' 2>/dev/null",
		 ifname, what);
	f = popen(cmd, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	pclose(f);
	return strtoull(buf, NULL, 10);
}

static void test_end_to_end(void)
{
	const struct bw_sa_backend_ops *ops = &bw_sa_backend_userspace;
	static struct esp_queue qa, qb;
	struct ev_loop *loop;
	struct bw_sa_conn *a = NULL, *b = NULL;
	struct bw_sa_counters ka, kb;
	struct sockaddr_in srv = { .sin_family = AF_INET, .sin_port = htons(5001) };
	char dir[] = "/tmp/bw-tso-test.XXXXXX";
	uint8_t key1[20], rbuf[65536];
	size_t sent = 0, got = 0;
	unsigned long long tx_a, rx_b;
	int ns1, ns2, ls = -1, cs = -1, as = -1, one = 1, bad = 0, ok;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0 || !mkdtemp(dir) ||
	    unshare(CLONE_NEWNET) != 0) {
		tap_ok(1, "# SKIP end to end: needs root, /dev/net/tun and network namespaces");
		return;
	}
	RAND_bytes(key1, sizeof(key1));
	loop = ev_loop_new(EVFLAG_AUTO);
	ns1 = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	ok = system("ip link set lo up") == 0 &&
	     e2e_end(loop, "tso-a", dir, &qa, "10.66.0.1", "10.66.0.2", 0x1001, 0x1002, key1, &a) == 0;
	ok = ok && unshare(CLONE_NEWNET) == 0 && system("ip link set lo up") == 0 &&
	     e2e_end(loop, "tso-b", dir, &qb, "10.66.0.2", "10.66.0.1", 0x1002, 0x1001, key1, &b) == 0;
	ns2 = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ok) {
		inet_pton(AF_INET, "10.66.0.2", &srv.sin_addr);
		ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		ok = bind(ls, (struct sockaddr *)&srv, sizeof(srv)) == 0 && listen(ls, 1) == 0 &&
		     setns(ns1, CLONE_NEWNET) == 0;
		cs = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
		ok = ok && cs >= 0 && (connect(cs, (struct sockaddr *)&srv, sizeof(srv)) == 0 ||
				       errno == EINPROGRESS);
	}
	tap_ok(ok, "two connections with offloads in two namespaces, a TCP connection between them");
	tx_a = link_stat("bw-tso-a", "tx.packets");
	/* pump: the loop reads the TUN devices; what one end sends, the other gets as a burst
	 * (b) or packet by packet (a, as burrowd does) */
	for (int round = 0; ok && got < E2E_BYTES && round < 200000; round++) {
		ev_run(loop, EVRUN_NOWAIT);
		if (qa.n) {
			bw_us_input_burst(b, qa.iov, qa.n, NULL);
			qa.n = 0;
		}
		for (size_t i = 0; i < qb.n; i++)
			ops->input(a, qb.iov[i].iov_base, qb.iov[i].iov_len);
		qb.n = 0;
		if (as < 0)
			as = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
		while (sent < E2E_BYTES) {
			size_t want = 65536 - sent % 65536;	/* the pattern repeats every 64 KiB */
			ssize_t n = send(cs, payload + sent % 65536, want, MSG_DONTWAIT);
			if (n <= 0)
				break;
			sent += (size_t)n;
		}
		for (ssize_t n; as >= 0 && (n = recv(as, rbuf, sizeof(rbuf), MSG_DONTWAIT)) > 0;) {
			for (ssize_t i = 0; i < n; i++)
				bad += rbuf[i] != payload[(got + (size_t)i) % 65536];
			got += (size_t)n;
		}
		if (!qa.n && !qb.n)
			usleep(50);
	}
	tap_ok(got == E2E_BYTES && bad == 0, "8 MiB arrive through the tunnel byte for byte (%zu, %d wrong)",
	       got, bad);
	tx_a = link_stat("bw-tso-a", "tx.packets") - tx_a;
	ops->counters(a, &ka);
	tap_ok(ka.packets_out > 2 * tx_a && ka.errors_out == 0,
	       "the sender reads super-packets: %llu ESP packets out of %llu TUN packets",
	       (unsigned long long)ka.packets_out, tx_a);
	setns(ns2, CLONE_NEWNET);
	rx_b = link_stat("bw-tso-b", "rx.packets");
	ops->counters(b, &kb);
	tap_ok(kb.packets_in > 2 * rx_b && kb.errors_in == 0,
	       "the receiver writes coalesced packets: %llu inner packets in %llu TUN writes",
	       (unsigned long long)kb.packets_in, rx_b);
	if (ls >= 0)
		close(ls);
	if (as >= 0)
		close(as);
	if (cs >= 0)
		close(cs);
	ops->conn_close(b);
	setns(ns1, CLONE_NEWNET);
	ops->conn_close(a);
	for (size_t i = 0; i < E2E_QUEUE; i++) {
		free(qa.buf[i]);
		free(qb.buf[i]);
	}
	close(ns1);
	close(ns2);
	ev_loop_destroy(loop);
	rmdir(dir);
}

int main(void)
{
	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(i * 7 + (i >> 8));
	test_vnet_and_csum();
	test_segment();
	test_coalesce();
	test_end_to_end();
	return tap_done_testing();
}

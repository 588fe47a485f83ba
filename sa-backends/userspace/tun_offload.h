/* TUN offloads for the userspace backend: the virtio_net_hdr in front of every TUN read and
 * write, TSO/USO segmentation of what the kernel hands us, and TCP coalescing (GRO) of what
 * we hand back, so that one TUN syscall carries up to 64 KiB instead of one MTU. */
#ifndef BURROW_TUN_OFFLOAD_H
#define BURROW_TUN_OFFLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>


/* struct virtio_net_hdr on the wire (TUNSETVNETHDRSZ 10): fields little-endian. */
#define TUN_VNET_HDR_LEN 10
/* The largest IP packet either side handles: an IPv4 total length / IPv6 payload length. */
#define TUN_PKT_MAX 65535

#define TUN_VNET_F_NEEDS_CSUM 1
#define TUN_GSO_NONE 0
#define TUN_GSO_TCPV4 1
#define TUN_GSO_TCPV6 4
#define TUN_GSO_UDP_L4 5
#define TUN_GSO_ECN 0x80

/* The header in host order, copied out of (or into) the 10 bytes in front of a packet. */
struct tun_vnet {
	uint8_t flags;
	uint8_t gso_type;
	uint16_t hdr_len, gso_size, csum_start, csum_offset;
};

int tun_vnet_parse(const uint8_t *buf, size_t len, struct tun_vnet *out);
void tun_vnet_build(const struct tun_vnet *h, uint8_t out[TUN_VNET_HDR_LEN]);

/* Internet checksum pieces (RFC 1071): tun_csum_add sums bytes into a 32-bit accumulator
 * (an odd length is padded with a zero byte), tun_csum_fold folds it to 16 bits (not
 * inverted). tun_csum_pseudo is the IPv4/IPv6 pseudo-header sum for l4_len bytes of proto. */
uint32_t tun_csum_add(uint32_t sum, const uint8_t *p, size_t n);
uint16_t tun_csum_fold(uint32_t sum);
uint32_t tun_csum_pseudo(const uint8_t *ip, uint8_t proto, size_t l4_len);

/* Called once per IP packet that comes out of tun_segment; pkt is writable and valid only
 * during the call. */
typedef void (*tun_segment_fn)(void *ctx, uint8_t *pkt, size_t len);

/* One TUN read (vnet header already parsed into h, pkt the IP packet behind it): completes a
 * partial checksum (NEEDS_CSUM) in place, or splits a TCP/UDP super-packet at gso_size into
 * packets of their own in seg (seg_cap bytes, reused for each one) with IP lengths, IDs and
 * checksums, TCP sequence numbers and flags (FIN, PSH on the last only, CWR on the first
 * only) and L4 checksums fixed. Returns the number of packets passed to fn, or -EINVAL
 * (nothing passed) when the header and the packet do not agree. */
int tun_segment(const struct tun_vnet *h, uint8_t *pkt, size_t len, uint8_t *seg,
		size_t seg_cap, tun_segment_fn fn, void *ctx);

/* Coalescing. Packets offered with tun_gro_add are written through emit, either at once
 * (not TCP, or not coalescable) or held in one of a few per-flow slots until a packet that
 * does not continue the flow arrives, the slot is full, or tun_gro_flush. A held packet of
 * n > 1 segments goes out as one IP packet with a TCPV4/TCPV6 vnet header and a partial
 * (pseudo-header) checksum; everything else with a zero vnet header, bytes unchanged.
 * emit returns 0 or -errno; hdr and pkt are valid during the call only. */
typedef int (*tun_emit_fn)(void *ctx, const uint8_t hdr[TUN_VNET_HDR_LEN], const uint8_t *pkt,
			   size_t len, unsigned n_segs);

struct tun_gro;
struct tun_gro *tun_gro_new(void);
void tun_gro_free(struct tun_gro *g);
/* Returns 0, or the error of an emit that failed (the packets are then gone). */
int tun_gro_add(struct tun_gro *g, const uint8_t *pkt, size_t len, tun_emit_fn emit, void *ctx);
int tun_gro_flush(struct tun_gro *g, tun_emit_fn emit, void *ctx);

#endif

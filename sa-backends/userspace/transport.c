/* Transport mode for the userspace datapath: strip the IPv4 header on the way out, rebuild it
 * on the way in (see transport.h). */
#include "sa-backends/userspace/transport.h"

#include <errno.h>
#include <string.h>

#include "sa-backends/userspace/tun_offload.h"

#define PROTO_TCP 6
#define PROTO_UDP 17

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static void set16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

int us_transport_strip(const uint8_t *pkt, size_t len, size_t *hdr_len, uint8_t *proto)
{
	size_t ihl;

	if (len < 1)
		return -EINVAL;
	if (pkt[0] >> 4 == 6)
		return -EPROTONOSUPPORT;
	if (pkt[0] >> 4 != 4 || len < 20)
		return -EINVAL;
	ihl = (size_t)(pkt[0] & 0x0f) * 4;
	if (ihl < 20 || ihl > len || get16(pkt + 2) != len)
		return -EINVAL;
	if (get16(pkt + 6) & 0x3fff)	/* more fragments, or an offset */
		return -EMSGSIZE;
	*hdr_len = ihl;
	*proto = pkt[9];
	return 0;
}

int us_transport_rebuild(uint8_t *buf, size_t payload_len, const uint8_t src[4], const uint8_t dst[4],
			 uint8_t proto, uint16_t ip_id, size_t *out_len)
{
	uint8_t *ip = buf, *l4 = buf + US_TRANSPORT_HDR;
	size_t total = US_TRANSPORT_HDR + payload_len;
	size_t field = 0;

	if (total > 0xffff)
		return -EINVAL;
	if (proto == PROTO_TCP) {
		if (payload_len < 20 || (size_t)(l4[12] >> 4) * 4 < 20 || (size_t)(l4[12] >> 4) * 4 > payload_len)
			return -EINVAL;
		field = 16;
	} else if (proto == PROTO_UDP) {
		if (payload_len < 8 || get16(l4 + 4) != payload_len)
			return -EINVAL;
		field = 6;
	}
	memset(ip, 0, US_TRANSPORT_HDR);
	ip[0] = 0x45;
	set16(ip + 2, (uint16_t)total);
	set16(ip + 4, ip_id);
	ip[8] = 64;
	ip[9] = proto;
	memcpy(ip + 12, src, 4);
	memcpy(ip + 16, dst, 4);
	set16(ip + 10, (uint16_t)~tun_csum_fold(tun_csum_add(0, ip, US_TRANSPORT_HDR)));
	/* UDP without a checksum (0) stays without one. */
	if (field && !(proto == PROTO_UDP && get16(l4 + 6) == 0)) {
		uint16_t sum;

		set16(l4 + field, 0);
		sum = (uint16_t)~tun_csum_fold(tun_csum_add(tun_csum_pseudo(ip, proto, payload_len), l4, payload_len));
		if (sum == 0 && proto == PROTO_UDP)
			sum = 0xffff;
		set16(l4 + field, sum);
	}
	*out_len = total;
	return 0;
}

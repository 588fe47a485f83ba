/* Tests for transport mode's header handling in the userspace datapath: what leaves (the payload
 * and protocol of whole IPv4 datagrams only) and what arrives (a rebuilt header, TCP and UDP
 * checksums valid for the addresses as this host sees them). Checksums are verified here with
 * an independent RFC 1071 sum, not with the module's own helpers. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tap.h"
#include "sa-backends/userspace/transport.h"

/* RFC 1071, written out plainly: the one's complement sum of 16-bit words. */
static uint16_t rfc1071(const uint8_t *p, size_t n, uint32_t sum)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (n & 1)
		sum += (uint32_t)p[n - 1] << 8;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* True when the L4 checksum of the IPv4 packet verifies (sum over pseudo-header and segment is 0xffff). */
static int l4_ok(const uint8_t *ip, size_t len)
{
	uint8_t ph[12];
	size_t ihl = (size_t)(ip[0] & 15) * 4, l4 = len - ihl;

	memcpy(ph, ip + 12, 8);
	ph[8] = 0;
	ph[9] = ip[9];
	ph[10] = (uint8_t)(l4 >> 8);
	ph[11] = (uint8_t)l4;
	return rfc1071(ip + ihl, l4, rfc1071(ph, 12, 0)) == 0xffff;
}

static int ip_ok(const uint8_t *ip)
{
	return rfc1071(ip, 20, 0) == 0xffff;
}

static size_t udp4(uint8_t *b, const char *src, const char *dst, const char *msg, int with_sum)
{
	size_t n = strlen(msg), len = 28 + n;

	memset(b, 0, 28);
	b[0] = 0x45;
	b[2] = (uint8_t)(len >> 8);
	b[3] = (uint8_t)len;
	b[8] = 64;
	b[9] = 17;
	inet_pton(AF_INET, src, b + 12);
	inet_pton(AF_INET, dst, b + 16);
	b[20] = 0x13;	/* 5000 -> 1701 */
	b[21] = 0x88;
	b[22] = 0x06;
	b[23] = 0xa5;
	b[24] = (uint8_t)((8 + n) >> 8);
	b[25] = (uint8_t)(8 + n);
	memcpy(b + 28, msg, n);
	if (with_sum) {
		uint8_t ph[12];
		uint16_t s;

		memcpy(ph, b + 12, 8);
		ph[8] = 0;
		ph[9] = 17;
		ph[10] = b[24];
		ph[11] = b[25];
		s = (uint16_t)~rfc1071(b + 20, 8 + n, rfc1071(ph, 12, 0));
		b[26] = (uint8_t)(s >> 8);
		b[27] = (uint8_t)s;
	}
	{
		uint16_t s = (uint16_t)~rfc1071(b, 20, 0);

		b[10] = (uint8_t)(s >> 8);
		b[11] = (uint8_t)s;
	}
	return len;
}

static void test_strip(void)
{
	uint8_t b[256];
	size_t len = udp4(b, "192.0.2.2", "192.0.2.1", "hello", 1), hl = 0;
	uint8_t proto = 0;

	tap_ok(l4_ok(b, len) && ip_ok(b), "the test's own UDP packet has valid checksums");
	tap_ok(us_transport_strip(b, len, &hl, &proto) == 0 && hl == 20 && proto == 17,
	       "a whole IPv4 datagram: the payload starts at 20, protocol 17");
	b[0] = 0x46;
	b[2] = 0;
	b[3] = (uint8_t)(len + 4);
	memmove(b + 24, b + 20, len - 20);
	tap_ok(us_transport_strip(b, len + 4, &hl, &proto) == 0 && hl == 24, "IP options: the payload starts after them");
	len = udp4(b, "192.0.2.2", "192.0.2.1", "hello", 1);
	b[6] = 0x20;	/* more fragments */
	tap_is_int(us_transport_strip(b, len, &hl, &proto), -EMSGSIZE, "a first fragment is refused");
	b[6] = 0x00;
	b[7] = 0x10;	/* offset 128 */
	tap_is_int(us_transport_strip(b, len, &hl, &proto), -EMSGSIZE, "a later fragment is refused");
	b[7] = 0;
	b[6] = 0x40;	/* DF alone is fine */
	tap_is_int(us_transport_strip(b, len, &hl, &proto), 0, "DF alone is fine");
	tap_is_int(us_transport_strip(b, len - 1, &hl, &proto), -EINVAL, "a length that disagrees with the header is refused");
	tap_is_int(us_transport_strip(b, 19, &hl, &proto), -EINVAL, "19 bytes are no IPv4 header");
	b[0] = 0x4f;
	tap_is_int(us_transport_strip(b, len, &hl, &proto), -EINVAL, "a header length beyond the packet is refused");
	b[0] = 0x44;
	tap_is_int(us_transport_strip(b, len, &hl, &proto), -EINVAL, "a header length under 20 is refused");
	b[0] = 0x60;
	tap_is_int(us_transport_strip(b, len, &hl, &proto), -EPROTONOSUPPORT, "IPv6 is not carried in transport mode");
	tap_is_int(us_transport_strip(b, 0, &hl, &proto), -EINVAL, "an empty packet is refused");
}

static void test_rebuild(void)
{
	uint8_t sent[256], buf[256], me[4], gw[4];
	size_t len = udp4(sent, "198.51.100.7", "10.77.0.9", "over transport", 1), out = 0;

	/* The gateway computed its checksum for 198.51.100.7 -> 10.77.0.9 (its view behind a NAT);
	 * this host is 192.0.2.2 and knows the gateway as 203.0.113.9. */
	inet_pton(AF_INET, "203.0.113.9", gw);
	inet_pton(AF_INET, "192.0.2.2", me);
	memcpy(buf + US_TRANSPORT_HDR, sent + 20, len - 20);
	tap_ok(us_transport_rebuild(buf, len - 20, gw, me, 17, 0x1234, &out) == 0 && out == len,
	       "a UDP payload gets a 20-byte header back");
	tap_ok(buf[0] == 0x45 && buf[9] == 17 && memcmp(buf + 12, gw, 4) == 0 && memcmp(buf + 16, me, 4) == 0 &&
	       buf[4] == 0x12 && buf[5] == 0x34 && buf[8] > 0, "version, protocol, addresses, ID and TTL are set");
	tap_ok(ip_ok(buf), "the IP header checksum verifies");
	tap_ok(l4_ok(buf, out), "the UDP checksum verifies for the addresses as this host sees them");
	tap_ok(memcmp(buf + 28, "over transport", 14) == 0 && buf[20] == 0x13 && buf[21] == 0x88,
	       "ports and data are untouched");

	len = udp4(sent, "198.51.100.7", "10.77.0.9", "no checksum", 0);
	memcpy(buf + US_TRANSPORT_HDR, sent + 20, len - 20);
	tap_ok(us_transport_rebuild(buf, len - 20, gw, me, 17, 1, &out) == 0 && buf[26] == 0 && buf[27] == 0,
	       "a UDP datagram sent without a checksum keeps none");
	buf[US_TRANSPORT_HDR + 5]++;	/* UDP length one more than the payload */
	tap_is_int(us_transport_rebuild(buf, len - 20, gw, me, 17, 1, &out), -EINVAL,
		   "a UDP length that disagrees with the payload is refused");
	tap_is_int(us_transport_rebuild(buf, 7, gw, me, 17, 1, &out), -EINVAL, "7 bytes are no UDP header");

	{
		uint8_t tcp[40] = { 0 };

		tcp[0] = 0x04;	/* 1234 -> 80, SYN, data offset 5 */
		tcp[1] = 0xd2;
		tcp[3] = 80;
		tcp[12] = 0x50;
		tcp[13] = 0x02;
		tcp[16] = 0xde;	/* a checksum for other addresses */
		tcp[17] = 0xad;
		memcpy(buf + US_TRANSPORT_HDR, tcp, 20);
		tap_ok(us_transport_rebuild(buf, 20, gw, me, 6, 2, &out) == 0 && out == 40 && l4_ok(buf, out),
		       "a TCP segment's checksum is computed anew and verifies");
		tcp[12] = 0x60;	/* data offset 6: 24 bytes of header in a 20-byte payload */
		memcpy(buf + US_TRANSPORT_HDR, tcp, 20);
		tap_is_int(us_transport_rebuild(buf, 20, gw, me, 6, 2, &out), -EINVAL,
			   "a TCP header longer than the payload is refused");
		tap_is_int(us_transport_rebuild(buf, 19, gw, me, 6, 2, &out), -EINVAL, "19 bytes are no TCP header");
	}
	{
		uint8_t icmp[8] = { 8, 0, 0xf7, 0xfe, 0, 1, 0, 0 };

		memcpy(buf + US_TRANSPORT_HDR, icmp, sizeof(icmp));
		tap_ok(us_transport_rebuild(buf, sizeof(icmp), gw, me, 1, 3, &out) == 0 &&
		       memcmp(buf + US_TRANSPORT_HDR, icmp, sizeof(icmp)) == 0 && ip_ok(buf),
		       "ICMP (no pseudo-header) is left as it came");
	}
	tap_is_int(us_transport_rebuild(buf, 0xffff - 19, gw, me, 1, 3, &out), -EINVAL,
		   "a payload that cannot fit one IPv4 datagram is refused");
}

int main(void)
{
	test_strip();
	test_rebuild();
	return tap_done_testing();
}

/* Transport mode for the userspace datapath (RFC 4303 section 3.1.1), IPv4: ESP protects the
 * payload of the hosts' own packets; the IP header is not carried but rebuilt on arrival. */
#ifndef BURROW_US_TRANSPORT_H
#define BURROW_US_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#define US_TRANSPORT_HDR 20	/* the IPv4 header us_transport_rebuild writes */

/* An outbound IPv4 packet of exactly len bytes: where its payload starts and its protocol.
 * -EPROTONOSUPPORT for IPv6, -EMSGSIZE for a fragment (transport mode carries whole
 * datagrams only), -EINVAL for a malformed header. */
int us_transport_strip(const uint8_t *pkt, size_t len, size_t *hdr_len, uint8_t *proto);

/* An inbound payload of payload_len bytes at buf + US_TRANSPORT_HDR gets an IPv4 header from
 * src to dst with protocol proto; TCP and UDP checksums are computed anew (the sender's
 * pseudo-header may have held addresses a NAT changed, RFC 3948 3.1.2). A TCP or UDP payload
 * too short for its header, or a UDP length that disagrees, is -EINVAL. *out_len is the
 * packet's length. */
int us_transport_rebuild(uint8_t *buf, size_t payload_len, const uint8_t src[4], const uint8_t dst[4],
			 uint8_t proto, uint16_t ip_id, size_t *out_len);

#endif

/* What IKEv1 phase 1 offers the gateway, built from the configuration alone: the header, the SA
 * payload and the vendor IDs of Main Mode 1 and Aggressive Mode 1 (ikev1_p1.c). The engine
 * builds its messages with these, and so does burrow doctor's probe, without an engine. */
#ifndef BURROW_IKEV1_OFFER_H
#define BURROW_IKEV1_OFFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "ike/ike_cert.h"
#include "ike/isakmp.h"

struct ike_p1_offer {
	const struct bw_p1_proposal *proposals;
	size_t n_proposals;
	uint32_t lifetime_s;
	uint16_t auth_method;		/* ISAKMP_AUTH_*, with XAUTH folded in */
	bool natt, xauth, unity;	/* vendor IDs announced: RFC 3947, XAUTH, Cisco Unity */
};

/* The offer of cfg; cert is our certificate for rsa/ecdsa authentication, else NULL. */
void ike_p1_offer_init(struct ike_p1_offer *o, const struct bw_conn_config *cfg, const struct bw_cert_creds *cert);
void ike_p1_hdr(struct isakmp_hdr *h, const uint8_t icookie[8], const uint8_t rcookie[8], uint8_t exchange,
		uint32_t msgid, uint8_t flags);
/* One ISAKMP proposal with a transform per configured phase-1 proposal. */
int ike_p1_put_sa(struct isakmp_builder *b, const struct ike_p1_offer *o);
/* NAT-T (RFC 3947), DPD, XAUTH and Cisco Unity as the offer says. */
int ike_p1_put_vids(struct isakmp_builder *b, const struct ike_p1_offer *o);

#endif

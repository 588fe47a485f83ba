/* Aggressive Mode (RFC 2409 section 5) as initiator with a pre-shared key: three messages,
 * identities in the clear. States: SENT1 -> DONE (the third message is ours and final). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ikev1.h"
#include "log.h"

int ike_aggr_start(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;

	/* Aggressive Mode can offer one DH group only: the KE goes with the proposal. */
	ike->sa.alg = ike->cfg.p1_proposals[0];
	if (ike_p1_new_dh(ike) != 0 || bw_random(ike->p1x.ni, IKE_NONCE_LEN) != 0)
		return -1;
	ike_hdr_init(ike, &h, ISAKMP_EXCH_AGGRESSIVE, 0, 0);
	if (isakmp_b_init(&b, &h) != 0 || ike_p1_build_sa(ike, &b) != 0 ||
	    isakmp_b_ke(&b, ike->p1x.gxi, ike->p1x.gx_len) != 0 || isakmp_b_nonce(&b, ike->p1x.ni, IKE_NONCE_LEN) != 0 ||
	    ike_p1_build_id(ike, &b) != 0 || ike_p1_build_vids(ike, &b) != 0 || isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		if (ike->sa.p1 != P1_IDLE)
			ike_fail(ike, "internal", "cannot build the first Aggressive Mode message", NULL);
		return -1;
	}
	ike->sa.p1 = P1_AM_SENT1;
	snprintf(ike->last_step, sizeof(ike->last_step), "waiting for the answer to our proposals");
	ike_log(ike, BW_LOG_DEBUG, "Aggressive Mode 1: sending SA, KE, nonce and identity");
	return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
}

void ike_aggr_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct isakmp_payloads pls;
	struct isakmp_builder b;
	struct isakmp_hdr oh;
	struct isakmp_blob hr;
	uint8_t want[BW_HASH_MAX], hash[BW_HASH_MAX];
	int si, ii, hi;

	if (ike->sa.p1 != P1_AM_SENT1 || h->flags & ISAKMP_FLAG_ENC ||
	    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0)
		return;
	si = isakmp_payloads_find(&pls, ISAKMP_PL_SA, 0);
	ii = isakmp_payloads_find(&pls, ISAKMP_PL_ID, 0);
	hi = isakmp_payloads_find(&pls, ISAKMP_PL_HASH, 0);
	if (si < 0 || ii < 0 || hi < 0 || isakmp_parse_hash(&pls.p[hi], &hr) != 0)
		return;
	ike_rexmit_stop(ike);
	memcpy(ike->sa.rcookie, h->rcookie, 8);
	if (ike_p1_accept_sa(ike, &pls.p[si]) != 0)
		return;
	if (ike->sa.alg.dh != ike->cfg.p1_proposals[0].dh) {
		ike_fail(ike, "protocol-error", "the gateway chose a DH group other than the one of our key exchange",
			 "In Aggressive Mode all proposals must use the DH group of the first one.");
		return;
	}
	ike_p1_note_vids(ike, &pls);
	if (ike_p1_take_ke_nonce(ike, &pls) != 0) {
		ike_fail(ike, "protocol-error", "the gateway's answer lacks a valid key exchange or nonce", NULL);
		return;
	}
	ike_p1_check_natd(ike, &pls);
	if (ike_p1_derive_keys(ike) != 0) {
		ike_fail(ike, "protocol-error", "key derivation failed with the gateway's key exchange", NULL);
		return;
	}
	if (ike_p1_hash(ike, false, pls.p[ii].data, pls.p[ii].len, want) != 0 || hr.len != ike->sa.prf_len ||
	    !bw_crypto_equal(want, hr.data, ike->sa.prf_len)) {
		ike_failf(ike, "auth-failed", "the gateway's authentication hash does not match",
			 "The gateway proved a different pre-shared key than ours, or expects another identity "
			 "from us. Check the psk in %s/secrets/%s.secrets and local_id/local_id_type.", ike_config_dir(ike), ike->cfg.name);
		return;
	}
	if (ike_p1_check_peer_id(ike, &pls.p[ii]) != 0)
		return;
	ike_float(ike);

	/* Message 3: HASH_I and our NAT-D, encrypted (as strongSwan and Cisco expect). */
	ike_hdr_init(ike, &oh, ISAKMP_EXCH_AGGRESSIVE, 0, ISAKMP_FLAG_ENC);
	if (ike_p1_hash(ike, true, ike->p1x.idii_b, ike->p1x.idii_b_len, hash) != 0 || isakmp_b_init(&b, &oh) != 0 ||
	    isakmp_b_hash(&b, hash, ike->sa.prf_len) != 0 || ike_p1_build_natd(ike, &b) != 0 ||
	    ike_encrypt_msg(ike, &b, ike->sa.iv) != 0) {
		isakmp_b_free(&b);
		ike_fail(ike, "internal", "cannot build Aggressive Mode message 3", NULL);
		return;
	}
	ike_log(ike, BW_LOG_DEBUG, "Aggressive Mode 3: sending HASH_I");
	ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
	ike_keep_final(ike, ISAKMP_EXCH_AGGRESSIVE, 0, isakmp_b_buf(&b), isakmp_b_len(&b));
	isakmp_b_free(&b);
	ike_phase1_done(ike);
}

/* Main Mode (RFC 2409 section 5) as initiator with a pre-shared key or signatures: six messages, the last
 * two encrypted, identities protected. States: SENT1 -> SENT3 -> SENT5 -> DONE. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ikev1.h"
#include "log.h"

int ike_main_start(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;

	ike_hdr_init(ike, &h, ISAKMP_EXCH_MAIN, 0, 0);
	if (isakmp_b_init(&b, &h) != 0 || ike_p1_build_sa(ike, &b) != 0 || ike_p1_build_vids(ike, &b) != 0 ||
	    isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		ike_fail(ike, "internal", "cannot build the first Main Mode message", NULL);
		return -1;
	}
	ike->sa.p1 = P1_MM_SENT1;
	snprintf(ike->last_step, sizeof(ike->last_step), "waiting for the answer to our proposals");
	ike_log(ike, BW_LOG_DEBUG, "Main Mode 1: sending SA with %zu transform(s)", ike->cfg.n_p1_proposals);
	return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
}

static int send3(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;

	if (ike_p1_new_dh(ike) != 0 || bw_random(ike->p1x.ni, IKE_NONCE_LEN) != 0)
		return -1;
	ike_hdr_init(ike, &h, ISAKMP_EXCH_MAIN, 0, 0);
	if (isakmp_b_init(&b, &h) != 0 || isakmp_b_ke(&b, ike->p1x.gxi, ike->p1x.gx_len) != 0 ||
	    isakmp_b_nonce(&b, ike->p1x.ni, IKE_NONCE_LEN) != 0 || ike_p1_build_cr(ike, &b) != 0 ||
	    ike_p1_build_natd(ike, &b) != 0 || isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		ike_fail(ike, "internal", "cannot build Main Mode message 3", NULL);
		return -1;
	}
	ike->sa.p1 = P1_MM_SENT3;
	snprintf(ike->last_step, sizeof(ike->last_step), "waiting for the gateway's key exchange");
	ike_log(ike, BW_LOG_DEBUG, "Main Mode 3: sending KE (%zu bytes) and nonce", ike->p1x.gx_len);
	return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
}

static int send5(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;
	uint8_t hash[BW_HASH_MAX];

	ike_hdr_init(ike, &h, ISAKMP_EXCH_MAIN, 0, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) != 0 || ike_p1_build_id(ike, &b) != 0)
		goto fail;
	if (ike_p1_hash(ike, true, ike->p1x.idii_b, ike->p1x.idii_b_len, hash) != 0)
		goto fail;
	/* Certificates: CERT and SIG over HASH_I take the place of the HASH payload. */
	if (ike->sa.cert ? ike_p1_build_cert_sig(ike, &b, hash) != 0 : isakmp_b_hash(&b, hash, ike->sa.prf_len) != 0)
		goto fail;
	/* INITIAL-CONTACT tells the gateway to drop SAs of an earlier run of ours (RFC 2407 4.6.3.3);
	 * never while re-authenticating: the SAs it would drop are the ones carrying traffic. */
	if (!ike->reauth.of) {
		struct isakmp_notify n = { .doi = ISAKMP_DOI_IPSEC, .proto = ISAKMP_PROTO_ISAKMP,
					   .spi_size = 16, .type = ISAKMP_N_INITIAL_CONTACT };

		memcpy(n.spi, ike->sa.icookie, 8);
		memcpy(n.spi + 8, ike->sa.rcookie, 8);
		if (isakmp_b_notify(&b, &n) != 0)
			goto fail;
	}
	if (ike_encrypt_msg(ike, &b, ike->sa.iv) != 0)
		goto fail;
	ike->sa.p1 = P1_MM_SENT5;
	snprintf(ike->last_step, sizeof(ike->last_step), "waiting for the gateway to authenticate");
	ike_log(ike, BW_LOG_DEBUG, "Main Mode 5: sending identity and HASH_I (encrypted)");
	return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
fail:
	isakmp_b_free(&b);
	ike_fail(ike, "internal", "cannot build Main Mode message 5", NULL);
	return -1;
}

void ike_main_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct isakmp_payloads pls;
	uint8_t iv[BW_IKE_BLOCK_MAX];

	switch (ike->sa.p1) {
	case P1_MM_SENT1:
		if (h->flags & ISAKMP_FLAG_ENC ||
		    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0)
			return;
		if (isakmp_payloads_find(&pls, ISAKMP_PL_SA, 0) < 0)
			return;
		ike_rexmit_stop(ike);
		memcpy(ike->sa.rcookie, h->rcookie, 8);
		if (ike_p1_accept_sa(ike, &pls.p[isakmp_payloads_find(&pls, ISAKMP_PL_SA, 0)]) != 0)
			return;
		ike_p1_note_vids(ike, &pls);
		send3(ike);
		return;
	case P1_MM_SENT3:
		if (h->flags & ISAKMP_FLAG_ENC ||
		    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0 ||
		    ike_p1_take_ke_nonce(ike, &pls) != 0)
			return;
		ike_rexmit_stop(ike);
		ike_p1_check_natd(ike, &pls);
		if (ike_p1_derive_keys(ike) != 0) {
			ike_fail(ike, "protocol-error", "key derivation failed with the gateway's key exchange",
				 "The gateway sent a key exchange value that is not valid for the group. Check the "
				 "gateway's DH group configuration.");
			return;
		}
		ike_float(ike);
		send5(ike);
		return;
	case P1_MM_SENT5: {
		int ii, hi;
		struct isakmp_blob hr;
		uint8_t want[BW_HASH_MAX];

		if (!(h->flags & ISAKMP_FLAG_ENC))
			return;
		memcpy(iv, ike->sa.iv, sizeof(iv));
		if (ike_decrypt_msg(ike, msg, len, iv) != 0 ||
		    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0) {
			ike_log(ike, BW_LOG_DEBUG, "Main Mode 6 does not decrypt to a valid message; ignored");
			return;
		}
		ii = isakmp_payloads_find(&pls, ISAKMP_PL_ID, 0);
		if (ike->sa.cert && ii >= 0) {
			ike_rexmit_stop(ike);
			memcpy(ike->sa.iv, iv, sizeof(iv));
			if (ike_p1_check_peer_cert(ike, &pls, ii) == 0)
				ike_phase1_done(ike);
			return;
		}
		hi = isakmp_payloads_find(&pls, ISAKMP_PL_HASH, 0);
		if (ii < 0 || hi < 0 || isakmp_parse_hash(&pls.p[hi], &hr) != 0)
			return;
		ike_rexmit_stop(ike);
		memcpy(ike->sa.iv, iv, sizeof(iv));
		if (ike_p1_hash(ike, false, pls.p[ii].data, pls.p[ii].len, want) != 0 || hr.len != ike->sa.prf_len ||
		    !bw_crypto_equal(want, hr.data, ike->sa.prf_len)) {
			ike_failf(ike, "auth-failed", "the gateway's authentication hash does not match",
				 "The gateway proved a different pre-shared key than ours. Check the psk in "
				 "%s/secrets/%s.secrets against the gateway's.", ike_config_dir(ike), ike->cfg.name);
			return;
		}
		ike->sa.authenticated = true;
		if (ike_p1_check_peer_id(ike, &pls.p[ii]) != 0)
			return;
		ike_phase1_done(ike);
		return;
	}
	default:
		return;
	}
}

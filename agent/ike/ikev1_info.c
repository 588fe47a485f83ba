/* Informational exchanges (RFC 2408 4.8, RFC 2409 5.7): protected notifications and deletes,
 * DPD (RFC 3706) answers, and the unprotected error notifications of a failing phase 1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ikev1.h"
#include "log.h"

/* Sends HDR*, HASH(1), one N or D payload, in a new exchange with a random message ID. */
static int send_info(struct bw_ike_conn *ike, const struct isakmp_notify *n, const struct isakmp_delete *d)
{
	struct ike_exchange x = { 0 };	/* one message, no answer: it ends here */
	struct isakmp_builder b;
	struct isakmp_hdr h;
	size_t off, len;
	int rc = -1;

	if (ike->sa.p1 != P1_DONE && !ike->sa.authenticated)
		return -1;
	if (ike_exchange_begin(ike, &x) != 0)
		return -1;
	ike_hdr_init(ike, &h, ISAKMP_EXCH_INFO, x.msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) != 0)
		return -1;
	isakmp_b_hash_reserve(&b, ike->sa.prf_len, &off);
	if (n)
		isakmp_b_notify(&b, n);
	else
		isakmp_b_delete(&b, d);
	if (isakmp_b_finish(&b) == 0) {
		len = isakmp_b_len(&b);
		bw_ike_info_hash(ike->sa.alg.hash, ike->sa.skeyid_a, x.msgid, isakmp_b_buf(&b) + off + ike->sa.prf_len,
				 len - off - ike->sa.prf_len, isakmp_b_buf(&b) + off);
		if (ike_encrypt_msg(ike, &b, x.iv) == 0)
			rc = ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
	}
	isakmp_b_free(&b);
	return rc;
}

int ike_info_send_delete(struct bw_ike_conn *ike, uint8_t proto, const uint8_t *spi, size_t spi_size)
{
	struct isakmp_delete d = { .doi = ISAKMP_DOI_IPSEC, .proto = proto, .spi_size = (uint8_t)spi_size,
				   .n_spis = 1, .spis = spi };

	return send_info(ike, NULL, &d);
}

int ike_info_send_notify(struct bw_ike_conn *ike, uint16_t type, const uint8_t *spi, size_t spi_size,
			 const uint8_t *data, size_t len)
{
	struct isakmp_notify n = { .doi = ISAKMP_DOI_IPSEC, .proto = ISAKMP_PROTO_ISAKMP,
				   .spi_size = (uint8_t)spi_size, .type = type, .data = data, .len = len };

	memcpy(n.spi, spi, spi_size);
	return send_info(ike, &n, NULL);
}

/* An error the gateway reports during negotiation, in plain English. */
static void notify_failure(struct bw_ike_conn *ike, uint16_t type)
{
	char err[160], exp[700], offered[400] = "", one[64];
	bool p2 = ike->sa.p1 == P1_DONE;

	if (p2) {
		for (size_t i = 0; i < ike->cfg.n_p2_proposals; i++) {
			bw_p2_proposal_format(&ike->cfg.p2_proposals[i], one, sizeof(one));
			snprintf(offered + strlen(offered), sizeof(offered) - strlen(offered), "%s%s", i ? ", " : "", one);
		}
		if (ike->cfg.pfs != BW_DH_NONE)
			snprintf(offered + strlen(offered), sizeof(offered) - strlen(offered), "; PFS %s",
				 bw_dh_group_name(ike->cfg.pfs));
	} else
		for (size_t i = 0; i < ike->cfg.n_p1_proposals; i++) {
			bw_p1_proposal_format(&ike->cfg.p1_proposals[i], one, sizeof(one));
			snprintf(offered + strlen(offered), sizeof(offered) - strlen(offered), "%s%s", i ? ", " : "", one);
		}
	switch (type) {
	case ISAKMP_N_NO_PROPOSAL_CHOSEN:
		snprintf(err, sizeof(err), "the gateway accepted none of our phase-%d proposals", p2 ? 2 : 1);
		snprintf(exp, sizeof(exp),
			 "The gateway accepted none of the phase-%d proposals we offered (%s). Ask its admin which "
			 "algorithms it allows and set [phase%d] proposals%s, or pick the gateway's device profile "
			 "(burrow devices).", p2 ? 2 : 1, offered, p2 ? 2 : 1, p2 ? " and pfs" : "");
		ike_fail(ike, p2 ? "no-proposal-chosen-phase2" : "no-proposal-chosen", err, exp);
		return;
	case ISAKMP_N_INVALID_ID_INFORMATION:
		snprintf(err, sizeof(err), "the gateway refused our %s", p2 ? "traffic selectors" : "identity");
		if (p2)
			snprintf(exp, sizeof(exp), "The gateway does not accept the networks we asked for. Check that "
				 "remote_networks (and local_address or local_networks) match what the gateway "
				 "allows for this client.");
		else
			snprintf(exp, sizeof(exp), "The gateway does not know our identity. Check local_id_type and "
				 "local_id against the gateway's configuration.");
		ike_fail(ike, p2 ? "ts-unacceptable" : "id-refused", err, exp);
		return;
	case ISAKMP_N_AUTHENTICATION_FAILED:
	case ISAKMP_N_INVALID_HASH_INFORMATION:
	case ISAKMP_N_INVALID_SIGNATURE:
		ike_failf(ike, "auth-failed", "the gateway rejected our authentication",
			 "The gateway could not verify us: the pre-shared key or our identity is not what it "
			 "expects. Check the psk in %s/secrets/%s.secrets and local_id.", ike_config_dir(ike), ike->cfg.name);
		return;
	case ISAKMP_N_PAYLOAD_MALFORMED:
		if (ike->sa.p1 == P1_MM_SENT5) {
			ike_failf(ike, "auth-failed", "the gateway could not read our authentication message",
				 "The gateway could not decrypt our identity message, which means its pre-shared "
				 "key differs from ours. Check the psk in %s/secrets/%s.secrets.", ike_config_dir(ike), ike->cfg.name);
			return;
		}
		break;
	default:
		break;
	}
	snprintf(err, sizeof(err), "the gateway reported %s", isakmp_notify_name(type));
	snprintf(exp, sizeof(exp), "The gateway ended the negotiation with the error %s. Its log says more.",
		 isakmp_notify_name(type));
	ike_fail(ike, "gateway-error", err, exp);
}

static void handle_notify(struct bw_ike_conn *ike, const struct isakmp_notify *n, bool authentic)
{
	ike_log(ike, BW_LOG_DEBUG, "gateway notification %s", isakmp_notify_name(n->type));
	if (n->type == ISAKMP_N_DPD_R_U_THERE && authentic) {
		if (n->len == 4)
			ike_info_send_notify(ike, ISAKMP_N_DPD_R_U_THERE_ACK, n->spi, n->spi_size, n->data, 4);
		return;
	}
	if (n->type == ISAKMP_N_DPD_R_U_THERE_ACK && authentic) {
		if (n->len == 4)
			ike_dpd_ack(ike, (uint32_t)n->data[0] << 24 | (uint32_t)n->data[1] << 16 |
					 (uint32_t)n->data[2] << 8 | n->data[3]);
		return;
	}
	if (n->type < 8192 && ike->sa.p1 != P1_IDLE)
		notify_failure(ike, n->type);
}

/* The notifications and deletes of one Informational message, in order. */
static void handle_payloads(struct bw_ike_conn *ike, const struct isakmp_payloads *pls, bool authentic)
{
	for (size_t i = 0; i < pls->n; i++) {
		if (pls->p[i].type == ISAKMP_PL_N) {
			struct isakmp_notify n;

			if (isakmp_parse_notify(&pls->p[i], &n) == 0)
				handle_notify(ike, &n, authentic);
		} else if (pls->p[i].type == ISAKMP_PL_D && authentic) {
			struct isakmp_delete d;

			if (isakmp_parse_delete(&pls->p[i], &d) != 0)
				continue;
			if (d.proto == ISAKMP_PROTO_ISAKMP) {
				ike_peer_deleted(ike, "the IKE SA");
				return;
			}
			for (uint16_t k = 0; k < d.n_spis && d.proto == ISAKMP_PROTO_ESP && d.spi_size == 4; k++)
				for (size_t c = 0; c < ike->children.n; c++)
					if (memcmp(ike->children.sa[c].spi_out, d.spis + 4 * k, 4) == 0 &&
					    ike->children.sa[c].installed) {
						ike_peer_deleted(ike, "an IPsec SA");
						return;
					}
		}
		if (ike->sa.p1 == P1_IDLE)
			return;	/* the connection was torn down by what we just handled */
	}
}

/* A protected Informational message: handled when it is authentic. */
static void info_protected(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_msg m;
	int rc;

	if (ike->sa.p1 != P1_DONE && ike->sa.p1 != P1_MM_SENT5)
		return;
	rc = ike_msg_open(ike, h, msg, len, IKE_MSG_INFO, NULL, &m);
	ike_msg_close(&m);
	if (rc != IKE_OPEN_OK && ike->sa.p1 == P1_MM_SENT5) {
		/* The gateway answers our identity message with a notification under its own
		 * keys. When those are not ours, it derived them from another pre-shared key:
		 * it could not read us either (strongSwan sends PAYLOAD-MALFORMED here). */
		ike_failf(ike, "auth-failed", "the gateway could not read our authentication message",
			 "The gateway could not decrypt our identity message, and we cannot decrypt its "
			 "answer: the two sides derived different keys, which means the pre-shared key "
			 "differs from the gateway's. Check the psk in %s/secrets/%s.secrets.", ike_config_dir(ike), ike->cfg.name);
		return;
	}
	if (rc != IKE_OPEN_OK) {
		ike_log(ike, BW_LOG_WARN, "Informational message that does not decrypt or has a wrong hash ignored");
		return;
	}
	ike_seen_peer(ike);
	handle_payloads(ike, &m.pls, true);
}

void ike_info_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct isakmp_payloads pls;

	if (h->flags & ISAKMP_FLAG_ENC) {
		info_protected(ike, h, msg, len);
		return;
	}
	/* Unprotected: believable only while phase 1 is still being negotiated. */
	if (ike->sa.p1 == P1_DONE || ike->sa.p1 == P1_IDLE ||
	    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0)
		return;
	handle_payloads(ike, &pls, false);
}

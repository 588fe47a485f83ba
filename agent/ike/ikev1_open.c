/* Opening a protected message after phase 1 (Quick Mode, Informational, transactions): one
 * place decrypts it with the exchange's IV, checks its HASH as the exchange requires, refuses
 * payloads that are repeated or do not belong to the exchange, and fills struct ike_msg. */
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "ike/ikev1.h"

/* How many of each payload type may follow the HASH; types not listed are refused. */
struct pl_rule {
	uint8_t type;
	uint8_t max;
};

#define ANY ISAKMP_MAX_PAYLOADS

/* Quick Mode 1 and 2: SA, nonce [, KE] [, IDci, IDcr] [, notifications] [, NAT-OA]. */
static const struct pl_rule quick_rules[] = {
	{ ISAKMP_PL_SA, 1 }, { ISAKMP_PL_NONCE, 1 }, { ISAKMP_PL_KE, 1 }, { ISAKMP_PL_ID, 2 },
	{ ISAKMP_PL_N, ANY }, { ISAKMP_PL_NATOA, 2 }, { ISAKMP_PL_NATOA_DRAFT, 2 }, { 0, 0 },
};
static const struct pl_rule hash3_rules[] = { { 0, 0 } };
static const struct pl_rule notify_rules[] = { { ISAKMP_PL_N, ANY }, { 0, 0 } };
static const struct pl_rule info_rules[] = { { ISAKMP_PL_N, ANY }, { ISAKMP_PL_D, ANY }, { 0, 0 } };
static const struct pl_rule txn_rules[] = { { ISAKMP_PL_ATTR, 1 }, { 0, 0 } };

/* Per kind: its rules and how many payloads must follow the HASH. */
static const struct {
	const struct pl_rule *rules;
	size_t min_after;
} kinds[] = {
	[IKE_MSG_QM1] = { quick_rules, 2 },
	[IKE_MSG_QM2] = { quick_rules, 1 },
	[IKE_MSG_QM3] = { hash3_rules, 0 },
	[IKE_MSG_QM4] = { notify_rules, 1 },
	[IKE_MSG_INFO] = { info_rules, 1 },
	[IKE_MSG_TXN] = { txn_rules, 1 },
};

static uint8_t rule_max(const struct pl_rule *r, uint8_t type)
{
	for (; r->type; r++)
		if (r->type == type)
			return r->max;
	return 0;
}

/* 0 when every payload after the HASH is allowed and none is repeated beyond its limit;
 * else -1 with the offending type in m->refused. */
static int check_shape(enum ike_msg_kind kind, struct ike_msg *m)
{
	const struct pl_rule *rules = kinds[kind].rules;

	if (m->pls.n - 1 < kinds[kind].min_after)
		return -1;
	for (size_t i = 1; i < m->pls.n; i++) {
		uint8_t t = m->pls.p[i].type;

		if (isakmp_payloads_count(&m->pls, t) > rule_max(rules, t)) {
			m->refused = t;
			return -1;
		}
	}
	return 0;
}

static int verify_hash(struct bw_ike_conn *ike, const struct isakmp_hdr *h, enum ike_msg_kind kind,
		       const struct ike_exchange *ex, const struct ike_msg *m, const struct isakmp_blob *hb)
{
	uint8_t want[BW_HASH_MAX];
	const uint8_t *rest = m->body + (m->pls.n > 1 ? m->pls.p[1].off : m->pls.used);
	size_t rest_len = m->pls.n > 1 ? m->pls.used - m->pls.p[1].off : 0;
	enum bw_hash hh = ike->sa.alg.hash;
	int rc;

	switch (kind) {
	case IKE_MSG_QM2:
		rc = bw_ike_qm_hash2(hh, ike->sa.skeyid_a, h->msgid, ex->ni, ex->ni_len, rest, rest_len, want);
		break;
	case IKE_MSG_QM3:
		rc = bw_ike_qm_hash3(hh, ike->sa.skeyid_a, h->msgid, ex->ni, ex->ni_len, ex->nr, ex->nr_len, want);
		break;
	case IKE_MSG_INFO:
		rc = bw_ike_info_hash(hh, ike->sa.skeyid_a, h->msgid, rest, rest_len, want);
		break;
	default:
		rc = bw_ike_qm_hash1(hh, ike->sa.skeyid_a, h->msgid, rest, rest_len, want);
		break;
	}
	return rc == 0 && bw_crypto_equal(want, hb->data, ike->sa.prf_len) ? 0 : -1;
}

/* The SA, nonce and KE payloads parsed; a malformed one is left absent. */
static int fill(struct ike_msg *m)
{
	int si = isakmp_payloads_find(&m->pls, ISAKMP_PL_SA, 0);
	int ni = isakmp_payloads_find(&m->pls, ISAKMP_PL_NONCE, 0);
	int ki = isakmp_payloads_find(&m->pls, ISAKMP_PL_KE, 0);
	int ii = isakmp_payloads_find(&m->pls, ISAKMP_PL_ID, 0);

	m->have_nonce = ni >= 0 && isakmp_parse_nonce(&m->pls.p[ni], &m->nonce) == 0;
	m->have_ke = ki >= 0 && isakmp_parse_ke(&m->pls.p[ki], &m->ke) == 0;
	m->attr = isakmp_payloads_find(&m->pls, ISAKMP_PL_ATTR, 0);
	if (ii >= 0) {
		int ir = isakmp_payloads_find(&m->pls, ISAKMP_PL_ID, (size_t)ii + 1);

		if (ir >= 0) {
			m->id_i = &m->pls.p[ii];
			m->id_r = &m->pls.p[ir];
		}
	}
	if (si < 0)
		return 0;
	m->sa = calloc(1, sizeof(*m->sa));
	if (!m->sa)
		return -1;
	if (isakmp_parse_sa(&m->pls.p[si], m->sa) != 0) {
		free(m->sa);
		m->sa = NULL;
	}
	return 0;
}

int ike_msg_open(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len,
		 enum ike_msg_kind kind, const struct ike_exchange *ex, struct ike_msg *m)
{
	struct isakmp_blob hb;

	memset(m, 0, sizeof(*m));
	m->attr = -1;
	m->body = msg + ISAKMP_HDR_LEN;
	if (!(h->flags & ISAKMP_FLAG_ENC))
		return IKE_OPEN_UNREADABLE;
	if ((kind == IKE_MSG_QM2 || kind == IKE_MSG_QM3) && !ex)
		return IKE_OPEN_UNREADABLE;	/* their HASH covers the exchange's nonces */
	if (ex)
		memcpy(m->iv, ex->iv, sizeof(m->iv));
	else
		bw_ike_iv_msgid(ike->sa.alg.hash, ike->sa.iv, ike->sa.block, h->msgid, m->iv);
	if (ike_decrypt_msg(ike, msg, len, m->iv) != 0 ||
	    isakmp_payloads_parse(h->np, m->body, len - ISAKMP_HDR_LEN, &m->pls) != 0 || m->pls.n < 1 ||
	    m->pls.p[0].type != ISAKMP_PL_HASH || isakmp_parse_hash(&m->pls.p[0], &hb) != 0 ||
	    hb.len != ike->sa.prf_len)
		return IKE_OPEN_UNREADABLE;
	if (check_shape(kind, m) != 0)
		return IKE_OPEN_MISPLACED;
	if (verify_hash(ike, h, kind, ex, m, &hb) != 0)
		return IKE_OPEN_BAD_HASH;
	if (fill(m) != 0)
		return IKE_OPEN_UNREADABLE;
	return IKE_OPEN_OK;
}

void ike_msg_close(struct ike_msg *m)
{
	free(m->sa);
	m->sa = NULL;
}

void ike_exchange_end(struct ike_exchange *ex)
{
	bw_dh_free(ex->dh);
	ex->dh = NULL;
	free(ex->sent);
	ex->sent = NULL;
	ex->sent_len = 0;
	ex->active = false;
	OPENSSL_cleanse(ex->gqm, sizeof(ex->gqm));
	ex->gqm_len = 0;
}

int ike_exchange_begin(struct bw_ike_conn *ike, struct ike_exchange *ex)
{
	do {
		if (bw_random(&ex->msgid, 4) != 0)
			return -1;
	} while (ex->msgid == 0);
	bw_ike_iv_msgid(ike->sa.alg.hash, ike->sa.iv, ike->sa.block, ex->msgid, ex->iv);
	return 0;
}

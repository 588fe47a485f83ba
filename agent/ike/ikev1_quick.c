/* Quick Mode (RFC 2409 section 5.5) as initiator: one IPsec SA pair per pair of traffic
 * selectors, optional PFS, RESPONDER-LIFETIME and the commit bit. States: SENT1 -> DONE. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "ike/ikev1.h"
#include "log.h"
#include "sa-backends/userspace/esp.h"

static struct isakmp_sa qm_sa;	/* 75 KiB; one Quick Mode at a time */

static void qm_attr(struct isakmp_transform *t, uint16_t type, uint64_t value)
{
	struct isakmp_attr *a = &t->attrs[t->n_attrs++];

	memset(a, 0, sizeof(*a));
	a->type = type;
	a->value = value;
}

static uint16_t encap_mode(const struct bw_ike_conn *ike)
{
	bool transport = ike->cfg.mode == BW_MODE_TRANSPORT;

	if (ike->floated)
		return transport ? ISAKMP_ENCAP_UDP_TRANSPORT : ISAKMP_ENCAP_UDP_TUNNEL;
	return transport ? ISAKMP_ENCAP_TRANSPORT : ISAKMP_ENCAP_TUNNEL;
}

static enum bw_dh_group pfs_group(const struct bw_ike_conn *ike)
{
	const struct bw_p2_proposal *p = &ike->cfg.p2_proposals[0];

	return p->dh != BW_DH_NONE ? p->dh : ike->cfg.pfs;
}

static size_t qm_id(const struct bw_cidr *c, uint8_t *out)
{
	out[1] = 0;
	out[2] = out[3] = 0;
	memcpy(out + 4, c->addr, 4);
	if (c->prefix == 32) {
		out[0] = ISAKMP_ID_IPV4_ADDR;
		return 8;
	}
	out[0] = ISAKMP_ID_IPV4_ADDR_SUBNET;
	uint32_t mask = c->prefix ? htonl(0xffffffffu << (32 - c->prefix)) : 0;
	memcpy(out + 8, &mask, 4);
	return 12;
}

static void ts_text(const struct bw_cidr *c, char *buf, size_t len)
{
	bw_cidr_format(c, buf, len);
}

int ike_quick_start(struct bw_ike_conn *ike)
{
	struct ike_child *ch = &ike->children[ike->qm_child];
	struct isakmp_proposal *p = &qm_sa.p[0];
	struct isakmp_builder b;
	struct isakmp_hdr h;
	enum bw_dh_group g = pfs_group(ike);
	uint8_t idc[16];
	size_t off, len, idlen;
	char l[64], r[64];

	bw_dh_free(ike->qm_dh);
	ike->qm_dh = NULL;
	do {
		if (bw_random(&ike->qm_msgid, 4) != 0)
			return -1;
	} while (ike->qm_msgid == 0);
	if (ch->rekeying) {
		memcpy(ch->old_spi_in, ch->spi_in, 4);
		memcpy(ch->old_spi_out, ch->spi_out, 4);
	}
	do {
		if (bw_random(ch->spi_in, 4) != 0)
			return -1;
	} while (ch->spi_in[0] == 0);	/* SPIs 1-255 are reserved (RFC 4303 2.1) */
	if (bw_random(ike->qm_ni, IKE_NONCE_LEN) != 0)
		return -1;

	memset(&qm_sa, 0, sizeof(qm_sa));
	qm_sa.doi = ISAKMP_DOI_IPSEC;
	qm_sa.situation = ISAKMP_SIT_IDENTITY_ONLY;
	qm_sa.n_proposals = 1;
	p->num = 1;
	p->proto = ISAKMP_PROTO_ESP;
	p->spi_size = 4;
	memcpy(p->spi, ch->spi_in, 4);
	for (size_t i = 0; i < ike->cfg.n_p2_proposals && i < ISAKMP_MAX_TRANSFORMS; i++) {
		const struct bw_p2_proposal *pp = &ike->cfg.p2_proposals[i];
		struct isakmp_transform *t = &p->t[p->n_transforms++];

		t->num = (uint8_t)(i + 1);
		t->id = (uint8_t)pp->encr;
		qm_attr(t, ISAKMP_P2_LIFE_TYPE, ISAKMP_LIFE_SECONDS);
		qm_attr(t, ISAKMP_P2_LIFE_DURATION, ike->cfg.p2_lifetime_s);
		qm_attr(t, ISAKMP_P2_ENCAP, encap_mode(ike));
		if (pp->auth != BW_ESP_AUTH_NONE)
			qm_attr(t, ISAKMP_P2_AUTH, pp->auth);
		if (pp->encr != BW_ESP_3DES)
			qm_attr(t, ISAKMP_P2_KEY_LENGTH, pp->key_bits);
		if (g != BW_DH_NONE)
			qm_attr(t, ISAKMP_P2_GROUP, g);
	}

	ike_hdr_init(ike, &h, ISAKMP_EXCH_QUICK, ike->qm_msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) != 0)
		return -1;
	isakmp_b_hash_reserve(&b, ike->prf_len, &off);
	isakmp_b_sa(&b, &qm_sa);
	isakmp_b_nonce(&b, ike->qm_ni, IKE_NONCE_LEN);
	if (g != BW_DH_NONE) {
		char err[160];
		uint8_t pub[BW_DH_PUBLIC_MAX];

		ike->qm_dh = bw_dh_new(g, err, sizeof(err));
		if (!ike->qm_dh || bw_dh_public(ike->qm_dh, pub, sizeof(pub)) != 0) {
			isakmp_b_free(&b);
			ike_fail(ike, "config", ike->qm_dh ? "cannot compute the PFS key exchange" : err, NULL);
			return -1;
		}
		isakmp_b_ke(&b, pub, bw_dh_public_len(g));
	}
	idlen = qm_id(&ch->local_ts, idc);
	isakmp_b_payload(&b, ISAKMP_PL_ID, idc, idlen);
	idlen = qm_id(&ch->remote_ts, idc);
	isakmp_b_payload(&b, ISAKMP_PL_ID, idc, idlen);
	if (isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		ike_fail(ike, "internal", "cannot build the Quick Mode message", NULL);
		return -1;
	}
	len = isakmp_b_len(&b);
	bw_ike_qm_hash1(ike->p1_alg.hash, ike->skeyid_a, ike->qm_msgid, isakmp_b_buf(&b) + off + ike->prf_len,
			len - off - ike->prf_len, isakmp_b_buf(&b) + off);
	bw_ike_iv_msgid(ike->p1_alg.hash, ike->p1_iv, ike->block, ike->qm_msgid, ike->qm_iv);
	if (ike_encrypt_msg(ike, &b, ike->qm_iv) != 0) {
		isakmp_b_free(&b);
		ike_fail(ike, "internal", "cannot encrypt the Quick Mode message", NULL);
		return -1;
	}
	ch->state = QM_SENT1;
	ch->installed = ch->rekeying;	/* while rekeying, the old pair keeps carrying traffic */
	ts_text(&ch->local_ts, l, sizeof(l));
	ts_text(&ch->remote_ts, r, sizeof(r));
	snprintf(ike->last_step, sizeof(ike->last_step), "waiting for Quick Mode for %s", r);
	ike_log(ike, BW_LOG_INFO, "Quick Mode: proposing %s <-> %s (%zu transform(s)%s)", l, r,
		ike->cfg.n_p2_proposals, g != BW_DH_NONE ? ", PFS" : "");
	return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
}

static uint64_t tattr(const struct isakmp_transform *t, uint16_t type, uint64_t dflt)
{
	const struct isakmp_attr *a = isakmp_attr_find(t->attrs, t->n_attrs, type);

	return a && a->has_value ? a->value : dflt;
}

static int qm_accept_sa(struct bw_ike_conn *ike, struct ike_child *ch, const struct isakmp_payload *pl)
{
	const struct isakmp_transform *t;
	const struct isakmp_proposal *p;

	if (isakmp_parse_sa(pl, &qm_sa) != 0 || qm_sa.n_proposals != 1 || qm_sa.p[0].n_transforms != 1 ||
	    qm_sa.p[0].proto != ISAKMP_PROTO_ESP || qm_sa.p[0].spi_size != 4)
		return -1;
	p = &qm_sa.p[0];
	t = &p->t[0];
	for (size_t i = 0; i < ike->cfg.n_p2_proposals; i++) {
		const struct bw_p2_proposal *pp = &ike->cfg.p2_proposals[i];

		if (t->id != pp->encr || tattr(t, ISAKMP_P2_AUTH, BW_ESP_AUTH_NONE) != pp->auth ||
		    (pp->encr != BW_ESP_3DES && tattr(t, ISAKMP_P2_KEY_LENGTH, 0) != pp->key_bits))
			continue;
		ch->alg = *pp;
		ch->alg.dh = pfs_group(ike);
		memcpy(ch->spi_out, p->spi, 4);
		ch->lifetime_s = ike->cfg.p2_lifetime_s;
		if (tattr(t, ISAKMP_P2_LIFE_TYPE, ISAKMP_LIFE_SECONDS) == ISAKMP_LIFE_SECONDS) {
			uint64_t life = tattr(t, ISAKMP_P2_LIFE_DURATION, ch->lifetime_s);

			if (life > 0 && life < ch->lifetime_s)
				ch->lifetime_s = (uint32_t)life;
		}
		return 0;
	}
	return -1;
}

static int install_child(struct bw_ike_conn *ike, struct ike_child *ch, const uint8_t *gqm, size_t gqm_len)
{
	struct bw_sa_params in = { 0 }, out = { 0 };
	size_t klen = bw_esp_keymat_len(&ch->alg);
	int rc = -1;

	if (klen == 0 || klen > sizeof(in.keymat))
		return -1;
	in.dir = BW_SA_IN;
	out.dir = BW_SA_OUT;
	in.spi = (uint32_t)ch->spi_in[0] << 24 | (uint32_t)ch->spi_in[1] << 16 | (uint32_t)ch->spi_in[2] << 8 | ch->spi_in[3];
	out.spi = (uint32_t)ch->spi_out[0] << 24 | (uint32_t)ch->spi_out[1] << 16 | (uint32_t)ch->spi_out[2] << 8 | ch->spi_out[3];
	in.alg = out.alg = ch->alg;
	in.mode = out.mode = ike->cfg.mode;
	in.local = out.local = ike->local;
	in.remote = out.remote = ike->peer;
	in.udp_encap = out.udp_encap = ike->floated;
	in.lifetime_s = out.lifetime_s = ch->lifetime_s + 60;	/* the IKE side rekeys before */
	in.keymat_len = out.keymat_len = klen;
	if (bw_ike_keymat(ike->p1_alg.hash, ike->skeyid_d, gqm, gqm_len, ISAKMP_PROTO_ESP, ch->spi_in,
			  ike->qm_ni, IKE_NONCE_LEN, ike->qm_nr, ike->qm_nr_len, in.keymat, klen) != 0 ||
	    bw_ike_keymat(ike->p1_alg.hash, ike->skeyid_d, gqm, gqm_len, ISAKMP_PROTO_ESP, ch->spi_out,
			  ike->qm_ni, IKE_NONCE_LEN, ike->qm_nr, ike->qm_nr_len, out.keymat, klen) != 0)
		goto out;
	if ((rc = ike->be->add_sa(ike->be_conn, &in)) != 0 || (rc = ike->be->add_sa(ike->be_conn, &out)) != 0 ||
	    (rc = ike->be->add_policy(ike->be_conn, &ch->local_ts, &ch->remote_ts, out.spi, in.spi)) != 0) {
		ike_log(ike, BW_LOG_ERROR, "the datapath refused the SA: %s", strerror(-rc));
		rc = -1;
		goto out;
	}
	ch->installed = true;
	rc = 0;
out:
	OPENSSL_cleanse(in.keymat, sizeof(in.keymat));
	OPENSSL_cleanse(out.keymat, sizeof(out.keymat));
	return rc;
}

static void send_hash3(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;
	uint8_t hash[BW_HASH_MAX];

	bw_ike_qm_hash3(ike->p1_alg.hash, ike->skeyid_a, ike->qm_msgid, ike->qm_ni, IKE_NONCE_LEN, ike->qm_nr,
			ike->qm_nr_len, hash);
	ike_hdr_init(ike, &h, ISAKMP_EXCH_QUICK, ike->qm_msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) == 0 && isakmp_b_hash(&b, hash, ike->prf_len) == 0 &&
	    ike_encrypt_msg(ike, &b, ike->qm_iv) == 0) {
		ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
		ike_keep_final(ike, ISAKMP_EXCH_QUICK, ike->qm_msgid, isakmp_b_buf(&b), isakmp_b_len(&b));
	}
	isakmp_b_free(&b);
}

void ike_quick_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_child *ch = &ike->children[ike->qm_child];
	struct isakmp_payloads pls;
	struct isakmp_blob hb, nonce, ke;
	uint8_t iv[BW_IKE_BLOCK_MAX], want[BW_HASH_MAX], gqm[BW_DH_PUBLIC_MAX];
	size_t gqm_len = 0, rest_off;
	const uint8_t *body = msg + ISAKMP_HDR_LEN;
	int si, ni, ki;
	char r[64];

	if (ch->state != QM_SENT1 || h->msgid != ike->qm_msgid || !(h->flags & ISAKMP_FLAG_ENC))
		return;
	memcpy(iv, ike->qm_iv, sizeof(iv));
	if (ike_decrypt_msg(ike, msg, len, iv) != 0 ||
	    isakmp_payloads_parse(h->np, msg + ISAKMP_HDR_LEN, len - ISAKMP_HDR_LEN, &pls) != 0 ||
	    pls.n < 2 || pls.p[0].type != ISAKMP_PL_HASH || isakmp_parse_hash(&pls.p[0], &hb) != 0 ||
	    hb.len != ike->prf_len) {
		ike_log(ike, BW_LOG_DEBUG, "Quick Mode answer does not decrypt to a valid message; ignored");
		return;
	}
	rest_off = pls.p[1].off;
	bw_ike_qm_hash2(ike->p1_alg.hash, ike->skeyid_a, ike->qm_msgid, ike->qm_ni, IKE_NONCE_LEN,
			body + rest_off, pls.used - rest_off, want);
	if (!bw_crypto_equal(want, hb.data, ike->prf_len)) {
		ike_log(ike, BW_LOG_WARN, "Quick Mode answer with a wrong HASH(2); ignored");
		return;
	}
	ike_rexmit_stop(ike);
	ike_seen_peer(ike);
	memcpy(ike->qm_iv, iv, sizeof(iv));
	ts_text(&ch->remote_ts, r, sizeof(r));

	si = isakmp_payloads_find(&pls, ISAKMP_PL_SA, 0);
	ni = isakmp_payloads_find(&pls, ISAKMP_PL_NONCE, 0);
	if (si < 0 || ni < 0 || isakmp_parse_nonce(&pls.p[ni], &nonce) != 0 || nonce.len > sizeof(ike->qm_nr) ||
	    qm_accept_sa(ike, ch, &pls.p[si]) != 0) {
		ike_fail(ike, "protocol-error", "the gateway's Quick Mode answer is not one of our proposals", NULL);
		return;
	}
	memcpy(ike->qm_nr, nonce.data, nonce.len);
	ike->qm_nr_len = nonce.len;
	if (ike->qm_dh) {
		ki = isakmp_payloads_find(&pls, ISAKMP_PL_KE, 0);
		gqm_len = sizeof(gqm);
		if (ki < 0 || isakmp_parse_ke(&pls.p[ki], &ke) != 0 ||
		    bw_dh_compute(ike->qm_dh, ke.data, ke.len, gqm, &gqm_len) != 0) {
			ike_fail(ike, "pfs-mismatch", "the gateway did not answer our PFS key exchange",
				 "The gateway does not use PFS, or another group. Set pfs in [phase2] to the "
				 "gateway's group, or to none.");
			return;
		}
	}
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_notify n;

		if (pls.p[i].type == ISAKMP_PL_N && isakmp_parse_notify(&pls.p[i], &n) == 0 &&
		    n.type == ISAKMP_N_RESPONDER_LIFETIME) {
			struct isakmp_attr attrs[8];
			size_t na = 0;

			if (isakmp_parse_attrs(n.data, n.len, attrs, 8, &na, 0, "RESPONDER-LIFETIME") == 0) {
				const struct isakmp_attr *d = isakmp_attr_find(attrs, na, ISAKMP_P2_LIFE_DURATION);
				const struct isakmp_attr *ty = isakmp_attr_find(attrs, na, ISAKMP_P2_LIFE_TYPE);

				if (d && d->has_value && (!ty || ty->value == ISAKMP_LIFE_SECONDS) && d->value &&
				    d->value < ch->lifetime_s)
					ch->lifetime_s = (uint32_t)d->value;
			}
			ike_log(ike, BW_LOG_INFO, "gateway set the SA lifetime to %us", ch->lifetime_s);
		}
	}
	send_hash3(ike);
	if (install_child(ike, ch, ike->qm_dh ? gqm : NULL, gqm_len) != 0) {
		OPENSSL_cleanse(gqm, sizeof(gqm));
		ike_fail(ike, "datapath", "the SA could not be installed in the datapath",
			 "The negotiated SA could not be set up locally; see burrow log NAME for the reason.");
		return;
	}
	OPENSSL_cleanse(gqm, sizeof(gqm));
	ch->state = QM_DONE;
	{
		char alg[64];

		bw_p2_proposal_format(&ch->alg, alg, sizeof(alg));
		ike_log(ike, BW_LOG_INFO, "IPsec SA up for %s: %s, SPIs in %02x%02x%02x%02x out %02x%02x%02x%02x, "
			"lifetime %us%s", r, alg, ch->spi_in[0], ch->spi_in[1], ch->spi_in[2], ch->spi_in[3],
			ch->spi_out[0], ch->spi_out[1], ch->spi_out[2], ch->spi_out[3], ch->lifetime_s,
			ike->floated ? ", ESP in UDP" : "");
	}
	if (ch->rekeying) {
		ike_rekey_done(ike, ch);
		return;
	}
	if (++ike->qm_child < ike->n_children) {
		ike_quick_start(ike);
		return;
	}
	ike_children_done(ike);
}

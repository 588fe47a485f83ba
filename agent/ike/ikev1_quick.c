/* Quick Mode (RFC 2409 section 5.5) as initiator: one IPsec SA pair per pair of traffic
 * selectors, optional PFS, RESPONDER-LIFETIME and the commit bit. States: SENT1 -> DONE. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/crypto.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "algs.h"
#include "util.h"

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

	if (ike->path.floated)
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

static uint32_t spi32(const uint8_t s[4])
{
	return (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
}

/* A renewal of ch begins: its current SPIs become the old ones. The old inbound SA keeps
 * accepting (ike_find_by_spi) until the grace period after the switch; one still in its grace
 * period from the renewal before goes now. */
static void retire_current(struct bw_ike_conn *ike, struct ike_child *ch)
{
	if (ch->old_in_valid && ike->dp.conn && memcmp(ch->old_spi_in, ch->spi_in, 4) != 0)
		ike->dp.be->del_sa(ike->dp.conn, spi32(ch->old_spi_in), BW_SA_IN);
	memcpy(ch->old_spi_in, ch->spi_in, 4);
	memcpy(ch->old_spi_out, ch->spi_out, 4);
	ch->old_in_valid = ch->installed;
}

/* Our proposal for ch: one ESP proposal with a transform per configured phase-2 proposal. */
static struct isakmp_sa *proposal_sa(const struct bw_ike_conn *ike, const struct ike_child *ch, enum bw_dh_group g)
{
	struct isakmp_sa *sa = calloc(1, sizeof(*sa));	/* 75 KiB: not on the stack */
	struct isakmp_proposal *p;

	if (!sa)
		return NULL;
	p = &sa->p[0];
	sa->doi = ISAKMP_DOI_IPSEC;
	sa->situation = ISAKMP_SIT_IDENTITY_ONLY;
	sa->n_proposals = 1;
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
	return sa;
}

/* Adds KE with a fresh PFS key pair in ike->qm.dh. */
static int add_pfs_ke(struct bw_ike_conn *ike, struct isakmp_builder *b, enum bw_dh_group g)
{
	char err[160];
	uint8_t pub[BW_DH_PUBLIC_MAX];

	ike->qm.dh = bw_dh_new(g, err, sizeof(err));
	if (!ike->qm.dh || bw_dh_public(ike->qm.dh, pub, sizeof(pub)) != 0) {
		ike_fail(ike, "config", ike->qm.dh ? "cannot compute the PFS key exchange" : err, NULL);
		return -1;
	}
	isakmp_b_ke(b, pub, bw_dh_public_len(g));
	return 0;
}

/* RFC 3947 5.2: transport mode through a NAT names the original addresses, ours (NAT-OAi) and
 * the gateway's as we address it (NAT-OAr), for checksum fix-ups. */
static void add_nat_oa(const struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	struct isakmp_nat_oa oai = { .id_type = ISAKMP_ID_IPV4_ADDR, .addr_len = 4 }, oar = oai;

	memcpy(oai.addr, &((const struct sockaddr_in *)&ike->path.local)->sin_addr, 4);
	memcpy(oar.addr, &((const struct sockaddr_in *)&ike->path.peer)->sin_addr, 4);
	isakmp_b_nat_oa(b, &oai);
	isakmp_b_nat_oa(b, &oar);
}

/* HDR*, HASH(1), SA, Ni [, KE] , IDci, IDcr [, NAT-OAi, NAT-OAr], encrypted; 0 or -1 (failed). */
static int build_first(struct bw_ike_conn *ike, const struct ike_child *ch, enum bw_dh_group g,
		       struct isakmp_builder *b)
{
	struct isakmp_sa *sa = proposal_sa(ike, ch, g);
	struct isakmp_hdr h;
	uint8_t idc[16];
	size_t off, len, idlen;

	ike_hdr_init(ike, &h, ISAKMP_EXCH_QUICK, ike->qm.msgid, ISAKMP_FLAG_ENC);
	if (!sa || isakmp_b_init(b, &h) != 0) {
		free(sa);
		return -1;
	}
	isakmp_b_hash_reserve(b, ike->sa.prf_len, &off);
	isakmp_b_sa(b, sa);
	free(sa);
	isakmp_b_nonce(b, ike->qm.ni, ike->qm.ni_len);
	if (g != BW_DH_NONE && add_pfs_ke(ike, b, g) != 0) {
		isakmp_b_free(b);
		return -1;
	}
	idlen = qm_id(&ch->local_ts, idc);
	isakmp_b_payload(b, ISAKMP_PL_ID, idc, idlen);
	idlen = qm_id(&ch->remote_ts, idc);
	isakmp_b_payload(b, ISAKMP_PL_ID, idc, idlen);
	if (ike->cfg.mode == BW_MODE_TRANSPORT && ike->path.floated)
		add_nat_oa(ike, b);
	if (isakmp_b_finish(b) != 0) {
		isakmp_b_free(b);
		ike_fail(ike, "internal", "cannot build the Quick Mode message", NULL);
		return -1;
	}
	len = isakmp_b_len(b);
	bw_ike_qm_hash1(ike->sa.alg.hash, ike->sa.skeyid_a, ike->qm.msgid, isakmp_b_buf(b) + off + ike->sa.prf_len,
			len - off - ike->sa.prf_len, isakmp_b_buf(b) + off);
	if (ike_encrypt_msg(ike, b, ike->qm.iv) != 0) {
		isakmp_b_free(b);
		ike_fail(ike, "internal", "cannot encrypt the Quick Mode message", NULL);
		return -1;
	}
	return 0;
}

int ike_quick_start(struct bw_ike_conn *ike)
{
	struct ike_child *ch = &ike->children.sa[ike->children.cur];
	struct isakmp_builder b;
	enum bw_dh_group g = pfs_group(ike);
	char l[64], r[64];

	bw_dh_free(ike->qm.dh);
	ike->qm.dh = NULL;
	if (ike_exchange_begin(ike, &ike->qm) != 0)
		return -1;
	if (ch->rekeying)
		retire_current(ike, ch);
	do {
		if (bw_random(ch->spi_in, 4) != 0)
			return -1;
	} while (ch->spi_in[0] == 0);	/* SPIs 1-255 are reserved (RFC 4303 2.1) */
	if (bw_random(ike->qm.ni, IKE_NONCE_LEN) != 0)
		return -1;
	ike->qm.ni_len = IKE_NONCE_LEN;
	if (build_first(ike, ch, g, &b) != 0)
		return -1;
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

static int qm_accept_sa(struct bw_ike_conn *ike, struct ike_child *ch, const struct isakmp_sa *sa)
{
	const struct isakmp_transform *t;
	const struct isakmp_proposal *p;

	if (!sa || sa->n_proposals != 1 || sa->p[0].n_transforms != 1 || sa->p[0].proto != ISAKMP_PROTO_ESP ||
	    sa->p[0].spi_size != 4)
		return -1;
	p = &sa->p[0];
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

/* ni/nr are the nonces of the Quick Mode's initiator and responder, whichever side we were.
 * prev_out (host order) is the outbound SA that carries the selectors now and keeps carrying
 * them until switch_out(); 0 moves outbound traffic to the new SA at once. */
static int install_child(struct bw_ike_conn *ike, struct ike_child *ch, const uint8_t *gqm, size_t gqm_len,
			 const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len, uint32_t prev_out)
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
	in.local = out.local = ike->path.local;
	in.remote = out.remote = ike->path.peer;
	in.udp_encap = out.udp_encap = ike->path.floated;
	in.lifetime_s = out.lifetime_s = ch->lifetime_s + 60;	/* the IKE side rekeys before */
	in.keymat_len = out.keymat_len = klen;
	if (bw_ike_keymat(ike->sa.alg.hash, ike->sa.skeyid_d, gqm, gqm_len, ISAKMP_PROTO_ESP, ch->spi_in,
			  ni, ni_len, nr, nr_len, in.keymat, klen) != 0 ||
	    bw_ike_keymat(ike->sa.alg.hash, ike->sa.skeyid_d, gqm, gqm_len, ISAKMP_PROTO_ESP, ch->spi_out,
			  ni, ni_len, nr, nr_len, out.keymat, klen) != 0)
		goto out;
	if ((rc = ike->dp.be->add_sa(ike->dp.conn, &in)) != 0 || (rc = ike->dp.be->add_sa(ike->dp.conn, &out)) != 0 ||
	    (rc = ike->dp.be->add_policy(ike->dp.conn, &ch->local_ts, &ch->remote_ts, prev_out ? prev_out : out.spi,
				      in.spi)) != 0) {
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

/* The outbound SA that carries ch's selectors until its replacement takes over: the one being
 * rekeyed, or during re-authentication the old instance's; 0 for a first SA. */
static uint32_t replaced_out(const struct bw_ike_conn *ike, const struct ike_child *ch)
{
	size_t i = (size_t)(ch - ike->children.sa);
	const struct bw_ike_conn *old = ike->reauth.of;

	if (ch->rekeying)
		return spi32(ch->old_spi_out);
	if (old && i < old->children.n && old->children.sa[i].state == QM_DONE && old->children.sa[i].installed)
		return spi32(old->children.sa[i].spi_out);
	return 0;
}

/* A Quick Mode of ours is complete and its SAs carry the traffic: go on with the next step. */
static void child_finished(struct bw_ike_conn *ike, struct ike_child *ch)
{
	if (ch->rekeying) {
		ike_rekey_done(ike, ch);
		return;
	}
	if (++ike->children.cur < ike->children.n) {
		ike_quick_start(ike);
		return;
	}
	ike_children_done(ike);
}

/* The new SAs of the waiting child are put to use: outbound moves to the new SA when one is
 * being replaced, then the exchange goes on. why says what ended the wait. */
static void switch_finish(struct bw_ike_conn *ike, const char *why)
{
	struct ike_child *ch = &ike->children.sa[ike->rekey.switch_child];
	double waited = ev_now(ike->agent->loop) - ike->rekey.switch_started;
	int rc;

	ev_timer_stop(ike->agent->loop, &ike->rekey.switch_timer);
	ike->rekey.switch_child = -1;
	ike->rekey.switch_commit = false;
	if (ike->rekey.switch_prev_out) {
		rc = ike->dp.be->add_policy(ike->dp.conn, &ch->local_ts, &ch->remote_ts, spi32(ch->spi_out),
					 spi32(ch->spi_in));
		if (rc != 0) {
			ike_log(ike, BW_LOG_ERROR, "the datapath refused to move traffic to the new SA: %s", strerror(-rc));
			char x[200];

			snprintf(x, sizeof(x), "The new IPsec SA was negotiated but the datapath refused it; see "
				 "burrow log %s.", ike->cfg.name);
			ike_fail(ike, "datapath", "the renewed SA could not be put to use in the datapath", x);
			return;
		}
		ike_log(ike, BW_LOG_DEBUG, "outbound traffic moves from SA %08x to %08x after %.2fs: %s",
			ike->rekey.switch_prev_out, spi32(ch->spi_out), waited, why);
	} else {
		ike_log(ike, BW_LOG_DEBUG, "SA %08x put to use after %.2fs: %s", spi32(ch->spi_out), waited, why);
	}
	child_finished(ike, ch);
}

/* Polls the new inbound SA: once a packet arrived on it the gateway has installed the new pair,
 * so outbound traffic can follow without being dropped there. With the commit bit the wait is
 * for the gateway's CONNECTED (quick_connected) or its traffic, whichever comes first. */
static void on_switch_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, rekey.switch_timer);
	struct ike_child *ch;
	uint64_t packets = 0;
	bool used;

	(void)revents;
	if (ike->rekey.switch_child < 0 || (size_t)ike->rekey.switch_child >= ike->children.n) {
		ev_timer_stop(loop, w);
		return;
	}
	ch = &ike->children.sa[ike->rekey.switch_child];
	used = ike->dp.be->sa_packets && ike->dp.be->sa_packets(ike->dp.conn, spi32(ch->spi_in), BW_SA_IN, &packets) == 0 &&
	       packets > 0;
	if (used) {
		switch_finish(ike, "the gateway sends on the new SA");
		return;
	}
	if (ev_now(loop) - ike->rekey.switch_started < (ike->rekey.switch_commit ? IKE_COMMIT_WAIT_S : IKE_SWITCH_MAX_S))
		return;
	if (ike->rekey.switch_commit)
		ike_log(ike, BW_LOG_WARN, "the gateway set the commit bit but neither confirmed the SA (CONNECTED) "
			"nor sent on it within %.0fs; using it anyway", IKE_COMMIT_WAIT_S);
	switch_finish(ike, ike->rekey.switch_commit ? "no CONNECTED from the gateway" : "the gateway sent nothing on the new SA yet");
}

/* With the commit bit set, the gateway ends Quick Mode with a fourth message: HASH(4) and a
 * CONNECTED notification (RFC 2408 3.1, 3.14.1); HASH(4) covers the message ID and the
 * notification like HASH(1). Anything else with this message ID is taken as the gateway
 * repeating its second message: our third goes out again. */
static void quick_connected(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_msg m;
	bool connected = false;

	if (ike_msg_open(ike, h, msg, len, IKE_MSG_QM4, &ike->qm, &m) != IKE_OPEN_OK) {
		ike_msg_close(&m);
		ike_log(ike, BW_LOG_DEBUG, "Quick Mode: not a valid CONNECTED message; the gateway repeats itself, "
			"sending our third message again");
		if (ike->resend.final_msg)
			ike_send_raw(ike, ike->resend.final_msg, ike->resend.final_len);
		return;
	}
	for (size_t i = 1; i < m.pls.n; i++) {
		struct isakmp_notify n;

		if (isakmp_parse_notify(&m.pls.p[i], &n) == 0 && n.type == ISAKMP_N_CONNECTED)
			connected = true;
	}
	ike_msg_close(&m);
	if (!connected) {
		ike_log(ike, BW_LOG_DEBUG, "Quick Mode: a fourth message without CONNECTED; ignored");
		return;
	}
	memcpy(ike->qm.iv, m.iv, sizeof(m.iv));
	ike_seen_peer(ike);
	ike_log(ike, BW_LOG_INFO, "the gateway confirmed the IPsec SA (CONNECTED)");
	switch_finish(ike, "the gateway confirmed it (CONNECTED)");
}

static void send_hash3(struct bw_ike_conn *ike)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;
	uint8_t hash[BW_HASH_MAX];

	bw_ike_qm_hash3(ike->sa.alg.hash, ike->sa.skeyid_a, ike->qm.msgid, ike->qm.ni, ike->qm.ni_len, ike->qm.nr,
			ike->qm.nr_len, hash);
	ike_hdr_init(ike, &h, ISAKMP_EXCH_QUICK, ike->qm.msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) == 0 && isakmp_b_hash(&b, hash, ike->sa.prf_len) == 0 &&
	    ike_encrypt_msg(ike, &b, ike->qm.iv) == 0) {
		ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
		ike_keep_final(ike, ISAKMP_EXCH_QUICK, ike->qm.msgid, isakmp_b_buf(&b), isakmp_b_len(&b));
	}
	isakmp_b_free(&b);
}

/* ---- Quick Mode as responder: the gateway renews an IPsec SA (RFC 2409 5.5, roles swapped) ---- */

static bool id_to_cidr(const struct isakmp_payload *pl, struct bw_cidr *out)
{
	struct isakmp_id id;

	if (isakmp_parse_id(pl, &id) != 0)
		return false;
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	if (id.type == ISAKMP_ID_IPV4_ADDR && id.len == 4) {
		memcpy(out->addr, id.data, 4);
		out->prefix = 32;
		return true;
	}
	if (id.type == ISAKMP_ID_IPV4_ADDR_SUBNET && id.len == 8) {
		uint32_t m = (uint32_t)id.data[4] << 24 | (uint32_t)id.data[5] << 16 | (uint32_t)id.data[6] << 8 | id.data[7];

		while (out->prefix < 32 && (m & (0x80000000u >> out->prefix)))
			out->prefix++;
		for (int i = 0; i < 4; i++)
			out->addr[i] = id.data[i] & id.data[4 + i];
		return true;
	}
	return false;
}

/* The first of the gateway's transforms that one of our proposals allows. */
static const struct isakmp_transform *pick_transform(struct bw_ike_conn *ike, const struct isakmp_proposal *p,
						     struct bw_p2_proposal *alg)
{
	enum bw_dh_group g = pfs_group(ike);

	for (size_t t = 0; t < p->n_transforms; t++) {
		const struct isakmp_transform *tr = &p->t[t];

		if (tattr(tr, ISAKMP_P2_GROUP, BW_DH_NONE) != g)
			continue;
		for (size_t i = 0; i < ike->cfg.n_p2_proposals; i++) {
			const struct bw_p2_proposal *pp = &ike->cfg.p2_proposals[i];

			if (tr->id != pp->encr || tattr(tr, ISAKMP_P2_AUTH, BW_ESP_AUTH_NONE) != pp->auth ||
			    (pp->encr != BW_ESP_3DES && tattr(tr, ISAKMP_P2_KEY_LENGTH, 0) != pp->key_bits))
				continue;
			*alg = *pp;
			alg->dh = g;
			return tr;
		}
	}
	return NULL;
}

/* Which of our SAs the gateway renews: its IDci is our remote selector, its IDcr our local one;
 * without IDs, our only one. children.n when none matches. */
static size_t renewed_child(const struct bw_ike_conn *ike, const struct ike_msg *m)
{
	struct bw_cidr ci, cr;
	size_t child = ike->children.n;

	if (!m->id_i)
		return ike->children.n == 1 ? 0 : ike->children.n;
	if (id_to_cidr(m->id_i, &ci) && id_to_cidr(m->id_r, &cr))
		for (size_t i = 0; i < ike->children.n; i++)
			if (memcmp(&ike->children.sa[i].remote_ts, &ci, sizeof(ci)) == 0 &&
			    memcmp(&ike->children.sa[i].local_ts, &cr, sizeof(cr)) == 0)
				child = i;
	return child;
}

/* The gateway's KE against a fresh key pair of ours: our public value in pub, g^qm in ike->qr.gqm. */
static struct bw_dh *respond_pfs(struct bw_ike_conn *ike, const struct ike_msg *m, uint8_t *pub, size_t publen)
{
	struct bw_dh *dh = NULL;
	char err[160];

	ike->qr.gqm_len = sizeof(ike->qr.gqm);
	if (!m->have_ke || !(dh = bw_dh_new(ike->children.renewal.alg.dh, err, sizeof(err))) ||
	    bw_dh_public(dh, pub, publen) != 0 ||
	    bw_dh_compute(dh, m->ke.data, m->ke.len, ike->qr.gqm, &ike->qr.gqm_len) != 0) {
		bw_dh_free(dh);
		return NULL;
	}
	return dh;
}

/* HDR*, HASH(2), SA (the chosen transform tr, our SPI), Nr [, KE] [, IDci, IDcr], sent and kept
 * for the gateway's repeats; the exchange's IV goes on from iv. */
static int respond_send(struct bw_ike_conn *ike, const struct isakmp_hdr *h, struct ike_msg *m,
			const struct isakmp_transform *tr, const uint8_t *pub, uint8_t *iv)
{
	struct isakmp_sa *sa = m->sa;
	struct isakmp_builder b;
	struct isakmp_hdr oh;
	size_t off, blen;

	sa->n_proposals = 1;
	sa->p[0].t[0] = *tr;
	sa->p[0].n_transforms = 1;
	memcpy(sa->p[0].spi, ike->children.renewal.spi_in, 4);
	ike_hdr_init(ike, &oh, ISAKMP_EXCH_QUICK, h->msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &oh) != 0)
		return -1;
	isakmp_b_hash_reserve(&b, ike->sa.prf_len, &off);
	isakmp_b_sa(&b, sa);
	isakmp_b_nonce(&b, ike->qr.nr, ike->qr.nr_len);
	if (pub)
		isakmp_b_ke(&b, pub, bw_dh_public_len(ike->children.renewal.alg.dh));
	if (m->id_i) {
		isakmp_b_payload(&b, ISAKMP_PL_ID, m->id_i->data, m->id_i->len);
		isakmp_b_payload(&b, ISAKMP_PL_ID, m->id_r->data, m->id_r->len);
	}
	if (isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		return -1;
	}
	blen = isakmp_b_len(&b);
	bw_ike_qm_hash2(ike->sa.alg.hash, ike->sa.skeyid_a, h->msgid, ike->qr.ni, ike->qr.ni_len,
			isakmp_b_buf(&b) + off + ike->sa.prf_len, blen - off - ike->sa.prf_len, isakmp_b_buf(&b) + off);
	if (ike_encrypt_msg(ike, &b, iv) != 0) {
		isakmp_b_free(&b);
		return -1;
	}
	free(ike->qr.sent);
	ike->qr.sent = NULL;
	ike->qr.sent_len = isakmp_b_len(&b);
	ike->qr.sent = malloc(ike->qr.sent_len);
	if (ike->qr.sent)
		memcpy(ike->qr.sent, isakmp_b_buf(&b), ike->qr.sent_len);
	ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
	isakmp_b_free(&b);
	return 0;
}

/* Takes the gateway's renewal offer for child from m: transform, PFS, lifetime, nonce and SPIs;
 * then answers. */
static void respond_offer(struct bw_ike_conn *ike, const struct isakmp_hdr *h, struct ike_msg *m, size_t child)
{
	const struct isakmp_transform *tr = pick_transform(ike, &m->sa->p[0], &ike->children.renewal.alg);
	uint8_t pub[BW_DH_PUBLIC_MAX];
	struct bw_dh *dh = NULL;

	if (!tr) {
		ike_log(ike, BW_LOG_WARN, "the gateway's renewal offers none of our phase-2 proposals; ignored");
		return;
	}
	ike->qr.gqm_len = 0;
	if (ike->children.renewal.alg.dh != BW_DH_NONE && !(dh = respond_pfs(ike, m, pub, sizeof(pub)))) {
		ike_log(ike, BW_LOG_WARN, "the gateway's renewal has no usable PFS key exchange; ignored");
		return;
	}
	ike->children.renewal.lifetime_s = ike->cfg.p2_lifetime_s;
	if (tattr(tr, ISAKMP_P2_LIFE_TYPE, ISAKMP_LIFE_SECONDS) == ISAKMP_LIFE_SECONDS) {
		uint64_t life = tattr(tr, ISAKMP_P2_LIFE_DURATION, ike->children.renewal.lifetime_s);

		if (life > 0 && life < ike->children.renewal.lifetime_s)
			ike->children.renewal.lifetime_s = (uint32_t)life;
	}
	memcpy(ike->qr.ni, m->nonce.data, m->nonce.len);
	ike->qr.ni_len = m->nonce.len;
	memcpy(ike->children.renewal.spi_out, m->sa->p[0].spi, 4);
	do {
		if (bw_random(ike->children.renewal.spi_in, 4) != 0)
			goto fail;
	} while (ike->children.renewal.spi_in[0] == 0);
	ike->qr.nr_len = IKE_NONCE_LEN;
	if (bw_random(ike->qr.nr, IKE_NONCE_LEN) != 0 || respond_send(ike, h, m, tr, dh ? pub : NULL, m->iv) != 0)
		goto fail;
	memcpy(ike->qr.iv, m->iv, sizeof(m->iv));
	ike->qr.msgid = h->msgid;
	ike->children.renewal.child = child;
	ike->qr.active = true;
	bw_dh_free(dh);
	ike_log(ike, BW_LOG_DEBUG, "Quick Mode from the gateway: renewing an IPsec SA (answer sent)");
	return;
fail:
	bw_dh_free(dh);
	OPENSSL_cleanse(ike->qr.gqm, sizeof(ike->qr.gqm));
}

static void respond_first(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_msg m;
	size_t child;
	int rc;

	for (size_t i = 0; i < ike->children.n; i++)
		if (ike->children.sa[i].state == QM_SENT1)
			return;	/* our own renewal is under way; the gateway will see it */
	rc = ike_msg_open(ike, h, msg, len, IKE_MSG_QM1, NULL, &m);
	if (rc == IKE_OPEN_BAD_HASH)
		ike_log(ike, BW_LOG_WARN, "Quick Mode from the gateway with a wrong HASH(1); ignored");
	if (rc != IKE_OPEN_OK)
		goto out;
	ike_seen_peer(ike);
	if (!m.sa || m.sa->n_proposals < 1 || m.sa->p[0].proto != ISAKMP_PROTO_ESP || m.sa->p[0].spi_size != 4 ||
	    !m.have_nonce || m.nonce.len > sizeof(ike->qr.ni))
		goto out;
	child = renewed_child(ike, &m);
	if (child == ike->children.n || ike->children.sa[child].state != QM_DONE) {
		ike_log(ike, BW_LOG_WARN, "the gateway proposed an IPsec SA for selectors we do not have; ignored");
		goto out;
	}
	respond_offer(ike, h, &m, child);
out:
	ike_msg_close(&m);
}

static void quick_respond(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_msg m;
	struct ike_child *ch;
	int rc;

	if (!ike->qr.active || h->msgid != ike->qr.msgid) {
		respond_first(ike, h, msg, len);
		return;
	}
	/* Within our answered exchange: HASH(3), or the gateway repeating its first message. */
	rc = ike_msg_open(ike, h, msg, len, IKE_MSG_QM3, &ike->qr, &m);
	ike_msg_close(&m);
	if (rc == IKE_OPEN_UNREADABLE || rc == IKE_OPEN_MISPLACED) {
		if (ike->qr.sent)
			ike_send_raw(ike, ike->qr.sent, ike->qr.sent_len);
		return;
	}
	if (rc != IKE_OPEN_OK) {
		ike_log(ike, BW_LOG_WARN, "Quick Mode HASH(3) from the gateway does not match; ignored");
		return;
	}
	ike->qr.active = false;
	ch = &ike->children.sa[ike->children.renewal.child];
	retire_current(ike, ch);
	memcpy(ch->spi_in, ike->children.renewal.spi_in, 4);
	memcpy(ch->spi_out, ike->children.renewal.spi_out, 4);
	ch->alg = ike->children.renewal.alg;
	ch->lifetime_s = ike->children.renewal.lifetime_s;
	ch->rekeying = true;
	/* The gateway installed its SAs when it sent HASH(3): our traffic may move at once. */
	if (install_child(ike, ch, ike->qr.gqm_len ? ike->qr.gqm : NULL, ike->qr.gqm_len, ike->qr.ni, ike->qr.ni_len,
			  ike->qr.nr, ike->qr.nr_len, 0) != 0) {
		char x[200];

		OPENSSL_cleanse(ike->qr.gqm, sizeof(ike->qr.gqm));
		snprintf(x, sizeof(x), "The gateway renewed the IPsec SA but it could not be set up locally; see "
			 "burrow log %s.", ike->cfg.name);
		ike_fail(ike, "datapath", "the renewed SA could not be installed in the datapath", x);
		return;
	}
	OPENSSL_cleanse(ike->qr.gqm, sizeof(ike->qr.gqm));
	ike_log(ike, BW_LOG_INFO, "the gateway renewed the IPsec SA: SPIs in %02x%02x%02x%02x out %02x%02x%02x%02x",
		ch->spi_in[0], ch->spi_in[1], ch->spi_in[2], ch->spi_in[3], ch->spi_out[0], ch->spi_out[1],
		ch->spi_out[2], ch->spi_out[3]);
	ike_rekey_done(ike, ch);
}

/* RESPONDER-LIFETIME notifications shorten ch's lifetime. */
static void responder_lifetime(struct bw_ike_conn *ike, struct ike_child *ch, const struct ike_msg *m)
{
	for (size_t i = 0; i < m->pls.n; i++) {
		struct isakmp_notify n;
		struct isakmp_attr attrs[8];
		size_t na = 0;

		if (m->pls.p[i].type != ISAKMP_PL_N || isakmp_parse_notify(&m->pls.p[i], &n) != 0 ||
		    n.type != ISAKMP_N_RESPONDER_LIFETIME)
			continue;
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

/* The gateway's answer to our Quick Mode: its choice, nonce and PFS value (g^qm into gqm).
 * 0, or -1 after failing the connection. */
static int take_answer(struct bw_ike_conn *ike, struct ike_child *ch, const struct ike_msg *m, uint8_t *gqm,
		       size_t *gqm_len)
{
	if (!m->have_nonce || m->nonce.len > sizeof(ike->qm.nr) || qm_accept_sa(ike, ch, m->sa) != 0) {
		ike_fail(ike, "protocol-error", "the gateway's Quick Mode answer is not one of our proposals", NULL);
		return -1;
	}
	memcpy(ike->qm.nr, m->nonce.data, m->nonce.len);
	ike->qm.nr_len = m->nonce.len;
	if (ike->qm.dh && (!m->have_ke || bw_dh_compute(ike->qm.dh, m->ke.data, m->ke.len, gqm, gqm_len) != 0)) {
		ike_fail(ike, "pfs-mismatch", "the gateway did not answer our PFS key exchange",
			 "The gateway does not use PFS, or another group. Set pfs in [phase2] to the "
			 "gateway's group, or to none.");
		return -1;
	}
	responder_lifetime(ike, ch, m);
	return 0;
}

/* Our new SAs for ch are in the datapath; they carry traffic at once, or after a wait for the
 * gateway (a replaced SA, or the commit bit). */
static void child_installed(struct bw_ike_conn *ike, struct ike_child *ch, uint32_t prev_out, bool commit)
{
	char alg[64], r[64];

	ch->state = QM_DONE;
	ts_text(&ch->remote_ts, r, sizeof(r));
	bw_p2_proposal_format(&ch->alg, alg, sizeof(alg));
	ike_log(ike, BW_LOG_INFO, "IPsec SA up for %s: %s, SPIs in %02x%02x%02x%02x out %02x%02x%02x%02x, "
		"lifetime %us%s", r, alg, ch->spi_in[0], ch->spi_in[1], ch->spi_in[2], ch->spi_in[3],
		ch->spi_out[0], ch->spi_out[1], ch->spi_out[2], ch->spi_out[3], ch->lifetime_s,
		ike->path.floated ? ", ESP in UDP" : "");
	if (!prev_out && !commit) {
		child_finished(ike, ch);
		return;
	}
	ike->rekey.switch_child = (int)(ch - ike->children.sa);
	ike->rekey.switch_prev_out = prev_out;
	ike->rekey.switch_commit = commit;
	ike->rekey.switch_started = ev_now(ike->agent->loop);
	if (ike->rekey.switch_commit)
		ike_log(ike, BW_LOG_INFO, "the gateway set the commit bit: the SA is used once it confirms "
			"(CONNECTED) or sends on it");
	ev_timer_init(&ike->rekey.switch_timer, on_switch_poll, IKE_SWITCH_POLL_S, IKE_SWITCH_POLL_S);
	ev_timer_start(ike->agent->loop, &ike->rekey.switch_timer);
}

void ike_quick_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct ike_child *ch = &ike->children.sa[ike->children.cur];
	struct ike_msg m;
	uint8_t gqm[BW_DH_PUBLIC_MAX];
	size_t gqm_len = sizeof(gqm);
	uint32_t prev_out;
	int rc;

	if (!(h->flags & ISAKMP_FLAG_ENC))
		return;
	if (ike->rekey.switch_child >= 0 && ike->rekey.switch_commit && h->msgid == ike->qm.msgid) {
		quick_connected(ike, h, msg, len);
		return;
	}
	if (ch->state != QM_SENT1 || h->msgid != ike->qm.msgid) {
		quick_respond(ike, h, msg, len);
		return;
	}
	rc = ike_msg_open(ike, h, msg, len, IKE_MSG_QM2, &ike->qm, &m);
	if (rc != IKE_OPEN_OK) {
		ike_msg_close(&m);
		if (rc == IKE_OPEN_BAD_HASH)
			ike_log(ike, BW_LOG_WARN, "Quick Mode answer with a wrong HASH(2); ignored");
		else if (rc == IKE_OPEN_MISPLACED && m.refused)
			ike_log(ike, BW_LOG_WARN, "Quick Mode answer with a misplaced or repeated %s payload; ignored",
				isakmp_payload_name(m.refused));
		else
			ike_log(ike, BW_LOG_DEBUG, "Quick Mode answer does not decrypt to a valid message; ignored");
		return;
	}
	ike_rexmit_stop(ike);
	ike_seen_peer(ike);
	memcpy(ike->qm.iv, m.iv, sizeof(m.iv));
	rc = take_answer(ike, ch, &m, gqm, &gqm_len);
	ike_msg_close(&m);
	if (rc != 0)
		return;
	send_hash3(ike);
	prev_out = replaced_out(ike, ch);
	if (install_child(ike, ch, ike->qm.dh ? gqm : NULL, ike->qm.dh ? gqm_len : 0, ike->qm.ni, ike->qm.ni_len,
			  ike->qm.nr, ike->qm.nr_len, prev_out) != 0) {
		char x[200];

		OPENSSL_cleanse(gqm, sizeof(gqm));
		snprintf(x, sizeof(x), "The negotiated SA could not be set up locally; see burrow log %s for the "
			 "reason.", ike->cfg.name);
		ike_fail(ike, "datapath", "the SA could not be installed in the datapath", x);
		return;
	}
	OPENSSL_cleanse(gqm, sizeof(gqm));
	child_installed(ike, ch, prev_out, (h->flags & ISAKMP_FLAG_COMMIT) != 0);
}

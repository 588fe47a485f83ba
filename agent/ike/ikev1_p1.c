/* Phase-1 pieces shared by Main and Aggressive Mode: the SA proposal and its answer, identities,
 * NAT discovery, vendor IDs, the key exchange and SKEYID derivation, and message encryption. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/crypto.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "ike/vendor.h"
#include "log.h"
#include "util.h"

void ike_p1_hdr(struct isakmp_hdr *h, const uint8_t icookie[8], const uint8_t rcookie[8], uint8_t exchange,
		uint32_t msgid, uint8_t flags)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->icookie, icookie, 8);
	memcpy(h->rcookie, rcookie, 8);
	h->version = 0x10;
	h->exchange = exchange;
	h->flags = flags;
	h->msgid = msgid;
}

void ike_hdr_init(struct bw_ike_conn *ike, struct isakmp_hdr *h, uint8_t exchange, uint32_t msgid,
		  uint8_t flags)
{
	ike_p1_hdr(h, ike->sa.icookie, ike->sa.rcookie, exchange, msgid, flags);
}

static void attr(struct isakmp_transform *t, uint16_t type, uint64_t value)
{
	struct isakmp_attr *a = &t->attrs[t->n_attrs++];

	memset(a, 0, sizeof(*a));
	a->type = type;
	a->fmt = ISAKMP_ATTR_AUTO;
	a->value = value;
}

static uint16_t p1_auth_method(const struct bw_conn_config *cfg, const struct bw_cert_creds *cert)
{
	if (cert) {
		uint16_t m = bw_cert_auth_method(cert);

		/* XAUTH on top of RSA has its own value; ECDSA has none (refused at start). */
		return cfg->xauth && m == ISAKMP_AUTH_RSA_SIG ? ISAKMP_AUTH_XAUTH_INIT_RSA : m;
	}
	return cfg->xauth ? ISAKMP_AUTH_XAUTH_INIT_PSK : ISAKMP_AUTH_PSK;
}

void ike_p1_offer_init(struct ike_p1_offer *o, const struct bw_conn_config *cfg, const struct bw_cert_creds *cert)
{
	o->proposals = cfg->p1_proposals;
	o->n_proposals = cfg->n_p1_proposals;
	o->lifetime_s = cfg->p1_lifetime_s;
	o->auth_method = p1_auth_method(cfg, cert);
	o->natt = cfg->nat_traversal != BW_NATT_OFF;
	o->xauth = cfg->xauth;
	o->unity = cfg->mode_config != BW_MODECFG_NO;
}

int ike_p1_put_sa(struct isakmp_builder *b, const struct ike_p1_offer *o)
{
	struct isakmp_sa *sa = calloc(1, sizeof(*sa));	/* 75 KiB: not on the stack */
	struct isakmp_proposal *p;
	int rc;

	if (!sa)
		return -1;
	p = &sa->p[0];
	sa->doi = ISAKMP_DOI_IPSEC;
	sa->situation = ISAKMP_SIT_IDENTITY_ONLY;
	sa->n_proposals = 1;
	p->num = 1;
	p->proto = ISAKMP_PROTO_ISAKMP;
	for (size_t i = 0; i < o->n_proposals && i < ISAKMP_MAX_TRANSFORMS; i++) {
		const struct bw_p1_proposal *pp = &o->proposals[i];
		struct isakmp_transform *t = &p->t[p->n_transforms++];

		t->num = (uint8_t)(i + 1);
		t->id = ISAKMP_KEY_IKE;
		attr(t, ISAKMP_P1_ENCR, pp->encr);
		if (pp->encr == BW_P1_ENCR_AES_CBC)
			attr(t, ISAKMP_P1_KEY_LENGTH, pp->key_bits);
		attr(t, ISAKMP_P1_HASH, pp->hash);
		attr(t, ISAKMP_P1_AUTH, o->auth_method);
		attr(t, ISAKMP_P1_GROUP, pp->dh);
		attr(t, ISAKMP_P1_LIFE_TYPE, ISAKMP_LIFE_SECONDS);
		attr(t, ISAKMP_P1_LIFE_DURATION, o->lifetime_s);
	}
	rc = isakmp_b_sa(b, sa);
	free(sa);
	return rc;
}

int ike_p1_build_sa(struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	struct ike_p1_offer o;
	size_t before = isakmp_b_len(b);

	ike_p1_offer_init(&o, &ike->cfg, ike->sa.cert);
	if (ike_p1_put_sa(b, &o) != 0)
		return -1;
	/* SAi_b: the SA payload body, as HASH_I/HASH_R cover it. */
	free(ike->p1x.sai_b);
	ike->p1x.sai_b_len = isakmp_b_len(b) - before - 4;
	ike->p1x.sai_b = malloc(ike->p1x.sai_b_len);
	if (!ike->p1x.sai_b)
		return -1;
	memcpy(ike->p1x.sai_b, isakmp_b_buf(b) + before + 4, ike->p1x.sai_b_len);
	return 0;
}

static uint64_t attr_val(const struct isakmp_transform *t, uint16_t type, uint64_t dflt)
{
	const struct isakmp_attr *a = isakmp_attr_find(t->attrs, t->n_attrs, type);

	return a && a->has_value ? a->value : dflt;
}

static int accept_sa(struct bw_ike_conn *ike, const struct isakmp_payload *pl, struct isakmp_sa *sa)
{
	const struct isakmp_transform *t;
	uint64_t encr, bits, hash, auth, group, life_type, life;
	char offered[512] = "", one[64];

	if (isakmp_parse_sa(pl, sa) != 0 || sa->n_proposals != 1 || sa->p[0].n_transforms != 1 ||
	    sa->p[0].proto != ISAKMP_PROTO_ISAKMP) {
		ike_fail(ike, "protocol-error", "the gateway answered with a malformed phase-1 SA",
			 "The gateway's answer to our proposals could not be understood. Capture the exchange "
			 "(tshark -f 'udp port 500') and report it.");
		return -1;
	}
	t = &sa->p[0].t[0];
	encr = attr_val(t, ISAKMP_P1_ENCR, 0);
	bits = attr_val(t, ISAKMP_P1_KEY_LENGTH, 0);
	hash = attr_val(t, ISAKMP_P1_HASH, 0);
	auth = attr_val(t, ISAKMP_P1_AUTH, 0);
	group = attr_val(t, ISAKMP_P1_GROUP, 0);
	life_type = attr_val(t, ISAKMP_P1_LIFE_TYPE, ISAKMP_LIFE_SECONDS);
	life = attr_val(t, ISAKMP_P1_LIFE_DURATION, ike->cfg.p1_lifetime_s);
	for (size_t i = 0; i < ike->cfg.n_p1_proposals; i++) {
		const struct bw_p1_proposal *p = &ike->cfg.p1_proposals[i];

		if (p->encr == encr && p->hash == hash && p->dh == group &&
		    (p->encr != BW_P1_ENCR_AES_CBC || p->key_bits == bits) && auth == p1_auth_method(&ike->cfg, ike->sa.cert)) {
			ike->sa.alg = *p;
			ike->sa.lifetime_s = life_type == ISAKMP_LIFE_SECONDS && life > 0 && life < ike->cfg.p1_lifetime_s
						     ? (uint32_t)life : ike->cfg.p1_lifetime_s;
			bw_p1_proposal_format(p, one, sizeof(one));
			ike_log(ike, BW_LOG_INFO, "phase 1: gateway chose %s, lifetime %us", one, ike->sa.lifetime_s);
			return 0;
		}
	}
	for (size_t i = 0; i < ike->cfg.n_p1_proposals; i++) {
		bw_p1_proposal_format(&ike->cfg.p1_proposals[i], one, sizeof(one));
		snprintf(offered + strlen(offered), sizeof(offered) - strlen(offered), "%s%s", i ? ", " : "", one);
	}
	ike_fail(ike, "protocol-error", "the gateway chose a phase-1 transform we did not offer",
		 "The gateway answered with a transform that is not among ours; it is misbehaving. "
		 "Check its configuration.");
	return -1;
}

int ike_p1_accept_sa(struct bw_ike_conn *ike, const struct isakmp_payload *pl)
{
	struct isakmp_sa *sa = calloc(1, sizeof(*sa));	/* 75 KiB: not on the stack */
	int rc = sa ? accept_sa(ike, pl, sa) : -1;

	free(sa);
	return rc;
}

/* ID payload body: type, protocol 0, port 0, data. */
static int id_body(enum bw_id_type type, const char *value, const struct sockaddr_storage *addr,
		   const struct bw_cert_creds *cert, uint8_t *out, size_t cap, size_t *len, char *err,
		   size_t errlen)
{
	size_t n;

	out[1] = 0;
	out[2] = out[3] = 0;
	switch (type) {
	case BW_ID_ADDRESS: {
		struct in_addr in;

		out[0] = ISAKMP_ID_IPV4_ADDR;
		if (value[0]) {
			if (inet_pton(AF_INET, value, &in) != 1) {
				snprintf(err, errlen, "identifier %.64s is not an IPv4 address; set the id type", value);
				return -1;
			}
		} else {
			in = ((const struct sockaddr_in *)addr)->sin_addr;
		}
		memcpy(out + 4, &in, 4);
		*len = 8;
		return 0;
	}
	case BW_ID_FQDN:
	case BW_ID_USER_FQDN:
	case BW_ID_KEY_ID:
		out[0] = type == BW_ID_FQDN ? ISAKMP_ID_FQDN :
			 type == BW_ID_USER_FQDN ? ISAKMP_ID_USER_FQDN : ISAKMP_ID_KEY_ID;
		n = strlen(value);
		if (n == 0 || n + 4 > cap) {
			snprintf(err, errlen, "this identifier type needs a value of 1 to %zu characters", cap - 4);
			return -1;
		}
		memcpy(out + 4, value, n);
		*len = n + 4;
		return 0;
	case BW_ID_ASN1DN:
		out[0] = ISAKMP_ID_DER_ASN1_DN;
		if (value[0]) {
			char why[200];

			if (bw_dn_to_der(value, out + 4, cap - 4, &n, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "the asn1dn identifier '%.80s' does not parse: %s", value, why);
				return -1;
			}
		} else if (!cert || bw_cert_subject_der(cert, out + 4, cap - 4, &n) != 0) {
			snprintf(err, errlen, "an asn1dn identifier needs a DN such as CN=vpn.example.com, O=Example "
				 "(or certificate authentication, whose subject it then is)");
			return -1;
		}
		*len = n + 4;
		return 0;
	}
	return -1;
}

int ike_p1_build_id(struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	char err[160];

	if (id_body(ike->cfg.local_id_type, ike->cfg.local_id, &ike->path.local, ike->sa.cert, ike->p1x.idii_b,
		    sizeof(ike->p1x.idii_b), &ike->p1x.idii_b_len, err, sizeof(err)) != 0) {
		ike_fail(ike, "config", err, err);
		return -1;
	}
	return isakmp_b_payload(b, ISAKMP_PL_ID, ike->p1x.idii_b, ike->p1x.idii_b_len);
}

static const char *id_type_text(uint8_t t)
{
	switch (t) {
	case ISAKMP_ID_IPV4_ADDR: return "address";
	case ISAKMP_ID_FQDN: return "fqdn";
	case ISAKMP_ID_USER_FQDN: return "user-fqdn";
	case ISAKMP_ID_DER_ASN1_DN: return "asn1dn";
	case ISAKMP_ID_KEY_ID: return "key-id";
	default: return "other";
	}
}

/* Printable form of an identity, for the log and the explanation. */
static void id_text(uint8_t type, const uint8_t *d, size_t n, char *out, size_t cap)
{
	if (type == ISAKMP_ID_IPV4_ADDR && n == 4) {
		inet_ntop(AF_INET, d, out, (socklen_t)cap);
		return;
	}
	if (type == ISAKMP_ID_FQDN || type == ISAKMP_ID_USER_FQDN || type == ISAKMP_ID_KEY_ID) {
		size_t k = 0;

		for (size_t i = 0; i < n && k + 1 < cap; i++)
			out[k++] = d[i] >= 0x20 && d[i] < 0x7f ? (char)d[i] : '?';
		out[k] = '\0';
		return;
	}
	if (type == ISAKMP_ID_DER_ASN1_DN) {
		bw_dn_der_text(d, n, out, cap);
		return;
	}
	snprintf(out, cap, "(%zu bytes)", n);
}

int ike_p1_check_peer_id(struct bw_ike_conn *ike, const struct isakmp_payload *pl)
{
	struct isakmp_id id;
	uint8_t want[IKE_ID_MAX];
	size_t want_len;
	char err[600], got[256], exp[1000];
	bool same;

	if (isakmp_parse_id(pl, &id) != 0) {
		ike_fail(ike, "protocol-error", "the gateway sent a malformed identity", NULL);
		return -1;
	}
	id_text(id.type, id.data, id.len, got, sizeof(got));
	ike_log(ike, BW_LOG_INFO, "gateway identity: %s %s", id_type_text(id.type), got);
	if (!ike->cfg.verify_remote_id)
		return 0;
	/* With certificates and no remote_id, the identity is the one the certificate vouches for
	 * (ike_p1_check_peer_cert checked that binding). */
	if (ike->sa.cert && !ike->cfg.remote_id[0])
		return 0;
	if (id_body(ike->cfg.remote_id_type, ike->cfg.remote_id, &ike->path.peer, NULL, want, sizeof(want),
		    &want_len, err, sizeof(err)) != 0) {
		ike_fail(ike, "config", err, err);
		return -1;
	}
	if (want[0] == ISAKMP_ID_DER_ASN1_DN && id.type == ISAKMP_ID_DER_ASN1_DN)
		same = bw_dn_der_cmp(want + 4, want_len - 4, id.data, id.len) == 0;
	else
		same = want[0] == id.type && want_len - 4 == id.len && memcmp(want + 4, id.data, id.len) == 0;
	if (!same) {
		char w[256];

		id_text(want[0], want + 4, want_len - 4, w, sizeof(w));
		snprintf(err, sizeof(err), "the gateway identified itself as %s %s, not %s %s",
			 id_type_text(id.type), got, id_type_text(want[0]), w);
		snprintf(exp, sizeof(exp),
			 "The gateway's identity (%s %s) is not the one this connection expects (%s %s). "
			 "Set remote_id_type/remote_id to what the gateway sends, or ask its admin which "
			 "identity it uses.", id_type_text(id.type), got, id_type_text(want[0]), w);
		ike_fail(ike, "id-mismatch", err, exp);
		return -1;
	}
	return 0;
}

int ike_p1_build_cr(struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	const uint8_t *name;
	size_t len;

	if (!ike->sa.cert)
		return 0;
	for (size_t i = 0; (name = bw_cert_ca_name(ike->sa.cert, i, &len)); i++) {
		struct isakmp_cert cr = { ISAKMP_CERT_X509_SIG, name, len };

		if (isakmp_b_cr(b, &cr) != 0)
			return -1;
	}
	return 0;
}

int ike_p1_build_cert_sig(struct bw_ike_conn *ike, struct isakmp_builder *b, const uint8_t *hash)
{
	struct isakmp_cert c = { ISAKMP_CERT_X509_SIG, NULL, 0 };
	uint8_t sig[1024];
	size_t siglen;

	c.data = bw_cert_der(ike->sa.cert, &c.len);
	if (bw_cert_sign(ike->sa.cert, hash, ike_p1_hash_len(ike), sig, sizeof(sig), &siglen) != 0) {
		ike_log(ike, BW_LOG_WARN, "signing HASH_I with our private key failed");
		return -1;
	}
	if (isakmp_b_cert(b, &c) != 0)
		return -1;
	/* our intermediates, each in its own CERT payload after our certificate */
	for (size_t i = 0; (c.data = bw_cert_chain_der(ike->sa.cert, i, &c.len)); i++)
		if (isakmp_b_cert(b, &c) != 0)
			return -1;
	return isakmp_b_sig(b, sig, siglen) != 0 ? -1 : 0;
}

static void cert_fail(struct bw_ike_conn *ike, const struct bw_cert_err *e)
{
	ike_fail(ike, e->code, e->msg, e->explanation);
}

/* The gateway's certificates, chain and signature over HASH_R, then its ID against the
 * certificate. id_index is its ID payload in pls. */
int ike_p1_check_peer_cert(struct bw_ike_conn *ike, const struct isakmp_payloads *pls, int id_index)
{
	struct bw_cert_peer *peer = bw_cert_peer_new();
	struct bw_cert_err e;
	struct isakmp_blob sig;
	struct isakmp_id id;
	uint8_t hash[BW_HASH_MAX];
	char have[400], got[256];
	int si = isakmp_payloads_find(pls, ISAKMP_PL_SIG, 0), rc = -1;

	if (!peer) {
		ike_fail(ike, "internal", "out of memory checking the gateway's certificate", NULL);
		return -1;
	}
	for (size_t i = 0; i < pls->n; i++) {
		struct isakmp_cert c;

		if (pls->p[i].type != ISAKMP_PL_CERT)
			continue;
		if (isakmp_parse_cert(&pls->p[i], &c) != 0 || c.encoding != ISAKMP_CERT_X509_SIG ||
		    bw_cert_peer_add(peer, c.data, c.len) != 0) {
			ike_fail(ike, "cert-invalid", "the gateway sent a certificate that is not a valid X.509 "
				 "signature certificate", "The gateway's CERT payload could not be read as an X.509 "
				 "certificate. Ask its admin to check the certificate it sends.");
			goto out;
		}
	}
	if (si < 0 || isakmp_parse_sig(&pls->p[si], &sig) != 0) {
		ike_fail(ike, "auth-failed", "the gateway sent no signature", "The gateway did not authenticate "
			 "with a signature; it may be configured for a pre-shared key. Check method in [auth].");
		goto out;
	}
	/* Main Mode 6 decrypted with our keys: the gateway holds an established IKE SA, which our
	 * delete removes whatever we think of its certificate. */
	ike->sa.authenticated = true;
	if (bw_cert_peer_count(peer) > 0) {
		ike->sa.have_peer_cert = true;
		bw_cert_peer_info(peer, &ike->sa.peer_cert);
		ike_log(ike, BW_LOG_INFO, "gateway certificate: %s, issued by %s, valid until %s",
			ike->sa.peer_cert.subject, ike->sa.peer_cert.issuer, ike->sa.peer_cert.not_after);
	}
	if (bw_cert_verify_chain(ike->sa.cert, peer, time(NULL), &e) != 0) {
		cert_fail(ike, &e);
		goto out;
	}
	if (ike_p1_hash(ike, false, pls->p[id_index].data, pls->p[id_index].len, hash) != 0 ||
	    bw_cert_verify_sig(peer, hash, ike_p1_hash_len(ike), sig.data, sig.len) != 0) {
		ike_fail(ike, "auth-failed", "the gateway's signature does not verify with its certificate",
			 "The gateway signed the exchange with a key that does not belong to the certificate it "
			 "sent, or the signature is damaged. Ask the gateway's admin to check its private key.");
		goto out;
	}
	if (ike->cfg.verify_remote_id) {
		if (isakmp_parse_id(&pls->p[id_index], &id) != 0) {
			ike_fail(ike, "protocol-error", "the gateway sent a malformed identity", NULL);
			goto out;
		}
		if (bw_cert_id_match(peer, id.type, id.data, id.len, have, sizeof(have)) != 0) {
			char err[800], exp[1200];

			id_text(id.type, id.data, id.len, got, sizeof(got));
			snprintf(err, sizeof(err), "the gateway identified itself as %s %s, which its certificate "
				 "does not name (it holds %s)", id_type_text(id.type), got, have);
			snprintf(exp, sizeof(exp), "The gateway's identity (%s %s) is not in its certificate (%s: %s). "
				 "A gateway must use its certificate's subject or one of its subjectAltNames as its "
				 "identity; ask its admin to fix that.", id_type_text(id.type), got,
				 ike->sa.peer_cert.subject, have);
			ike_fail(ike, "id-mismatch", err, exp);
			goto out;
		}
	}
	rc = ike_p1_check_peer_id(ike, &pls->p[id_index]);
out:
	bw_cert_peer_free(peer);
	return rc;
}

static int natd(struct bw_ike_conn *ike, const struct sockaddr_storage *addr, uint8_t *out)
{
	return bw_natd_hash(ike->sa.alg.hash, ike->sa.icookie, ike->sa.rcookie, (const struct sockaddr *)addr, out);
}

int ike_p1_build_natd(struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	uint8_t h[BW_HASH_MAX];
	size_t hl = bw_hash_len(ike->sa.alg.hash);

	if (!ike->path.use_natt)
		return 0;
	/* First the gateway's address as we see it, then ours. */
	if (natd(ike, &ike->path.peer, h) != 0 || isakmp_b_natd(b, h, hl) != 0)
		return -1;
	if (ike->cfg.nat_traversal == BW_NATT_FORCE) {
		/* A hash that matches no address makes the gateway believe we are behind a NAT,
		 * so that ESP goes in UDP (RFC 3948) — what strongSwan's encap=yes does. */
		if (bw_random(h, hl) != 0)
			return -1;
	} else if (natd(ike, &ike->path.local, h) != 0) {
		return -1;
	}
	return isakmp_b_natd(b, h, hl);
}

void ike_p1_check_natd(struct bw_ike_conn *ike, const struct isakmp_payloads *pls)
{
	uint8_t mine[BW_HASH_MAX], theirs[BW_HASH_MAX];
	size_t hl = bw_hash_len(ike->sa.alg.hash);
	bool first = true, remote_match = false;

	if (!ike->path.use_natt)
		return;
	natd(ike, &ike->path.local, mine);
	natd(ike, &ike->path.peer, theirs);
	ike->path.nat_local = false;
	for (size_t i = 0; i < pls->n; i++) {
		struct isakmp_blob d;

		if (pls->p[i].type != ISAKMP_PL_NATD || isakmp_parse_natd(&pls->p[i], &d) != 0)
			continue;
		if (first) {
			/* The gateway's view of our address: different means a NAT in front of us. */
			ike->path.nat_local = d.len != hl || !bw_crypto_equal(d.data, mine, hl);
			first = false;
		} else if (d.len == hl && bw_crypto_equal(d.data, theirs, hl)) {
			remote_match = true;
		}
	}
	if (first) {
		ike_log(ike, BW_LOG_INFO, "gateway sent no NAT-D payloads: no NAT traversal");
		ike->path.use_natt = false;
		return;
	}
	ike->path.nat_remote = !remote_match;
	ike_log(ike, BW_LOG_INFO, "NAT detection: %s in front of us, %s in front of the gateway%s",
		ike->path.nat_local ? "NAT" : "no NAT", ike->path.nat_remote ? "NAT" : "no NAT",
		ike->cfg.nat_traversal == BW_NATT_FORCE ? " (ESP in UDP forced)" : "");
	if (ike->cfg.nat_traversal == BW_NATT_FORCE)
		ike->path.nat_local = true;
}

void ike_p1_note_vids(struct bw_ike_conn *ike, const struct isakmp_payloads *pls)
{
	for (size_t i = 0; i < pls->n; i++) {
		struct isakmp_blob d;
		const struct bw_vendor *v;

		if (pls->p[i].type != ISAKMP_PL_VID || isakmp_parse_vid(&pls->p[i], &d) != 0)
			continue;
		v = bw_vendor_match(d.data, d.len);
		if (!v) {
			char hex[41];

			bw_hex(hex, d.data, d.len < 20 ? d.len : 20);
			ike_log(ike, BW_LOG_DEBUG, "gateway vendor ID %s (unknown)", hex);
			continue;
		}
		ike_log(ike, BW_LOG_DEBUG, "gateway vendor ID: %s", v->name);
		switch (v->id) {
		case BW_VID_NATT_RFC3947: ike->sa.peer_natt = true; break;
		case BW_VID_DPD: ike->sa.peer_dpd = true; break;
		case BW_VID_XAUTH: ike->sa.peer_xauth = true; break;
		case BW_VID_CISCO_UNITY: ike->sa.peer_unity = true; break;
		case BW_VID_FRAGMENTATION: ike->sa.peer_frag = true; break;
		default:
			bw_strlcpy(ike->sa.peer_vendor, v->name, sizeof(ike->sa.peer_vendor));
			break;
		}
	}
	if (ike->path.use_natt && !ike->sa.peer_natt) {
		ike_log(ike, BW_LOG_INFO, "gateway does not announce RFC 3947 NAT traversal");
		ike->path.use_natt = false;
	}
}

int ike_p1_put_vids(struct isakmp_builder *b, const struct ike_p1_offer *o)
{
	enum bw_vendor_id ids[4];
	size_t n = 0;

	if (o->natt)
		ids[n++] = BW_VID_NATT_RFC3947;
	ids[n++] = BW_VID_DPD;
	if (o->xauth)
		ids[n++] = BW_VID_XAUTH;
	if (o->unity)
		ids[n++] = BW_VID_CISCO_UNITY;
	for (size_t i = 0; i < n; i++) {
		size_t len;
		const uint8_t *v = bw_vendor_bytes(ids[i], &len);

		if (v && isakmp_b_vid(b, v, len) != 0)
			return -1;
	}
	return 0;
}

int ike_p1_build_vids(struct bw_ike_conn *ike, struct isakmp_builder *b)
{
	struct ike_p1_offer o;

	ike_p1_offer_init(&o, &ike->cfg, ike->sa.cert);
	return ike_p1_put_vids(b, &o);
}

int ike_p1_new_dh(struct bw_ike_conn *ike)
{
	char err[160];

	bw_dh_free(ike->p1x.dh);
	ike->p1x.dh = bw_dh_new(ike->sa.alg.dh, err, sizeof(err));
	if (!ike->p1x.dh) {
		ike_fail(ike, "config", err, err);
		return -1;
	}
	ike->p1x.gx_len = bw_dh_public_len(ike->sa.alg.dh);
	return bw_dh_public(ike->p1x.dh, ike->p1x.gxi, sizeof(ike->p1x.gxi));
}

int ike_p1_take_ke_nonce(struct bw_ike_conn *ike, const struct isakmp_payloads *pls)
{
	int ki = isakmp_payloads_find(pls, ISAKMP_PL_KE, 0);
	int ni = isakmp_payloads_find(pls, ISAKMP_PL_NONCE, 0);
	struct isakmp_blob ke, nonce;

	if (ki < 0 || ni < 0 || isakmp_parse_ke(&pls->p[ki], &ke) != 0 ||
	    isakmp_parse_nonce(&pls->p[ni], &nonce) != 0 || ke.len != ike->p1x.gx_len ||
	    nonce.len > sizeof(ike->p1x.nr)) {
		ike_log(ike, BW_LOG_DEBUG, "key exchange or nonce missing or malformed");
		return -1;
	}
	memcpy(ike->p1x.gxr, ke.data, ke.len);
	memcpy(ike->p1x.nr, nonce.data, nonce.len);
	ike->p1x.nr_len = nonce.len;
	return 0;
}

int ike_p1_derive_keys(struct bw_ike_conn *ike)
{
	uint8_t gxy[BW_DH_PUBLIC_MAX];
	size_t gxy_len = sizeof(gxy);
	enum bw_hash h = ike->sa.alg.hash;
	int rc = -1;

	if (bw_dh_compute(ike->p1x.dh, ike->p1x.gxr, ike->p1x.gx_len, gxy, &gxy_len) != 0) {
		ike_log(ike, BW_LOG_WARN, "the gateway's key exchange value is invalid");
		goto out;
	}
	ike->sa.prf_len = bw_hash_len(h);
	ike->sa.block = bw_ike_block_size(ike->sa.alg.encr);
	ike->sa.enc_key_len = bw_ike_key_len(ike->sa.alg.encr, ike->sa.alg.key_bits);
	if ((ike->sa.cert ? bw_ike_skeyid_sig(h, ike->p1x.ni, IKE_NONCE_LEN, ike->p1x.nr, ike->p1x.nr_len, gxy, gxy_len,
					   ike->sa.skeyid)
		       : bw_ike_skeyid_psk(h, (const uint8_t *)ike->sec.psk, ike->sec.psk_len, ike->p1x.ni,
					   IKE_NONCE_LEN, ike->p1x.nr, ike->p1x.nr_len, ike->sa.skeyid)) != 0 ||
	    bw_ike_skeyid_derive(h, ike->sa.skeyid, gxy, gxy_len, ike->sa.icookie, ike->sa.rcookie, ike->sa.skeyid_d,
				 ike->sa.skeyid_a, ike->sa.skeyid_e) != 0 ||
	    bw_ike_enc_key(h, ike->sa.alg.encr, ike->sa.alg.key_bits, ike->sa.skeyid_e, ike->sa.enc_key) != 0 ||
	    bw_ike_iv_phase1(h, ike->p1x.gxi, ike->p1x.gx_len, ike->p1x.gxr, ike->p1x.gx_len, ike->sa.block, ike->sa.iv) != 0)
		goto out;
	ike_log(ike, BW_LOG_DEBUG, "phase-1 keys derived (%s, %zu-byte key)", bw_hash_name(h), ike->sa.enc_key_len);
	rc = 0;
out:
	OPENSSL_cleanse(gxy, sizeof(gxy));
	return rc;
}

/* The prf of HASH_I/HASH_R: the negotiated one, except for ECDSA, where RFC 4754 (and strongSwan)
 * take HMAC with the curve's hash: SHA-256 for P-256, SHA-384 for P-384, SHA-512 for P-521. */
static enum bw_hash auth_hash(const struct bw_ike_conn *ike)
{
	switch (ike->sa.cert ? bw_cert_auth_method(ike->sa.cert) : 0) {
	case ISAKMP_AUTH_ECDSA_256: return BW_HASH_SHA256;
	case ISAKMP_AUTH_ECDSA_384: return BW_HASH_SHA384;
	case ISAKMP_AUTH_ECDSA_521: return BW_HASH_SHA512;
	default: return ike->sa.alg.hash;
	}
}

size_t ike_p1_hash_len(const struct bw_ike_conn *ike)
{
	return bw_hash_len(auth_hash(ike));
}

int ike_p1_hash(struct bw_ike_conn *ike, bool initiator, const uint8_t *id_b, size_t id_len, uint8_t *out)
{
	struct bw_ike_auth_data d = {
		.g_xi = ike->p1x.gxi, .g_xr = ike->p1x.gxr, .g_xi_len = ike->p1x.gx_len, .g_xr_len = ike->p1x.gx_len,
		.cky_i = ike->sa.icookie, .cky_r = ike->sa.rcookie,
		.sai_b = ike->p1x.sai_b, .sai_b_len = ike->p1x.sai_b_len,
	};
	enum bw_hash h = auth_hash(ike);

	if (h != ike->sa.alg.hash) {
		/* ECDSA: the curve's HMAC keyed with SKEYID, which keeps the negotiated prf's length. */
		const uint8_t *g1 = initiator ? ike->p1x.gxi : ike->p1x.gxr, *g2 = initiator ? ike->p1x.gxr : ike->p1x.gxi;
		const uint8_t *c1 = initiator ? ike->sa.icookie : ike->sa.rcookie, *c2 = initiator ? ike->sa.rcookie : ike->sa.icookie;
		const struct bw_iov iov[] = {
			{ g1, ike->p1x.gx_len }, { g2, ike->p1x.gx_len }, { c1, 8 }, { c2, 8 },
			{ ike->p1x.sai_b, ike->p1x.sai_b_len }, { id_b, id_len },
		};

		return bw_prf_iov(h, ike->sa.skeyid, ike->sa.prf_len, iov, 6, out);
	}
	if (initiator) {
		d.idii_b = id_b;
		d.idii_b_len = id_len;
		return bw_ike_hash_i(h, ike->sa.skeyid, &d, out);
	}
	d.idir_b = id_b;
	d.idir_b_len = id_len;
	return bw_ike_hash_r(h, ike->sa.skeyid, &d, out);
}

int ike_encrypt_msg(struct bw_ike_conn *ike, struct isakmp_builder *b, uint8_t *iv)
{
	size_t len, pad, total;
	uint8_t *body = isakmp_b_body(b, &len), *ct;
	int rc;

	if (isakmp_b_finish(b) != 0 || !body)
		return -1;
	body = isakmp_b_body(b, &len);
	pad = bw_ike_pad_len(len, ike->sa.block);
	total = len + pad;
	ct = calloc(1, total);
	if (!ct)
		return -1;
	memcpy(ct, body, len);
	rc = bw_ike_encrypt(ike->sa.alg.encr, ike->sa.enc_key, ike->sa.enc_key_len, iv, ct, total);
	if (rc == 0)
		rc = isakmp_b_set_body(b, ct, total, 1);
	free(ct);
	return rc;
}

int ike_decrypt_msg(struct bw_ike_conn *ike, uint8_t *msg, size_t len, uint8_t *iv)
{
	if (len <= ISAKMP_HDR_LEN || (len - ISAKMP_HDR_LEN) % ike->sa.block != 0) {
		ike_log(ike, BW_LOG_DEBUG, "encrypted message of %zu bytes is not a whole number of blocks", len);
		return -1;
	}
	return bw_ike_decrypt(ike->sa.alg.encr, ike->sa.enc_key, ike->sa.enc_key_len, iv, msg + ISAKMP_HDR_LEN,
			      len - ISAKMP_HDR_LEN);
}

void ike_float(struct bw_ike_conn *ike)
{
	if (!ike->path.use_natt || ike->path.floated)
		return;
	if (!ike->path.nat_local && !ike->path.nat_remote)
		return;
	ike->path.floated = true;
	((struct sockaddr_in *)&ike->path.local)->sin_port = htons(ike_sockets_port(true));
	((struct sockaddr_in *)&ike->path.peer)->sin_port = htons(4500);
	ike_log(ike, BW_LOG_INFO, "NAT traversal: moving to UDP port 4500");
}

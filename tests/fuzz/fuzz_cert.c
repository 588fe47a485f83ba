/* libFuzzer target for what Main Mode 6 hands the certificate code: a payload chain (the first
 * byte is the first payload type) whose CERT payloads become the gateway's certificates, whose
 * CERTREQ and ID payloads carry DNs, and whose ID and SIG payloads are checked against the
 * certificate, and whose certificates (the first the gateway's, the rest untrusted
 * intermediates) are verified against a CA store with a CRL, made once at start in a temporary
 * directory. The same bytes, as text, go through the connection file's DN parser. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "ike/ike_cert.h"
#include "ike/isakmp.h"

static struct isakmp_payloads pls;
static struct bw_cert_creds *creds;	/* a CA, our certificate, a CRL of the CA */

static void check(int cond)
{
	if (!cond)
		abort();
}

static void dn_text_as_config(const uint8_t *data, size_t size)
{
	char text[BW_ID_MAX], err[200], back[512];
	uint8_t der[BW_ID_MAX * 4];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1, len;

	memcpy(text, data, n);
	text[n] = '\0';
	if (bw_dn_to_der(text, der, sizeof(der), &len, err, sizeof(err)) != 0)
		return;
	/* A DN that parsed compares equal to itself, and its printed form is a string. */
	check(bw_dn_der_cmp(der, len, der, len) == 0);
	bw_dn_der_text(der, len, back, sizeof(back));
	check(memchr(back, '\0', sizeof(back)) != NULL);
}

static X509 *self_signed(EVP_PKEY *k, const char *cn, X509 *issuer, EVP_PKEY *ikey)
{
	X509 *x = X509_new();
	X509_NAME *n = X509_NAME_new();

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), issuer ? 2 : 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -86400);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400 * 30);
	X509_set_pubkey(x, k);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	X509_sign(x, issuer ? ikey : k, EVP_sha256());
	return x;
}

static void write_pem(const char *path, X509 *x, EVP_PKEY *k, X509_CRL *crl)
{
	FILE *f = fopen(path, "wb");

	check(f != NULL);
	if (x)
		PEM_write_X509(f, x);
	if (k)
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	if (crl)
		PEM_write_X509_CRL(f, crl);
	fclose(f);
}

/* Once: CA and our certificate with keys, and an empty CRL of the CA, in files that
 * bw_cert_load reads; the files are removed again. */
static void make_creds(void)
{
	char dir[] = "/tmp/bw-fuzz-cert.XXXXXX", p[4][64];
	struct bw_conn_config cfg;
	struct bw_cert_err err;
	EVP_PKEY *ck = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256"), *mk = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	X509 *ca = self_signed(ck, "Fuzz CA", NULL, NULL), *me = self_signed(mk, "me", ca, ck);
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();

	check(mkdtemp(dir) != NULL);
	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca));
	X509_gmtime_adj(t, -86400);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, 86400 * 7);
	X509_CRL_set1_nextUpdate(crl, t);
	X509_CRL_sign(crl, ck, EVP_sha256());
	for (int i = 0; i < 4; i++)
		snprintf(p[i], sizeof(p[i]), "%s/%d.pem", dir, i);
	write_pem(p[0], ca, NULL, NULL);
	write_pem(p[1], me, NULL, NULL);
	write_pem(p[2], NULL, mk, NULL);
	write_pem(p[3], NULL, NULL, crl);
	memset(&cfg, 0, sizeof(cfg));
	cfg.auth_method = BW_AUTH_ECDSA;
	snprintf(cfg.ca, sizeof(cfg.ca), "%s", p[0]);
	snprintf(cfg.certificate, sizeof(cfg.certificate), "%s", p[1]);
	snprintf(cfg.private_key, sizeof(cfg.private_key), "%s", p[2]);
	snprintf(cfg.crls[0], sizeof(cfg.crls[0]), "%s", p[3]);
	cfg.n_crls = 1;
	creds = bw_cert_load(&cfg, NULL, &err);
	check(creds != NULL);
	for (int i = 0; i < 4; i++)
		unlink(p[i]);
	rmdir(dir);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
	X509_free(ca);
	X509_free(me);
	EVP_PKEY_free(ck);
	EVP_PKEY_free(mk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_cert_peer *peer;
	struct bw_cert_info info;
	char have[400], text[512];
	static const uint8_t hash[48] = { 1, 2, 3 };

	dn_text_as_config(data, size);
	if (size < 1 || isakmp_payloads_parse(data[0], data + 1, size - 1, &pls) != 0)
		return 0;
	peer = bw_cert_peer_new();
	if (!peer)
		return 0;
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_cert c;

		if (pls.p[i].type == ISAKMP_PL_CERT && isakmp_parse_cert(&pls.p[i], &c) == 0) {
			check(c.data + c.len <= data + size);
			if (c.encoding == ISAKMP_CERT_X509_SIG)
				(void)bw_cert_peer_add(peer, c.data, c.len);
		} else if (pls.p[i].type == ISAKMP_PL_CR && isakmp_parse_cr(&pls.p[i], &c) == 0) {
			check(c.data + c.len <= data + size);
			bw_dn_der_text(c.data, c.len, text, sizeof(text));
		}
	}
	bw_cert_peer_info(peer, &info);
	check(memchr(info.subject, '\0', sizeof(info.subject)) != NULL);
	if (bw_cert_peer_count(peer) > 0) {
		struct bw_cert_err e;

		if (!creds)
			make_creds();
		/* Whatever the chain, a failure has a code and sentences. */
		if (bw_cert_verify_chain(creds, peer, time(NULL), &e) != 0)
			check(e.code[0] && memchr(e.msg, '\0', sizeof(e.msg)) && memchr(e.explanation, '\0',
											   sizeof(e.explanation)));
	}
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_id id;
		struct isakmp_blob sig;

		if (pls.p[i].type == ISAKMP_PL_ID && isakmp_parse_id(&pls.p[i], &id) == 0) {
			int m = bw_cert_id_match(peer, id.type, id.data, id.len, have, sizeof(have));

			check(m == 0 || m == 1);
			check(memchr(have, '\0', sizeof(have)) != NULL);
			if (id.type == ISAKMP_ID_DER_ASN1_DN)
				bw_dn_der_text(id.data, id.len, text, sizeof(text));
		} else if (pls.p[i].type == ISAKMP_PL_SIG && isakmp_parse_sig(&pls.p[i], &sig) == 0) {
			/* A forged signature over a fixed hash never verifies. */
			check(bw_cert_verify_sig(peer, hash, sizeof(hash), sig.data, sig.len) != 0);
		}
	}
	bw_cert_peer_free(peer);
	return 0;
}

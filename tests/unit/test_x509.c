/* Certificate authentication (agent/ike/ike_cert.c) with certificates and keys made here with
 * OpenSSL's API in a temporary directory (nothing committed): loading, key match, passphrases,
 * chain verification and its failures, identities against certificates, DN forms, the raw
 * IKEv1 signatures, and the CERT / CERTREQ / SIG payload codec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/rsa.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ike/ike_cert.h"
#include "ike/isakmp.h"
#include "tap.h"

static char dir[] = "/tmp/bw-test-x509.XXXXXX";

static EVP_PKEY *rsa_key(void) { return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048); }
static EVP_PKEY *ec_key(const char *curve) { return EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve); }

static void ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *e;

	X509V3_set_ctx(&ctx, issuer ? issuer : x, x, NULL, NULL, 0);
	e = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (e) {
		X509_add_ext(x, e, -1);
		X509_EXTENSION_free(e);
	}
}

/* subject in one-line form; issuer NULL = self-signed CA, ku "CA" = an intermediate CA; validity
 * in days from now. */
static X509 *make_cert(const char *subject, EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, long from_days,
		       long to_days, const char *san, const char *ku)
{
	X509 *x = X509_new();
	char err[128];
	uint8_t der[512];
	size_t len;
	const unsigned char *p = der;
	X509_NAME *n;
	static long serial = 1;

	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), serial++);
	X509_gmtime_adj(X509_getm_notBefore(x), from_days * 86400);
	X509_gmtime_adj(X509_getm_notAfter(x), to_days * 86400);
	X509_set_pubkey(x, key);
	if (bw_dn_to_der(subject, der, sizeof(der), &len, err, sizeof(err)) != 0)
		abort();
	n = d2i_X509_NAME(NULL, &p, (long)len);
	X509_set_subject_name(x, n);
	X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : n);
	X509_NAME_free(n);
	if (!issuer || (ku && strcmp(ku, "CA") == 0)) {
		ext(x, issuer, NID_basic_constraints, "critical,CA:TRUE");
		ext(x, issuer, NID_key_usage, "critical,keyCertSign,cRLSign");
	} else {
		ext(x, issuer, NID_basic_constraints, "CA:FALSE");
		ext(x, issuer, NID_key_usage, ku ? ku : "digitalSignature");
	}
	ext(x, issuer, NID_subject_key_identifier, "hash");
	if (san)
		ext(x, issuer, NID_subject_alt_name, san);
	X509_sign(x, issuer ? ikey : key, EVP_sha256());
	return x;
}

static char *path(const char *name)
{
	static char buf[8][256];
	static int i;

	i = (i + 1) % 8;
	snprintf(buf[i], sizeof(buf[i]), "%s/%s", dir, name);
	return buf[i];
}

static void write_cert(const char *name, X509 *x, int der)
{
	FILE *f = fopen(path(name), "wb");

	if (der)
		i2d_X509_fp(f, x);
	else
		PEM_write_X509(f, x);
	fclose(f);
}

static void write_key(const char *name, EVP_PKEY *k, const char *pass)
{
	FILE *f = fopen(path(name), "wb");

	if (pass)
		PEM_write_PKCS8PrivateKey(f, k, EVP_aes_256_cbc(), NULL, 0, NULL, (void *)pass);
	else
		PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL);
	fclose(f);
}

static struct bw_conn_config cfg(enum bw_auth_method m, const char *cert, const char *key, const char *ca)
{
	struct bw_conn_config c;

	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "t");
	c.auth_method = m;
	snprintf(c.certificate, sizeof(c.certificate), "%s", path(cert));
	snprintf(c.private_key, sizeof(c.private_key), "%s", path(key));
	snprintf(c.ca, sizeof(c.ca), "%s", path(ca));
	return c;
}

static struct bw_cert_peer *peer_of(X509 *x)
{
	struct bw_cert_peer *p = bw_cert_peer_new();
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	if (bw_cert_peer_add(p, der, (size_t)n) != 0)
		abort();
	OPENSSL_free(der);
	return p;
}

static X509 *ca, *ca2;
static EVP_PKEY *ca_k, *ca2_k;

static void test_load(void)
{
	EVP_PKEY *k = rsa_key(), *other = rsa_key(), *e384 = ec_key("P-384");
	X509 *xc = make_cert("/C=CH/O=Lab/CN=client", k, ca, ca_k, -1, 30, "email:client@lab.example", NULL);
	X509 *ce = make_cert("/C=CH/O=Lab/CN=client-ec", e384, ca, ca_k, -1, 30, NULL, NULL);
	struct bw_conn_config c;
	struct bw_cert_creds *cr;
	struct bw_cert_err e;
	size_t len;

	write_cert("cli.pem", xc, 0);
	write_cert("cli.der", xc, 1);
	write_key("cli.key", k, NULL);
	write_key("cli-enc.key", k, "s3cret");
	write_key("other.key", other, NULL);
	write_cert("cliec.pem", ce, 0);
	write_key("cliec.key", e384, NULL);

	c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(cr != NULL, "a PEM certificate with its PEM key and a CA file load");
	if (!cr)
		tap_diag("%s: %s", e.code, e.msg);
	tap_is_int(cr ? bw_cert_auth_method(cr) : 0, ISAKMP_AUTH_RSA_SIG, "an RSA key gives auth method 3");
	tap_ok(cr && bw_cert_ca_name(cr, 0, &len) && !bw_cert_ca_name(cr, 1, &len),
	       "the CA file gives one CA subject for CERTREQ");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_RSA, "cli.der", "cli.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(cr != NULL, "a DER certificate loads");
	bw_cert_free(cr);

	{
		FILE *f = fopen(path("cli-key.der"), "wb");

		i2d_PrivateKey_fp(f, k);
		fclose(f);
	}
	c = cfg(BW_AUTH_RSA, "cli.der", "cli-key.der", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(cr != NULL, "a DER private key loads");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_RSA, "cli.pem", "other.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "key-mismatch") == 0, "a key of another certificate is key-mismatch");
	tap_ok(strstr(e.msg, "other.key") && strstr(e.msg, "cli.pem"), "key-mismatch names both files");

	c = cfg(BW_AUTH_RSA, "cli.pem", "cli-enc.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "needs-secret") == 0, "an encrypted PKCS#8 key without a passphrase needs the secret");
	cr = bw_cert_load(&c, "wrong", &e);
	tap_ok(!cr && strcmp(e.code, "passphrase-wrong") == 0, "a wrong passphrase is passphrase-wrong");
	cr = bw_cert_load(&c, "s3cret", &e);
	tap_ok(cr != NULL, "the right passphrase decrypts the key");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_RSA, "cliec.pem", "cliec.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "config") == 0 && strstr(e.msg, "use method = ecdsa"),
	       "method = rsa with an ECDSA key is refused and says to use ecdsa");
	c.auth_method = BW_AUTH_ECDSA;
	cr = bw_cert_load(&c, NULL, &e);
	tap_is_int(cr ? bw_cert_auth_method(cr) : 0, ISAKMP_AUTH_ECDSA_384, "a P-384 key gives auth method 10");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "missing.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "cert-file") == 0 && strstr(e.msg, "missing.pem"), "a missing CA file is named");
	X509_free(xc);
	X509_free(ce);
	EVP_PKEY_free(k);
	EVP_PKEY_free(other);
	EVP_PKEY_free(e384);
}

/* A PKCS#12 file as openssl pkcs12 -export writes it (OpenSSL 3 defaults: AES-256, PBKDF2). */
static void write_p12(const char *name, const char *pass, EVP_PKEY *k, X509 *x, X509 *extra1, X509 *extra2)
{
	STACK_OF(X509) *cas = sk_X509_new_null();
	PKCS12 *p12;
	FILE *f;

	if (extra1)
		sk_X509_push(cas, extra1);
	if (extra2)
		sk_X509_push(cas, extra2);
	p12 = PKCS12_create(pass, "alice", k, x, cas, 0, 0, 0, 0, 0);
	if (!p12)
		abort();
	f = fopen(path(name), "wb");
	i2d_PKCS12_fp(f, p12);
	fclose(f);
	PKCS12_free(p12);
	sk_X509_free(cas);
}

static void test_pkcs12(void)
{
	EVP_PKEY *k = rsa_key(), *ik = rsa_key();
	X509 *inter = make_cert("/C=CH/O=Lab/CN=Lab Intermediate", ik, ca, ca_k, -1, 50, NULL, "CA");
	X509 *xc = make_cert("/C=CH/O=Lab/CN=alice", k, inter, ik, -1, 30, NULL, NULL);
	struct bw_conn_config c;
	struct bw_cert_creds *cr;
	struct bw_cert_err e;
	struct bw_cert_info info;
	const uint8_t *der;
	size_t len;
	unsigned char *want = NULL;
	int wlen = i2d_X509(inter, &want);

	write_p12("alice.p12", "p12-pass", k, xc, inter, ca);
	write_p12("alice.bin", "p12-pass", k, xc, NULL, NULL);
	write_p12("nopass.pfx", NULL, k, xc, NULL, NULL);

	c = cfg(BW_AUTH_RSA, "alice.p12", "", "ca.pem");
	c.private_key[0] = '\0';
	tap_is_str(bw_cert_secret_key(&c), "pkcs12_password", "a .p12 certificate takes its secret from pkcs12_password");
	cr = bw_cert_load(&c, "p12-pass", &e);
	tap_ok(cr != NULL, "a PKCS#12 file with its password gives certificate and key (no private_key set)");
	if (!cr)
		tap_diag("%s: %s", e.code, e.msg);
	bw_cert_own_info(cr, &info);
	tap_ok(cr && strstr(info.subject, "CN=alice") != NULL, "the certificate is the one the PKCS#12 file holds");
	der = cr ? bw_cert_chain_der(cr, 0, &len) : NULL;
	tap_ok(der && (int)len == wlen && memcmp(der, want, len) == 0,
	       "its intermediate CA comes with it as the first certificate to send after ours");
	tap_ok(cr && !bw_cert_chain_der(cr, 1, &len), "the self-signed root in the file is not sent");
	bw_cert_free(cr);

	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "needs-secret") == 0, "a PKCS#12 file without its password needs the secret");
	tap_ok(strstr(e.msg, "pkcs12_password") && strstr(e.msg, path("alice.p12")),
	       "needs-secret names pkcs12_password and the file");
	cr = bw_cert_load(&c, "wrong", &e);
	tap_ok(!cr && strcmp(e.code, "passphrase-wrong") == 0, "a wrong PKCS#12 password is passphrase-wrong");
	tap_ok(strstr(e.msg, path("alice.p12")) != NULL, "passphrase-wrong names the PKCS#12 file");

	c = cfg(BW_AUTH_RSA, "alice.bin", "", "ca.pem");
	c.private_key[0] = '\0';
	tap_is_str(bw_cert_secret_key(&c), "pkcs12_password", "a PKCS#12 file named .bin is found by its content");
	cr = bw_cert_load(&c, "p12-pass", &e);
	tap_ok(cr != NULL, "and loads");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_RSA, "nopass.pfx", "", "ca.pem");
	c.private_key[0] = '\0';
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(cr != NULL, "a .pfx exported without a password loads without a secret");
	bw_cert_free(cr);

	c = cfg(BW_AUTH_ECDSA, "alice.p12", "", "ca.pem");
	cr = bw_cert_load(&c, "p12-pass", &e);
	tap_ok(!cr && strcmp(e.code, "config") == 0 && strstr(e.msg, path("alice.p12")),
	       "method = ecdsa with the RSA key of a PKCS#12 file names the file");

	c = cfg(BW_AUTH_RSA, "cli.pem", "", "ca.pem");
	c.private_key[0] = '\0';
	tap_is_str(bw_cert_secret_key(&c), "private_key_passphrase", "a PEM certificate keeps private_key_passphrase");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "config") == 0 && strstr(e.msg, "private_key"),
	       "a PEM certificate without private_key is refused and says why");

	OPENSSL_free(want);
	X509_free(inter);
	X509_free(xc);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ik);
}

static void peer_push(struct bw_cert_peer *p, X509 *x)
{
	unsigned char *der = NULL;
	int n = i2d_X509(x, &der);

	if (bw_cert_peer_add(p, der, (size_t)n) != 0)
		abort();
	OPENSSL_free(der);
}

/* Intermediates: those after our certificate in a PEM file are sent; the gateway's additional
 * certificates complete its chain to our root, and are not trusted on their own. */
static void test_intermediates(void)
{
	EVP_PKEY *k = rsa_key(), *ik = rsa_key();
	X509 *inter = make_cert("/C=CH/O=Lab/CN=Lab Sub CA", ik, ca, ca_k, -1, 50, NULL, "CA");
	X509 *mine = make_cert("/C=CH/O=Lab/CN=bob", k, inter, ik, -1, 30, NULL, NULL);
	X509 *gw = make_cert("/C=CH/O=Lab/CN=gw-sub.lab.example", k, inter, ik, -1, 30, NULL, NULL);
	X509 *rogue_int = make_cert("/C=CH/O=Lab/CN=Lab Sub CA", ik, NULL, NULL, -1, 50, NULL, NULL);
	struct bw_conn_config c;
	struct bw_cert_creds *cr;
	struct bw_cert_peer *p;
	struct bw_cert_err e;
	const uint8_t *der;
	size_t len;
	unsigned char *want = NULL;
	int wlen = i2d_X509(inter, &want);
	time_t now = time(NULL);
	FILE *f = fopen(path("bob-chain.pem"), "wb");

	PEM_write_X509(f, mine);
	PEM_write_X509(f, inter);
	PEM_write_X509(f, ca);
	fclose(f);
	write_key("bob.key", k, NULL);

	c = cfg(BW_AUTH_RSA, "bob-chain.pem", "bob.key", "ca.pem");
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(cr != NULL, "a PEM file with our certificate, its intermediate and the root loads");
	if (!cr)
		tap_diag("%s: %s", e.code, e.msg);
	der = cr ? bw_cert_chain_der(cr, 0, &len) : NULL;
	tap_ok(der && (int)len == wlen && memcmp(der, want, len) == 0,
	       "the intermediate that follows our certificate is the one to send after it");
	tap_ok(cr && !bw_cert_chain_der(cr, 1, &len), "the self-signed root at the end of the file is not sent");

	p = peer_of(gw);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-untrusted") == 0,
	       "a gateway certificate from an intermediate we were not sent is cert-untrusted");
	peer_push(p, inter);
	tap_is_int(bw_cert_verify_chain(cr, p, now, &e), 0,
		   "with the intermediate in a second CERT payload it verifies against our root");
	bw_cert_peer_free(p);

	p = peer_of(inter);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0, "the gateway's intermediate on its own is no end certificate");
	bw_cert_peer_free(p);

	p = peer_of(gw);
	peer_push(p, rogue_int);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-untrusted") == 0,
	       "a self-signed certificate the gateway sends as intermediate is not trusted");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	OPENSSL_free(want);
	X509_free(inter);
	X509_free(mine);
	X509_free(gw);
	X509_free(rogue_int);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ik);
}

/* A CRL of issuer revoking the given certificates (may be none), valid from..to days from now;
 * written as PEM or DER. */
static void write_crl(const char *name, X509 *issuer, EVP_PKEY *ikey, X509 *rev1, X509 *rev2, long from_days,
		      long to_days, int der)
{
	X509_CRL *crl = X509_CRL_new();
	ASN1_TIME *t = ASN1_TIME_new();
	X509 *revs[2] = { rev1, rev2 };
	FILE *f;

	X509_CRL_set_version(crl, 1);
	X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer));
	X509_gmtime_adj(t, from_days * 86400);
	X509_CRL_set1_lastUpdate(crl, t);
	X509_gmtime_adj(t, to_days * 86400);
	X509_CRL_set1_nextUpdate(crl, t);
	for (int i = 0; i < 2; i++) {
		X509_REVOKED *r;

		if (!revs[i])
			continue;
		r = X509_REVOKED_new();
		X509_REVOKED_set_serialNumber(r, X509_get_serialNumber(revs[i]));
		ASN1_TIME_set_string(t, "20261201120000Z");
		X509_REVOKED_set_revocationDate(r, t);
		X509_CRL_add0_revoked(crl, r);
	}
	X509_CRL_sort(crl);
	X509_CRL_sign(crl, ikey, EVP_sha256());
	f = fopen(path(name), "wb");
	if (der)
		i2d_X509_CRL_fp(f, crl);
	else
		PEM_write_X509_CRL(f, crl);
	fclose(f);
	ASN1_TIME_free(t);
	X509_CRL_free(crl);
}

static struct bw_cert_creds *load_with_crls(const char *crl1, const char *crl2)
{
	struct bw_conn_config c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "ca.pem");
	struct bw_cert_err e;
	struct bw_cert_creds *cr;

	if (crl1)
		snprintf(c.crls[c.n_crls++], sizeof(c.crls[0]), "%s", path(crl1));
	if (crl2)
		snprintf(c.crls[c.n_crls++], sizeof(c.crls[0]), "%s", path(crl2));
	cr = bw_cert_load(&c, NULL, &e);
	if (!cr)
		tap_diag("loading with CRLs: %s: %s", e.code, e.msg);
	return cr;
}

static void test_crls(void)
{
	EVP_PKEY *k = rsa_key(), *ik = rsa_key();
	X509 *gw = make_cert("/C=CH/O=Lab/CN=gw.lab.example", k, ca, ca_k, -1, 30, NULL, NULL);
	X509 *gw2 = make_cert("/C=CH/O=Lab/CN=gw2.lab.example", k, ca, ca_k, -1, 30, NULL, NULL);
	X509 *inter = make_cert("/C=CH/O=Lab/CN=Lab Sub CA", ik, ca, ca_k, -1, 50, NULL, "CA");
	X509 *gws = make_cert("/C=CH/O=Lab/CN=gw-sub.lab.example", k, inter, ik, -1, 30, NULL, NULL);
	struct bw_conn_config c;
	struct bw_cert_creds *cr;
	struct bw_cert_peer *p;
	struct bw_cert_err e;
	time_t now = time(NULL);
	char serial[64];
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(gw), NULL);
	char *hex = BN_bn2hex(bn);

	snprintf(serial, sizeof(serial), "serial %s)", hex);
	write_crl("revokes-gw.crl", ca, ca_k, gw, NULL, -1, 7, 0);
	write_crl("revokes-none.der", ca, ca_k, NULL, NULL, -1, 7, 1);
	write_crl("other-ca.crl", ca2, ca2_k, gw, NULL, -1, 7, 0);
	write_crl("stale.crl", ca, ca_k, NULL, NULL, -20, -10, 0);
	write_crl("revokes-inter.crl", ca, ca_k, inter, NULL, -1, 7, 0);
	write_crl("inter.crl", inter, ik, NULL, NULL, -1, 7, 1);

	cr = load_with_crls("revokes-gw.crl", NULL);
	p = peer_of(gw);
	tap_ok(cr && bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-revoked") == 0,
	       "a gateway certificate on a PEM CRL of our CA is cert-revoked");
	tap_ok(strstr(e.msg, serial) && strstr(e.msg, "revoked on 2026-12-01 12:00:00 UTC") &&
	       strstr(e.msg, path("revokes-gw.crl")), "the message names the serial, the revocation date and the CRL file");
	tap_diag("cert-revoked: %s", e.explanation);
	tap_ok(strstr(e.explanation, "CN=gw.lab.example") && strstr(e.explanation, serial) &&
	       strstr(e.explanation, "2026-12-01 12:00:00 UTC") && strstr(e.explanation, path("revokes-gw.crl")),
	       "the explanation names the certificate, the serial, the date and the CRL file");
	bw_cert_peer_free(p);
	p = peer_of(gw2);
	tap_is_int(cr ? bw_cert_verify_chain(cr, p, now, &e) : -1, 0, "another certificate of the same CA is not revoked by it");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	cr = load_with_crls("revokes-none.der", NULL);
	p = peer_of(gw);
	tap_is_int(cr ? bw_cert_verify_chain(cr, p, now, &e) : -1, 0, "a DER CRL that does not list it lets it through");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	cr = load_with_crls("other-ca.crl", NULL);
	p = peer_of(gw);
	tap_ok(cr && bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-invalid") == 0 &&
	       strstr(e.explanation, "none of") && strstr(e.explanation, path("other-ca.crl")),
	       "with crl set but no CRL of the gateway's CA the chain is refused and the files named");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	cr = load_with_crls("stale.crl", NULL);
	p = peer_of(gw);
	tap_ok(cr && bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-invalid") == 0 &&
	       strstr(e.msg, "out of date") && strstr(e.msg, path("stale.crl")),
	       "a CRL past its next update is refused and named");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	/* the chain: the sub CA revoked by the root's CRL */
	p = peer_of(gws);
	peer_push(p, inter);
	cr = load_with_crls("inter.crl", NULL);
	tap_is_int(cr ? bw_cert_verify_chain(cr, p, now, &e) : -1, 0,
		   "with the sub CA's CRL alone only the gateway's certificate is checked");
	bw_cert_free(cr);
	cr = load_with_crls("inter.crl", "revokes-inter.crl");
	tap_ok(cr && bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-revoked") == 0 &&
	       strstr(e.msg, "CN=Lab Sub CA") && strstr(e.msg, path("revokes-inter.crl")),
	       "with CRLs for the whole chain a revoked sub CA is cert-revoked, named with its CRL");
	bw_cert_free(cr);
	bw_cert_peer_free(p);

	c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "ca.pem");
	snprintf(c.crls[c.n_crls++], sizeof(c.crls[0]), "%s", path("cli.pem"));
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "cert-file") == 0 && strstr(e.msg, path("cli.pem")) && strstr(e.msg, "revocation list"),
	       "a crl file that holds no CRL is refused and named");
	snprintf(c.crls[0], sizeof(c.crls[0]), "%s", path("nope.crl"));
	cr = bw_cert_load(&c, NULL, &e);
	tap_ok(!cr && strcmp(e.code, "cert-file") == 0 && strstr(e.msg, path("nope.crl")), "a missing crl file is named");

	OPENSSL_free(hex);
	BN_free(bn);
	X509_free(gw);
	X509_free(gw2);
	X509_free(inter);
	X509_free(gws);
	EVP_PKEY_free(k);
	EVP_PKEY_free(ik);
}

static const struct bw_cert_check *doctor(const struct bw_conn_config *c, const char *pass, const char *name)
{
	static struct bw_cert_check ck[BW_CERT_DOCTOR_CHECKS];
	size_t n = bw_cert_doctor(c, pass, time(NULL), ck);

	for (size_t i = 0; i < n; i++) {
		if (strcmp(ck[i].name, name) == 0) {
			tap_diag("doctor %s: %s %s", name, ck[i].status, ck[i].detail);
			return &ck[i];
		}
	}
	return NULL;
}

static int doctor_says(const struct bw_conn_config *c, const char *pass, const char *name, const char *status,
		       const char *detail_part)
{
	const struct bw_cert_check *k = doctor(c, pass, name);

	return k && strcmp(k->status, status) == 0 && strstr(k->detail, detail_part) != NULL;
}

/* burrow doctor NAME for a certificate connection: dates, key match, CA file; never a prompt. */
static void test_doctor(void)
{
	EVP_PKEY *k = rsa_key();
	X509 *fine = make_cert("/C=CH/O=Lab/CN=fine", k, ca, ca_k, -1, 200, NULL, NULL);
	X509 *soon = make_cert("/C=CH/O=Lab/CN=soon", k, ca, ca_k, -100, 10, NULL, NULL);
	X509 *old = make_cert("/C=CH/O=Lab/CN=old", k, ca, ca_k, -100, -2, NULL, NULL);
	X509 *later = make_cert("/C=CH/O=Lab/CN=later", k, ca, ca_k, 3, 100, NULL, NULL);
	struct bw_conn_config c;

	write_cert("d-fine.pem", fine, 0);
	write_cert("d-soon.pem", soon, 0);
	write_cert("d-old.pem", old, 0);
	write_cert("d-later.pem", later, 0);
	write_key("d.key", k, NULL);
	write_key("d-enc.key", k, "s3cret");
	write_p12("d.p12", "p12-pass", k, fine, NULL, NULL);

	c = cfg(BW_AUTH_RSA, "d-fine.pem", "d.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-dates", "ok", "is valid until 20"), "doctor: a certificate valid for 200 days is ok");
	tap_ok(doctor_says(&c, NULL, "cert-key", "ok", "belongs to the certificate"), "doctor: its key matches");
	tap_ok(doctor_says(&c, NULL, "cert-ca", "ok", "1 CA certificate(s)"), "doctor: the ca file loads with one CA");
	c = cfg(BW_AUTH_RSA, "d-soon.pem", "d.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-dates", "warn", "expires on 20") &&
	       (doctor_says(&c, NULL, "cert-dates", "warn", "in 9 day(s)") ||
		doctor_says(&c, NULL, "cert-dates", "warn", "in 10 day(s)")),
	       "doctor: a certificate expiring in 10 days warns with the date and the days left");
	c = cfg(BW_AUTH_RSA, "d-old.pem", "d.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-dates", "fail", "expired on 20") &&
	       doctor_says(&c, NULL, "cert-dates", "fail", path("d-old.pem")),
	       "doctor: an expired certificate fails, named, with its expiry");
	c = cfg(BW_AUTH_RSA, "d-later.pem", "d.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-dates", "fail", "is not valid before 20"),
	       "doctor: a certificate valid only from next week fails");
	c = cfg(BW_AUTH_RSA, "d-fine.pem", "other.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-key", "fail", "does not belong to the certificate"),
	       "doctor: a key of another certificate fails");
	c = cfg(BW_AUTH_RSA, "d-fine.pem", "d-enc.key", "ca.pem");
	tap_ok(doctor_says(&c, NULL, "cert-key", "ok", "encrypted, not checked"),
	       "doctor: an encrypted key without a passphrase in the secrets file is 'encrypted, not checked'");
	tap_ok(doctor_says(&c, "s3cret", "cert-key", "ok", "belongs to the certificate"),
	       "doctor: with the passphrase the encrypted key is checked");
	tap_ok(doctor_says(&c, "wrong", "cert-key", "fail", "does not decrypt"), "doctor: a wrong passphrase fails");
	c = cfg(BW_AUTH_RSA, "d.p12", "", "ca.pem");
	c.private_key[0] = '\0';
	tap_ok(doctor_says(&c, NULL, "cert-dates", "ok", "encrypted, not checked") &&
	       doctor_says(&c, NULL, "cert-key", "ok", "encrypted, not checked"),
	       "doctor: a PKCS#12 file without its password is 'encrypted, not checked'");
	tap_ok(doctor_says(&c, "p12-pass", "cert-dates", "ok", "valid until") &&
	       doctor_says(&c, "p12-pass", "cert-key", "ok", "belongs"),
	       "doctor: with its password the PKCS#12 file's certificate and key are checked");
	c = cfg(BW_AUTH_RSA, "d-fine.pem", "d.key", "nope.pem");
	tap_ok(doctor_says(&c, NULL, "cert-ca", "fail", path("nope.pem")), "doctor: a ca file that is not there fails, named");
	c = cfg(BW_AUTH_RSA, "d-fine.pem", "d.key", "cadir");
	tap_ok(doctor_says(&c, NULL, "cert-ca", "ok", "2 CA certificate(s)"), "doctor: a ca directory loads");

	X509_free(fine);
	X509_free(soon);
	X509_free(old);
	X509_free(later);
	EVP_PKEY_free(k);
}

static void test_signatures(void)
{
	static const char *const curves[] = { "P-256", "P-384", "P-521" };
	static const uint16_t methods[] = { ISAKMP_AUTH_ECDSA_256, ISAKMP_AUTH_ECDSA_384, ISAKMP_AUTH_ECDSA_521 };
	static const size_t lens[] = { 64, 96, 132 };
	uint8_t hash[32], sig[1024];
	size_t siglen;
	struct bw_cert_err e;

	for (size_t i = 0; i < sizeof(hash); i++)
		hash[i] = (uint8_t)(i * 7 + 1);
	for (int rsa = 1; rsa >= 0; rsa--) {
		for (size_t ci = 0; ci < (rsa ? 1 : 3); ci++) {
			EVP_PKEY *k = rsa ? rsa_key() : ec_key(curves[ci]);
			X509 *x = make_cert("/CN=signer", k, ca, ca_k, -1, 30, NULL, NULL);
			const char *what = rsa ? "RSA" : curves[ci];
			struct bw_conn_config c;
			struct bw_cert_creds *cr;
			struct bw_cert_peer *p;

			write_cert("s.pem", x, 0);
			write_key("s.key", k, NULL);
			c = cfg(rsa ? BW_AUTH_RSA : BW_AUTH_ECDSA, "s.pem", "s.key", "ca.pem");
			cr = bw_cert_load(&c, NULL, &e);
			p = peer_of(x);
			if (!rsa)
				tap_is_int(cr ? bw_cert_auth_method(cr) : 0, methods[ci], "%s gives auth method %u", what,
					   methods[ci]);
			tap_ok(cr && bw_cert_sign(cr, hash, sizeof(hash), sig, sizeof(sig), &siglen) == 0,
			       "%s: HASH_I is signed", what);
			if (rsa)
				tap_is_int(siglen, 256, "RSA 2048: the signature is the modulus length");
			else
				tap_is_int(siglen, lens[ci], "%s: the signature is r|s, %zu bytes", what, lens[ci]);
			tap_ok(bw_cert_verify_sig(p, hash, sizeof(hash), sig, siglen) == 0,
			       "%s: the signature verifies with the certificate's key", what);
			hash[0] ^= 1;
			tap_ok(bw_cert_verify_sig(p, hash, sizeof(hash), sig, siglen) != 0,
			       "%s: it does not verify over another hash", what);
			hash[0] ^= 1;
			tap_ok(bw_cert_verify_sig(p, hash, sizeof(hash), sig, siglen - 1) != 0,
			       "%s: a shortened signature does not verify", what);
			if (rsa) {
				/* Raw PKCS#1 v1.5: the recovered block is the hash itself, no DigestInfo. */
				EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
				uint8_t rec[512];
				size_t rl = sizeof(rec);

				EVP_PKEY_verify_recover_init(ctx);
				EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING);
				tap_ok(EVP_PKEY_verify_recover(ctx, rec, &rl, sig, siglen) == 1 && rl == sizeof(hash) &&
				       memcmp(rec, hash, rl) == 0, "RSA: the signed block holds the bare hash (no DigestInfo)");
				EVP_PKEY_CTX_free(ctx);
			}
			bw_cert_peer_free(p);
			bw_cert_free(cr);
			X509_free(x);
			EVP_PKEY_free(k);
		}
	}
}

static void test_chain(void)
{
	EVP_PKEY *k = rsa_key();
	X509 *good = make_cert("/C=CH/O=Lab/CN=gw.lab.example", k, ca, ca_k, -1, 30, "DNS:gw.lab.example", NULL);
	X509 *old = make_cert("/C=CH/O=Lab/CN=old", k, ca, ca_k, -400, -30, NULL, NULL);
	X509 *future = make_cert("/C=CH/O=Lab/CN=future", k, ca, ca_k, 10, 40, NULL, NULL);
	X509 *ku = make_cert("/C=CH/O=Lab/CN=enc-only", k, ca, ca_k, -1, 30, NULL, "keyEncipherment");
	X509 *foreign = make_cert("/C=CH/O=Lab/CN=gw.lab.example", k, ca2, ca2_k, -1, 30, NULL, NULL);
	struct bw_conn_config c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "ca.pem");
	struct bw_cert_err e;
	struct bw_cert_creds *cr = bw_cert_load(&c, NULL, &e);
	struct bw_cert_peer *p;
	time_t now = time(NULL);

	p = peer_of(good);
	tap_is_int(bw_cert_verify_chain(cr, p, now, &e), 0, "a gateway certificate from our CA verifies");
	bw_cert_peer_free(p);

	p = peer_of(foreign);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-untrusted") == 0,
	       "a certificate from another CA is cert-untrusted");
	tap_ok(strstr(e.explanation, "CN=Other CA") && strstr(e.explanation, path("ca.pem")),
	       "the explanation names the issuer and the ca file");
	bw_cert_peer_free(p);

	p = peer_of(old);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-expired") == 0,
	       "an expired certificate is cert-expired");
	tap_ok(strstr(e.explanation, "expired on 20") && strstr(e.explanation, "clock says 20"),
	       "the explanation gives the expiry and the local clock");
	tap_ok(bw_cert_verify_chain(cr, p, now - 100 * 86400, &e) == 0,
	       "the same certificate verifies at a time inside its validity");
	bw_cert_peer_free(p);

	p = peer_of(future);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-not-yet-valid") == 0,
	       "a certificate valid only from next week is cert-not-yet-valid");
	tap_ok(strstr(e.explanation, "valid only from 20") != NULL, "the explanation gives the start date");
	bw_cert_peer_free(p);

	p = peer_of(ku);
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "cert-key-usage") == 0,
	       "a certificate without digitalSignature key usage is cert-key-usage");
	bw_cert_peer_free(p);

	p = bw_cert_peer_new();
	tap_ok(bw_cert_verify_chain(cr, p, now, &e) != 0 && strcmp(e.code, "auth-failed") == 0,
	       "no certificate at all is refused");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	/* ca as a directory of CA files */
	c = cfg(BW_AUTH_RSA, "cli.pem", "cli.key", "cadir");
	cr = bw_cert_load(&c, NULL, &e);
	p = peer_of(good);
	tap_ok(cr && bw_cert_verify_chain(cr, p, now, &e) == 0, "ca may be a directory of CA certificates");
	bw_cert_peer_free(p);
	bw_cert_free(cr);

	X509_free(good);
	X509_free(old);
	X509_free(future);
	X509_free(ku);
	X509_free(foreign);
	EVP_PKEY_free(k);
}

static int id_match(struct bw_cert_peer *p, uint8_t type, const void *d, size_t n)
{
	char have[256];

	return bw_cert_id_match(p, type, d, n, have, sizeof(have));
}

static void test_ids(void)
{
	EVP_PKEY *k = rsa_key();
	X509 *x = make_cert("/C=CH/O=Burrow Lab/CN=gw.lab.example", k, ca, ca_k, -1, 30,
			    "DNS:gw.lab.example, email:admin@lab.example, IP:192.0.2.1", NULL);
	struct bw_cert_peer *p = peer_of(x);
	uint8_t der[512], der2[512], ip[4] = { 192, 0, 2, 1 }, ip2[4] = { 192, 0, 2, 9 };
	size_t len, len2;
	char err[200], have[256];
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);

	tap_ok(bw_dn_to_der("/C=CH/O=Burrow Lab/CN=gw.lab.example", der, sizeof(der), &len, err, sizeof(err)) == 0 &&
	       id_match(p, ISAKMP_ID_DER_ASN1_DN, der, len) == 0, "asn1dn in one-line form matches the subject");
	tap_ok(bw_dn_to_der("CN=gw.lab.example, O=Burrow Lab, C=CH", der2, sizeof(der2), &len2, err, sizeof(err)) == 0 &&
	       id_match(p, ISAKMP_ID_DER_ASN1_DN, der2, len2) == 0, "asn1dn in RFC 4514 form matches the subject");
	tap_ok(len == len2 && memcmp(der, der2, len) == 0, "both DN forms give the same DER");
	tap_ok(bw_dn_to_der("CN=GW.LAB.EXAMPLE,O=burrow lab,C=CH", der2, sizeof(der2), &len2, err, sizeof(err)) == 0 &&
	       bw_dn_der_cmp(der, len, der2, len2) == 0, "DNs compare as OpenSSL's canonical form (case does not matter)");
	tap_ok(bw_dn_to_der("CN=other, O=Burrow Lab, C=CH", der2, sizeof(der2), &len2, err, sizeof(err)) == 0 &&
	       id_match(p, ISAKMP_ID_DER_ASN1_DN, der2, len2) == 1, "another DN does not match");
	tap_ok(bw_dn_to_der("/C=CH/O=Burrow Lab", der2, sizeof(der2), &len2, err, sizeof(err)) == 0 &&
	       id_match(p, ISAKMP_ID_DER_ASN1_DN, der2, len2) == 1, "a DN that is a prefix of the subject does not match");
	tap_ok(bw_dn_to_der("CN=a+UID=b, O=x", der2, sizeof(der2), &len2, err, sizeof(err)) == 0,
	       "a multi-valued RDN parses");
	tap_ok(bw_dn_to_der("CN=x\\, y, O=z", der2, sizeof(der2), &len2, err, sizeof(err)) == 0,
	       "an escaped comma stays in the value");
	bw_dn_der_text(der2, len2, have, sizeof(have));
	tap_ok(strstr(have, "CN=x\\, y") != NULL, "and prints back escaped (%s)", have);
	tap_ok(bw_dn_to_der("CN=x, nonsense", der2, sizeof(der2), &len2, err, sizeof(err)) != 0 && strstr(err, "nonsense"),
	       "a part without '=' is refused and named");
	tap_ok(bw_dn_to_der("XYZ=1", der2, sizeof(der2), &len2, err, sizeof(err)) != 0 && strstr(err, "XYZ"),
	       "an unknown attribute type is refused and named");

	tap_is_int(id_match(p, ISAKMP_ID_FQDN, "gw.lab.example", 14), 0, "fqdn matches a DNS subjectAltName");
	tap_is_int(id_match(p, ISAKMP_ID_FQDN, "GW.Lab.Example", 14), 0, "fqdn matches without regard to case");
	tap_is_int(id_match(p, ISAKMP_ID_FQDN, "vpn.lab.example", 15), 1, "another fqdn does not match");
	tap_is_int(id_match(p, ISAKMP_ID_FQDN, "gw.lab.exampl", 13), 1, "a prefix of the DNS name does not match");
	tap_is_int(id_match(p, ISAKMP_ID_USER_FQDN, "admin@lab.example", 17), 0, "user-fqdn matches an email subjectAltName");
	tap_is_int(id_match(p, ISAKMP_ID_USER_FQDN, "gw.lab.example", 14), 1, "user-fqdn does not match a DNS name");
	tap_is_int(id_match(p, ISAKMP_ID_IPV4_ADDR, ip, 4), 0, "address matches an IP subjectAltName");
	tap_is_int(id_match(p, ISAKMP_ID_IPV4_ADDR, ip2, 4), 1, "another address does not match");
	bw_cert_id_match(p, ISAKMP_ID_IPV4_ADDR, ip2, 4, have, sizeof(have));
	tap_ok(strcmp(have, "192.0.2.1") == 0, "a mismatch reports what the certificate holds (%s)", have);
	tap_ok(ski && id_match(p, ISAKMP_ID_KEY_ID, ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski)) == 0,
	       "key-id matches the subject key identifier");
	tap_is_int(id_match(p, ISAKMP_ID_KEY_ID, "nope", 4), 1, "another key-id does not match");
	bw_cert_peer_free(p);
	X509_free(x);
	EVP_PKEY_free(k);
}

static void test_codec(void)
{
	uint8_t der[4096], body[64];
	unsigned char *q = der;
	int n = i2d_X509(ca, &q);
	struct bw_cert_peer *p = bw_cert_peer_new();
	struct isakmp_payloads pls;
	struct isakmp_payload pl;
	struct isakmp_cert c;
	struct isakmp_blob b;

	tap_ok(bw_cert_peer_add(p, der, (size_t)n) == 0, "a DER certificate is accepted");
	tap_ok(bw_cert_peer_add(p, der, (size_t)n - 1) != 0, "a truncated certificate is refused");
	der[n] = 0;
	tap_ok(bw_cert_peer_add(p, der, (size_t)n + 1) != 0, "a certificate with trailing bytes is refused");
	tap_ok(bw_cert_peer_add(p, (const uint8_t *)"garbage", 7) != 0, "garbage is refused");
	tap_ok(bw_cert_peer_add(p, der, 0) != 0, "an empty certificate is refused");
	tap_is_int(bw_cert_peer_count(p), 1, "only the valid certificate was kept");
	bw_cert_peer_free(p);

	pl = (struct isakmp_payload){ ISAKMP_PL_CERT, body, 0, 0 };
	body[0] = ISAKMP_CERT_X509_SIG;
	tap_ok(isakmp_parse_cert(&pl, &c) != 0, "a CERT payload without its encoding byte is refused");
	pl.len = 1;
	tap_ok(isakmp_parse_cert(&pl, &c) != 0, "a CERT payload with an encoding but no data is refused");
	pl.len = 5;
	tap_ok(isakmp_parse_cert(&pl, &c) == 0 && c.encoding == ISAKMP_CERT_X509_SIG && c.len == 4,
	       "a CERT payload splits into encoding and data");
	pl.type = ISAKMP_PL_CR;
	pl.len = 1;
	tap_ok(isakmp_parse_cr(&pl, &c) == 0 && c.len == 0, "a CERTREQ may name no CA");
	pl.len = 0;
	tap_ok(isakmp_parse_cr(&pl, &c) != 0, "a CERTREQ without its type byte is refused");
	pl.type = ISAKMP_PL_SIG;
	tap_ok(isakmp_parse_sig(&pl, &b) != 0, "an empty SIG payload is refused");
	/* A CERT payload whose length runs past the message. */
	memset(body, 0, sizeof(body));
	body[2] = 0;
	body[3] = 40;
	body[4] = ISAKMP_CERT_X509_SIG;
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_CERT, body, 20, &pls) != 0,
	       "a CERT payload longer than the message is refused");
	body[3] = 3;
	tap_ok(isakmp_payloads_parse(ISAKMP_PL_CERT, body, 20, &pls) != 0,
	       "a payload length below the generic header is refused");
}

int main(void)
{
	char tmp[300];

	if (!mkdtemp(dir))
		return 1;
	ca_k = rsa_key();
	ca2_k = rsa_key();
	ca = make_cert("/C=CH/O=Lab/CN=Lab CA", ca_k, NULL, NULL, -500, 60, NULL, NULL);
	ca2 = make_cert("/C=CH/O=Lab/CN=Other CA", ca2_k, NULL, NULL, -1, 60, NULL, NULL);
	write_cert("ca.pem", ca, 0);
	snprintf(tmp, sizeof(tmp), "%s/cadir", dir);
	mkdir(tmp, 0700);
	write_cert("cadir/a.pem", ca2, 0);
	write_cert("cadir/b.pem", ca, 0);

	test_load();
	test_pkcs12();
	test_intermediates();
	test_crls();
	test_doctor();
	test_signatures();
	test_chain();
	test_ids();
	test_codec();

	X509_free(ca);
	X509_free(ca2);
	EVP_PKEY_free(ca_k);
	EVP_PKEY_free(ca2_k);
	snprintf(tmp, sizeof(tmp), "rm -rf '%s'", dir);
	if (system(tmp) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done_testing();
}

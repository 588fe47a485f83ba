/* X.509 certificate authentication for IKEv1 through OpenSSL 3: see ike_cert.h. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "ike/ike_cert.h"
#include "ike/isakmp.h"
#include "util.h"

#define PEER_MAX_CERTS 8
#define CERT_FILE_MAX (1024 * 1024)

struct bw_cert_creds {
	X509 *cert;
	EVP_PKEY *key;
	X509_STORE *store;
	X509 *cas[BW_CERT_MAX_CAS];
	size_t n_cas;
	uint8_t *der;
	size_t der_len;
	X509 *chain[BW_CERT_MAX_CHAIN];	/* intermediates sent after our certificate */
	uint8_t *chain_der[BW_CERT_MAX_CHAIN];
	size_t chain_der_len[BW_CERT_MAX_CHAIN];
	size_t n_chain;
	uint8_t *ca_names[BW_CERT_MAX_CAS];
	size_t ca_name_lens[BW_CERT_MAX_CAS];
	char ca_path[BW_CFG_PATH_MAX];
	uint16_t method;
	X509_CRL *crls[BW_CERT_MAX_CRLS];	/* also in store; crl_files[i] is where crls[i] came from */
	const char *crl_files[BW_CERT_MAX_CRLS];
	char crl_paths[BW_MAX_CRLS][BW_CFG_PATH_MAX];
	size_t n_crls;
};

struct bw_cert_peer {
	X509 *certs[PEER_MAX_CERTS];
	size_t n;
};

#define SET_ERR(e, c, x, ...) set_err((e), (c), (x), __VA_ARGS__)

static void set_err(struct bw_cert_err *e, const char *code, const char *expl, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void set_err(struct bw_cert_err *e, const char *code, const char *expl, const char *fmt, ...)
{
	va_list ap;

	bw_strlcpy(e->code, code, sizeof(e->code));
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	bw_strlcpy(e->explanation, expl ? expl : e->msg, sizeof(e->explanation));
}

/* ---- names and times ------------------------------------------------------------------------ */

static void name_text(const X509_NAME *n, char *out, size_t cap)
{
	BIO *b = BIO_new(BIO_s_mem());
	int len;

	out[0] = '\0';
	if (!b)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		len = BIO_read(b, out, (int)cap - 1);
		out[len > 0 ? len : 0] = '\0';
	}
	BIO_free(b);
}

static void time_text(const ASN1_TIME *t, char *out, size_t cap)
{
	struct tm tm;

	if (!t || ASN1_TIME_to_tm(t, &tm) != 1) {
		bw_strlcpy(out, "(unknown)", cap);
		return;
	}
	strftime(out, cap, "%Y-%m-%d %H:%M:%S UTC", &tm);
}

static void cert_info(X509 *x, struct bw_cert_info *out)
{
	memset(out, 0, sizeof(*out));
	if (!x)
		return;
	name_text(X509_get_subject_name(x), out->subject, sizeof(out->subject));
	name_text(X509_get_issuer_name(x), out->issuer, sizeof(out->issuer));
	time_text(X509_get0_notBefore(x), out->not_before, sizeof(out->not_before));
	time_text(X509_get0_notAfter(x), out->not_after, sizeof(out->not_after));
}

/* ---- loading -------------------------------------------------------------------------------- */

static BIO *read_file(const char *path, char *why, size_t whylen)
{
	struct stat st;
	BIO *b;

	if (stat(path, &st) != 0) {
		snprintf(why, whylen, "%s", strerror(errno));
		return NULL;
	}
	if (!S_ISREG(st.st_mode) || st.st_size > CERT_FILE_MAX) {
		snprintf(why, whylen, "not a regular file of at most 1 MiB");
		return NULL;
	}
	b = BIO_new_file(path, "rb");
	if (!b)
		snprintf(why, whylen, "cannot be opened");
	return b;
}

/* PEM or DER; all certificates of a PEM file when all is set, else the first. */
static int load_certs(const char *path, X509 **out, size_t max, size_t *n, char *why, size_t whylen)
{
	BIO *b = read_file(path, why, whylen);
	X509 *x;

	*n = 0;
	if (!b)
		return -1;
	while (*n < max && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		out[(*n)++] = x;
	ERR_clear_error();
	if (*n == 0) {
		(void)BIO_reset(b);
		x = d2i_X509_bio(b, NULL);
		if (x)
			out[(*n)++] = x;
	}
	BIO_free(b);
	ERR_clear_error();
	if (*n == 0) {
		snprintf(why, whylen, "holds no PEM or DER X.509 certificate");
		return -1;
	}
	return 0;
}

struct pass_ctx {
	const char *pass;
	bool asked;
};

static int pass_cb(char *buf, int size, int rwflag, void *u)
{
	struct pass_ctx *pc = u;
	size_t n;

	(void)rwflag;
	pc->asked = true;
	if (!pc->pass)
		return -1;
	n = strlen(pc->pass);
	if (n >= (size_t)size)
		return -1;
	memcpy(buf, pc->pass, n);
	return (int)n;
}

static EVP_PKEY *load_key(const struct bw_conn_config *cfg, const char *pass, struct bw_cert_err *err)
{
	char why[128];
	struct pass_ctx pc = { pass, false };
	BIO *b = read_file(cfg->private_key, why, sizeof(why));
	EVP_PKEY *k;

	if (!b) {
		SET_ERR(err, "cert-file", NULL, "the private key %s cannot be read (%s); check private_key in [auth]",
			cfg->private_key, why);
		return NULL;
	}
	k = PEM_read_bio_PrivateKey(b, NULL, pass_cb, &pc);
	if (!k && !pc.asked) {
		(void)BIO_reset(b);
		k = d2i_PKCS8PrivateKey_bio(b, NULL, pass_cb, &pc);
	}
	if (!k && !pc.asked) {
		(void)BIO_reset(b);
		k = d2i_PrivateKey_bio(b, NULL);
	}
	BIO_free(b);
	ERR_clear_error();
	if (k)
		return k;
	if (pc.asked && !pass)
		SET_ERR(err, "needs-secret", NULL, "%s: the private key %s is encrypted; put private_key_passphrase = ... "
			"in secrets/%s.secrets (mode 0600), or run burrow start on a terminal to type it",
			cfg->name, cfg->private_key, cfg->name);
	else if (pc.asked)
		SET_ERR(err, "passphrase-wrong", "The private key file is encrypted and the passphrase Burrow has "
			"does not decrypt it. Correct private_key_passphrase in the connection's secrets file "
			"(or type it again at burrow start).",
			"the passphrase does not decrypt the private key %s", cfg->private_key);
	else
		SET_ERR(err, "cert-file", NULL, "the private key %s is not a PEM or DER private key; check private_key "
			"in [auth]", cfg->private_key);
	return NULL;
}

static int add_ca(struct bw_cert_creds *cr, X509 *x)
{
	unsigned char *der = NULL;
	int n;

	if (cr->n_cas >= BW_CERT_MAX_CAS || X509_STORE_add_cert(cr->store, x) != 1) {
		X509_free(x);
		ERR_clear_error();
		return 0;
	}
	n = i2d_X509_NAME(X509_get_subject_name(x), &der);
	if (n <= 0) {
		X509_free(x);
		return -1;
	}
	cr->cas[cr->n_cas] = x;
	cr->ca_names[cr->n_cas] = der;
	cr->ca_name_lens[cr->n_cas] = (size_t)n;
	cr->n_cas++;
	return 0;
}

static int load_ca_file(struct bw_cert_creds *cr, const char *path, char *why, size_t whylen)
{
	X509 *xs[BW_CERT_MAX_CAS];
	size_t n;

	if (load_certs(path, xs, BW_CERT_MAX_CAS, &n, why, whylen) != 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (add_ca(cr, xs[i]) != 0)
			return -1;
	return 0;
}

/* `ca` is a file, or a directory whose regular files are each a CA certificate. */
static int load_cas(struct bw_cert_creds *cr, const char *ca, struct bw_cert_err *err)
{
	char why[128] = "", path[PATH_MAX];
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (stat(ca, &st) != 0) {
		SET_ERR(err, "cert-file", NULL, "the CA %s cannot be read (%s); check ca in [auth]", ca, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (load_ca_file(cr, ca, why, sizeof(why)) == 0)
			return 0;
		SET_ERR(err, "cert-file", NULL, "the CA file %s %s; check ca in [auth]", ca, why);
		return -1;
	}
	d = opendir(ca);
	if (!d) {
		SET_ERR(err, "cert-file", NULL, "the CA directory %s cannot be opened (%s)", ca, strerror(errno));
		return -1;
	}
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", ca, e->d_name);
		(void)load_ca_file(cr, path, why, sizeof(why));	/* other files in the directory are not CAs */
	}
	closedir(d);
	if (cr->n_cas == 0) {
		SET_ERR(err, "cert-file", NULL, "the CA directory %s holds no certificate; check ca in [auth]", ca);
		return -1;
	}
	return 0;
}

static uint16_t key_method(EVP_PKEY *k)
{
	char group[64];

	if (EVP_PKEY_is_a(k, "RSA"))
		return ISAKMP_AUTH_RSA_SIG;
	if (!EVP_PKEY_is_a(k, "EC") ||
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group), NULL) != 1)
		return 0;
	if (strcmp(group, "prime256v1") == 0 || strcmp(group, "P-256") == 0)
		return ISAKMP_AUTH_ECDSA_256;
	if (strcmp(group, "secp384r1") == 0 || strcmp(group, "P-384") == 0)
		return ISAKMP_AUTH_ECDSA_384;
	if (strcmp(group, "secp521r1") == 0 || strcmp(group, "P-521") == 0)
		return ISAKMP_AUTH_ECDSA_521;
	return 0;
}

/* An intermediate that follows our certificate (PEM file or PKCS#12); self-signed roots are
 * left out, the gateway has its own. Takes x. */
static int add_chain(struct bw_cert_creds *cr, X509 *x)
{
	unsigned char *der = NULL;
	int n;

	if (cr->n_chain >= BW_CERT_MAX_CHAIN || X509_check_issued(x, x) == X509_V_OK ||
	    (n = i2d_X509(x, &der)) <= 0) {
		X509_free(x);
		ERR_clear_error();
		return 0;
	}
	cr->chain[cr->n_chain] = x;
	cr->chain_der[cr->n_chain] = der;
	cr->chain_der_len[cr->n_chain] = (size_t)n;
	cr->n_chain++;
	return 0;
}

static bool has_suffix(const char *s, const char *suf)
{
	size_t n = strlen(s), m = strlen(suf);

	return n >= m && strcasecmp(s + n - m, suf) == 0;
}

/* By extension (.p12, .pfx) or, for any other name, by content: DER PKCS#12. */
static bool is_pkcs12(const char *path)
{
	char why[128];
	BIO *b;
	PKCS12 *p12;

	if (has_suffix(path, ".p12") || has_suffix(path, ".pfx"))
		return true;
	b = read_file(path, why, sizeof(why));
	if (!b)
		return false;
	p12 = d2i_PKCS12_bio(b, NULL);
	BIO_free(b);
	ERR_clear_error();
	PKCS12_free(p12);
	return p12 != NULL;
}

const char *bw_cert_secret_key(const struct bw_conn_config *cfg)
{
	return is_pkcs12(cfg->certificate) ? "pkcs12_password" : "private_key_passphrase";
}

/* Which password opens p12: pass, or when none was given an empty one (files exported without
 * a password). NULL with err set when none does. */
static const char *p12_password(PKCS12 *p12, const struct bw_conn_config *cfg, const char *pass,
				struct bw_cert_err *err)
{
	if (!PKCS12_mac_present(p12))
		return pass ? pass : "";
	if (pass && PKCS12_verify_mac(p12, pass, -1))
		return pass;
	if (!pass && (PKCS12_verify_mac(p12, "", 0) || PKCS12_verify_mac(p12, NULL, 0)))
		return "";	/* PKCS12_parse tries both the empty and the absent password */
	ERR_clear_error();
	if (!pass)
		SET_ERR(err, "needs-secret", NULL, "%s: the PKCS#12 file %s is protected by a password; put "
			"pkcs12_password = ... in secrets/%s.secrets (mode 0600), or run burrow start on a "
			"terminal to type it", cfg->name, cfg->certificate, cfg->name);
	else
		SET_ERR(err, "passphrase-wrong", "The PKCS#12 file is protected by a password and the one Burrow "
			"has does not open it. Correct pkcs12_password in the connection's secrets file (or type "
			"it again at burrow start).", "the password does not open the PKCS#12 file %s",
			cfg->certificate);
	return NULL;
}

/* certificate = alice.p12: our certificate, its key and the CA certificates that come with it. */
static int load_p12(struct bw_cert_creds *cr, const struct bw_conn_config *cfg, const char *pass,
		    struct bw_cert_err *err)
{
	char why[128];
	BIO *b = read_file(cfg->certificate, why, sizeof(why));
	PKCS12 *p12;
	STACK_OF(X509) *cas = NULL;
	const char *pw;
	int rc = -1;

	if (!b) {
		SET_ERR(err, "cert-file", NULL, "the PKCS#12 file %s cannot be read (%s); check certificate in [auth]",
			cfg->certificate, why);
		return -1;
	}
	p12 = d2i_PKCS12_bio(b, NULL);
	BIO_free(b);
	if (!p12) {
		SET_ERR(err, "cert-file", NULL, "the file %s is not a PKCS#12 file (DER, as openssl pkcs12 -export "
			"writes it); check certificate in [auth]", cfg->certificate);
		goto out;
	}
	pw = p12_password(p12, cfg, pass, err);
	if (!pw)
		goto out;
	if (PKCS12_parse(p12, pw, &cr->key, &cr->cert, &cas) != 1) {
		SET_ERR(err, "cert-file", NULL, "the PKCS#12 file %s cannot be decoded with its password (an "
			"algorithm OpenSSL 3 does not offer by default, such as RC2, needs re-exporting: "
			"openssl pkcs12 -export without -legacy)", cfg->certificate);
		goto out;
	}
	if (!cr->cert || !cr->key) {
		SET_ERR(err, "cert-file", NULL, "the PKCS#12 file %s holds no %s; it needs our certificate and its "
			"private key", cfg->certificate, cr->cert ? "private key" : "certificate");
		goto out;
	}
	while (cas && sk_X509_num(cas) > 0)
		add_chain(cr, sk_X509_shift(cas));
	rc = 0;
out:
	sk_X509_pop_free(cas, X509_free);
	PKCS12_free(p12);
	ERR_clear_error();
	return rc;
}

/* Our certificate first; the certificates that follow it in a PEM file are its intermediates. */
static int load_pem_der(struct bw_cert_creds *cr, const struct bw_conn_config *cfg, const char *pass,
			struct bw_cert_err *err)
{
	X509 *xs[1 + BW_CERT_MAX_CHAIN];
	char why[128];
	size_t n;

	if (load_certs(cfg->certificate, xs, 1 + BW_CERT_MAX_CHAIN, &n, why, sizeof(why)) != 0) {
		SET_ERR(err, "cert-file", NULL, "the certificate %s %s; check certificate in [auth]", cfg->certificate, why);
		return -1;
	}
	cr->cert = xs[0];
	for (size_t i = 1; i < n; i++)
		add_chain(cr, xs[i]);
	if (!cfg->private_key[0]) {
		SET_ERR(err, "config", NULL, "the certificate %s is not a PKCS#12 file, so private_key in [auth] must "
			"name its key", cfg->certificate);
		return -1;
	}
	cr->key = load_key(cfg, pass, err);
	return cr->key ? 0 : -1;
}

static int load_own(struct bw_cert_creds *cr, const struct bw_conn_config *cfg, const char *pass,
		    struct bw_cert_err *err)
{
	bool p12 = is_pkcs12(cfg->certificate);
	int len;
	unsigned char *der = NULL;

	if ((p12 ? load_p12(cr, cfg, pass, err) : load_pem_der(cr, cfg, pass, err)) != 0)
		return -1;
	if (X509_check_private_key(cr->cert, cr->key) != 1) {
		ERR_clear_error();
		SET_ERR(err, "key-mismatch", "The private key file belongs to another certificate, so the gateway "
			"could not verify our signature. Point private_key at the key the certificate was issued "
			"for (openssl x509 -noout -pubkey and openssl pkey -pubout print the same key when they match).",
			"the private key %s does not belong to the certificate %s", p12 ? cfg->certificate :
			cfg->private_key, cfg->certificate);
		return -1;
	}
	cr->method = key_method(cr->key);
	if (cr->method == 0 || (cfg->auth_method == BW_AUTH_RSA) != (cr->method == ISAKMP_AUTH_RSA_SIG)) {
		SET_ERR(err, "config", NULL, "method = %s does not fit the key in %s (%s); use method = %s",
			bw_auth_method_name(cfg->auth_method), p12 ? cfg->certificate : cfg->private_key,
			cr->method == 0 ? "an unsupported key type or curve" :
			cr->method == ISAKMP_AUTH_RSA_SIG ? "an RSA key" : "an ECDSA key",
			cr->method == ISAKMP_AUTH_RSA_SIG ? "rsa" : "ecdsa");
		return -1;
	}
	len = i2d_X509(cr->cert, &der);
	if (len <= 0) {
		SET_ERR(err, "internal", NULL, "cannot encode the certificate %s", cfg->certificate);
		return -1;
	}
	cr->der = der;
	cr->der_len = (size_t)len;
	return 0;
}

/* One crl = file: PEM (one or more CRLs) or DER. */
static int load_crl_file(struct bw_cert_creds *cr, size_t fi, struct bw_cert_err *err)
{
	const char *path = cr->crl_paths[fi];
	char why[128];
	BIO *b = read_file(path, why, sizeof(why));
	X509_CRL *c;
	size_t n = 0;

	if (!b) {
		SET_ERR(err, "cert-file", NULL, "the CRL %s cannot be read (%s); check crl in [auth]", path, why);
		return -1;
	}
	while ((c = PEM_read_bio_X509_CRL(b, NULL, NULL, NULL))) {
		if (cr->n_crls >= BW_CERT_MAX_CRLS || X509_STORE_add_crl(cr->store, c) != 1) {
			X509_CRL_free(c);
			continue;
		}
		cr->crls[cr->n_crls] = c;
		cr->crl_files[cr->n_crls++] = path;
		n++;
	}
	ERR_clear_error();
	if (n == 0) {
		(void)BIO_reset(b);
		c = d2i_X509_CRL_bio(b, NULL);
		if (c && cr->n_crls < BW_CERT_MAX_CRLS && X509_STORE_add_crl(cr->store, c) == 1) {
			cr->crls[cr->n_crls] = c;
			cr->crl_files[cr->n_crls++] = path;
			n++;
		} else {
			X509_CRL_free(c);
		}
	}
	BIO_free(b);
	ERR_clear_error();
	if (n == 0) {
		SET_ERR(err, "cert-file", NULL, "the CRL file %s holds no PEM or DER certificate revocation list; "
			"check crl in [auth]", path);
		return -1;
	}
	return 0;
}

static int load_crls(struct bw_cert_creds *cr, const struct bw_conn_config *cfg, struct bw_cert_err *err)
{
	for (size_t i = 0; i < cfg->n_crls && i < BW_MAX_CRLS; i++) {
		bw_strlcpy(cr->crl_paths[i], cfg->crls[i], sizeof(cr->crl_paths[i]));
		if (load_crl_file(cr, i, err) != 0)
			return -1;
	}
	return 0;
}

struct bw_cert_creds *bw_cert_load(const struct bw_conn_config *cfg, const char *passphrase,
				   struct bw_cert_err *err)
{
	struct bw_cert_creds *cr = calloc(1, sizeof(*cr));

	if (!cr || !(cr->store = X509_STORE_new())) {
		SET_ERR(err, "internal", NULL, "out of memory loading certificates");
		bw_cert_free(cr);
		return NULL;
	}
	bw_strlcpy(cr->ca_path, cfg->ca, sizeof(cr->ca_path));
	if (load_own(cr, cfg, passphrase, err) != 0) {
		bw_cert_free(cr);
		return NULL;
	}
	if (!cfg->ca[0]) {
		SET_ERR(err, "config", NULL, "method = %s needs ca in [auth]: the CA certificate (a file or a directory) "
			"that issued the gateway's certificate", bw_auth_method_name(cfg->auth_method));
		bw_cert_free(cr);
		return NULL;
	}
	if (load_cas(cr, cfg->ca, err) != 0 || load_crls(cr, cfg, err) != 0) {
		bw_cert_free(cr);
		return NULL;
	}
	return cr;
}

void bw_cert_free(struct bw_cert_creds *cr)
{
	if (!cr)
		return;
	X509_free(cr->cert);
	EVP_PKEY_free(cr->key);
	X509_STORE_free(cr->store);
	for (size_t i = 0; i < cr->n_cas; i++) {
		X509_free(cr->cas[i]);
		OPENSSL_free(cr->ca_names[i]);
	}
	for (size_t i = 0; i < cr->n_chain; i++) {
		X509_free(cr->chain[i]);
		OPENSSL_free(cr->chain_der[i]);
	}
	for (size_t i = 0; i < cr->n_crls; i++)
		X509_CRL_free(cr->crls[i]);
	OPENSSL_free(cr->der);
	free(cr);
}

const uint8_t *bw_cert_der(const struct bw_cert_creds *cr, size_t *len)
{
	*len = cr->der_len;
	return cr->der;
}

const uint8_t *bw_cert_chain_der(const struct bw_cert_creds *cr, size_t i, size_t *len)
{
	if (i >= cr->n_chain)
		return NULL;
	*len = cr->chain_der_len[i];
	return cr->chain_der[i];
}

uint16_t bw_cert_auth_method(const struct bw_cert_creds *cr)
{
	return cr->method;
}

const uint8_t *bw_cert_ca_name(const struct bw_cert_creds *cr, size_t i, size_t *len)
{
	if (i >= cr->n_cas)
		return NULL;
	*len = cr->ca_name_lens[i];
	return cr->ca_names[i];
}

int bw_cert_subject_der(const struct bw_cert_creds *cr, uint8_t *out, size_t cap, size_t *len)
{
	int n = i2d_X509_NAME(X509_get_subject_name(cr->cert), NULL);
	unsigned char *p = out;

	if (n <= 0 || (size_t)n > cap)
		return -1;
	i2d_X509_NAME(X509_get_subject_name(cr->cert), &p);
	*len = (size_t)n;
	return 0;
}

void bw_cert_own_info(const struct bw_cert_creds *cr, struct bw_cert_info *out)
{
	cert_info(cr->cert, out);
}

/* ---- DNs ------------------------------------------------------------------------------------ */

/* One "type=value" component; "E" is accepted for emailAddress as strongSwan writes it. */
static int add_rdn(X509_NAME *n, char *comp, int set, char *err, size_t errlen)
{
	char *eq = strchr(comp, '='), *k = comp, *v, *end;

	if (!eq) {
		snprintf(err, errlen, "the DN part '%.40s' has no '='; write it as TYPE=value, e.g. CN=vpn.example.com",
			 comp);
		return -1;
	}
	*eq = '\0';
	v = eq + 1;
	while (*k == ' ')
		k++;
	for (end = eq; end > k && end[-1] == ' '; end--)
		end[-1] = '\0';
	while (*v == ' ')
		v++;
	for (end = v + strlen(v); end > v && end[-1] == ' '; end--)
		end[-1] = '\0';
	if (strcmp(k, "E") == 0)
		k = "emailAddress";
	if (!*v || X509_NAME_add_entry_by_txt(n, k, MBSTRING_UTF8, (const unsigned char *)v, -1, -1, set) != 1) {
		ERR_clear_error();
		snprintf(err, errlen, "the DN part '%.40s=%.60s' is not a known attribute with a value "
			 "(C, ST, L, O, OU, CN, emailAddress, DC, ...)", k, v);
		return -1;
	}
	return 0;
}

/* Splits s at sep (and at '+' for multi-valued RDNs) honouring backslash escapes, in place;
 * calls add_rdn for each part, from the last when reverse is set (RFC 4514 lists the most
 * specific RDN first; the DER sequence starts with the least specific). */
static int split_dn(X509_NAME *n, char *s, char sep, bool reverse, char *err, size_t errlen)
{
	char *parts[64];
	bool plus[64];	/* part i joins the RDN of the part before it */
	size_t np = 0;
	bool next_plus = false;
	char *w = s, *start = s;

	for (char *r = s;; r++) {
		if (*r == '\\' && r[1]) {
			*w++ = *++r;
			continue;
		}
		if (*r == sep || *r == '+' || *r == '\0') {
			char c = *r;

			*w++ = '\0';
			if (np == 64) {
				snprintf(err, errlen, "the DN has more than 64 parts");
				return -1;
			}
			plus[np] = next_plus;
			parts[np++] = start;
			start = w;
			if (c == '\0')
				break;
			next_plus = c == '+';
			continue;
		}
		*w++ = *r;
	}
	if (reverse) {
		for (size_t i = np; i-- > 0;) {
			if (add_rdn(n, parts[i], i + 1 < np && plus[i + 1] ? -1 : 0, err, errlen) != 0)
				return -1;
		}
	} else {
		for (size_t i = 0; i < np; i++) {
			if (add_rdn(n, parts[i], plus[i] ? -1 : 0, err, errlen) != 0)
				return -1;
		}
	}
	return 0;
}

static X509_NAME *dn_parse(const char *text, char *err, size_t errlen)
{
	char buf[BW_ID_MAX * 2];
	X509_NAME *n;
	int rc;

	while (*text == ' ')
		text++;
	if (!*text || strlen(text) >= sizeof(buf)) {
		snprintf(err, errlen, "the DN is empty or too long");
		return NULL;
	}
	n = X509_NAME_new();
	if (!n)
		return NULL;
	if (text[0] == '/') {
		bw_strlcpy(buf, text + 1, sizeof(buf));
		rc = split_dn(n, buf, '/', false, err, errlen);
	} else {
		bw_strlcpy(buf, text, sizeof(buf));
		rc = split_dn(n, buf, ',', true, err, errlen);
	}
	if (rc != 0) {
		X509_NAME_free(n);
		return NULL;
	}
	return n;
}

int bw_dn_to_der(const char *text, uint8_t *out, size_t cap, size_t *len, char *err, size_t errlen)
{
	X509_NAME *n = dn_parse(text, err, errlen);
	unsigned char *p = out;
	int l;

	if (!n)
		return -1;
	l = i2d_X509_NAME(n, NULL);
	if (l <= 0 || (size_t)l > cap) {
		snprintf(err, errlen, "the DN '%.60s' is too long for an identity", text);
		X509_NAME_free(n);
		return -1;
	}
	i2d_X509_NAME(n, &p);
	*len = (size_t)l;
	X509_NAME_free(n);
	return 0;
}

static X509_NAME *dn_from_der(const uint8_t *der, size_t len)
{
	const unsigned char *p = der;
	X509_NAME *n = len ? d2i_X509_NAME(NULL, &p, (long)len) : NULL;

	if (n && p != der + len) {
		X509_NAME_free(n);
		n = NULL;
	}
	ERR_clear_error();
	return n;
}

int bw_dn_der_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	X509_NAME *na = dn_from_der(a, alen), *nb = dn_from_der(b, blen);
	int rc = -1;

	if (na && nb)
		rc = X509_NAME_cmp(na, nb) == 0 ? 0 : 1;
	X509_NAME_free(na);
	X509_NAME_free(nb);
	return rc;
}

void bw_dn_der_text(const uint8_t *der, size_t len, char *out, size_t cap)
{
	X509_NAME *n = dn_from_der(der, len);

	if (!n) {
		snprintf(out, cap, "(malformed DN of %zu bytes)", len);
		return;
	}
	name_text(n, out, cap);
	X509_NAME_free(n);
}

/* ---- signatures ----------------------------------------------------------------------------- */

static size_t ec_half(EVP_PKEY *k)
{
	return ((size_t)EVP_PKEY_get_bits(k) + 7) / 8;
}

int bw_cert_sign(const struct bw_cert_creds *cr, const uint8_t *hash, size_t hlen, uint8_t *sig,
		 size_t cap, size_t *siglen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(cr->key, NULL);
	unsigned char der[256];
	size_t dlen = sizeof(der);
	int rc = -1;

	if (!ctx || EVP_PKEY_sign_init(ctx) <= 0)
		goto out;
	if (cr->method == ISAKMP_AUTH_RSA_SIG) {
		size_t n = (size_t)EVP_PKEY_get_size(cr->key);

		if (n > cap || EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) <= 0 ||
		    EVP_PKEY_sign(ctx, sig, &n, hash, hlen) <= 0)
			goto out;
		*siglen = n;
		rc = 0;
	} else {
		const unsigned char *p = der;
		ECDSA_SIG *es;
		size_t half = ec_half(cr->key);

		if (2 * half > cap || EVP_PKEY_sign(ctx, der, &dlen, hash, hlen) <= 0)
			goto out;
		es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
		if (!es)
			goto out;
		if (BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, (int)half) == (int)half &&
		    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + half, (int)half) == (int)half) {
			*siglen = 2 * half;
			rc = 0;
		}
		ECDSA_SIG_free(es);
	}
out:
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

static int verify_with(EVP_PKEY *k, const uint8_t *hash, size_t hlen, const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(k, NULL);
	unsigned char *der = NULL;
	int rc = -1, dlen;

	if (!ctx || EVP_PKEY_verify_init(ctx) <= 0)
		goto out;
	if (EVP_PKEY_is_a(k, "RSA")) {
		if (EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) > 0 &&
		    EVP_PKEY_verify(ctx, sig, siglen, hash, hlen) == 1)
			rc = 0;
	} else if (EVP_PKEY_is_a(k, "EC")) {
		size_t half = ec_half(k);
		ECDSA_SIG *es;
		BIGNUM *r, *s;

		if (siglen != 2 * half)
			goto out;
		es = ECDSA_SIG_new();
		r = BN_bin2bn(sig, (int)half, NULL);
		s = BN_bin2bn(sig + half, (int)half, NULL);
		if (!es || !r || !s || ECDSA_SIG_set0(es, r, s) != 1) {
			BN_free(r);
			BN_free(s);
			ECDSA_SIG_free(es);
			goto out;
		}
		dlen = i2d_ECDSA_SIG(es, &der);
		ECDSA_SIG_free(es);
		if (dlen > 0 && EVP_PKEY_verify(ctx, der, (size_t)dlen, hash, hlen) == 1)
			rc = 0;
	}
out:
	OPENSSL_free(der);
	EVP_PKEY_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* ---- the gateway's certificate -------------------------------------------------------------- */

struct bw_cert_peer *bw_cert_peer_new(void)
{
	return calloc(1, sizeof(struct bw_cert_peer));
}

void bw_cert_peer_free(struct bw_cert_peer *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		X509_free(p->certs[i]);
	free(p);
}

int bw_cert_peer_add(struct bw_cert_peer *p, const uint8_t *der, size_t len)
{
	const unsigned char *q = der;
	X509 *x;

	if (p->n >= PEER_MAX_CERTS || len == 0 || len > CERT_FILE_MAX)
		return -1;
	x = d2i_X509(NULL, &q, (long)len);
	ERR_clear_error();
	if (!x)
		return -1;
	if (q != der + len) {
		X509_free(x);
		return -1;
	}
	p->certs[p->n++] = x;
	return 0;
}

size_t bw_cert_peer_count(const struct bw_cert_peer *p)
{
	return p ? p->n : 0;
}

void bw_cert_peer_info(const struct bw_cert_peer *p, struct bw_cert_info *out)
{
	cert_info(p && p->n ? p->certs[0] : NULL, out);
}

int bw_cert_verify_sig(const struct bw_cert_peer *p, const uint8_t *hash, size_t hlen,
		       const uint8_t *sig, size_t siglen)
{
	EVP_PKEY *k;

	if (!p || p->n == 0 || !(k = X509_get0_pubkey(p->certs[0])))
		return -1;
	return verify_with(k, hash, hlen, sig, siglen);
}

/* An end certificate fit for IKE: digitalSignature if key usage is there at all, and when an
 * extended key usage is there, one of serverAuth, ipsecIKE or anyExtendedKeyUsage. */
static int usage_ok(X509 *x)
{
	uint32_t ku = X509_get_key_usage(x);
	EXTENDED_KEY_USAGE *eku;
	int ok = 0;

	if (ku != UINT32_MAX && !(ku & KU_DIGITAL_SIGNATURE))
		return 0;
	eku = X509_get_ext_d2i(x, NID_ext_key_usage, NULL, NULL);
	if (!eku)
		return 1;
	for (int i = 0; i < sk_ASN1_OBJECT_num(eku); i++) {
		int nid = OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, i));

		if (nid == NID_server_auth || nid == NID_ipsec_IKE || nid == NID_anyExtendedKeyUsage)
			ok = 1;
	}
	EXTENDED_KEY_USAGE_free(eku);
	return ok;
}

/* The CRL of x's issuer among ours, and the file it came from; NULL when none. */
static X509_CRL *crl_of(const struct bw_cert_creds *cr, X509 *x, const char **file)
{
	for (size_t i = 0; i < cr->n_crls; i++) {
		if (X509_NAME_cmp(X509_CRL_get_issuer(cr->crls[i]), X509_get_issuer_name(x)) == 0) {
			*file = cr->crl_files[i];
			return cr->crls[i];
		}
	}
	return NULL;
}

static void crl_list(const struct bw_cert_creds *cr, char *out, size_t cap)
{
	out[0] = '\0';
	for (size_t i = 0; i < cr->n_crls; i++) {
		size_t k = strlen(out);

		if (i && cr->crl_files[i] == cr->crl_files[i - 1])
			continue;
		snprintf(out + k, cap - k, "%s%s", k ? ", " : "", cr->crl_files[i]);
	}
}

static void revoked_error(const struct bw_cert_creds *cr, X509 *bad, struct bw_cert_err *err)
{
	struct bw_cert_info bi;
	const char *file = "(unknown)";
	X509_CRL *crl = crl_of(cr, bad, &file);
	X509_REVOKED *rev = NULL;
	BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(bad), NULL);
	char *serial = bn ? BN_bn2hex(bn) : NULL;
	char when[32] = "(unknown)", expl[1024];

	cert_info(bad, &bi);
	if (crl && X509_CRL_get0_by_cert(crl, &rev, bad) == 1 && rev)
		time_text(X509_REVOKED_get0_revocationDate(rev), when, sizeof(when));
	snprintf(expl, sizeof(expl), "The certificate %.160s (serial %.80s) is on the revocation list of %.160s in "
		 "%.160s, revoked on %s: its CA withdrew it, so Burrow does not trust the gateway. The gateway's "
		 "admin must install a new certificate; if this CRL is old, put the current one in crl.",
		 bi.subject, serial ? serial : "?", bi.issuer, file, when);
	SET_ERR(err, "cert-revoked", expl, "the gateway's certificate %.160s (serial %.80s) was revoked on %s "
		"(CRL %.160s)", bi.subject, serial ? serial : "?", when, file);
	OPENSSL_free(serial);
	BN_free(bn);
}

static void chain_error(const struct bw_cert_creds *cr, X509 *leaf, X509 *bad, int e, time_t now,
			struct bw_cert_err *err)
{
	struct bw_cert_info li, bi;
	char clock[32], expl[1024];
	struct tm tm;

	cert_info(leaf, &li);
	cert_info(bad ? bad : leaf, &bi);
	gmtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%Y-%m-%d %H:%M:%S UTC", &tm);
	switch (e) {
	case X509_V_ERR_CERT_REVOKED:
		revoked_error(cr, bad ? bad : leaf, err);
		return;
	case X509_V_ERR_UNABLE_TO_GET_CRL: {
		char files[600];

		crl_list(cr, files, sizeof(files));
		snprintf(expl, sizeof(expl), "crl is set, so the CA that issued %.160s (%.160s) must have a CRL there, "
			 "and none of %.300s is from it. Add that CA's CRL to crl in [auth], or remove crl.",
			 bi.subject, bi.issuer, files);
		SET_ERR(err, "cert-invalid", expl, "no CRL of %.160s (the issuer of %.160s) is among the crl files",
			bi.issuer, bi.subject);
		return;
	}
	case X509_V_ERR_CRL_HAS_EXPIRED:
	case X509_V_ERR_CRL_NOT_YET_VALID: {
		const char *file = "(unknown)";

		(void)crl_of(cr, bad ? bad : leaf, &file);
		snprintf(expl, sizeof(expl), "The CRL of %.160s in %.160s %s (this machine's clock says %s), so it "
			 "cannot say whether %.160s is revoked. Put a current CRL of that CA in crl.", bi.issuer, file,
			 e == X509_V_ERR_CRL_HAS_EXPIRED ? "is past its next update date" : "is not valid yet", clock,
			 bi.subject);
		SET_ERR(err, "cert-invalid", expl, "the CRL %.160s of %.160s is %s", file, bi.issuer,
			e == X509_V_ERR_CRL_HAS_EXPIRED ? "out of date" : "not valid yet");
		return;
	}
	case X509_V_ERR_CERT_HAS_EXPIRED:
		snprintf(expl, sizeof(expl), "The certificate %.160s expired on %.160s; this machine's clock says %.160s. "
			 "If the clock is right, the gateway's admin must renew the certificate; if not, fix the "
			 "clock (timedatectl).", bi.subject, bi.not_after, clock);
		SET_ERR(err, "cert-expired", expl, "the gateway's certificate %.160s expired on %.160s (local clock %.160s)",
			bi.subject, bi.not_after, clock);
		return;
	case X509_V_ERR_CERT_NOT_YET_VALID:
		snprintf(expl, sizeof(expl), "The certificate %.160s is valid only from %.160s; this machine's clock says %.160s. "
			 "Check this machine's clock (timedatectl); if it is right, the certificate was issued "
			 "with a start date in the future.", bi.subject, bi.not_before, clock);
		SET_ERR(err, "cert-not-yet-valid", expl, "the gateway's certificate %.160s is not valid before %.160s "
			"(local clock %.160s)", bi.subject, bi.not_before, clock);
		return;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
		snprintf(expl, sizeof(expl), "The gateway's certificate (%.160s) was issued by %.160s, which is not a CA "
			 "this connection trusts (ca = %.160s). Get the CA certificate of the gateway's admin and set "
			 "ca to it; if the CA is already there, the gateway may be an impostor.",
			 li.subject, bi.issuer, cr->ca_path);
		SET_ERR(err, "cert-untrusted", expl, "the gateway's certificate was issued by %.160s, which is not "
			"among the CAs in %.160s", bi.issuer, cr->ca_path);
		return;
	default:
		snprintf(expl, sizeof(expl), "OpenSSL refused the gateway's certificate chain (%.160s) at %.160s. Ask the "
			 "gateway's admin to check its certificate.", X509_verify_cert_error_string(e), bi.subject);
		SET_ERR(err, "cert-invalid", expl, "the gateway's certificate %.160s is not valid: %.160s", bi.subject,
			X509_verify_cert_error_string(e));
	}
}

/* One X509_verify_cert over ctx (set up afresh); with CRLs the gateway's certificate is checked
 * against them, and with all set every certificate of the chain. -1 when ctx cannot be set up;
 * else the outcome is X509_STORE_CTX_get_error(ctx). */
static int verify_once(const struct bw_cert_creds *cr, X509_STORE_CTX *ctx, X509 *leaf, STACK_OF(X509) *untrusted,
		       time_t now, bool all)
{
	X509_STORE_CTX_cleanup(ctx);
	if (X509_STORE_CTX_init(ctx, cr->store, leaf, untrusted) != 1)
		return -1;
	X509_STORE_CTX_set_time(ctx, 0, now);
	if (cr->n_crls)
		X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_CRL_CHECK | (all ? X509_V_FLAG_CRL_CHECK_ALL : 0));
	if (X509_verify_cert(ctx) == 1)
		X509_STORE_CTX_set_error(ctx, X509_V_OK);
	else if (X509_STORE_CTX_get_error(ctx) == X509_V_OK)
		X509_STORE_CTX_set_error(ctx, X509_V_ERR_UNSPECIFIED);
	return 0;
}

/* Is there a CRL for every certificate of chain below its self-signed top? */
static bool crls_cover(const struct bw_cert_creds *cr, STACK_OF(X509) *chain)
{
	const char *file;
	int n = chain ? sk_X509_num(chain) : 0;

	if (cr->n_crls == 0 || n < 2)
		return false;
	for (int i = 0; i < n; i++) {
		X509 *x = sk_X509_value(chain, i);

		if (i == n - 1 && X509_check_issued(x, x) == X509_V_OK)
			break;
		if (!crl_of(cr, x, &file))
			return false;
	}
	return true;
}

int bw_cert_verify_chain(const struct bw_cert_creds *cr, const struct bw_cert_peer *p, time_t now,
			 struct bw_cert_err *err)
{
	X509_STORE_CTX *ctx;
	STACK_OF(X509) *untrusted;
	int rc = -1;

	if (!p || p->n == 0) {
		SET_ERR(err, "auth-failed", "The gateway authenticated with a signature but did not send its "
			"certificate. Ask its admin to send the certificate (strongSwan: send_cert = always).",
			"the gateway sent no certificate");
		return -1;
	}
	ctx = X509_STORE_CTX_new();
	untrusted = sk_X509_new_null();
	if (!ctx || !untrusted)
		goto out;
	for (size_t i = 1; i < p->n; i++)
		sk_X509_push(untrusted, p->certs[i]);
	if (verify_once(cr, ctx, p->certs[0], untrusted, now, false) < 0)
		goto out;
	/* CRLs for the whole chain: check every certificate in it, not only the gateway's. */
	if (X509_STORE_CTX_get_error(ctx) == X509_V_OK && crls_cover(cr, X509_STORE_CTX_get0_chain(ctx)) &&
	    verify_once(cr, ctx, p->certs[0], untrusted, now, true) < 0)
		goto out;
	if (X509_STORE_CTX_get_error(ctx) != X509_V_OK) {
		chain_error(cr, p->certs[0], X509_STORE_CTX_get_current_cert(ctx), X509_STORE_CTX_get_error(ctx),
			    now, err);
		goto out_quiet;
	}
	if (!usage_ok(p->certs[0])) {
		struct bw_cert_info li;

		cert_info(p->certs[0], &li);
		SET_ERR(err, "cert-key-usage", "The gateway's certificate is not meant for signing IKE exchanges: "
			"its key usage lacks digitalSignature or its extended key usage has neither serverAuth nor "
			"ipsecIKE. The gateway's admin must issue a certificate for this use.",
			"the gateway's certificate %s does not allow IKE signatures (key usage)", li.subject);
		goto out_quiet;
	}
	rc = 0;
	goto out_quiet;
out:
	SET_ERR(err, "internal", NULL, "cannot set up certificate verification");
out_quiet:
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	ERR_clear_error();
	return rc;
}

/* ---- identities ----------------------------------------------------------------------------- */

static int san_match(X509 *x, int gen_type, const uint8_t *data, size_t len, char *have, size_t havelen)
{
	GENERAL_NAMES *gens = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
	int rc = 1;

	for (int i = 0; gens && i < sk_GENERAL_NAME_num(gens); i++) {
		const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
		const ASN1_STRING *s;
		const unsigned char *v;
		size_t vl, k;

		if (g->type != gen_type)
			continue;
		s = gen_type == GEN_IPADD ? g->d.iPAddress : gen_type == GEN_DNS ? g->d.dNSName : g->d.rfc822Name;
		v = ASN1_STRING_get0_data(s);
		vl = (size_t)ASN1_STRING_length(s);
		if (gen_type == GEN_IPADD) {
			char a[INET6_ADDRSTRLEN] = "?";

			if (vl == 4 || vl == 16)
				inet_ntop(vl == 4 ? AF_INET : AF_INET6, v, a, sizeof(a));
			k = strlen(have);
			snprintf(have + k, havelen - k, "%s%s", k ? ", " : "", a);
			if (vl == len && memcmp(v, data, len) == 0)
				rc = 0;
		} else {
			k = strlen(have);
			snprintf(have + k, havelen - k, "%s%.*s", k ? ", " : "", (int)(vl < 200 ? vl : 200), v);
			if (vl == len && strncasecmp((const char *)v, (const char *)data, len) == 0 &&
			    !memchr(v, '\0', vl))
				rc = 0;
		}
	}
	GENERAL_NAMES_free(gens);
	if (!have[0])
		snprintf(have, havelen, "no subjectAltName of that kind");
	return rc;
}

int bw_cert_id_match(const struct bw_cert_peer *p, uint8_t id_type, const uint8_t *data, size_t len,
		     char *have, size_t havelen)
{
	X509 *x;
	X509_NAME *n;
	int rc = 1;

	have[0] = '\0';
	if (!p || p->n == 0)
		return 1;
	x = p->certs[0];
	switch (id_type) {
	case ISAKMP_ID_DER_ASN1_DN:
		name_text(X509_get_subject_name(x), have, havelen);
		n = dn_from_der(data, len);
		if (n && X509_NAME_cmp(n, X509_get_subject_name(x)) == 0)
			rc = 0;
		X509_NAME_free(n);
		return rc;
	case ISAKMP_ID_FQDN:
		return san_match(x, GEN_DNS, data, len, have, havelen);
	case ISAKMP_ID_USER_FQDN:
		return san_match(x, GEN_EMAIL, data, len, have, havelen);
	case ISAKMP_ID_IPV4_ADDR:
	case ISAKMP_ID_IPV6_ADDR:
		return san_match(x, GEN_IPADD, data, len, have, havelen);
	case ISAKMP_ID_KEY_ID: {
		const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);

		if (!ski) {
			snprintf(have, havelen, "no subject key identifier");
			return 1;
		}
		bw_hex(have, ASN1_STRING_get0_data(ski),
		       (size_t)ASN1_STRING_length(ski) < (havelen - 1) / 2 ? (size_t)ASN1_STRING_length(ski) : (havelen - 1) / 2);
		return (size_t)ASN1_STRING_length(ski) == len && memcmp(ASN1_STRING_get0_data(ski), data, len) == 0 ? 0 : 1;
	}
	default:
		snprintf(have, havelen, "an identity type a certificate cannot vouch for");
		return 1;
	}
}

/* ---- burrow doctor -------------------------------------------------------------------------- */

static void check_set(struct bw_cert_check *c, const char *name, const char *status, const char *hint,
		      const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static void check_set(struct bw_cert_check *c, const char *name, const char *status, const char *hint,
		      const char *fmt, ...)
{
	va_list ap;

	c->name = name;
	c->status = status;
	bw_strlcpy(c->hint, hint ? hint : "", sizeof(c->hint));
	va_start(ap, fmt);
	vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
	va_end(ap);
}

static void doctor_dates(X509 *x, const char *file, time_t now, struct bw_cert_check *c)
{
	struct bw_cert_info in;
	struct tm tm;
	char clock[32];
	int days = 0, secs = 0;
	ASN1_TIME *t = ASN1_TIME_set(NULL, now);

	cert_info(x, &in);
	gmtime_r(&now, &tm);
	strftime(clock, sizeof(clock), "%Y-%m-%d %H:%M:%S UTC", &tm);
	if (X509_cmp_time(X509_get0_notBefore(x), &now) > 0)
		check_set(c, "cert-dates", "fail", "check this machine's clock (timedatectl); if it is right, the "
			  "certificate was issued with a start date in the future",
			  "our certificate %.160s (%.160s) is not valid before %s; this machine's clock says %s",
			  in.subject, file, in.not_before, clock);
	else if (X509_cmp_time(X509_get0_notAfter(x), &now) < 0)
		check_set(c, "cert-dates", "fail", "ask the CA for a new certificate and set certificate to it",
			  "our certificate %.160s (%.160s) expired on %s; this machine's clock says %s", in.subject,
			  file, in.not_after, clock);
	else if (t && ASN1_TIME_diff(&days, &secs, t, X509_get0_notAfter(x)) == 1 && days < 30)
		check_set(c, "cert-dates", "warn", "renew it before then: ask the CA for a new certificate",
			  "our certificate %.160s (%.160s) expires on %s, in %d day(s)", in.subject, file,
			  in.not_after, days);
	else
		check_set(c, "cert-dates", "ok", NULL, "our certificate %.160s (%.160s) is valid until %s", in.subject,
			  file, in.not_after);
	ASN1_TIME_free(t);
	ERR_clear_error();
}

/* Our certificate and key into cr, as bw_cert_load would, reported as checks 0 (dates) and 1
 * (key). */
static void doctor_own(struct bw_cert_creds *cr, const struct bw_conn_config *cfg, const char *pass, time_t now,
		       struct bw_cert_check *out)
{
	struct bw_cert_err e;
	char why[128];
	size_t n;
	const char *keyfile = cfg->private_key;

	if (is_pkcs12(cfg->certificate)) {
		keyfile = cfg->certificate;
		if (load_p12(cr, cfg, pass, &e) != 0) {
			if (strcmp(e.code, "needs-secret") == 0) {
				check_set(&out[0], "cert-dates", "ok", NULL, "the PKCS#12 file %.300s: encrypted, not "
					  "checked (no pkcs12_password in the secrets file)", cfg->certificate);
				check_set(&out[1], "cert-key", "ok", NULL, "the PKCS#12 file %.300s: encrypted, not "
					  "checked", cfg->certificate);
			} else {
				check_set(&out[0], "cert-dates", "fail", "correct certificate in [auth] or "
					  "pkcs12_password in the secrets file", "%s", e.msg);
				check_set(&out[1], "cert-key", "fail", NULL, "the key in %.300s cannot be read",
					  cfg->certificate);
			}
			return;
		}
	} else if (load_certs(cfg->certificate, &cr->cert, 1, &n, why, sizeof(why)) != 0) {
		check_set(&out[0], "cert-dates", "fail", "check certificate in [auth]", "the certificate %.300s: %s",
			  cfg->certificate, why);
		check_set(&out[1], "cert-key", "fail", NULL, "not checked without the certificate");
		return;
	}
	doctor_dates(cr->cert, cfg->certificate, now, &out[0]);
	if (!cr->key && !cfg->private_key[0]) {
		check_set(&out[1], "cert-key", "fail", "set private_key in [auth]", "the certificate %.300s is not a "
			  "PKCS#12 file and private_key is not set", cfg->certificate);
		return;
	}
	if (!cr->key && !(cr->key = load_key(cfg, pass, &e))) {
		if (strcmp(e.code, "needs-secret") == 0)
			check_set(&out[1], "cert-key", "ok", NULL, "the private key %.300s: encrypted, not checked (no "
				  "private_key_passphrase in the secrets file)", cfg->private_key);
		else
			check_set(&out[1], "cert-key", "fail", "correct private_key in [auth] or "
				  "private_key_passphrase in the secrets file", "%s", e.msg);
		return;
	}
	if (X509_check_private_key(cr->cert, cr->key) != 1)
		check_set(&out[1], "cert-key", "fail", "point private_key at the key the certificate was issued for",
			  "the private key %.300s does not belong to the certificate %.300s", keyfile,
			  cfg->certificate);
	else
		check_set(&out[1], "cert-key", "ok", NULL, "the private key %.300s belongs to the certificate",
			  keyfile);
	ERR_clear_error();
}

size_t bw_cert_doctor(const struct bw_conn_config *cfg, const char *pass, time_t now,
		      struct bw_cert_check out[BW_CERT_DOCTOR_CHECKS])
{
	struct bw_cert_creds *cr = calloc(1, sizeof(*cr));
	struct bw_cert_err e;

	if (!cr || !(cr->store = X509_STORE_new())) {
		bw_cert_free(cr);
		check_set(&out[0], "cert-dates", "fail", NULL, "out of memory");
		return 1;
	}
	doctor_own(cr, cfg, pass, now, out);
	if (!cfg->ca[0])
		check_set(&out[2], "cert-ca", "fail", "set ca in [auth] to the CA certificate of the gateway's "
			  "certificate (a file or a directory)", "ca is not set");
	else if (load_cas(cr, cfg->ca, &e) != 0)
		check_set(&out[2], "cert-ca", "fail", "set ca to the CA certificate of the gateway's certificate (a "
			  "file, or a directory of them)", "%s", e.msg);
	else
		check_set(&out[2], "cert-ca", "ok", NULL, "ca %.300s loads: %zu CA certificate(s)", cfg->ca, cr->n_cas);
	bw_cert_free(cr);
	ERR_clear_error();
	return BW_CERT_DOCTOR_CHECKS;
}

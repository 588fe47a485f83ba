/* X.509 certificate authentication for IKEv1 (RFC 2409 5.1, RFC 4754): our certificate and
 * private key, the CA store the gateway's chain is verified against, identity binding between an
 * ID payload and a certificate, and the raw signatures IKEv1 puts in SIG payloads. Everything
 * X.509 goes through OpenSSL 3; nothing here parses DER by hand. */
#ifndef BURROW_IKE_CERT_H
#define BURROW_IKE_CERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config/config.h"

/* A failure the user sees: a code (as in `burrow explain`), one sentence, an explanation. */
struct bw_cert_err {
	char code[32];
	char msg[320];
	char explanation[1024];
};

/* What `burrow status` shows about a certificate. */
struct bw_cert_info {
	char subject[256];
	char issuer[256];
	char not_before[32];	/* "2026-12-06 04:00:00 UTC" */
	char not_after[32];
};

#define BW_CERT_MAX_CAS 16	/* CA certificates named in CERTREQ payloads */
#define BW_CERT_MAX_CHAIN 4	/* intermediates we send after our certificate */
#define BW_CERT_MAX_CRLS 32	/* CRLs from the crl = files */

struct bw_cert_creds;		/* ours: certificate, key, CA store (opaque, OpenSSL inside) */
struct bw_cert_peer;		/* the gateway's certificate(s) as received */

/* Loads certificate, private key and CAs of cfg, checks that the key matches the certificate and
 * the method. certificate is PEM or DER (key in private_key), or PKCS#12 (.p12/.pfx or by content:
 * certificate, key and intermediates in one file). passphrase is the secret bw_cert_secret_key
 * names, NULL when there is none. Returns creds, or NULL with err set; err->code is
 * "needs-secret" when the key or PKCS#12 file is protected and no passphrase was given,
 * "passphrase-wrong", "key-mismatch", "cert-file" or "config". */
struct bw_cert_creds *bw_cert_load(const struct bw_conn_config *cfg, const char *passphrase,
				   struct bw_cert_err *err);
void bw_cert_free(struct bw_cert_creds *cr);
/* The secrets-file key bw_cert_load's passphrase comes from: "pkcs12_password" when the
 * certificate is a PKCS#12 file, else "private_key_passphrase". */
const char *bw_cert_secret_key(const struct bw_conn_config *cfg);

/* One line of `burrow doctor NAME` about our certificate: name "cert-dates", "cert-key" or
 * "cert-ca"; status "ok", "warn" or "fail". */
struct bw_cert_check {
	const char *name;
	const char *status;
	char detail[640];
	char hint[256];
};
#define BW_CERT_DOCTOR_CHECKS 3

/* Checks of cfg's certificate files without starting anything: our certificate's dates at now
 * (warn within 30 days of its expiry, fail when expired or not yet valid), that the private key
 * belongs to it, and that ca loads. pass is the secret bw_cert_secret_key names from the secrets
 * file, NULL when it has none: nothing is asked for, and an encrypted key (or the contents of a
 * PKCS#12 file) is reported "encrypted, not checked". Fills out, returns how many checks. */
size_t bw_cert_doctor(const struct bw_conn_config *cfg, const char *pass, time_t now,
		      struct bw_cert_check out[BW_CERT_DOCTOR_CHECKS]);

/* Our certificate in DER (CERT payload, encoding 4), and the phase-1 auth method (3 RSA,
 * 9/10/11 ECDSA P-256/384/521). */
const uint8_t *bw_cert_der(const struct bw_cert_creds *cr, size_t *len);
/* The i-th intermediate (DER) to send after our certificate: those that follow it in a PEM file
 * or come with it in a PKCS#12 file, self-signed roots left out; NULL past the last. */
const uint8_t *bw_cert_chain_der(const struct bw_cert_creds *cr, size_t i, size_t *len);
uint16_t bw_cert_auth_method(const struct bw_cert_creds *cr);
/* The subject DER of the i-th CA (for CERTREQ); NULL past the last one. */
const uint8_t *bw_cert_ca_name(const struct bw_cert_creds *cr, size_t i, size_t *len);
/* Our certificate's subject, DER (the asn1dn identity when local_id is empty). */
int bw_cert_subject_der(const struct bw_cert_creds *cr, uint8_t *out, size_t cap, size_t *len);
void bw_cert_own_info(const struct bw_cert_creds *cr, struct bw_cert_info *out);

/* A DN written in a connection file, OpenSSL one-line ("/C=CH/O=x/CN=y") or RFC 4514
 * ("CN=y, O=x, C=CH"), to DER. -1 with a sentence in err when it does not parse. */
int bw_dn_to_der(const char *text, uint8_t *out, size_t cap, size_t *len, char *err, size_t errlen);
/* Two DER DNs compared as OpenSSL does (canonical form: case and string type do not matter).
 * 0 equal, 1 different, -1 when either does not parse. */
int bw_dn_der_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);
/* A DER DN in RFC 4514 text (for logs and explanations). */
void bw_dn_der_text(const uint8_t *der, size_t len, char *out, size_t cap);

/* The signature of an IKEv1 HASH_I/HASH_R: RSA PKCS#1 v1.5 over the raw hash (no DigestInfo),
 * ECDSA r|s with each half as long as the curve's order. */
int bw_cert_sign(const struct bw_cert_creds *cr, const uint8_t *hash, size_t hlen, uint8_t *sig,
		 size_t cap, size_t *siglen);

/* The gateway's CERT payloads: the first is its own certificate, the rest intermediates. */
struct bw_cert_peer *bw_cert_peer_new(void);
void bw_cert_peer_free(struct bw_cert_peer *p);
/* Adds one X.509 (encoding 4) certificate in DER; -1 when it does not parse or too many. */
int bw_cert_peer_add(struct bw_cert_peer *p, const uint8_t *der, size_t len);
size_t bw_cert_peer_count(const struct bw_cert_peer *p);
void bw_cert_peer_info(const struct bw_cert_peer *p, struct bw_cert_info *out);

/* Verifies the gateway's chain against our CAs at time now: trust, validity dates, CA
 * constraints, and digitalSignature key usage / an IKE-compatible extended key usage on the
 * end certificate. With crl files, the gateway's certificate must not be on its CA's CRL, and
 * when there is a CRL for every certificate of the chain, none of them may be. Codes:
 * cert-untrusted, cert-expired, cert-not-yet-valid, cert-key-usage, cert-revoked, cert-invalid
 * (also: no CRL of the issuer, a stale CRL). */
int bw_cert_verify_chain(const struct bw_cert_creds *cr, const struct bw_cert_peer *p, time_t now,
			 struct bw_cert_err *err);
/* Checks sig over hash with the gateway certificate's public key; 0 when it verifies. */
int bw_cert_verify_sig(const struct bw_cert_peer *p, const uint8_t *hash, size_t hlen,
		       const uint8_t *sig, size_t siglen);
/* Does the ID payload (ISAKMP ID type and data) name the gateway's certificate: subject DN for
 * DER_ASN1_DN, a subjectAltName DNS / email / IP for FQDN / USER_FQDN / IPV4_ADDR, the subject
 * key identifier for KEY_ID? 0 yes, 1 no (with what the certificate holds in have). */
int bw_cert_id_match(const struct bw_cert_peer *p, uint8_t id_type, const uint8_t *data, size_t len,
		     char *have, size_t havelen);

#endif

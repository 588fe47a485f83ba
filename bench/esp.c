/* Throughput of the ESP transform against the crypto it is made of: per algorithm, encap + decap
 * of 1400-byte packets on one core, and the same cipher and HMAC work done with bare EVP calls.
 * Usage: bench_esp [seconds per measurement, default 1] [name filter]. Never fails on speed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "esp.h"

#define PAYLOAD 1400
#define BATCH 64

struct alg {
	const char *name;
	struct bw_p2_proposal p;
	const char *cipher;	/* EVP names for the raw measurement */
	const char *digest;	/* NULL for GCM */
	size_t key_len, auth_len, iv_len, icv_len;
};

#define CBC(bits, a, an, dg, al, icv) \
	{ "aes" #bits "-" an, { BW_ESP_AES_CBC, bits, a, BW_DH_NONE }, "AES-" #bits "-CBC", dg, \
	  bits / 8, al, 16, icv }
#define CBC_ALL(bits) \
	CBC(bits, BW_ESP_AUTH_HMAC_MD5, "md5", "MD5", 16, 12), \
	CBC(bits, BW_ESP_AUTH_HMAC_SHA1, "sha1", "SHA1", 20, 12), \
	CBC(bits, BW_ESP_AUTH_HMAC_SHA256, "sha256", "SHA2-256", 32, 16), \
	CBC(bits, BW_ESP_AUTH_HMAC_SHA384, "sha384", "SHA2-384", 48, 24), \
	CBC(bits, BW_ESP_AUTH_HMAC_SHA512, "sha512", "SHA2-512", 64, 32)
#define DES(a, an, dg, al, icv) \
	{ "3des-" an, { BW_ESP_3DES, 192, a, BW_DH_NONE }, "DES-EDE3-CBC", dg, 24, al, 8, icv }
#define GCM(bits, e, icv) \
	{ "aes" #bits "gcm" #icv, { e, bits, BW_ESP_AUTH_NONE, BW_DH_NONE }, "AES-" #bits "-GCM", NULL, \
	  bits / 8, 0, 8, icv }
#define GCM_ALL(bits) GCM(bits, BW_ESP_AES_GCM8, 8), GCM(bits, BW_ESP_AES_GCM12, 12), \
	GCM(bits, BW_ESP_AES_GCM16, 16)

static const struct alg algs[] = {
	CBC_ALL(128), CBC_ALL(192), CBC_ALL(256),
	DES(BW_ESP_AUTH_HMAC_MD5, "md5", "MD5", 16, 12),
	DES(BW_ESP_AUTH_HMAC_SHA1, "sha1", "SHA1", 20, 12),
	DES(BW_ESP_AUTH_HMAC_SHA256, "sha256", "SHA2-256", 32, 16),
	DES(BW_ESP_AUTH_HMAC_SHA384, "sha384", "SHA2-384", 48, 24),
	DES(BW_ESP_AUTH_HMAC_SHA512, "sha512", "SHA2-512", 64, 32),
	GCM_ALL(128), GCM_ALL(192), GCM_ALL(256),
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *name)
{
	fprintf(stderr, "bench_esp: %s failed for %s\n", what, name);
	exit(1);
}

/* Packets per second through bw_esp_encap + bw_esp_decap. */
static double run_esp(const struct alg *a, double secs)
{
	static uint8_t payload[PAYLOAD], pkt[PAYLOAD + BW_ESP_MAX_OVERHEAD], dec[PAYLOAD];
	uint8_t km[128];
	struct bw_esp_sa *out, *in;
	size_t n, dn;
	uint8_t nh;
	unsigned long count = 0;
	double t0, t;

	for (size_t i = 0; i < sizeof(km); i++)
		km[i] = (uint8_t)(i * 13 + 1);
	memset(payload, 0xa5, sizeof(payload));
	out = bw_esp_sa_new(BW_ESP_OUT, 0x1234, &a->p, km, bw_esp_keymat_len(&a->p));
	in = bw_esp_sa_new(BW_ESP_IN, 0x1234, &a->p, km, bw_esp_keymat_len(&a->p));
	if (!out || !in)
		die("SA setup", a->name);
	t0 = now_s();
	do {
		for (int i = 0; i < BATCH; i++) {
			if (bw_esp_encap(out, payload, PAYLOAD, 4, pkt, sizeof(pkt), &n) != BW_ESP_OK ||
			    bw_esp_decap(in, pkt, n, dec, sizeof(dec), &dn, &nh) != BW_ESP_OK)
				die("encap/decap", a->name);
		}
		count += BATCH;
		t = now_s() - t0;
	} while (t < secs);
	bw_esp_sa_free(out);
	bw_esp_sa_free(in);
	return (double)count / t;
}

/* Packets per second of the bare work: encrypt + HMAC, HMAC + decrypt (CBC), or GCM seal + open,
 * over the same sizes and with contexts reused, as `openssl speed` runs them. */
static double run_raw(const struct alg *a, double secs)
{
	static uint8_t buf[PAYLOAD + 64], ct[PAYLOAD + 64], pt[PAYLOAD + 64];
	uint8_t key[64], mac[EVP_MAX_MD_SIZE], iv[16] = { 0 }, tag[16];
	size_t ct_len, hdr = 8 + a->iv_len, blk = a->digest ? a->iv_len : 4, mlen;
	EVP_CIPHER *c = EVP_CIPHER_fetch(NULL, a->cipher, NULL);
	EVP_CIPHER_CTX *e = EVP_CIPHER_CTX_new(), *d = EVP_CIPHER_CTX_new();
	EVP_MAC *m = NULL;
	EVP_MAC_CTX *mc = NULL;
	unsigned long count = 0;
	int n;
	double t0, t;

	ct_len = PAYLOAD + 2 + (blk - (PAYLOAD + 2) % blk) % blk;
	memset(key, 7, sizeof(key));
	memset(buf, 0xa5, sizeof(buf));
	if (!c || !EVP_EncryptInit_ex2(e, c, key, iv, NULL) || !EVP_DecryptInit_ex2(d, c, key, iv, NULL))
		die("raw cipher setup", a->name);
	if (a->digest) {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)a->digest, 0),
			OSSL_PARAM_construct_end(),
		};

		EVP_CIPHER_CTX_set_padding(e, 0);
		EVP_CIPHER_CTX_set_padding(d, 0);
		m = EVP_MAC_fetch(NULL, "HMAC", NULL);
		mc = m ? EVP_MAC_CTX_new(m) : NULL;
		if (!mc || !EVP_MAC_init(mc, key, a->auth_len, params))
			die("raw HMAC setup", a->name);
	}
	t0 = now_s();
	do {
		for (int i = 0; i < BATCH; i++) {
			int ok;

			if (a->digest) {
				ok = EVP_EncryptUpdate(e, ct + hdr, &n, buf, (int)ct_len) &&
				     EVP_MAC_init(mc, NULL, 0, NULL) && EVP_MAC_update(mc, ct, hdr + ct_len) &&
				     EVP_MAC_final(mc, mac, &mlen, sizeof(mac)) &&
				     EVP_MAC_init(mc, NULL, 0, NULL) && EVP_MAC_update(mc, ct, hdr + ct_len) &&
				     EVP_MAC_final(mc, mac, &mlen, sizeof(mac)) &&
				     EVP_DecryptUpdate(d, pt, &n, ct + hdr, (int)ct_len);
			} else {
				iv[11] = (uint8_t)i;
				ok = EVP_EncryptInit_ex2(e, NULL, NULL, iv, NULL) &&
				     EVP_EncryptUpdate(e, NULL, &n, ct, 8) &&
				     EVP_EncryptUpdate(e, ct + hdr, &n, buf, (int)ct_len) &&
				     EVP_EncryptFinal_ex(e, ct + hdr + n, &n) &&
				     EVP_CIPHER_CTX_ctrl(e, EVP_CTRL_AEAD_GET_TAG, (int)a->icv_len, tag) &&
				     EVP_DecryptInit_ex2(d, NULL, NULL, iv, NULL) &&
				     EVP_DecryptUpdate(d, NULL, &n, ct, 8) &&
				     EVP_DecryptUpdate(d, pt, &n, ct + hdr, (int)ct_len) &&
				     EVP_CIPHER_CTX_ctrl(d, EVP_CTRL_AEAD_SET_TAG, (int)a->icv_len, tag) &&
				     EVP_DecryptFinal_ex(d, pt + n, &n);
			}
			if (!ok)
				die("raw crypto", a->name);
		}
		count += BATCH;
		t = now_s() - t0;
	} while (t < secs);
	EVP_MAC_CTX_free(mc);
	EVP_MAC_free(m);
	EVP_CIPHER_CTX_free(e);
	EVP_CIPHER_CTX_free(d);
	EVP_CIPHER_free(c);
	return (double)count / t;
}

int main(int argc, char **argv)
{
	double secs = argc > 1 ? atof(argv[1]) : 1.0;
	const char *filter = argc > 2 ? argv[2] : NULL;

	if (secs <= 0)
		secs = 1.0;

	printf("# ESP encap+decap of %d-byte payloads vs. the bare cipher+HMAC (or GCM) work, "
	       "one thread, best of 3 x %.2f s each\n", PAYLOAD, secs / 3);
	printf("# %-14s %12s %12s %7s\n", "algorithm", "esp MB/s", "crypto MB/s", "ratio");
	for (size_t i = 0; i < sizeof(algs) / sizeof(algs[0]); i++) {
		double esp, raw;

		if (filter && !strstr(algs[i].name, filter))
			continue;
		/* Alternate short runs and keep the best of each: on a shared machine a neighbour's
		 * burst then lowers one sample, not the ratio. */
		esp = raw = 0;
		for (int r = 0; r < 3; r++) {
			double e = run_esp(&algs[i], secs / 3) * PAYLOAD / 1e6;
			double w = run_raw(&algs[i], secs / 3) * PAYLOAD / 1e6;

			esp = e > esp ? e : esp;
			raw = w > raw ? w : raw;
		}
		printf("  %-14s %12.1f %12.1f %7.2f\n", algs[i].name, esp, raw, esp / raw);
		fflush(stdout);
	}
	return 0;
}

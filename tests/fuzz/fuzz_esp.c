/* libFuzzer target for the ESP transform: arbitrary bytes into decap for each algorithm family,
 * fuzz input as payload through encap -> decap, and chosen plaintexts under a valid ICV so
 * that the padding checks are reached. Build with -DFUZZ_ESP_SEEDS for a program that writes
 * the seed corpus (tests/fuzz/corpus/esp/) instead. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "esp.h"

#define SPI 0x0000f00du

static const struct bw_p2_proposal algs[] = {
	{ BW_ESP_AES_CBC, 128, BW_ESP_AUTH_HMAC_SHA1, BW_DH_NONE },
	{ BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA512, BW_DH_NONE },
	{ BW_ESP_3DES, 192, BW_ESP_AUTH_HMAC_MD5, BW_DH_NONE },
	{ BW_ESP_AES_GCM16, 128, BW_ESP_AUTH_NONE, BW_DH_NONE },
	{ BW_ESP_AES_GCM8, 256, BW_ESP_AUTH_NONE, BW_DH_NONE },
};
#define NALG (sizeof(algs) / sizeof(algs[0]))
enum { MODE_DECAP, MODE_ROUND_TRIP, MODE_CRAFTED, MODE_COUNT };

static void keymat(uint8_t km[128])
{
	for (int i = 0; i < 128; i++)
		km[i] = (uint8_t)(0x5a + 3 * i);
}

static struct bw_esp_sa *sa_new(size_t alg, enum bw_esp_dir dir)
{
	uint8_t km[128];
	struct bw_esp_sa *sa;

	keymat(km);
	sa = bw_esp_sa_new(dir, SPI, &algs[alg], km, bw_esp_keymat_len(&algs[alg]));
	if (!sa)
		abort();
	return sa;
}

/* Packet with a valid ICV over a plaintext we choose (algs[0] or algs[3] only). */
static size_t craft(size_t alg, const uint8_t *pt, size_t pt_len, uint8_t *pkt)
{
	uint8_t km[128], mac[EVP_MAX_MD_SIZE];
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;
	size_t mlen = 0;

	keymat(km);
	memcpy(pkt, "\x00\x00\xf0\x0d\x00\x00\x00\x01", 8);
	if (alg == 3) {
		uint8_t nonce[12];

		memset(pkt + 8, 0x42, 8);
		memcpy(nonce, km + 16, 4);
		memcpy(nonce + 4, pkt + 8, 8);
		if (!EVP_EncryptInit_ex2(c, EVP_aes_128_gcm(), km, nonce, NULL) ||
		    !EVP_EncryptUpdate(c, NULL, &n, pkt, 8) ||
		    !EVP_EncryptUpdate(c, pkt + 16, &n, pt, (int)pt_len) ||
		    !EVP_EncryptFinal_ex(c, pkt + 16 + n, &m) ||
		    !EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, 16, pkt + 16 + pt_len))
			abort();
		EVP_CIPHER_CTX_free(c);
		return 16 + pt_len + 16;
	}
	memset(pkt + 8, 0x42, 16);
	if (!EVP_EncryptInit_ex2(c, EVP_aes_128_cbc(), km, pkt + 8, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(c, 0) ||
	    !EVP_EncryptUpdate(c, pkt + 24, &n, pt, (int)pt_len) ||
	    !EVP_EncryptFinal_ex(c, pkt + 24 + n, &m) ||
	    !EVP_Q_mac(NULL, "HMAC", NULL, "SHA1", NULL, km + 16, 20, pkt, 24 + pt_len, mac,
		       sizeof(mac), &mlen))
		abort();
	EVP_CIPHER_CTX_free(c);
	memcpy(pkt + 24 + pt_len, mac, 12);
	return 24 + pt_len + 12;
}

static void fuzz_decap(size_t alg, const uint8_t *data, size_t len)
{
	struct bw_esp_sa *in = sa_new(alg, BW_ESP_IN);
	/* An output buffer of exactly out_cap bytes on the heap: overflows are caught. */
	size_t cap = len > 0 && (data[0] & 1) ? data[0] : len;
	uint8_t *out = malloc(cap ? cap : 1), nh;
	size_t n = 0;
	int rc = bw_esp_decap(in, data, len, out, cap, &n, &nh);

	if (rc == BW_ESP_OK && n > cap)
		abort();
	free(out);
	bw_esp_sa_free(in);
}

static void fuzz_round_trip(size_t alg, const uint8_t *data, size_t len)
{
	struct bw_esp_sa *out = sa_new(alg, BW_ESP_OUT), *in = sa_new(alg, BW_ESP_IN);
	size_t plen = bw_esp_sa_encap_len(out, len), n = 0;
	uint8_t *pkt = malloc(plen), *dec = malloc(len ? len : 1), nh = 0;
	uint8_t nh_want = len ? 4 : 59;

	if (bw_esp_encap(out, data, len, nh_want, pkt, plen, &n) != BW_ESP_OK || n != plen)
		abort();
	if (bw_esp_decap(in, pkt, n, dec, len, &n, &nh) != BW_ESP_OK || n != len || nh != nh_want ||
	    memcmp(dec, data, len) != 0)
		abort();
	free(pkt);
	free(dec);
	bw_esp_sa_free(out);
	bw_esp_sa_free(in);
}

static void fuzz_crafted(size_t alg, const uint8_t *data, size_t len)
{
	size_t block = alg == 3 ? 4 : 16, pt_len = len - len % block;
	struct bw_esp_sa *in;
	uint8_t *pkt, *dec, nh = 0;
	size_t n, dn = 0;
	int rc;

	if (pt_len == 0)
		return;
	in = sa_new(alg, BW_ESP_IN);
	pkt = malloc(pt_len + 64);
	dec = malloc(pt_len);
	n = craft(alg, data, pt_len, pkt);
	rc = bw_esp_decap(in, pkt, n, dec, pt_len, &dn, &nh);
	/* The ICV is valid, so only the padding may be refused; a payload must be a prefix. */
	if (rc != BW_ESP_OK && rc != BW_ESP_ERR_PAD)
		abort();
	if (rc == BW_ESP_OK && (dn + 2 > pt_len || memcmp(dec, data, dn) != 0 || nh != data[pt_len - 1]))
		abort();
	free(pkt);
	free(dec);
	bw_esp_sa_free(in);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t alg, mode;

	if (size < 1)
		return 0;
	alg = data[0] % NALG;
	mode = data[0] / NALG % MODE_COUNT;
	data++, size--;
	if (size > 4096)
		size = 4096;
	switch (mode) {
	case MODE_DECAP:
		fuzz_decap(alg, data, size);
		break;
	case MODE_ROUND_TRIP:
		fuzz_round_trip(alg, data, size);
		break;
	default:
		fuzz_crafted(alg < 3 ? 0 : 3, data, size);
		break;
	}
	return 0;
}

#ifdef FUZZ_ESP_SEEDS
/* Writes one valid packet per algorithm, a few payloads and padded plaintexts into DIR. */
static void seed(const char *dir, const char *name, uint8_t sel, const uint8_t *b, size_t n)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "wb");
	if (!f || fputc(sel, f) == EOF || fwrite(b, 1, n, f) != n || fclose(f) != 0)
		abort();
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : ".";
	uint8_t payload[120], pkt[256], pt[32];
	char name[64];
	size_t n;

	for (size_t i = 0; i < sizeof(payload); i++)
		payload[i] = (uint8_t)(0x45 + i);
	for (size_t a = 0; a < NALG; a++) {
		struct bw_esp_sa *out = sa_new(a, BW_ESP_OUT);

		if (bw_esp_encap(out, payload, sizeof(payload), 4, pkt, sizeof(pkt), &n) != BW_ESP_OK)
			abort();
		snprintf(name, sizeof(name), "decap-%zu", a);
		seed(dir, name, (uint8_t)(MODE_DECAP * NALG + a), pkt, n);
		snprintf(name, sizeof(name), "round-trip-%zu", a);
		seed(dir, name, (uint8_t)(MODE_ROUND_TRIP * NALG + a), payload, 17 + 13 * a);
		bw_esp_sa_free(out);
	}
	/* payload(27) | 1 2 3 | pad length 3 | next header 4 */
	memcpy(pt, payload, 27);
	memcpy(pt + 27, "\x01\x02\x03\x03\x04", 5);
	seed(dir, "crafted-cbc", (uint8_t)(MODE_CRAFTED * NALG + 0), pt, 32);
	seed(dir, "crafted-gcm", (uint8_t)(MODE_CRAFTED * NALG + 3), pt, 32);
	return 0;
}
#endif

/* The sizes of the ESP algorithms: one table below the IKE engine and both datapaths. */
#include "algs.h"

#include <string.h>

static int aes_key_ok(uint16_t bits)
{
	return bits == 128 || bits == 192 || bits == 256;
}

static int esp_cipher_sizes(const struct bw_p2_proposal *p, struct bw_esp_sizes *s)
{
	switch (p->encr) {
	case BW_ESP_AES_CBC:
		if (!aes_key_ok(p->key_bits))
			return -1;
		s->enc_key_len = p->key_bits / 8u;
		s->iv_len = s->block = 16;
		return 0;
	case BW_ESP_3DES:
		if (p->key_bits != 0 && p->key_bits != 192)
			return -1;
		s->enc_key_len = 24;
		s->iv_len = s->block = 8;
		return 0;
	case BW_ESP_AES_GCM8:
	case BW_ESP_AES_GCM12:
	case BW_ESP_AES_GCM16:
		if (!aes_key_ok(p->key_bits) || p->auth != BW_ESP_AUTH_NONE)
			return -1;
		s->enc_key_len = p->key_bits / 8u;
		s->salt_len = 4;
		s->iv_len = 8;
		s->block = 4;
		s->icv_len = p->encr == BW_ESP_AES_GCM8 ? 8 : p->encr == BW_ESP_AES_GCM12 ? 12 : 16;
		s->aead = true;
		return 0;
	}
	return -1;
}

/* CBC needs integrity: ESP without it is open to cut-and-paste and padding oracles. */
static int esp_auth_sizes(enum bw_esp_auth auth, struct bw_esp_sizes *s)
{
	switch (auth) {
	case BW_ESP_AUTH_HMAC_MD5: s->auth_key_len = 16, s->icv_len = 12; return 0;
	case BW_ESP_AUTH_HMAC_SHA1: s->auth_key_len = 20, s->icv_len = 12; return 0;
	case BW_ESP_AUTH_HMAC_SHA256: s->auth_key_len = 32, s->icv_len = 16; return 0;
	case BW_ESP_AUTH_HMAC_SHA384: s->auth_key_len = 48, s->icv_len = 24; return 0;
	case BW_ESP_AUTH_HMAC_SHA512: s->auth_key_len = 64, s->icv_len = 32; return 0;
	case BW_ESP_AUTH_NONE: break;
	}
	return -1;
}

int bw_esp_sizes(const struct bw_p2_proposal *p, struct bw_esp_sizes *out)
{
	struct bw_esp_sizes s;

	memset(&s, 0, sizeof(s));
	if (!p || esp_cipher_sizes(p, &s) < 0)
		return -1;
	if (!s.aead && esp_auth_sizes(p->auth, &s) < 0)
		return -1;
	*out = s;
	return 0;
}

size_t bw_esp_keymat_len(const struct bw_p2_proposal *p)
{
	struct bw_esp_sizes s;

	if (bw_esp_sizes(p, &s) < 0)
		return 0;
	return s.enc_key_len + s.salt_len + s.auth_key_len;
}

/* Algorithm identifiers shared by configuration, IKE and the SA backends.
 * The numeric values are the IKEv1 wire values (RFC 2409 appendix A, RFC 2407 4.4.x / 4.5). */
#ifndef BURROW_ALGS_H
#define BURROW_ALGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Phase 1 encryption (ISAKMP attribute Encryption Algorithm). */
enum bw_p1_encr {
	BW_P1_ENCR_3DES = 5,
	BW_P1_ENCR_AES_CBC = 7,
};

/* Phase 1 hash (ISAKMP attribute Hash Algorithm); the PRF is HMAC with it. */
enum bw_hash {
	BW_HASH_MD5 = 1,
	BW_HASH_SHA1 = 2,
	BW_HASH_SHA256 = 4,
	BW_HASH_SHA384 = 5,
	BW_HASH_SHA512 = 6,
};

/* Diffie-Hellman groups (IANA "Group Description"); BW_DH_NONE means no PFS. */
enum bw_dh_group {
	BW_DH_NONE = 0,
	BW_DH_MODP768 = 1,	/* refused as insecure */
	BW_DH_MODP1024 = 2,
	BW_DH_MODP1536 = 5,
	BW_DH_MODP2048 = 14,
	BW_DH_MODP3072 = 15,
	BW_DH_MODP4096 = 16,
	BW_DH_MODP6144 = 17,
	BW_DH_MODP8192 = 18,
	BW_DH_ECP256 = 19,
	BW_DH_ECP384 = 20,
	BW_DH_ECP521 = 21,
};

/* ESP transform IDs (RFC 2407 4.4.4, RFC 4106). */
enum bw_esp_encr {
	BW_ESP_3DES = 3,
	BW_ESP_AES_CBC = 12,
	BW_ESP_AES_GCM8 = 18,
	BW_ESP_AES_GCM12 = 19,
	BW_ESP_AES_GCM16 = 20,
};

/* ESP authentication algorithm attribute (RFC 2407 4.5, RFC 4868). */
enum bw_esp_auth {
	BW_ESP_AUTH_NONE = 0,
	BW_ESP_AUTH_HMAC_MD5 = 1,
	BW_ESP_AUTH_HMAC_SHA1 = 2,
	BW_ESP_AUTH_HMAC_SHA256 = 5,
	BW_ESP_AUTH_HMAC_SHA384 = 6,
	BW_ESP_AUTH_HMAC_SHA512 = 7,
};

struct bw_p1_proposal {
	enum bw_p1_encr encr;
	uint16_t key_bits;	/* 128/192/256 for AES; 192 for 3DES */
	enum bw_hash hash;
	enum bw_dh_group dh;
};

struct bw_p2_proposal {
	enum bw_esp_encr encr;
	uint16_t key_bits;	/* 128/192/256 for AES (and GCM); 192 for 3DES */
	enum bw_esp_auth auth;	/* BW_ESP_AUTH_NONE with GCM */
	enum bw_dh_group dh;	/* PFS group named inside the proposal, or BW_DH_NONE */
};

/* What an ESP proposal needs in sizes: the one table that both datapaths and the KEYMAT
 * length of Quick Mode read (RFC 2451, 3602, 4106, 4868; HMAC-MD5/SHA1 RFC 2403/2404). */
struct bw_esp_sizes {
	size_t enc_key_len;	/* cipher key */
	size_t salt_len;	/* AES-GCM: 4 bytes after the key in KEYMAT (RFC 4106 8.1) */
	size_t auth_key_len;	/* HMAC key; 0 with AES-GCM */
	size_t icv_len;		/* integrity check value, bytes (HMAC truncated, or the GCM tag) */
	size_t iv_len;		/* explicit IV in each packet */
	size_t block;		/* ciphertext alignment: the cipher's block, or 4 for GCM */
	bool aead;
};

/* 0 and *out filled, or -1 for a proposal no datapath carries (ESP without integrity, an
 * AES key that is not 128/192/256 bits, GCM with a separate HMAC, an unknown transform). */
int bw_esp_sizes(const struct bw_p2_proposal *p, struct bw_esp_sizes *out);

/* KEYMAT bytes one direction of an SA takes (key + salt + HMAC key); 0 if unsupported. */
size_t bw_esp_keymat_len(const struct bw_p2_proposal *p);

#endif

/* ESP (RFC 4303) for the userspace datapath: AES-CBC and 3DES-CBC with HMAC (RFC 2404,
 * RFC 4868), and AES-GCM (RFC 4106). Every SA keys its OpenSSL contexts once; packets reuse them. */
#include "esp.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "log.h"

#define ESP_HDR_LEN 8		/* SPI + sequence number */
#define ESP_MAX_IV 16
#define ESP_MAX_BLOCK 16
#define ESP_MAX_KEY 32
#define ESP_GCM_SALT_LEN 4
#define ESP_MAX_PACKET 65535	/* no IP packet is longer; keeps lengths within int for EVP */
#define ESP_NH_NONE 59		/* "no next header": dummy packet (RFC 4303 2.6) */
/* Decap scratch for the part of the plaintext that does not fit in the caller's buffer;
 * anything larger than this cannot hold a payload that fits (padding is at most 255). */
#define ESP_TAIL_MAX (255 + 2 + 2 * ESP_MAX_BLOCK)
#define ESP_RP_WORDS (BW_ESP_REPLAY_WINDOW / 64)

_Static_assert(BW_ESP_REPLAY_WINDOW % 64 == 0, "replay window is a whole number of words");

/* An algorithm proposal resolved into sizes and OpenSSL names. */
struct esp_alg {
	const char *cipher;	/* EVP cipher name */
	const char *ivgen;	/* CBC only: ECB cipher that turns the sequence number into the IV */
	size_t ivgen_key_len;
	const char *digest;	/* HMAC digest; NULL for AES-GCM */
	size_t enc_key_len;
	size_t auth_key_len;
	size_t salt_len;
	size_t iv_len;
	size_t block;		/* ciphertext alignment: cipher block, or 4 for GCM */
	size_t icv_len;
	bool aead;
};

struct bw_esp_sa {
	enum bw_esp_dir dir;
	uint32_t spi;
	struct esp_alg alg;
	EVP_CIPHER *cipher;
	EVP_CIPHER_CTX *cctx;	/* keyed once for this SA's direction; only the IV changes */
	EVP_CIPHER *ivcipher;
	EVP_CIPHER_CTX *ivctx;	/* outbound CBC: keyed with a random key, E(seq) = IV */
	EVP_MAC *mac;
	EVP_MAC_CTX *mctx;	/* keyed once; EVP_MAC_init without key restarts it */
	uint8_t salt[ESP_GCM_SALT_LEN];
	uint32_t seq_out;	/* last sequence number sent; 0 = none yet */
	bool iv_forced;
	uint8_t forced_iv[ESP_MAX_IV];
	uint32_t rp_top;	/* highest sequence number authenticated */
	uint64_t rp_bits[ESP_RP_WORDS];	/* ring: bit (seq % window) set = seen */
	struct bw_esp_counters ctr;
};

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int esp_resolve(const struct bw_p2_proposal *p, struct esp_alg *a)
{
	static const char *const aes_cbc[] = { "AES-128-CBC", "AES-192-CBC", "AES-256-CBC" };
	static const char *const aes_gcm[] = { "AES-128-GCM", "AES-192-GCM", "AES-256-GCM" };
	static const char *const digests[] = {
		[BW_ESP_AUTH_HMAC_MD5] = "MD5", [BW_ESP_AUTH_HMAC_SHA1] = "SHA1",
		[BW_ESP_AUTH_HMAC_SHA256] = "SHA2-256", [BW_ESP_AUTH_HMAC_SHA384] = "SHA2-384",
		[BW_ESP_AUTH_HMAC_SHA512] = "SHA2-512",
	};
	struct bw_esp_sizes sz;
	int ks;

	memset(a, 0, sizeof(*a));
	if (bw_esp_sizes(p, &sz) < 0)	/* the sizes, and what is supported, come from algs.c */
		return -1;
	a->enc_key_len = sz.enc_key_len;
	a->auth_key_len = sz.auth_key_len;
	a->salt_len = sz.salt_len;
	a->iv_len = sz.iv_len;
	a->block = sz.block;
	a->icv_len = sz.icv_len;
	a->aead = sz.aead;
	ks = p->encr == BW_ESP_3DES ? 0 : (int)sz.enc_key_len / 8 - 2;	/* 16, 24, 32 -> 0, 1, 2 */
	switch (p->encr) {
	case BW_ESP_AES_CBC:
		a->cipher = aes_cbc[ks];
		a->ivgen = "AES-128-ECB";
		a->ivgen_key_len = 16;
		break;
	case BW_ESP_3DES:
		a->cipher = "DES-EDE3-CBC";
		a->ivgen = "DES-EDE3-ECB";
		a->ivgen_key_len = 24;
		break;
	default:		/* AES-GCM: bw_esp_sizes accepted nothing else */
		a->cipher = aes_gcm[ks];
		_Static_assert(ESP_GCM_SALT_LEN == 4, "the salt of RFC 4106 is 4 bytes");
		return 0;
	}
	a->digest = digests[p->auth];
	return 0;
}

struct bw_esp_sa *bw_esp_sa_new(enum bw_esp_dir dir, uint32_t spi, const struct bw_p2_proposal *alg,
				const uint8_t *keymat, size_t keymat_len)
{
	struct bw_esp_sa *sa;
	struct esp_alg a;
	size_t need;
	int enc = dir == BW_ESP_OUT;

	if (!alg || esp_resolve(alg, &a) < 0) {
		bw_warn("esp: SPI %08x: unsupported ESP algorithm (transform %d, %u bits, auth %d)",
			spi, alg ? (int)alg->encr : -1, alg ? alg->key_bits : 0, alg ? (int)alg->auth : -1);
		return NULL;
	}
	need = a.enc_key_len + a.auth_key_len + a.salt_len;
	if (!keymat || keymat_len < need) {
		bw_warn("esp: SPI %08x: KEYMAT is %zu bytes, the algorithm needs %zu", spi,
			keymat ? keymat_len : 0, need);
		return NULL;
	}
	if (spi == 0 || (dir != BW_ESP_IN && dir != BW_ESP_OUT)) {
		bw_warn("esp: SPI %08x: reserved SPI or bad direction", spi);
		return NULL;
	}

	sa = calloc(1, sizeof(*sa));
	if (!sa)
		return NULL;
	sa->dir = dir;
	sa->spi = spi;
	sa->alg = a;

	sa->cipher = EVP_CIPHER_fetch(NULL, a.cipher, NULL);
	sa->cctx = EVP_CIPHER_CTX_new();
	if (!sa->cipher || !sa->cctx || !EVP_CipherInit_ex2(sa->cctx, sa->cipher, keymat, NULL, enc, NULL))
		goto fail;
	if (a.aead) {
		memcpy(sa->salt, keymat + a.enc_key_len, ESP_GCM_SALT_LEN);
	} else {
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)a.digest, 0),
			OSSL_PARAM_construct_end(),
		};

		/* ESP pads itself; the cipher must neither add nor hold back a block. */
		if (!EVP_CIPHER_CTX_set_padding(sa->cctx, 0))
			goto fail;
		sa->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		sa->mctx = sa->mac ? EVP_MAC_CTX_new(sa->mac) : NULL;
		if (!sa->mctx || !EVP_MAC_init(sa->mctx, keymat + a.enc_key_len, a.auth_key_len, params))
			goto fail;
	}
	if (!a.aead && enc) {
		/* RFC 3602 wants unpredictable IVs: encrypt the sequence number under a key
		 * nobody else knows. Unique per packet, and cheaper than the DRBG. */
		uint8_t ivkey[ESP_MAX_KEY];
		int ok;

		sa->ivcipher = EVP_CIPHER_fetch(NULL, a.ivgen, NULL);
		sa->ivctx = EVP_CIPHER_CTX_new();
		ok = sa->ivcipher && sa->ivctx && RAND_bytes(ivkey, (int)a.ivgen_key_len) == 1 &&
		     EVP_EncryptInit_ex2(sa->ivctx, sa->ivcipher, ivkey, NULL, NULL) &&
		     EVP_CIPHER_CTX_set_padding(sa->ivctx, 0);
		OPENSSL_cleanse(ivkey, sizeof(ivkey));
		if (!ok)
			goto fail;
	}
	return sa;

fail:
	bw_err("esp: SPI %08x: OpenSSL could not set up %s", spi, a.cipher);
	bw_esp_sa_free(sa);
	return NULL;
}

void bw_esp_sa_free(struct bw_esp_sa *sa)
{
	if (!sa)
		return;
	/* The _free functions cleanse the key schedules and HMAC pads. */
	EVP_CIPHER_CTX_free(sa->cctx);
	EVP_CIPHER_free(sa->cipher);
	EVP_CIPHER_CTX_free(sa->ivctx);
	EVP_CIPHER_free(sa->ivcipher);
	EVP_MAC_CTX_free(sa->mctx);
	EVP_MAC_free(sa->mac);
	OPENSSL_cleanse(sa, sizeof(*sa));
	free(sa);
}

uint32_t bw_esp_sa_spi(const struct bw_esp_sa *sa)
{
	return sa->spi;
}

const struct bw_esp_counters *bw_esp_sa_counters(const struct bw_esp_sa *sa)
{
	return &sa->ctr;
}

size_t bw_esp_sa_header_len(const struct bw_esp_sa *sa)
{
	return ESP_HDR_LEN + sa->alg.iv_len;
}

static size_t esp_pad_len(const struct bw_esp_sa *sa, size_t len)
{
	size_t b = sa->alg.block;

	return (b - (len + 2) % b) % b;
}

size_t bw_esp_sa_encap_len(const struct bw_esp_sa *sa, size_t len)
{
	return ESP_HDR_LEN + sa->alg.iv_len + len + esp_pad_len(sa, len) + 2 + sa->alg.icv_len;
}

int bw_esp_sa_set_seq(struct bw_esp_sa *sa, uint32_t last_seq)
{
	if (!sa || sa->dir != BW_ESP_OUT)
		return BW_ESP_ERR_INVAL;
	sa->seq_out = last_seq;
	return BW_ESP_OK;
}

int bw_esp_sa_force_next_iv(struct bw_esp_sa *sa, const uint8_t *iv, size_t len)
{
	if (!sa || sa->dir != BW_ESP_OUT || !iv || len != sa->alg.iv_len)
		return BW_ESP_ERR_INVAL;
	memcpy(sa->forced_iv, iv, len);
	sa->iv_forced = true;
	return BW_ESP_OK;
}

/* The explicit IV of outbound packet seq. GCM only needs uniqueness: the 64-bit counter
 * is the sequence number (RFC 4106 3.1). CBC needs unpredictability as well. */
static int esp_make_iv(struct bw_esp_sa *sa, uint32_t seq, uint8_t *iv)
{
	uint8_t blk[ESP_MAX_BLOCK] = { 0 };
	int n = 0;

	if (sa->iv_forced) {
		memcpy(iv, sa->forced_iv, sa->alg.iv_len);
		sa->iv_forced = false;
		return 0;
	}
	if (sa->alg.aead) {
		put_be32(iv, 0);
		put_be32(iv + 4, seq);
		return 0;
	}
	put_be32(blk + sa->alg.block - 4, seq);
	if (!EVP_EncryptUpdate(sa->ivctx, iv, &n, blk, (int)sa->alg.block) || (size_t)n != sa->alg.iv_len)
		return -1;
	return 0;
}

static void esp_gcm_nonce(const struct bw_esp_sa *sa, const uint8_t *iv, uint8_t nonce[12])
{
	memcpy(nonce, sa->salt, ESP_GCM_SALT_LEN);
	memcpy(nonce + ESP_GCM_SALT_LEN, iv, 8);
}

/* HMAC over SPI | seq | IV | ciphertext; the first icv_len bytes are the ICV. */
static int esp_hmac(struct bw_esp_sa *sa, const uint8_t *data, size_t len, uint8_t *mac)
{
	size_t mlen = 0;

	return EVP_MAC_init(sa->mctx, NULL, 0, NULL) && EVP_MAC_update(sa->mctx, data, len) &&
	       EVP_MAC_final(sa->mctx, mac, &mlen, EVP_MAX_MD_SIZE) && mlen >= sa->alg.icv_len;
}

static int esp_out_fail(struct bw_esp_sa *sa, int err)
{
	if (sa)
		sa->ctr.errors++;
	return err;
}

int bw_esp_encap(struct bw_esp_sa *sa, const uint8_t *payload, size_t len, uint8_t next_header,
		 uint8_t *out, size_t out_cap, size_t *out_len)
{
	uint8_t trailer[ESP_MAX_BLOCK + 2];
	uint8_t nonce[12], mac[EVP_MAX_MD_SIZE];
	size_t hdr, pad, ct_len, total;
	uint8_t *iv, *ct;
	int n1 = 0, n2 = 0, n3 = 0;
	uint32_t seq;

	if (!sa || sa->dir != BW_ESP_OUT || !out || !out_len || (len > 0 && !payload) ||
	    (len == 0 && next_header != ESP_NH_NONE))
		return esp_out_fail(sa, BW_ESP_ERR_INVAL);
	if (len > ESP_MAX_PACKET)
		return esp_out_fail(sa, BW_ESP_ERR_SPACE);
	hdr = bw_esp_sa_header_len(sa);
	pad = esp_pad_len(sa, len);
	ct_len = len + pad + 2;
	total = hdr + ct_len + sa->alg.icv_len;
	if (total > out_cap)
		return esp_out_fail(sa, BW_ESP_ERR_SPACE);
	/* RFC 4303 3.3.3: the counter never cycles; 2^32 - 1 is the last number sent. */
	if (sa->seq_out == UINT32_MAX)
		return esp_out_fail(sa, BW_ESP_ERR_SEQ_EXHAUSTED);
	seq = ++sa->seq_out;

	put_be32(out, sa->spi);
	put_be32(out + 4, seq);
	iv = out + ESP_HDR_LEN;
	ct = out + hdr;
	if (esp_make_iv(sa, seq, iv) < 0)
		return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);

	/* RFC 4303 2.4: padding bytes are 1, 2, 3, ... */
	for (size_t i = 0; i < pad; i++)
		trailer[i] = (uint8_t)(i + 1);
	trailer[pad] = (uint8_t)pad;
	trailer[pad + 1] = next_header;

	if (sa->alg.aead) {
		esp_gcm_nonce(sa, iv, nonce);
		if (!EVP_EncryptInit_ex2(sa->cctx, NULL, NULL, nonce, NULL) ||
		    !EVP_EncryptUpdate(sa->cctx, NULL, &n1, out, ESP_HDR_LEN))
			return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);
	} else if (!EVP_EncryptInit_ex2(sa->cctx, NULL, NULL, iv, NULL)) {
		return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);
	}
	n1 = 0;
	/* The payload goes straight from the caller's buffer (or in place) into out; only
	 * its last partial block meets the trailer inside the cipher context. */
	if ((len > 0 && !EVP_EncryptUpdate(sa->cctx, ct, &n1, payload, (int)len)) ||
	    !EVP_EncryptUpdate(sa->cctx, ct + n1, &n2, trailer, (int)(pad + 2)) ||
	    !EVP_EncryptFinal_ex(sa->cctx, ct + n1 + n2, &n3) ||
	    (size_t)n1 + (size_t)n2 + (size_t)n3 != ct_len)
		return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);

	if (sa->alg.aead) {
		if (!EVP_CIPHER_CTX_ctrl(sa->cctx, EVP_CTRL_AEAD_GET_TAG, (int)sa->alg.icv_len, ct + ct_len))
			return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);
	} else {
		if (!esp_hmac(sa, out, hdr + ct_len, mac))
			return esp_out_fail(sa, BW_ESP_ERR_CRYPTO);
		memcpy(ct + ct_len, mac, sa->alg.icv_len);
	}
	sa->ctr.packets++;
	sa->ctr.bytes += len;
	*out_len = total;
	return BW_ESP_OK;
}

/* RFC 4303 3.4.3 / appendix A2: a ring of window bits indexed by seq % window. */
static bool esp_replay_ok(const struct bw_esp_sa *sa, uint32_t seq)
{
	uint32_t bit;

	if (seq == 0)
		return false;
	if (seq > sa->rp_top)
		return true;
	if (sa->rp_top - seq >= BW_ESP_REPLAY_WINDOW)
		return false;
	bit = seq % BW_ESP_REPLAY_WINDOW;
	return !(sa->rp_bits[bit / 64] >> (bit % 64) & 1);
}

static void esp_replay_update(struct bw_esp_sa *sa, uint32_t seq)
{
	uint32_t bit;

	if (seq > sa->rp_top) {
		uint32_t diff = seq - sa->rp_top;

		if (diff >= BW_ESP_REPLAY_WINDOW) {
			memset(sa->rp_bits, 0, sizeof(sa->rp_bits));
		} else {
			/* Forget the numbers that slide in from the right. */
			for (uint32_t i = 1; i <= diff; i++) {
				bit = (sa->rp_top + i) % BW_ESP_REPLAY_WINDOW;
				sa->rp_bits[bit / 64] &= ~((uint64_t)1 << (bit % 64));
			}
		}
		sa->rp_top = seq;
	}
	bit = seq % BW_ESP_REPLAY_WINDOW;
	sa->rp_bits[bit / 64] |= (uint64_t)1 << (bit % 64);
}

static int esp_in_fail(struct bw_esp_sa *sa, int err)
{
	sa->ctr.errors++;
	if (err == BW_ESP_ERR_REPLAY)
		sa->ctr.replayed++;
	else if (err == BW_ESP_ERR_ICV)
		sa->ctr.auth_failed++;
	return err;
}

int bw_esp_decap(struct bw_esp_sa *sa, const uint8_t *pkt, size_t len,
		 uint8_t *out, size_t out_cap, size_t *out_len, uint8_t *next_header)
{
	uint8_t tail[ESP_TAIL_MAX];
	uint8_t nonce[12], mac[EVP_MAX_MD_SIZE], tag[16];
	const struct esp_alg *a;
	size_t hdr, ct_len, head, rest, padlen, plen;
	const uint8_t *ct;
	int n1 = 0, n2 = 0, n3 = 0, err;
	uint8_t bad;
	uint32_t seq;

	if (!sa)
		return BW_ESP_ERR_INVAL;
	if (sa->dir != BW_ESP_IN || !out_len || !next_header || (!out && out_cap > 0))
		return esp_in_fail(sa, BW_ESP_ERR_INVAL);
	a = &sa->alg;
	hdr = ESP_HDR_LEN + a->iv_len;
	/* Bounds before anything is read: header, IV, one aligned unit, ICV. */
	if (!pkt || len < hdr + a->block + a->icv_len)
		return esp_in_fail(sa, BW_ESP_ERR_SHORT);
	if (len > ESP_MAX_PACKET)
		return esp_in_fail(sa, BW_ESP_ERR_INVAL);
	ct_len = len - hdr - a->icv_len;
	if (ct_len % a->block != 0)
		return esp_in_fail(sa, BW_ESP_ERR_SHORT);
	if (get_be32(pkt) != sa->spi)
		return esp_in_fail(sa, BW_ESP_ERR_SPI);
	seq = get_be32(pkt + 4);
	/* Cheap rejection of replays before spending the ICV (RFC 4303 3.4.3). */
	if (!esp_replay_ok(sa, seq))
		return esp_in_fail(sa, BW_ESP_ERR_REPLAY);
	ct = pkt + hdr;

	if (!a->aead) {
		if (!esp_hmac(sa, pkt, hdr + ct_len, mac))
			return esp_in_fail(sa, BW_ESP_ERR_CRYPTO);
		if (CRYPTO_memcmp(mac, ct + ct_len, a->icv_len) != 0)
			return esp_in_fail(sa, BW_ESP_ERR_ICV);
	}

	/* Decrypt as much as fits into out, the rest into tail. */
	head = ct_len <= out_cap ? ct_len : out_cap - out_cap % a->block;
	rest = ct_len - head;
	if (rest > sizeof(tail))
		return esp_in_fail(sa, BW_ESP_ERR_SPACE);

	if (a->aead) {
		esp_gcm_nonce(sa, pkt + ESP_HDR_LEN, nonce);
		memcpy(tag, ct + ct_len, a->icv_len);
		if (!EVP_DecryptInit_ex2(sa->cctx, NULL, NULL, nonce, NULL) ||
		    !EVP_DecryptUpdate(sa->cctx, NULL, &n1, pkt, ESP_HDR_LEN) ||
		    !EVP_CIPHER_CTX_ctrl(sa->cctx, EVP_CTRL_AEAD_SET_TAG, (int)a->icv_len, tag))
			return esp_in_fail(sa, BW_ESP_ERR_CRYPTO);
	} else if (!EVP_DecryptInit_ex2(sa->cctx, NULL, NULL, pkt + ESP_HDR_LEN, NULL)) {
		return esp_in_fail(sa, BW_ESP_ERR_CRYPTO);
	}
	n1 = 0;
	if ((head > 0 && !EVP_DecryptUpdate(sa->cctx, out, &n1, ct, (int)head)) ||
	    (rest > 0 && !EVP_DecryptUpdate(sa->cctx, tail, &n2, ct + head, (int)rest))) {
		err = BW_ESP_ERR_CRYPTO;
		goto wipe;
	}
	if (a->aead && !EVP_DecryptFinal_ex(sa->cctx, tail + n2, &n3)) {
		/* The GCM tag is checked by OpenSSL with CRYPTO_memcmp. */
		err = BW_ESP_ERR_ICV;
		goto wipe;
	}
	if ((size_t)n1 != head || (size_t)n2 != rest || n3 != 0) {
		err = BW_ESP_ERR_CRYPTO;
		goto wipe;
	}

	/* Authentic: only now may the window move. */
	esp_replay_update(sa, seq);

#define PT(i) ((i) < head ? out[(i)] : tail[(i) - head])
	padlen = PT(ct_len - 2);
	*next_header = PT(ct_len - 1);
	if (padlen + 2 > ct_len) {
		err = BW_ESP_ERR_PAD;
		goto wipe;
	}
	plen = ct_len - 2 - padlen;
	bad = 0;
	for (size_t i = 0; i < padlen; i++)
		bad |= PT(plen + i) ^ (uint8_t)(i + 1);
#undef PT
	if (bad) {
		err = BW_ESP_ERR_PAD;
		goto wipe;
	}
	if (plen > out_cap) {
		err = BW_ESP_ERR_SPACE;
		goto wipe;
	}
	if (plen > head)
		memcpy(out + head, tail, plen - head);
	if (rest > 0)
		OPENSSL_cleanse(tail, rest);
	sa->ctr.packets++;
	sa->ctr.bytes += plen;
	*out_len = plen;
	return BW_ESP_OK;

wipe:
	/* Nothing unauthenticated or half-checked is left for the caller to use. */
	if (head > 0)
		OPENSSL_cleanse(out, head);
	OPENSSL_cleanse(tail, sizeof(tail));
	return esp_in_fail(sa, err);
}

uint32_t bw_esp_peek_spi(const uint8_t *pkt, size_t len)
{
	if (!pkt || len < 4)
		return 0;
	return get_be32(pkt);
}

const char *bw_esp_strerror(int err)
{
	switch (err) {
	case BW_ESP_OK: return "success";
	case BW_ESP_ERR_SHORT: return "packet too short or not aligned to the cipher block";
	case BW_ESP_ERR_SPI: return "SPI does not belong to this SA";
	case BW_ESP_ERR_REPLAY: return "sequence number replayed or left of the replay window";
	case BW_ESP_ERR_ICV: return "integrity check failed";
	case BW_ESP_ERR_PAD: return "bad ESP padding";
	case BW_ESP_ERR_SPACE: return "output buffer too small";
	case BW_ESP_ERR_CRYPTO: return "OpenSSL failed";
	case BW_ESP_ERR_SEQ_EXHAUSTED: return "sequence numbers exhausted, the SA must be rekeyed";
	case BW_ESP_ERR_INVAL: return "invalid argument for this SA";
	default: return "unknown ESP error";
	}
}

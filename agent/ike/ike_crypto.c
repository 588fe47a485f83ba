/* IKEv1 cryptography on top of OpenSSL 3 (EVP, EVP_MAC, EVP_PKEY with OSSL_PARAM).
 * The only place that knows how RFC 2409 turns nonces, cookies and g^xy into keys. */
#include "ike_crypto.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/param_build.h>
#include <openssl/rand.h>

/* ---- randomness, comparison ---------------------------------------------------- */

int bw_random(void *buf, size_t len)
{
	if (len == 0)
		return 0;
	if (len > INT32_MAX)
		return -1;
	return RAND_bytes(buf, (int)len) == 1 ? 0 : -1;
}

int bw_crypto_equal(const void *a, const void *b, size_t len)
{
	return CRYPTO_memcmp(a, b, len) == 0;
}

/* ---- hashes and PRF ------------------------------------------------------------ */

static const char *hash_ossl_name(enum bw_hash h)
{
	switch (h) {
	case BW_HASH_MD5: return "MD5";
	case BW_HASH_SHA1: return "SHA1";
	case BW_HASH_SHA256: return "SHA2-256";
	case BW_HASH_SHA384: return "SHA2-384";
	case BW_HASH_SHA512: return "SHA2-512";
	}
	return NULL;
}

size_t bw_hash_len(enum bw_hash h)
{
	switch (h) {
	case BW_HASH_MD5: return 16;
	case BW_HASH_SHA1: return 20;
	case BW_HASH_SHA256: return 32;
	case BW_HASH_SHA384: return 48;
	case BW_HASH_SHA512: return 64;
	}
	return 0;
}

const char *bw_hash_name(enum bw_hash h)
{
	switch (h) {
	case BW_HASH_MD5: return "md5";
	case BW_HASH_SHA1: return "sha1";
	case BW_HASH_SHA256: return "sha256";
	case BW_HASH_SHA384: return "sha384";
	case BW_HASH_SHA512: return "sha512";
	}
	return "unknown";
}

int bw_hash_iov(enum bw_hash h, const struct bw_iov *iov, size_t n, uint8_t *out)
{
	const char *name = hash_ossl_name(h);
	EVP_MD *md = NULL;
	EVP_MD_CTX *ctx = NULL;
	unsigned int outlen = 0;
	int rc = -1;

	if (!name)
		return -1;
	md = EVP_MD_fetch(NULL, name, NULL);
	ctx = EVP_MD_CTX_new();
	if (!md || !ctx || !EVP_DigestInit_ex2(ctx, md, NULL))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (iov[i].len && !EVP_DigestUpdate(ctx, iov[i].base, iov[i].len))
			goto out;
	if (EVP_DigestFinal_ex(ctx, out, &outlen) && outlen == bw_hash_len(h))
		rc = 0;
out:
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(md);
	return rc;
}

int bw_prf_iov(enum bw_hash h, const uint8_t *key, size_t keylen,
	       const struct bw_iov *iov, size_t n, uint8_t *out)
{
	static const uint8_t empty_key[1];
	const char *name = hash_ossl_name(h);
	EVP_MAC *mac = NULL;
	EVP_MAC_CTX *ctx = NULL;
	OSSL_PARAM params[2];
	size_t outlen = 0;
	int rc = -1;

	if (!name)
		return -1;
	/* HMAC refuses a NULL key, but a zero-length one is legal. */
	if (keylen == 0)
		key = empty_key;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)name, 0);
	params[1] = OSSL_PARAM_construct_end();
	mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (!mac || !(ctx = EVP_MAC_CTX_new(mac)) || !EVP_MAC_init(ctx, key, keylen, params))
		goto out;
	for (size_t i = 0; i < n; i++)
		if (iov[i].len && !EVP_MAC_update(ctx, iov[i].base, iov[i].len))
			goto out;
	if (EVP_MAC_final(ctx, out, &outlen, BW_HASH_MAX) && outlen == bw_hash_len(h))
		rc = 0;
out:
	EVP_MAC_CTX_free(ctx);	/* clears the keyed state */
	EVP_MAC_free(mac);
	return rc;
}

int bw_prf(enum bw_hash h, const uint8_t *key, size_t keylen,
	   const uint8_t *data, size_t datalen, uint8_t *out)
{
	struct bw_iov iov = { data, datalen };

	return bw_prf_iov(h, key, keylen, &iov, 1, out);
}

/* ---- Diffie-Hellman ------------------------------------------------------------ */

struct bw_dh {
	enum bw_dh_group group;
	EVP_PKEY *key;
};

struct dh_info {
	enum bw_dh_group group;
	int ecp;
	size_t len;		/* prime bytes (MODP) or field bytes (ECP) */
	BIGNUM *(*prime)(BIGNUM *);
	const char *curve;
};

static const struct dh_info dh_groups[] = {
	{ BW_DH_MODP1024, 0, 128, BN_get_rfc2409_prime_1024, NULL },
	{ BW_DH_MODP1536, 0, 192, BN_get_rfc3526_prime_1536, NULL },
	{ BW_DH_MODP2048, 0, 256, BN_get_rfc3526_prime_2048, NULL },
	{ BW_DH_MODP3072, 0, 384, BN_get_rfc3526_prime_3072, NULL },
	{ BW_DH_MODP4096, 0, 512, BN_get_rfc3526_prime_4096, NULL },
	{ BW_DH_MODP6144, 0, 768, BN_get_rfc3526_prime_6144, NULL },
	{ BW_DH_MODP8192, 0, 1024, BN_get_rfc3526_prime_8192, NULL },
	{ BW_DH_ECP256, 1, 32, NULL, "prime256v1" },
	{ BW_DH_ECP384, 1, 48, NULL, "secp384r1" },
	{ BW_DH_ECP521, 1, 66, NULL, "secp521r1" },
};

static const struct dh_info *dh_lookup(enum bw_dh_group g)
{
	for (size_t i = 0; i < sizeof(dh_groups) / sizeof(dh_groups[0]); i++)
		if (dh_groups[i].group == g)
			return &dh_groups[i];
	return NULL;
}

size_t bw_dh_public_len(enum bw_dh_group g)
{
	const struct dh_info *gi = dh_lookup(g);

	return gi ? (gi->ecp ? 2 * gi->len : gi->len) : 0;
}

size_t bw_dh_secret_len(enum bw_dh_group g)
{
	const struct dh_info *gi = dh_lookup(g);

	return gi ? gi->len : 0;
}

enum bw_dh_group bw_dh_group(const struct bw_dh *dh)
{
	return dh->group;
}

static const struct dh_info *dh_check_group(enum bw_dh_group g, char *err, size_t errlen)
{
	const struct dh_info *gi = dh_lookup(g);

	if (g == BW_DH_MODP768)
		snprintf(err, errlen, "DH group 1 (modp768) is insecure and not supported; "
			 "use modp2048 or stronger");
	else if (!gi)
		snprintf(err, errlen, "DH group %d is not supported; use modp2048 or stronger",
			 (int)g);
	return gi;
}

/* Builds a "DH" key from the group's p and g, plus the public and/or private value. */
static EVP_PKEY *modp_fromdata(const struct dh_info *gi, const BIGNUM *pub,
			       const BIGNUM *priv, int selection)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	BIGNUM *p = gi->prime(NULL), *g = BN_new();

	if (!bld || !p || !g || !BN_set_word(g, 2) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_P, p) ||
	    !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_FFC_G, g) ||
	    (pub && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub)) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, selection, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);	/* a BN_secure_new() private value lives in secure heap and is cleared */
	OSSL_PARAM_BLD_free(bld);
	BN_free(p);
	BN_free(g);
	return pkey;
}

static EVP_PKEY *modp_generate(const struct dh_info *gi)
{
	EVP_PKEY *params = modp_fromdata(gi, NULL, NULL, EVP_PKEY_KEY_PARAMETERS);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *key = NULL;

	if (params && (ctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL)) &&
	    EVP_PKEY_keygen_init(ctx) > 0 && EVP_PKEY_generate(ctx, &key) <= 0)
		key = NULL;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(params);
	return key;
}

static EVP_PKEY *modp_with_private(const struct dh_info *gi, const uint8_t *priv, size_t len)
{
	BIGNUM *x = BN_secure_new(), *y = BN_new(), *p = gi->prime(NULL), *g = BN_new();
	BN_CTX *bnctx = BN_CTX_new();
	EVP_PKEY *key = NULL;

	if (x && y && p && g && bnctx && BN_bin2bn(priv, (int)len, x) && BN_set_word(g, 2)) {
		BN_set_flags(x, BN_FLG_CONSTTIME);
		if (!BN_is_zero(x) && BN_cmp(x, p) < 0 && BN_mod_exp(y, g, x, p, bnctx))
			key = modp_fromdata(gi, y, x, EVP_PKEY_KEYPAIR);
	}
	BN_CTX_free(bnctx);
	BN_clear_free(x);
	BN_free(y);
	BN_free(p);
	BN_free(g);
	return key;
}

/* Builds an "EC" key on the curve from an uncompressed point and/or a private scalar.
 * OpenSSL decodes the point with EC_POINT_oct2point, which refuses points off the curve. */
static EVP_PKEY *ecp_fromdata(const struct dh_info *gi, const uint8_t *point, size_t point_len,
			      const BIGNUM *priv, int selection)
{
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;

	if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, gi->curve, 0) ||
	    (point && !OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, point_len)) ||
	    (priv && !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PRIV_KEY, priv)) ||
	    !(params = OSSL_PARAM_BLD_to_param(bld)) ||
	    !(ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) ||
	    EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &pkey, selection, params) <= 0)
		pkey = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	return pkey;
}

static EVP_PKEY *ecp_with_private(const struct dh_info *gi, const uint8_t *priv, size_t len)
{
	EC_GROUP *group = EC_GROUP_new_by_curve_name(OBJ_sn2nid(gi->curve));
	EC_POINT *pt = group ? EC_POINT_new(group) : NULL;
	BIGNUM *d = BN_secure_new();
	BN_CTX *bnctx = BN_CTX_new();
	uint8_t point[1 + 2 * 66];
	size_t n = 0;
	EVP_PKEY *key = NULL;

	if (pt && d && bnctx && BN_bin2bn(priv, (int)len, d) && !BN_is_zero(d) &&
	    BN_cmp(d, EC_GROUP_get0_order(group)) < 0 &&
	    EC_POINT_mul(group, pt, d, NULL, NULL, bnctx))
		n = EC_POINT_point2oct(group, pt, POINT_CONVERSION_UNCOMPRESSED, point,
				       sizeof(point), bnctx);
	if (n == 1 + 2 * gi->len)
		key = ecp_fromdata(gi, point, n, d, EVP_PKEY_KEYPAIR);
	BN_CTX_free(bnctx);
	BN_clear_free(d);
	EC_POINT_free(pt);
	EC_GROUP_free(group);
	return key;
}

static struct bw_dh *dh_wrap(enum bw_dh_group g, EVP_PKEY *key, char *err, size_t errlen)
{
	struct bw_dh *dh;

	if (!key) {
		snprintf(err, errlen, "Could not create a DH group %d key pair; "
			 "check the OpenSSL installation", (int)g);
		return NULL;
	}
	dh = calloc(1, sizeof(*dh));
	if (!dh) {
		EVP_PKEY_free(key);
		snprintf(err, errlen, "Out of memory creating a DH key pair");
		return NULL;
	}
	dh->group = g;
	dh->key = key;
	return dh;
}

struct bw_dh *bw_dh_new(enum bw_dh_group g, char *err, size_t errlen)
{
	const struct dh_info *gi = dh_check_group(g, err, errlen);

	if (!gi)
		return NULL;
	return dh_wrap(g, gi->ecp ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", gi->curve)
			       : modp_generate(gi), err, errlen);
}

struct bw_dh *bw_dh_new_with_private(enum bw_dh_group g, const uint8_t *priv, size_t priv_len,
				     char *err, size_t errlen)
{
	const struct dh_info *gi = dh_check_group(g, err, errlen);

	if (!gi)
		return NULL;
	if (priv_len == 0 || priv_len > gi->len) {
		snprintf(err, errlen, "DH private value of %zu bytes does not fit group %d",
			 priv_len, (int)g);
		return NULL;
	}
	return dh_wrap(g, gi->ecp ? ecp_with_private(gi, priv, priv_len)
			       : modp_with_private(gi, priv, priv_len), err, errlen);
}

void bw_dh_free(struct bw_dh *dh)
{
	if (!dh)
		return;
	EVP_PKEY_free(dh->key);	/* OpenSSL clears the private value */
	free(dh);
}

int bw_dh_public(const struct bw_dh *dh, uint8_t *out, size_t outlen)
{
	const struct dh_info *gi = dh_lookup(dh->group);
	size_t need = bw_dh_public_len(dh->group);
	int rc = -1;

	if (!gi || outlen < need)
		return -1;
	if (gi->ecp) {
		uint8_t point[1 + 2 * 66];
		size_t n = 0;

		/* 0x04 | x | y; the KE payload drops the point-format byte (RFC 5903 7). */
		if (EVP_PKEY_get_octet_string_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, point,
						    sizeof(point), &n) &&
		    n == 1 + need && point[0] == 0x04) {
			memcpy(out, point + 1, need);
			rc = 0;
		}
	} else {
		BIGNUM *y = NULL;

		if (EVP_PKEY_get_bn_param(dh->key, OSSL_PKEY_PARAM_PUB_KEY, &y) &&
		    BN_bn2binpad(y, out, (int)need) == (int)need)
			rc = 0;
		BN_free(y);
	}
	return rc;
}

/* Checks 1 < y < p-1 and builds the peer key; NULL means the value is refused. */
static EVP_PKEY *modp_peer(const struct dh_info *gi, const uint8_t *peer, size_t len)
{
	BIGNUM *y = BN_bin2bn(peer, (int)len, NULL), *p = gi->prime(NULL), *pm1 = BN_new();
	EVP_PKEY *key = NULL;

	if (y && p && pm1 && BN_sub(pm1, p, BN_value_one()) &&
	    BN_cmp(y, BN_value_one()) > 0 && BN_cmp(y, pm1) < 0)
		key = modp_fromdata(gi, y, NULL, EVP_PKEY_PUBLIC_KEY);
	BN_free(y);
	BN_free(p);
	BN_free(pm1);
	return key;
}

static EVP_PKEY *ecp_peer(const struct dh_info *gi, const uint8_t *peer, size_t len)
{
	uint8_t point[1 + 2 * 66];

	point[0] = 0x04;
	memcpy(point + 1, peer, len);
	return ecp_fromdata(gi, point, 1 + len, NULL, EVP_PKEY_PUBLIC_KEY);
}

int bw_dh_compute(struct bw_dh *dh, const uint8_t *peer, size_t peer_len,
		  uint8_t *secret, size_t *secret_len)
{
	const struct dh_info *gi = dh_lookup(dh->group);
	EVP_PKEY *peer_key = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t need, len;
	int rc = -EIO;

	if (!gi)
		return -EIO;
	need = gi->len;
	if (peer_len != bw_dh_public_len(dh->group))
		return -EINVAL;
	if (*secret_len < need)
		return -EIO;
	peer_key = gi->ecp ? ecp_peer(gi, peer, peer_len) : modp_peer(gi, peer, peer_len);
	if (!peer_key)
		return -EINVAL;
	ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->key, NULL);
	if (!ctx || EVP_PKEY_derive_init(ctx) <= 0)
		goto out;
	/* IKE wants g^xy as wide as the prime; OpenSSL strips leading zeros by default. */
	if (!gi->ecp) {
		unsigned int pad = 1;
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_uint(OSSL_EXCHANGE_PARAM_PAD, &pad),
			OSSL_PARAM_construct_end(),
		};

		if (EVP_PKEY_CTX_set_params(ctx, params) <= 0)
			goto out;
	}
	/* Runs OpenSSL's public-key check too (subgroup membership for the MODP groups it
	 * knows, point validity for ECP). */
	if (EVP_PKEY_derive_set_peer(ctx, peer_key) <= 0) {
		rc = -EINVAL;
		goto out;
	}
	len = *secret_len;
	if (EVP_PKEY_derive(ctx, secret, &len) <= 0)
		goto out;
	if (len != need) {
		OPENSSL_cleanse(secret, len);
		goto out;
	}
	*secret_len = len;
	rc = 0;
out:
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(peer_key);
	return rc;
}

/* ---- phase 1 ------------------------------------------------------------------- */

int bw_ike_skeyid_psk(enum bw_hash h, const uint8_t *psk, size_t psk_len,
		      const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
		      uint8_t *skeyid)
{
	const struct bw_iov iov[] = { { ni, ni_len }, { nr, nr_len } };

	return bw_prf_iov(h, psk, psk_len, iov, 2, skeyid);
}

int bw_ike_skeyid_sig(enum bw_hash h, const uint8_t *ni, size_t ni_len,
		      const uint8_t *nr, size_t nr_len, const uint8_t *g_xy, size_t g_xy_len,
		      uint8_t *skeyid)
{
	uint8_t key[2 * 256];	/* nonces are at most 256 bytes each (RFC 2409 5) */
	int rc;

	if (ni_len > 256 || nr_len > 256)
		return -1;
	memcpy(key, ni, ni_len);
	memcpy(key + ni_len, nr, nr_len);
	rc = bw_prf(h, key, ni_len + nr_len, g_xy, g_xy_len, skeyid);
	OPENSSL_cleanse(key, sizeof(key));
	return rc;
}

int bw_ike_skeyid_derive(enum bw_hash h, const uint8_t *skeyid,
			 const uint8_t *g_xy, size_t g_xy_len,
			 const uint8_t cky_i[BW_IKE_COOKIE_LEN], const uint8_t cky_r[BW_IKE_COOKIE_LEN],
			 uint8_t *skeyid_d, uint8_t *skeyid_a, uint8_t *skeyid_e)
{
	size_t hl = bw_hash_len(h);
	uint8_t n = 0;
	/* iov[0] carries the previous SKEYID_x and is empty for SKEYID_d. */
	struct bw_iov iov[] = {
		{ NULL, 0 }, { g_xy, g_xy_len }, { cky_i, BW_IKE_COOKIE_LEN },
		{ cky_r, BW_IKE_COOKIE_LEN }, { &n, 1 },
	};

	if (!hl || bw_prf_iov(h, skeyid, hl, iov, 5, skeyid_d))
		return -1;
	n = 1;
	iov[0] = (struct bw_iov){ skeyid_d, hl };
	if (bw_prf_iov(h, skeyid, hl, iov, 5, skeyid_a))
		return -1;
	n = 2;
	iov[0] = (struct bw_iov){ skeyid_a, hl };
	return bw_prf_iov(h, skeyid, hl, iov, 5, skeyid_e);
}

int bw_ike_hash_i(enum bw_hash h, const uint8_t *skeyid, const struct bw_ike_auth_data *d,
		  uint8_t *out)
{
	const struct bw_iov iov[] = {
		{ d->g_xi, d->g_xi_len }, { d->g_xr, d->g_xr_len },
		{ d->cky_i, BW_IKE_COOKIE_LEN }, { d->cky_r, BW_IKE_COOKIE_LEN },
		{ d->sai_b, d->sai_b_len }, { d->idii_b, d->idii_b_len },
	};

	return bw_prf_iov(h, skeyid, bw_hash_len(h), iov, 6, out);
}

int bw_ike_hash_r(enum bw_hash h, const uint8_t *skeyid, const struct bw_ike_auth_data *d,
		  uint8_t *out)
{
	const struct bw_iov iov[] = {
		{ d->g_xr, d->g_xr_len }, { d->g_xi, d->g_xi_len },
		{ d->cky_r, BW_IKE_COOKIE_LEN }, { d->cky_i, BW_IKE_COOKIE_LEN },
		{ d->sai_b, d->sai_b_len }, { d->idir_b, d->idir_b_len },
	};

	return bw_prf_iov(h, skeyid, bw_hash_len(h), iov, 6, out);
}

/* ---- phase-1 cipher ------------------------------------------------------------ */

size_t bw_ike_block_size(enum bw_p1_encr e)
{
	switch (e) {
	case BW_P1_ENCR_3DES: return 8;
	case BW_P1_ENCR_AES_CBC: return 16;
	}
	return 0;
}

size_t bw_ike_key_len(enum bw_p1_encr e, unsigned key_bits)
{
	switch (e) {
	case BW_P1_ENCR_3DES:
		return key_bits == 0 || key_bits == 192 ? 24 : 0;
	case BW_P1_ENCR_AES_CBC:
		if (key_bits == 0)
			return 16;
		return key_bits == 128 || key_bits == 192 || key_bits == 256 ? key_bits / 8 : 0;
	}
	return 0;
}

int bw_ike_enc_key(enum bw_hash h, enum bw_p1_encr e, unsigned key_bits,
		   const uint8_t *skeyid_e, uint8_t *key)
{
	size_t hl = bw_hash_len(h), kl = bw_ike_key_len(e, key_bits);
	uint8_t ka[BW_IKE_KEY_MAX + BW_HASH_MAX];
	const uint8_t zero = 0;
	size_t have;
	int rc = -1;

	if (!hl || !kl)
		return -1;
	if (hl >= kl) {
		memcpy(key, skeyid_e, kl);
		return 0;
	}
	/* Appendix B: K1 = prf(SKEYID_e, 0), Kn = prf(SKEYID_e, Kn-1); "0" is one octet. */
	if (bw_prf(h, skeyid_e, hl, &zero, 1, ka))
		goto out;
	for (have = hl; have < kl; have += hl)
		if (bw_prf(h, skeyid_e, hl, ka + have - hl, hl, ka + have))
			goto out;
	memcpy(key, ka, kl);
	rc = 0;
out:
	OPENSSL_cleanse(ka, sizeof(ka));
	return rc;
}

int bw_ike_iv_phase1(enum bw_hash h, const uint8_t *g_xi, size_t g_xi_len,
		     const uint8_t *g_xr, size_t g_xr_len, size_t block_size, uint8_t *iv)
{
	const struct bw_iov iov[] = { { g_xi, g_xi_len }, { g_xr, g_xr_len } };
	uint8_t md[BW_HASH_MAX];

	if (block_size == 0 || block_size > bw_hash_len(h) || bw_hash_iov(h, iov, 2, md))
		return -1;
	memcpy(iv, md, block_size);
	return 0;
}

int bw_ike_iv_msgid(enum bw_hash h, const uint8_t *last_p1_block, size_t block_size,
		    uint32_t msgid, uint8_t *iv)
{
	uint32_t mid = htonl(msgid);
	const struct bw_iov iov[] = { { last_p1_block, block_size }, { &mid, 4 } };
	uint8_t md[BW_HASH_MAX];

	if (block_size == 0 || block_size > bw_hash_len(h) || bw_hash_iov(h, iov, 2, md))
		return -1;
	memcpy(iv, md, block_size);
	return 0;
}

static const char *cipher_name(enum bw_p1_encr e, size_t keylen)
{
	if (e == BW_P1_ENCR_3DES && keylen == 24)
		return "DES-EDE3-CBC";
	if (e == BW_P1_ENCR_AES_CBC) {
		switch (keylen) {
		case 16: return "AES-128-CBC";
		case 24: return "AES-192-CBC";
		case 32: return "AES-256-CBC";
		}
	}
	return NULL;
}

static int ike_cbc(int enc, enum bw_p1_encr e, const uint8_t *key, size_t keylen,
		   uint8_t *iv, uint8_t *buf, size_t len)
{
	const char *name = cipher_name(e, keylen);
	size_t bs = bw_ike_block_size(e);
	uint8_t next_iv[BW_IKE_BLOCK_MAX];
	EVP_CIPHER *cipher = NULL;
	EVP_CIPHER_CTX *ctx = NULL;
	int outl = 0, finl = 0, rc = -1;

	if (!name || len == 0 || len % bs || len > INT32_MAX)
		return -1;
	if (!enc)
		memcpy(next_iv, buf + len - bs, bs);
	cipher = EVP_CIPHER_fetch(NULL, name, NULL);
	ctx = EVP_CIPHER_CTX_new();
	if (!cipher || !ctx || !EVP_CipherInit_ex2(ctx, cipher, key, iv, enc, NULL) ||
	    !EVP_CIPHER_CTX_set_padding(ctx, 0) ||
	    !EVP_CipherUpdate(ctx, buf, &outl, buf, (int)len) ||
	    !EVP_CipherFinal_ex(ctx, buf + outl, &finl) || (size_t)(outl + finl) != len)
		goto out;
	memcpy(iv, enc ? buf + len - bs : next_iv, bs);
	rc = 0;
out:
	EVP_CIPHER_CTX_free(ctx);	/* clears the key schedule */
	EVP_CIPHER_free(cipher);
	return rc;
}

int bw_ike_encrypt(enum bw_p1_encr e, const uint8_t *key, size_t keylen, uint8_t *iv,
		   uint8_t *buf, size_t len)
{
	return ike_cbc(1, e, key, keylen, iv, buf, len);
}

int bw_ike_decrypt(enum bw_p1_encr e, const uint8_t *key, size_t keylen, uint8_t *iv,
		   uint8_t *buf, size_t len)
{
	return ike_cbc(0, e, key, keylen, iv, buf, len);
}

size_t bw_ike_pad_len(size_t len, size_t block)
{
	return block ? block - len % block : 0;
}

/* ---- phase 2 ------------------------------------------------------------------- */

int bw_ike_qm_hash1(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *rest, size_t rest_len, uint8_t *out)
{
	uint32_t mid = htonl(msgid);
	const struct bw_iov iov[] = { { &mid, 4 }, { rest, rest_len } };

	return bw_prf_iov(h, skeyid_a, bw_hash_len(h), iov, 2, out);
}

int bw_ike_qm_hash2(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *ni_b, size_t ni_len, const uint8_t *rest, size_t rest_len,
		    uint8_t *out)
{
	uint32_t mid = htonl(msgid);
	const struct bw_iov iov[] = { { &mid, 4 }, { ni_b, ni_len }, { rest, rest_len } };

	return bw_prf_iov(h, skeyid_a, bw_hash_len(h), iov, 3, out);
}

int bw_ike_qm_hash3(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *ni_b, size_t ni_len, const uint8_t *nr_b, size_t nr_len,
		    uint8_t *out)
{
	const uint8_t zero = 0;
	uint32_t mid = htonl(msgid);
	const struct bw_iov iov[] = {
		{ &zero, 1 }, { &mid, 4 }, { ni_b, ni_len }, { nr_b, nr_len },
	};

	return bw_prf_iov(h, skeyid_a, bw_hash_len(h), iov, 4, out);
}

int bw_ike_keymat(enum bw_hash h, const uint8_t *skeyid_d,
		  const uint8_t *g_qm, size_t g_qm_len, uint8_t protocol, const uint8_t spi[4],
		  const uint8_t *ni_b, size_t ni_len, const uint8_t *nr_b, size_t nr_len,
		  uint8_t *out, size_t outlen)
{
	size_t hl = bw_hash_len(h), done = 0;
	uint8_t k[BW_HASH_MAX];
	/* iov[0] is Kn-1 (empty for K1); iov[1] is g(qm)^xy, empty without PFS. */
	struct bw_iov iov[] = {
		{ NULL, 0 }, { g_qm, g_qm ? g_qm_len : 0 }, { &protocol, 1 }, { spi, 4 },
		{ ni_b, ni_len }, { nr_b, nr_len },
	};
	int rc = -1;

	if (!hl)
		return -1;
	while (done < outlen) {
		size_t take = outlen - done < hl ? outlen - done : hl;

		if (bw_prf_iov(h, skeyid_d, hl, iov, 6, k))
			goto out;
		memcpy(out + done, k, take);
		done += take;
		iov[0] = (struct bw_iov){ k, hl };
	}
	rc = 0;
out:
	OPENSSL_cleanse(k, sizeof(k));
	if (rc)
		OPENSSL_cleanse(out, outlen);
	return rc;
}

/* ---- NAT-D --------------------------------------------------------------------- */

int bw_natd_hash(enum bw_hash h, const uint8_t cky_i[BW_IKE_COOKIE_LEN],
		 const uint8_t cky_r[BW_IKE_COOKIE_LEN], const struct sockaddr *addr,
		 uint8_t *out)
{
	struct bw_iov iov[4] = { { cky_i, BW_IKE_COOKIE_LEN }, { cky_r, BW_IKE_COOKIE_LEN } };
	struct sockaddr_in sin;
	struct sockaddr_in6 sin6;

	/* Copies, so that a caller's sockaddr need not be aligned for its family. */
	if (addr->sa_family == AF_INET) {
		memcpy(&sin, addr, sizeof(sin));
		iov[2] = (struct bw_iov){ &sin.sin_addr, 4 };
		iov[3] = (struct bw_iov){ &sin.sin_port, 2 };
	} else if (addr->sa_family == AF_INET6) {
		memcpy(&sin6, addr, sizeof(sin6));
		iov[2] = (struct bw_iov){ &sin6.sin6_addr, 16 };
		iov[3] = (struct bw_iov){ &sin6.sin6_port, 2 };
	} else {
		return -1;
	}
	return bw_hash_iov(h, iov, 4, out);
}

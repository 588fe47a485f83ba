/* IKEv1 cryptography: hashes and PRFs, Diffie-Hellman, phase-1 key derivation
 * (RFC 2409 section 5 and appendix B), CBC with IKE's IV rules, Quick Mode KEYMAT, NAT-D.
 *
 * Conventions: functions return 0 on success and -1 on failure unless said otherwise.
 * "hash_len" means bw_hash_len() of the negotiated hash; every PRF output, SKEYID and
 * SKEYID_d/a/e is exactly hash_len bytes (at most BW_HASH_MAX). Message IDs are passed
 * in host order and hashed in network order. Nothing here logs key material. */
#ifndef BURROW_IKE_CRYPTO_H
#define BURROW_IKE_CRYPTO_H

#include <stddef.h>
#include <stdint.h>

#include "algs.h"

struct sockaddr;

#define BW_HASH_MAX 64		/* SHA-512 */
#define BW_IKE_BLOCK_MAX 16	/* AES */
#define BW_IKE_KEY_MAX 32	/* AES-256 */
#define BW_IKE_COOKIE_LEN 8
#define BW_DH_PUBLIC_MAX 1024	/* modp8192 */

/* One piece of a message that is hashed without being copied together first. */
struct bw_iov {
	const void *base;
	size_t len;
};

/* Fills buf from OpenSSL's DRBG (nonces, cookies, SPIs, IVs). */
int bw_random(void *buf, size_t len);

/* Constant-time equality, for comparing received hashes with computed ones. */
int bw_crypto_equal(const void *a, const void *b, size_t len);

/* Output size of the hash, 0 when unknown. */
size_t bw_hash_len(enum bw_hash h);
/* "md5", "sha1", "sha256", "sha384", "sha512"; "unknown" otherwise. */
const char *bw_hash_name(enum bw_hash h);

/* Plain hash over the concatenation of n pieces (phase-1 IV, NAT-D). */
int bw_hash_iov(enum bw_hash h, const struct bw_iov *iov, size_t n, uint8_t *out);
/* prf = HMAC with the negotiated hash (RFC 2409 section 4). */
int bw_prf(enum bw_hash h, const uint8_t *key, size_t keylen,
	   const uint8_t *data, size_t datalen, uint8_t *out);
int bw_prf_iov(enum bw_hash h, const uint8_t *key, size_t keylen,
	       const struct bw_iov *iov, size_t n, uint8_t *out);

/* Diffie-Hellman: MODP groups 2, 5, 14-18 and ECP groups 19-21. */
struct bw_dh;

/* Generates a key pair. Refuses group 1 and unknown groups with a one-sentence reason
 * in err; returns NULL then. */
struct bw_dh *bw_dh_new(enum bw_dh_group g, char *err, size_t errlen);
/* Same with a fixed private value (big-endian; MODP exponent or ECP scalar). Meant for
 * known-answer tests; the daemon always uses bw_dh_new(). */
struct bw_dh *bw_dh_new_with_private(enum bw_dh_group g, const uint8_t *priv, size_t priv_len,
				     char *err, size_t errlen);
void bw_dh_free(struct bw_dh *dh);
enum bw_dh_group bw_dh_group(const struct bw_dh *dh);

/* KE payload size: the prime length for MODP, 2 x field size for ECP (x | y, no
 * point-format byte, RFC 5903 section 7); 0 for unsupported groups. */
size_t bw_dh_public_len(enum bw_dh_group g);
/* Shared secret size: the prime length for MODP, the field size for ECP. */
size_t bw_dh_secret_len(enum bw_dh_group g);

/* Writes exactly bw_dh_public_len() bytes; -1 when outlen is smaller. */
int bw_dh_public(const struct bw_dh *dh, uint8_t *out, size_t outlen);
/* Validates the peer's KE data and computes g^xy: MODP left-padded to the prime length,
 * ECP the x coordinate only (RFC 5903 section 7). *secret_len is the capacity on input
 * and the bytes written on output. Returns 0, -EINVAL when the peer value is malformed
 * (wrong length, out of range, not on the curve) or -EIO on an internal failure. */
int bw_dh_compute(struct bw_dh *dh, const uint8_t *peer, size_t peer_len,
		  uint8_t *secret, size_t *secret_len);

/* Phase 1 (RFC 2409 section 5). */
/* SKEYID = prf(pre-shared-key, Ni_b | Nr_b) */
int bw_ike_skeyid_psk(enum bw_hash h, const uint8_t *psk, size_t psk_len,
		      const uint8_t *ni, size_t ni_len, const uint8_t *nr, size_t nr_len,
		      uint8_t *skeyid);
/* SKEYID = prf(Ni_b | Nr_b, g^xy), for signature authentication */
int bw_ike_skeyid_sig(enum bw_hash h, const uint8_t *ni, size_t ni_len,
		      const uint8_t *nr, size_t nr_len, const uint8_t *g_xy, size_t g_xy_len,
		      uint8_t *skeyid);
/* SKEYID_d = prf(SKEYID, g^xy | CKY-I | CKY-R | 0)
 * SKEYID_a = prf(SKEYID, SKEYID_d | g^xy | CKY-I | CKY-R | 1)
 * SKEYID_e = prf(SKEYID, SKEYID_a | g^xy | CKY-I | CKY-R | 2) */
int bw_ike_skeyid_derive(enum bw_hash h, const uint8_t *skeyid,
			 const uint8_t *g_xy, size_t g_xy_len,
			 const uint8_t cky_i[BW_IKE_COOKIE_LEN], const uint8_t cky_r[BW_IKE_COOKIE_LEN],
			 uint8_t *skeyid_d, uint8_t *skeyid_a, uint8_t *skeyid_e);

/* What HASH_I and HASH_R cover. sai_b is the initiator's SA payload body and the ids
 * are ID payload bodies, all without their generic payload headers. */
struct bw_ike_auth_data {
	const uint8_t *g_xi, *g_xr;
	size_t g_xi_len, g_xr_len;
	const uint8_t *cky_i, *cky_r;	/* BW_IKE_COOKIE_LEN each */
	const uint8_t *sai_b;
	size_t sai_b_len;
	const uint8_t *idii_b, *idir_b;
	size_t idii_b_len, idir_b_len;
};
/* HASH_I = prf(SKEYID, g^xi | g^xr | CKY-I | CKY-R | SAi_b | IDii_b) */
int bw_ike_hash_i(enum bw_hash h, const uint8_t *skeyid, const struct bw_ike_auth_data *d,
		  uint8_t *out);
/* HASH_R = prf(SKEYID, g^xr | g^xi | CKY-R | CKY-I | SAi_b | IDir_b) */
int bw_ike_hash_r(enum bw_hash h, const uint8_t *skeyid, const struct bw_ike_auth_data *d,
		  uint8_t *out);

/* Phase-1 cipher (RFC 2409 appendix B). */
size_t bw_ike_block_size(enum bw_p1_encr e);
/* Key size in bytes for key_bits (0 picks the default: 192 for 3DES, 128 for AES);
 * 0 when the combination is invalid. */
size_t bw_ike_key_len(enum bw_p1_encr e, unsigned key_bits);
/* The encryption key from SKEYID_e: its first bytes, or, when SKEYID_e is too short,
 * the first bytes of Ka = K1 | K2 | ... with K1 = prf(SKEYID_e, 0) and
 * Kn = prf(SKEYID_e, Kn-1). Writes bw_ike_key_len(e, key_bits) bytes. */
int bw_ike_enc_key(enum bw_hash h, enum bw_p1_encr e, unsigned key_bits,
		   const uint8_t *skeyid_e, uint8_t *key);

/* Initial phase-1 IV = hash(g^xi | g^xr) truncated to the block size. */
int bw_ike_iv_phase1(enum bw_hash h, const uint8_t *g_xi, size_t g_xi_len,
		     const uint8_t *g_xr, size_t g_xr_len, size_t block_size, uint8_t *iv);
/* IV of a new exchange (Quick Mode, Informational, Transaction) =
 * hash(last phase-1 CBC output block | M-ID) truncated to the block size. */
int bw_ike_iv_msgid(enum bw_hash h, const uint8_t *last_p1_block, size_t block_size,
		    uint32_t msgid, uint8_t *iv);

/* CBC in place without cipher padding; len must be a non-zero multiple of the block
 * size. iv holds the IV on entry and, on return, the last ciphertext block (of the
 * output when encrypting, of the input when decrypting): the next message's IV. */
int bw_ike_encrypt(enum bw_p1_encr e, const uint8_t *key, size_t keylen, uint8_t *iv,
		   uint8_t *buf, size_t len);
int bw_ike_decrypt(enum bw_p1_encr e, const uint8_t *key, size_t keylen, uint8_t *iv,
		   uint8_t *buf, size_t len);

/* Bytes of zero padding to append to len bytes of payloads before encryption: 1..block,
 * so there is always padding. This is what strongSwan sends (encrypted_payload.c,
 * encrypt_v1), and on receipt it parses the payload chain and ignores whatever follows
 * it. Receivers here must do the same and never trust a pad-length byte: RFC 2409 puts
 * the pad count in the last byte, but peers (strongSwan among them) send zeros there. */
size_t bw_ike_pad_len(size_t len, size_t block);

/* Quick Mode and other phase-2 exchanges (RFC 2409 sections 5.5, 5.7, 7). "rest" is
 * the message after the HASH payload, generic payload headers included. */
/* HASH(1) = prf(SKEYID_a, M-ID | rest); also the HASH of Informational and
 * Transaction (Mode Config) exchanges. */
int bw_ike_qm_hash1(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *rest, size_t rest_len, uint8_t *out);
/* HASH(2) = prf(SKEYID_a, M-ID | Ni_b | rest) */
int bw_ike_qm_hash2(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *ni_b, size_t ni_len, const uint8_t *rest, size_t rest_len,
		    uint8_t *out);
/* HASH(3) = prf(SKEYID_a, 0 | M-ID | Ni_b | Nr_b) */
int bw_ike_qm_hash3(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
		    const uint8_t *ni_b, size_t ni_len, const uint8_t *nr_b, size_t nr_len,
		    uint8_t *out);
/* Informational exchange HASH(1) = prf(SKEYID_a, M-ID | N/D payload). */
static inline int bw_ike_info_hash(enum bw_hash h, const uint8_t *skeyid_a, uint32_t msgid,
				   const uint8_t *payloads, size_t len, uint8_t *out)
{
	return bw_ike_qm_hash1(h, skeyid_a, msgid, payloads, len, out);
}

/* KEYMAT for one SA direction: K1 = prf(SKEYID_d, [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b),
 * Kn = prf(SKEYID_d, Kn-1 | [g(qm)^xy |] protocol | SPI | Ni_b | Nr_b), KEYMAT = K1 | K2 | ...
 * truncated to outlen. g_qm is NULL without PFS; protocol 3 is ESP; spi as on the wire. */
int bw_ike_keymat(enum bw_hash h, const uint8_t *skeyid_d,
		  const uint8_t *g_qm, size_t g_qm_len, uint8_t protocol, const uint8_t spi[4],
		  const uint8_t *ni_b, size_t ni_len, const uint8_t *nr_b, size_t nr_len,
		  uint8_t *out, size_t outlen);

/* NAT-D (RFC 3947 section 3.2) = HASH(CKY-I | CKY-R | IP | Port) with the negotiated
 * hash, not the PRF. addr is an AF_INET or AF_INET6 sockaddr. */
int bw_natd_hash(enum bw_hash h, const uint8_t cky_i[BW_IKE_COOKIE_LEN],
		 const uint8_t cky_r[BW_IKE_COOKIE_LEN], const struct sockaddr *addr,
		 uint8_t *out);

#endif

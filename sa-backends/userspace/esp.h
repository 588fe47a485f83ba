/* ESP (RFC 4303) packet transform for the userspace datapath: encapsulation, decapsulation,
 * anti-replay and counters. Pure functions over buffers: no sockets, no TUN, no event loop. */
#ifndef BURROW_ESP_H
#define BURROW_ESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "algs.h"

#define BW_ESP_REPLAY_WINDOW 1024	/* bits; RFC 4303 asks for at least 32, 64 recommended */
#define BW_ESP_MAX_OVERHEAD 80		/* SPI+seq+IV+pad+trailer+ICV upper bound */

enum bw_esp_dir { BW_ESP_IN, BW_ESP_OUT };

/* Results of bw_esp_decap(); negative, distinct, so that the datapath can count each. */
enum bw_esp_err {
	BW_ESP_OK = 0,
	BW_ESP_ERR_SHORT = -1,		/* shorter than header + IV + ICV, or not block aligned */
	BW_ESP_ERR_SPI = -2,		/* SPI is not this SA's */
	BW_ESP_ERR_REPLAY = -3,		/* sequence number seen before or left of the window */
	BW_ESP_ERR_ICV = -4,		/* integrity check failed */
	BW_ESP_ERR_PAD = -5,		/* padding bytes or pad length wrong */
	BW_ESP_ERR_SPACE = -6,		/* output buffer too small */
	BW_ESP_ERR_CRYPTO = -7,		/* OpenSSL failed */
	BW_ESP_ERR_SEQ_EXHAUSTED = -8,	/* outbound sequence number would wrap: rekey */
	BW_ESP_ERR_INVAL = -9,		/* wrong direction for this SA, a packet longer than
					 * 65535, or an empty payload whose next header is
					 * not 59 (no next header) */
};

struct bw_esp_counters {
	uint64_t bytes;		/* inner (plaintext) bytes */
	uint64_t packets;
	uint64_t errors;	/* dropped for any reason (in), failed to send (out) */
	uint64_t replayed;	/* in only */
	uint64_t auth_failed;	/* in only */
};

struct bw_esp_sa;	/* opaque: keys, EVP contexts, sequence state */

/* Creates an SA. keymat is the Quick Mode KEYMAT for this SPI: the encryption key first,
 * then the authentication key (RFC 2409 5.5); for AES-GCM the key then the 4-byte salt
 * (RFC 4106 8.1). Returns NULL when the algorithm is unknown or keymat_len is too short.
 * The SA keeps its own copy of the keys and wipes it in bw_esp_sa_free(). */
struct bw_esp_sa *bw_esp_sa_new(enum bw_esp_dir dir, uint32_t spi, const struct bw_p2_proposal *alg,
				const uint8_t *keymat, size_t keymat_len);
void bw_esp_sa_free(struct bw_esp_sa *sa);

uint32_t bw_esp_sa_spi(const struct bw_esp_sa *sa);
const struct bw_esp_counters *bw_esp_sa_counters(const struct bw_esp_sa *sa);

/* Encapsulates payload (a whole inner IP packet in tunnel mode; the transport payload in
 * transport mode) with next_header (4 = IPv4, 41 = IPv6, or the transport protocol).
 * Writes SPI | seq | IV | ciphertext | ICV to out. Returns BW_ESP_OK or a bw_esp_err. */
int bw_esp_encap(struct bw_esp_sa *sa, const uint8_t *payload, size_t len, uint8_t next_header,
		 uint8_t *out, size_t out_cap, size_t *out_len);

/* Decapsulates an ESP packet (starting at the SPI). Checks the replay window before the
 * ICV and updates it only after the ICV verified (RFC 4303 3.4.3); compares the ICV in
 * constant time; checks the padding. On success writes the payload to out, which must not
 * overlap pkt; out_cap = len is always enough. An empty payload is returned as such: the
 * caller drops it when next_header is 59 (a dummy packet, RFC 4303 2.6). */
int bw_esp_decap(struct bw_esp_sa *sa, const uint8_t *pkt, size_t len,
		 uint8_t *out, size_t out_cap, size_t *out_len, uint8_t *next_header);

/* The SPI of an ESP packet, or 0 when it is too short to hold one. */
uint32_t bw_esp_peek_spi(const uint8_t *pkt, size_t len);

const char *bw_esp_strerror(int err);

/* SPI + sequence number + IV: where the ciphertext starts. A payload placed at
 * out + bw_esp_sa_header_len() is encrypted in place by bw_esp_encap(). */
size_t bw_esp_sa_header_len(const struct bw_esp_sa *sa);

/* Exact length bw_esp_encap() produces for a payload of len bytes. */
size_t bw_esp_sa_encap_len(const struct bw_esp_sa *sa, size_t len);

/* Outbound SA: the sequence number of the last packet sent, so that the next one is
 * last_seq + 1. For tests (sequence exhaustion, known-answer vectors). Returns
 * BW_ESP_ERR_INVAL on an inbound SA. */
int bw_esp_sa_set_seq(struct bw_esp_sa *sa, uint32_t last_seq);

/* Known-answer tests only: the next bw_esp_encap() uses this explicit IV instead of the
 * SA's generator, once. Never on a live SA: a repeated AES-GCM IV gives away the
 * authentication key, a predictable CBC IV enables chosen-plaintext attacks.
 * len must be the algorithm's IV length; returns BW_ESP_ERR_INVAL otherwise. */
int bw_esp_sa_force_next_iv(struct bw_esp_sa *sa, const uint8_t *iv, size_t len);

#endif

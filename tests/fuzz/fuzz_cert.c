/* libFuzzer target for what Main Mode 6 hands the certificate code: a payload chain (the first
 * byte is the first payload type) whose CERT payloads become the gateway's certificates, whose
 * CERTREQ and ID payloads carry DNs, and whose ID and SIG payloads are checked against the
 * certificate. The same bytes, as text, go through the connection file's DN parser. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ike/ike_cert.h"
#include "ike/isakmp.h"

static struct isakmp_payloads pls;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void dn_text_as_config(const uint8_t *data, size_t size)
{
	char text[BW_ID_MAX], err[200], back[512];
	uint8_t der[BW_ID_MAX * 4];
	size_t n = size < sizeof(text) - 1 ? size : sizeof(text) - 1, len;

	memcpy(text, data, n);
	text[n] = '\0';
	if (bw_dn_to_der(text, der, sizeof(der), &len, err, sizeof(err)) != 0)
		return;
	/* A DN that parsed compares equal to itself, and its printed form is a string. */
	check(bw_dn_der_cmp(der, len, der, len) == 0);
	bw_dn_der_text(der, len, back, sizeof(back));
	check(memchr(back, '\0', sizeof(back)) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_cert_peer *peer;
	struct bw_cert_info info;
	char have[400], text[512];
	static const uint8_t hash[48] = { 1, 2, 3 };

	dn_text_as_config(data, size);
	if (size < 1 || isakmp_payloads_parse(data[0], data + 1, size - 1, &pls) != 0)
		return 0;
	peer = bw_cert_peer_new();
	if (!peer)
		return 0;
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_cert c;

		if (pls.p[i].type == ISAKMP_PL_CERT && isakmp_parse_cert(&pls.p[i], &c) == 0) {
			check(c.data + c.len <= data + size);
			if (c.encoding == ISAKMP_CERT_X509_SIG)
				(void)bw_cert_peer_add(peer, c.data, c.len);
		} else if (pls.p[i].type == ISAKMP_PL_CR && isakmp_parse_cr(&pls.p[i], &c) == 0) {
			check(c.data + c.len <= data + size);
			bw_dn_der_text(c.data, c.len, text, sizeof(text));
		}
	}
	bw_cert_peer_info(peer, &info);
	check(memchr(info.subject, '\0', sizeof(info.subject)) != NULL);
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_id id;
		struct isakmp_blob sig;

		if (pls.p[i].type == ISAKMP_PL_ID && isakmp_parse_id(&pls.p[i], &id) == 0) {
			int m = bw_cert_id_match(peer, id.type, id.data, id.len, have, sizeof(have));

			check(m == 0 || m == 1);
			check(memchr(have, '\0', sizeof(have)) != NULL);
			if (id.type == ISAKMP_ID_DER_ASN1_DN)
				bw_dn_der_text(id.data, id.len, text, sizeof(text));
		} else if (pls.p[i].type == ISAKMP_PL_SIG && isakmp_parse_sig(&pls.p[i], &sig) == 0) {
			/* A forged signature over a fixed hash never verifies. */
			check(bw_cert_verify_sig(peer, hash, sizeof(hash), sig.data, sig.len) != 0);
		}
	}
	bw_cert_peer_free(peer);
	return 0;
}

/* Diffie-Hellman tests for agent/ike/ike_crypto.c: group support, KE encodings,
 * known answers (RFC 5903, RFC 5114, strongSwan's MODP vectors) and peer validation. */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include <openssl/bn.h>

#include "ike/ike_crypto.h"
#include "tap.h"
#include "util.h"

static size_t H(uint8_t *out, size_t cap, const char *hex)
{
	char clean[4096];
	size_t n = 0;
	int r;

	for (; *hex && n + 1 < sizeof(clean); hex++)
		if (*hex != ' ' && *hex != '\n' && *hex != '\t')
			clean[n++] = *hex;
	clean[n] = '\0';
	r = bw_unhex(out, cap, clean);
	if (r < 0) {
		tap_diag("bad hex fixture: %.40s...", clean);
		exit(2);
	}
	return (size_t)r;
}

static void test_refusals(void)
{
	char err[160] = "";
	const char *msg = err;
	uint8_t one = 1;

	tap_ok(bw_dh_new(BW_DH_MODP768, err, sizeof(err)) == NULL, "dh_new: group 1 refused");
	tap_is_str(msg, "DH group 1 (modp768) is insecure and not supported; use modp2048 or stronger",
		   "dh_new: group 1 refusal says why and what to use");
	err[0] = '\0';
	tap_ok(bw_dh_new_with_private(BW_DH_MODP768, &one, 1, err, sizeof(err)) == NULL && err[0],
	       "dh_new_with_private: group 1 refused too");
	err[0] = '\0';
	tap_ok(bw_dh_new((enum bw_dh_group)3, err, sizeof(err)) == NULL && strstr(err, "group 3"),
	       "dh_new: EC2N group 3 refused, naming the group");
	tap_ok(bw_dh_new(BW_DH_NONE, err, sizeof(err)) == NULL, "dh_new: group 0 (no PFS) refused");
	tap_ok(bw_dh_new((enum bw_dh_group)22, err, sizeof(err)) == NULL, "dh_new: group 22 refused");
	tap_is_int(bw_dh_public_len(BW_DH_MODP768), 0, "public_len: 0 for group 1");
	bw_dh_free(NULL);
	tap_ok(1, "dh_free: NULL is accepted");
}

struct group_case {
	enum bw_dh_group g;
	size_t pub, secret;
};

static void test_agreement(void)
{
	static const struct group_case groups[] = {
		{ BW_DH_MODP1024, 128, 128 }, { BW_DH_MODP1536, 192, 192 },
		{ BW_DH_MODP2048, 256, 256 }, { BW_DH_MODP3072, 384, 384 },
		{ BW_DH_MODP4096, 512, 512 }, { BW_DH_MODP6144, 768, 768 },
		{ BW_DH_MODP8192, 1024, 1024 }, { BW_DH_ECP256, 64, 32 },
		{ BW_DH_ECP384, 96, 48 }, { BW_DH_ECP521, 132, 66 },
	};

	for (size_t i = 0; i < BW_ARRAY_SIZE(groups); i++) {
		const struct group_case *c = &groups[i];
		static uint8_t pa[BW_DH_PUBLIC_MAX], pb[BW_DH_PUBLIC_MAX];
		static uint8_t sa[BW_DH_PUBLIC_MAX], sb[BW_DH_PUBLIC_MAX], zero[BW_DH_PUBLIC_MAX];
		size_t la = sizeof(sa), lb = sizeof(sb);
		char err[160];
		struct bw_dh *a = bw_dh_new(c->g, err, sizeof(err));
		struct bw_dh *b = bw_dh_new(c->g, err, sizeof(err));
		int ok;

		tap_ok(bw_dh_public_len(c->g) == c->pub && bw_dh_secret_len(c->g) == c->secret,
		       "group %d: KE data is %zu bytes, g^xy %zu bytes", c->g, c->pub, c->secret);
		ok = a && b && bw_dh_group(a) == c->g &&
		     bw_dh_public(a, pa, sizeof(pa)) == 0 && bw_dh_public(b, pb, sizeof(pb)) == 0 &&
		     bw_dh_compute(a, pb, c->pub, sa, &la) == 0 &&
		     bw_dh_compute(b, pa, c->pub, sb, &lb) == 0;
		tap_ok(ok && la == c->secret && lb == c->secret && memcmp(sa, sb, la) == 0 &&
		       memcmp(sa, zero, la) != 0 && memcmp(pa, pb, c->pub) != 0,
		       "group %d: two fresh key pairs agree on a non-zero secret", c->g);
		bw_dh_free(a);
		bw_dh_free(b);
	}
}

struct kat {
	const char *name;
	enum bw_dh_group g;
	const char *i, *r, *gi, *gr, *gir;	/* r may be NULL */
};

/* RFC 5903 section 8 (groups 19, 20), RFC 5114 appendix A.8 (the same P-521 curve,
 * group 21; values as in strongSwan's test_vectors/ecp.c), and strongSwan's generated
 * MODP vectors (test_vectors/modp.c; no MODP vectors are published). */
static const struct kat kats[] = {
	{ "RFC 5903 8.1 ECP-256", BW_DH_ECP256,
	  "C88F01F5 10D9AC3F 70A292DA A2316DE5 44E9AAB8 AFE84049 C62A9C57 862D1433",
	  "C6EF9C5D 78AE012A 011164AC B397CE20 88685D8F 06BF9BE0 B283AB46 476BEE53",
	  "DAD0B653 94221CF9 B051E1FE CA5787D0 98DFE637 FC90B9EF 945D0C37 72581180"
	  "5271A046 1CDB8252 D61F1C45 6FA3E59A B1F45B33 ACCF5F58 389E0577 B8990BB3",
	  "D12DFB52 89C8D4F8 1208B702 70398C34 2296970A 0BCCB74C 736FC755 4494BF63"
	  "56FBF3CA 366CC23E 8157854C 13C58D6A AC23F046 ADA30F83 53E74F33 039872AB",
	  "D6840F6B 42F6EDAF D13116E0 E1256520 2FEF8E9E CE7DCE03 812464D0 4B9442DE" },
	{ "RFC 5903 8.2 ECP-384", BW_DH_ECP384,
	  "099F3C70 34D4A2C6 99884D73 A375A67F 7624EF7C 6B3C0F16 0647B674 14DCE655"
	  "E35B5380 41E649EE 3FAEF896 783AB194",
	  NULL,
	  "667842D7 D180AC2C DE6F74F3 7551F557 55C7645C 20EF73E3 1634FE72 B4C55EE6"
	  "DE3AC808 ACB4BDB4 C88732AE E95F41AA"
	  "9482ED1F C0EEB9CA FC498462 5CCFC23F 65032149 E0E144AD A0241815 35A0F38E"
	  "EB9FCFF3 C2C947DA E69B4C63 4573A81C",
	  "E558DBEF 53EECDE3 D3FCCFC1 AEA08A89 A987475D 12FD950D 83CFA417 32BC509D"
	  "0D1AC43A 0336DEF9 6FDA41D0 774A3571"
	  "DCFBEC7A ACF31964 72169E83 8430367F 66EEBE3C 6E70C416 DD5F0C68 759DD1FF"
	  "F83FA401 42209DFF 5EAAD96D B9E6386C",
	  "11187331 C279962D 93D60424 3FD592CB 9D0A926F 422E4718 7521287E 7156C5C4"
	  "D6031355 69B9E9D0 9CF5D4A2 70F59746" },
	{ "RFC 5114 A.8 ECP-521 (g^xy has a leading zero byte)", BW_DH_ECP521,
	  "0113f82da825735e3d97276683b2b74277bad27335ea71664af2430cc4f33459b9669ee78b3ffb9b"
	  "8683015d344dcbfef6fb9af4c6c470be254516cd3c1a1fb47362",
	  "00cee3480d8645a17d249f2776d28bae616952d1791fdb4b70f7c3378732aa1b22928448bcd1dc24"
	  "96d435b01048066ebe4f72903c361b1a9dc1193dc2c9d0891b96",
	  "01ebb34dd75721abf8adc9dbed17889cbb9765d90a7c60f2cef007bb0f2b26e14881fd4442e689d6"
	  "1cb2dd046ee30e3ffd20f9a45bbdf6413d583a2dbf59924fd35c00f6b632d194c0388e22d8437e55"
	  "8c552ae195adfd153f92d74908351b2f8c4eda94edb0916d1b53c020b5eecaed1a5fc38a233e4830"
	  "587bb2ee3489b3b42a5a86a4",
	  "010ebfafc6e85e08d24bfffcc1a4511db0e634beeb1b6dec8c5939ae44766201af6200430ba97c8a"
	  "c6a0e9f08b33ce7e9feeb5ba4ee5e0d81510c24295b8a08d023500a4a6ec300df9e257b0372b5e7a"
	  "bfef093436719a77887ebb0b18cf8099b9f4212b6e30a1419c18e029d36863cc9d448f4dba4d2a0e"
	  "60711be572915fbd4fef2695",
	  "00cdea89621cfa46b132f9e4cfe2261cde2d4368eb5656634c7cc98c7a00cde54ed1866a0dd3e612"
	  "6c9d2f845daff82ceb1da08f5d87521bb0ebeca77911169c20cc" },
	{ "strongSwan modp1024 (group 2)", BW_DH_MODP1024,
	  "e53c205da0d8e4bfb4174944320fc6e4ea66fe44e3c931ac5da1450aea47ebcf",
	  "7f9af721eb7cd2a900a36e399ebc5c65eecce6629c8e1c5a7ff33293645fd3e3",
	  "66617c9bbe91ee9900d806415b7384ecb0b6b80a39bd5b070396ee32375a8f68376b352b97baf32f"
	  "95c4d18c06ab96bfe3f3752df1e3c55741b6f4244117eebda1015983c6ba008fe89fe51cf4c96925"
	  "92ebf742436c393df61a60ccc64fd7907a6d26267c0f1556230c3e332b2e11d118a6982589793a2f"
	  "6d66b86676bae47a",
	  "7b9010609ebf2c497017458afaab4202885d25de7b5e5ce9b05bd442a3e97b52cea760d7dbcb21dd"
	  "71d80cd4347caa9edfbc2df4c1cdc1669b8ad244eb345b331d875492883df04a3d0b1a8b8927d509"
	  "91fe03e7357eb6bdfce3d8c684c9861bc5ce03962ffb87bf05dabd5a3727994ddee5d3c6ecc58985"
	  "9991b93255761fd5",
	  "95790f5c46ae7ca1a471dd786aa8e444073ecec9695d004620cd7c9d3609a6973c89a23075093563"
	  "8b86d1e65b27b7848881f9013abd036280d1862bb03ca60ba90b70f9ae7edf71ff80f5a7eefbe267"
	  "29b5bbb1bb1feb0d240e53c9d74b4fe9d262b53bd5d8a7383f90f01e359647d04802d74a4f753b29"
	  "4a96503f2605d3f1" },
	{ "strongSwan modp2048 (group 14)", BW_DH_MODP2048,
	  "af3bfd3862caa11774ce2b74840807c1de5cd6a7619bb3a0c7af39eedaa6eb89e2e9c144b3625b27"
	  "31879cb58fa3766d",
	  "77a48e4772e23e284ce4af81399dcd589beb7cefbcc9d196f06dcfdfc3a88e3b4c1c82befec0e64b"
	  "a495ccde329936ce",
	  "1a27c5a7237ae8fe0a71c0af6494faeccdd4a5031d47a1a6b7162dfcdf03bb17b7bb089bd652a5f3"
	  "1b3661bb114d7c48d83d244f46db64870c9c8327f1a830abf531e518dd521a2e94e7061e944209ba"
	  "5331012b3dff00849eaab58c7c7af15265210fbcf0f87b9dd932f8ba4e9a9f91b63294530a1200b8"
	  "8b3a03e1a0c7fd34deec6fad501ede06ce7ec9e291d47b69b3a4b61bb08763b6d46bfbdab97bdece"
	  "a0ff09a872221fb4b6ccca6b5c6faad8eb873b9a2f39b63e62cfadd47607e68e2c290583f7268fb4"
	  "3fc00a7dc8810ecdac1a59bd1b477aaf41cb4b24ada3e5f7b8cb986f1ae476afc7677aa62570a1b1"
	  "838dda26be7863ee2f40b5e538a4e181",
	  "667282318d65cb05cd323c25091e664cc75a3a20c014b2f6389d3b27f5c1e908e0d40ff8552bd587"
	  "752550302285b49f75f8ffaec937fb2e69c8150f88d6508bf0fb1f16e9676f5ecf718f874f3d8de3"
	  "c8688749dbcf1affd4d62ff9ea5d9e3035b2ce4a6eae281c408fc8084ae235d998a037610a8cb48c"
	  "878cd0635fa1369fc90b864c532367384597fdeefdb6742b006adedae2015bc4ce2f9c5451c9636a"
	  "16ed7d10b4e40d825b50aa7633a0e8fb813bebc049f7ff6a71ecfb14e880f509d38b571a809808a4"
	  "96b451b5b5567a3608b01a22e4998355f181b879de262304f29de142ff5e52cc564f3a2d1e84a0c3"
	  "3d8f3da7bf6412b3f018e00d90fa5b94",
	  "26f9e8457cf2d7d56dd819c2a867d7c3a90aa2b944e20b8bded3a5bf91aa1ff81a7ea89d524c365f"
	  "3823510835cd8644c4d5dacf893e610d2c1a140616d1c8c1d35f46de2c5faad9aecec6b677acd984"
	  "098142a8aa0c8542e9ac98b3bc7b577c59b8ec53346e1567a90039ac92b224635ab216731b063539"
	  "25642c330a201ba4b31284a9515860f35e9308f5515a779984fbd9f5ce4177db78d1cb0384b63c73"
	  "9c6d744ad7a700b95a531b29f3b744ed38e69aee67072c45a91cee6b14215e04f27c31358c86dce4"
	  "48d60a223bdc554edaa3e4072ef603a0f4619f8db39cec291c860174155d8abf9e1082931df58ed9"
	  "ee9c1215dd2393de02f5c1767f070e28" },
};

static void check_side(const struct kat *k, const char *side, const char *priv_hex,
		       const char *pub_hex, const char *peer_hex)
{
	uint8_t priv[128], pub[BW_DH_PUBLIC_MAX], peer[BW_DH_PUBLIC_MAX], want[BW_DH_PUBLIC_MAX];
	uint8_t out[BW_DH_PUBLIC_MAX], secret[BW_DH_PUBLIC_MAX];
	size_t pl = H(priv, sizeof(priv), priv_hex), publen = H(pub, sizeof(pub), pub_hex);
	size_t peerlen = H(peer, sizeof(peer), peer_hex), wl = H(want, sizeof(want), k->gir);
	size_t sl = sizeof(secret);
	char err[160] = "";
	struct bw_dh *dh = bw_dh_new_with_private(k->g, priv, pl, err, sizeof(err));

	if (!tap_ok(dh != NULL, "%s: %s key from the fixed private value", k->name, side)) {
		tap_diag("  %s", err);
		return;
	}
	tap_ok(publen == bw_dh_public_len(k->g) && bw_dh_public(dh, out, sizeof(out)) == 0 &&
	       memcmp(out, pub, publen) == 0, "%s: %s KE data matches the vector", k->name, side);
	tap_ok(bw_dh_compute(dh, peer, peerlen, secret, &sl) == 0 && sl == wl &&
	       memcmp(secret, want, wl) == 0, "%s: %s computes the vector's g^xy", k->name, side);
	bw_dh_free(dh);
}

static void test_kats(void)
{
	for (size_t i = 0; i < BW_ARRAY_SIZE(kats); i++) {
		const struct kat *k = &kats[i];

		check_side(k, "initiator", k->i, k->gi, k->gr);
		if (k->r)
			check_side(k, "responder", k->r, k->gr, k->gi);
	}
}

/* g^xy must keep its leading zeros: with x = 8 and the peer value 2 (the generator)
 * the secret is 2^8, a single 0x01 byte in the second-last position. */
static void test_modp_padding(void)
{
	uint8_t x = 8, peer[256] = { 0 }, secret[300], want[256] = { 0 }, pub[256];
	size_t sl = sizeof(secret);
	char err[160];
	struct bw_dh *dh = bw_dh_new_with_private(BW_DH_MODP2048, &x, 1, err, sizeof(err));

	peer[255] = 2;
	want[254] = 1;
	tap_ok(dh && bw_dh_public(dh, pub, sizeof(pub)) == 0 && memcmp(pub, want, 256) == 0,
	       "modp padding: g^8 is sent as 256 bytes with leading zeros");
	tap_ok(dh && bw_dh_compute(dh, peer, 256, secret, &sl) == 0 && sl == 256 &&
	       memcmp(secret, want, 256) == 0,
	       "modp padding: g^xy = 2^8 is left-padded to the 256-byte prime length");
	bw_dh_free(dh);
}

static void put_bn(const BIGNUM *bn, uint8_t *out, size_t len)
{
	if (BN_bn2binpad(bn, out, (int)len) != (int)len) {
		tap_diag("BN_bn2binpad failed");
		exit(2);
	}
}

static void test_modp_invalid_peer(void)
{
	static uint8_t v[257], secret[256], pub[256];
	BIGNUM *p = BN_get_rfc3526_prime_2048(NULL), *t = BN_new();
	size_t sl;
	char err[160];
	struct bw_dh *dh = bw_dh_new(BW_DH_MODP2048, err, sizeof(err)), *other;

	memset(v, 0, sizeof(v));
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 256, secret, &sl), -EINVAL, "modp peer: 0 refused");
	v[255] = 1;
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 256, secret, &sl), -EINVAL, "modp peer: 1 refused");
	BN_sub(t, p, BN_value_one());
	put_bn(t, v, 256);
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 256, secret, &sl), -EINVAL, "modp peer: p-1 refused");
	put_bn(p, v, 256);
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 256, secret, &sl), -EINVAL, "modp peer: p refused");
	memset(v, 0xff, 256);
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 256, secret, &sl), -EINVAL, "modp peer: 2^2048-1 (> p) refused");

	other = bw_dh_new(BW_DH_MODP2048, err, sizeof(err));
	bw_dh_public(other, pub, sizeof(pub));
	memcpy(v + 1, pub, 256);
	v[0] = 0;
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 257, secret, &sl), -EINVAL,
		   "modp peer: a valid value with an extra leading zero (257 bytes) refused");
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, pub + 1, 255, secret, &sl), -EINVAL,
		   "modp peer: 255 bytes refused");
	sl = 255;
	tap_is_int(bw_dh_compute(dh, pub, 256, secret, &sl), -EIO,
		   "modp: a secret buffer shorter than the prime is an internal error");
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, pub, 256, secret, &sl), 0,
		   "modp: the key still works after refused peer values");
	tap_is_int(bw_dh_public(dh, pub, 255), -1, "dh_public: a short output buffer is refused");
	bw_dh_free(other);
	bw_dh_free(dh);
	BN_free(p);
	BN_free(t);
}

static void test_ecp_invalid_peer(void)
{
	uint8_t pub[64], v[65], secret[64];
	size_t sl;
	char err[160];
	struct bw_dh *dh = bw_dh_new(BW_DH_ECP256, err, sizeof(err));
	struct bw_dh *other = bw_dh_new(BW_DH_ECP256, err, sizeof(err));

	bw_dh_public(other, pub, sizeof(pub));
	v[0] = 0x04;
	memcpy(v + 1, pub, 64);
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 65, secret, &sl), -EINVAL,
		   "ecp peer: 0x04 | x | y (SEC 1 form, 65 bytes) refused");
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, pub, 63, secret, &sl), -EINVAL, "ecp peer: 63 bytes refused");
	pub[63] ^= 1;
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, pub, 64, secret, &sl), -EINVAL,
		   "ecp peer: a point off the curve (y changed) refused");
	pub[63] ^= 1;
	memset(v, 0, sizeof(v));
	sl = sizeof(secret);
	tap_is_int(bw_dh_compute(dh, v, 64, secret, &sl), -EINVAL, "ecp peer: all zeros refused");
	sl = 31;
	tap_is_int(bw_dh_compute(dh, pub, 64, secret, &sl), -EIO,
		   "ecp: a secret buffer shorter than the field is an internal error");
	sl = sizeof(secret);
	tap_ok(bw_dh_compute(dh, pub, 64, secret, &sl) == 0 && sl == 32,
	       "ecp: the key still works after refused peer values, g^xy is x only (32 bytes)");
	bw_dh_free(other);
	bw_dh_free(dh);
}

int main(void)
{
	test_refusals();
	test_agreement();
	test_kats();
	test_modp_padding();
	test_modp_invalid_peer();
	test_ecp_invalid_peer();
	return tap_done_testing();
}

/* Parsers and printers for the values inside Burrow's keyfiles: durations, addresses and
 * networks, DH groups and proposals in strongSwan's notation, and the names of enums. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

int bw_duration_parse(const char *s, uint32_t *out_s)
{
	uint64_t v = 0, mult = 1;
	size_t i = 0;

	if (!s || !(s[0] >= '0' && s[0] <= '9'))
		return -1;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		v = v * 10 + (uint64_t)(s[i] - '0');
		if (v > UINT32_MAX)
			return -1;
	}
	switch (s[i]) {
	case '\0':
		break;
	case 's':
		break;
	case 'm':
		mult = 60;
		break;
	case 'h':
		mult = 3600;
		break;
	case 'd':
		mult = 86400;
		break;
	default:
		return -1;
	}
	if (s[i] && s[i + 1])
		return -1;
	if (v * mult > UINT32_MAX)
		return -1;
	*out_s = (uint32_t)(v * mult);
	return 0;
}

/* Parses "ADDR" or "ADDR/PREFIX" without judging host bits. */
static int cidr_parse_raw(const char *s, struct bw_cidr *out)
{
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash;
	struct bw_cidr c = { 0 };
	size_t alen;
	unsigned prefix = 0, maxp;

	if (!s)
		return -1;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(addr))
		return -1;
	memcpy(addr, s, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1) {
		c.family = AF_INET;
		maxp = 32;
	} else if (inet_pton(AF_INET6, addr, c.addr) == 1) {
		c.family = AF_INET6;
		maxp = 128;
	} else {
		return -1;
	}
	if (slash) {
		const char *p = slash + 1;
		size_t digits = strspn(p, "0123456789");

		/* One to three digits and nothing after them; no "+8" or "08". */
		if (digits == 0 || digits > 3 || p[digits] || (digits > 1 && p[0] == '0'))
			return -1;
		for (size_t i = 0; i < digits; i++)
			prefix = prefix * 10 + (unsigned)(p[i] - '0');
		if (prefix > maxp)
			return -1;
	} else {
		prefix = maxp;
	}
	c.prefix = (uint8_t)prefix;
	*out = c;
	return 0;
}

static void cidr_mask(struct bw_cidr *c)
{
	size_t bytes = c->family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < bytes; i++) {
		unsigned keep = c->prefix >= (i + 1) * 8 ? 8 : c->prefix > i * 8 ? c->prefix - i * 8 : 0;

		c->addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

int bw_cidr_parse_err(const char *s, struct bw_cidr *out, char *err, size_t errlen)
{
	struct bw_cidr c, net;
	char want[INET6_ADDRSTRLEN + 8];

	if (cidr_parse_raw(s, &c) != 0) {
		if (err)
			snprintf(err, errlen, "'%.60s' is not an address or network such as "
				 "10.1.0.0/24 or fd00::/64", s ? s : "");
		return -1;
	}
	net = c;
	cidr_mask(&net);
	if (memcmp(net.addr, c.addr, sizeof(c.addr)) != 0) {
		if (err) {
			bw_cidr_format(&net, want, sizeof(want));
			snprintf(err, errlen, "%.60s has host bits set; use the network address %s",
				 s, want);
		}
		return -2;
	}
	*out = c;
	return 0;
}

int bw_cidr_parse(const char *s, struct bw_cidr *out)
{
	return bw_cidr_parse_err(s, out, NULL, 0);
}

int bw_cidr_format(const struct bw_cidr *c, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN];
	unsigned maxp;
	int n;

	if (c->family == AF_INET)
		maxp = 32;
	else if (c->family == AF_INET6)
		maxp = 128;
	else
		return -1;
	if (!inet_ntop(c->family, c->addr, a, sizeof(a)))
		return -1;
	if (c->prefix >= maxp)
		n = snprintf(buf, len, "%s", a);
	else
		n = snprintf(buf, len, "%s/%u", a, c->prefix);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

static const struct {
	const char *name;
	enum bw_dh_group group;
} dh_names[] = {
	{ "none", BW_DH_NONE },
	{ "modp768", BW_DH_MODP768 },
	{ "modp1024", BW_DH_MODP1024 },
	{ "modp1536", BW_DH_MODP1536 },
	{ "modp2048", BW_DH_MODP2048 },
	{ "modp3072", BW_DH_MODP3072 },
	{ "modp4096", BW_DH_MODP4096 },
	{ "modp6144", BW_DH_MODP6144 },
	{ "modp8192", BW_DH_MODP8192 },
	{ "ecp256", BW_DH_ECP256 },
	{ "ecp384", BW_DH_ECP384 },
	{ "ecp521", BW_DH_ECP521 },
};

int bw_dh_group_parse(const char *s, enum bw_dh_group *out)
{
	for (size_t i = 0; i < BW_ARRAY_SIZE(dh_names); i++) {
		if (strcmp(s, dh_names[i].name) != 0)
			continue;
		if (dh_names[i].group == BW_DH_MODP768)
			return -2;
		*out = dh_names[i].group;
		return 0;
	}
	return -1;
}

const char *bw_dh_group_name(enum bw_dh_group g)
{
	for (size_t i = 0; i < BW_ARRAY_SIZE(dh_names); i++)
		if (dh_names[i].group == g)
			return dh_names[i].name;
	return "unknown";
}

#define DH_INSECURE_MSG "group 1 (modp768) is insecure; use modp2048 or stronger"

const char *bw_dh_insecure_msg(void)
{
	return DH_INSECURE_MSG;
}

/* One token of a proposal. GCM keeps its ICV length in icv_bytes. */
enum tok_kind { TOK_ENCR, TOK_INTEG, TOK_DH, TOK_BAD, TOK_INSECURE };

struct tok {
	enum tok_kind kind;
	bool aead;
	uint16_t key_bits;
	bool tdes;
	unsigned icv_bytes;	/* 8, 12 or 16 for GCM */
	enum bw_hash hash;
	enum bw_dh_group dh;
};

static const struct {
	const char *name;
	enum bw_hash hash;
} hash_names[] = {
	{ "md5", BW_HASH_MD5 },
	{ "sha1", BW_HASH_SHA1 },
	{ "sha", BW_HASH_SHA1 },
	{ "sha256", BW_HASH_SHA256 },
	{ "sha2_256", BW_HASH_SHA256 },
	{ "sha384", BW_HASH_SHA384 },
	{ "sha2_384", BW_HASH_SHA384 },
	{ "sha512", BW_HASH_SHA512 },
	{ "sha2_512", BW_HASH_SHA512 },
};

static struct tok classify(const char *t)
{
	struct tok k = { .kind = TOK_BAD };
	const char *rest = NULL;
	int rc;

	if (strcmp(t, "3des") == 0) {
		k.kind = TOK_ENCR;
		k.tdes = true;
		k.key_bits = 192;
		return k;
	}
	if (strncmp(t, "aes", 3) == 0) {
		const char *p = t + 3;

		if (strncmp(p, "128", 3) == 0 || strncmp(p, "192", 3) == 0 ||
		    strncmp(p, "256", 3) == 0) {
			k.key_bits = (uint16_t)((p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0'));
			rest = p + 3;
		} else {
			k.key_bits = 128;	/* "aes" alone is aes128, as in strongSwan */
			rest = p;
		}
		if (*rest == '\0') {
			k.kind = TOK_ENCR;
			return k;
		}
		if (k.key_bits != 128 || rest != p) {
			/* aesNNNgcmX: X is the ICV length in bytes (8, 12, 16) or bits (64, 96, 128). */
			static const struct { const char *s; unsigned icv; } gcm[] = {
				{ "gcm8", 8 }, { "gcm64", 8 }, { "gcm12", 12 }, { "gcm96", 12 },
				{ "gcm16", 16 }, { "gcm128", 16 },
			};

			for (size_t i = 0; i < BW_ARRAY_SIZE(gcm); i++) {
				if (strcmp(rest, gcm[i].s) == 0) {
					k.kind = TOK_ENCR;
					k.aead = true;
					k.icv_bytes = gcm[i].icv;
					return k;
				}
			}
		}
		return k;
	}
	for (size_t i = 0; i < BW_ARRAY_SIZE(hash_names); i++) {
		if (strcmp(t, hash_names[i].name) == 0) {
			k.kind = TOK_INTEG;
			k.hash = hash_names[i].hash;
			return k;
		}
	}
	rc = bw_dh_group_parse(t, &k.dh);
	if (rc == 0 && k.dh != BW_DH_NONE)
		k.kind = TOK_DH;
	else if (rc == -2)
		k.kind = TOK_INSECURE;
	return k;
}

/* Splits "a-b-c" into tokens; the proposal is at most 127 characters. */
static int split_tokens(const char *s, char tok[4][32], size_t *n, const char *what, char *err,
			size_t errlen)
{
	size_t count = 0;
	const char *p = s;

	if (strlen(s) > 127) {
		snprintf(err, errlen, "%s proposal '%.40s...' is too long", what, s);
		return -1;
	}
	for (;;) {
		const char *end = strchr(p, '-');
		size_t len = end ? (size_t)(end - p) : strlen(p);

		if (len == 0) {
			snprintf(err, errlen, "%s proposal '%.60s' has an empty part; write it as "
				 "encryption-integrity-group", what, s);
			return -1;
		}
		if (count == 4 || len >= 32) {
			snprintf(err, errlen, "%s proposal '%.60s' has too many parts; write it as "
				 "encryption-integrity-group", what, s);
			return -1;
		}
		memcpy(tok[count], p, len);
		tok[count][len] = '\0';
		count++;
		if (!end)
			break;
		p = end + 1;
	}
	*n = count;
	return 0;
}

static char errbuf_dummy[1];

/* What a proposal names, one token of each kind at most (has: .kind != TOK_BAD). */
struct proposal_toks {
	struct tok encr, integ, dh;
	char encr_name[32];
};

/* Splits and classifies a proposal; refuses unknown names, insecure groups and two names of
 * one kind (twice_advice says what is allowed). The caller checks what must be present. */
static int proposal_read(const char *s, const char *what, const char *twice_advice, struct proposal_toks *pt,
			 char *err, size_t errlen)
{
	char tok[4][32];
	size_t n;

	pt->encr.kind = pt->integ.kind = pt->dh.kind = TOK_BAD;
	if (split_tokens(s, tok, &n, what, err, errlen) != 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct tok k = classify(tok[i]);
		struct tok *slot = k.kind == TOK_ENCR ? &pt->encr : k.kind == TOK_INTEG ? &pt->integ :
				   k.kind == TOK_DH ? &pt->dh : NULL;

		if (k.kind == TOK_INSECURE) {
			snprintf(err, errlen, DH_INSECURE_MSG);
			return -1;
		}
		if (!slot) {
			snprintf(err, errlen, "unknown algorithm '%s' in %s proposal '%.60s'; "
				 "see docs/configuration.md", tok[i], what, s);
			return -1;
		}
		if (slot->kind != TOK_BAD) {
			snprintf(err, errlen, "%s proposal '%.60s' names two algorithms of one kind; %s", what, s,
				 twice_advice);
			return -1;
		}
		*slot = k;
		if (slot == &pt->encr)
			memcpy(pt->encr_name, tok[i], sizeof(pt->encr_name));
	}
	return 0;
}

int bw_p1_proposal_parse(const char *s, struct bw_p1_proposal *out, char *err, size_t errlen)
{
	struct proposal_toks pt;
	struct bw_p1_proposal p = { 0 };

	if (!err) {
		err = errbuf_dummy;
		errlen = sizeof(errbuf_dummy);
	}
	if (proposal_read(s, "phase 1", "use one encryption, one hash and one DH group", &pt, err, errlen) != 0)
		return -1;
	if (pt.encr.kind != TOK_BAD && pt.encr.aead) {
		snprintf(err, errlen, "%s cannot be used in phase 1 (IKEv1 has no AEAD); use a proposal such as "
			 "aes256-sha256-modp2048", pt.encr_name);
		return -1;
	}
	if (pt.encr.kind == TOK_BAD || pt.integ.kind == TOK_BAD || pt.dh.kind == TOK_BAD) {
		snprintf(err, errlen, "phase 1 proposal '%.60s' needs an encryption algorithm, a "
			 "hash and a DH group, such as aes256-sha256-modp2048", s);
		return -1;
	}
	p.encr = pt.encr.tdes ? BW_P1_ENCR_3DES : BW_P1_ENCR_AES_CBC;
	p.key_bits = pt.encr.key_bits;
	p.hash = pt.integ.hash;
	p.dh = pt.dh.dh;
	*out = p;
	return 0;
}

int bw_p2_proposal_parse(const char *s, struct bw_p2_proposal *out, char *err, size_t errlen)
{
	struct proposal_toks pt;
	struct bw_p2_proposal p = { 0 };

	if (!err) {
		err = errbuf_dummy;
		errlen = sizeof(errbuf_dummy);
	}
	if (proposal_read(s, "phase 2", "use one encryption, at most one integrity and at most one DH group", &pt,
			  err, errlen) != 0)
		return -1;
	if (pt.encr.kind == TOK_BAD) {
		snprintf(err, errlen, "phase 2 proposal '%.60s' has no encryption algorithm; start "
			 "it with one such as aes256 or aes128gcm16", s);
		return -1;
	}
	if (pt.encr.aead && pt.integ.kind != TOK_BAD) {
		snprintf(err, errlen, "phase 2 proposal '%.60s' combines GCM, which protects "
			 "integrity itself, with an integrity algorithm; remove the latter", s);
		return -1;
	}
	if (!pt.encr.aead && pt.integ.kind == TOK_BAD) {
		snprintf(err, errlen, "phase 2 proposal '%.60s' has no integrity algorithm; add one "
			 "such as sha256", s);
		return -1;
	}
	p.key_bits = pt.encr.key_bits;
	if (pt.encr.tdes)
		p.encr = BW_ESP_3DES;
	else if (!pt.encr.aead)
		p.encr = BW_ESP_AES_CBC;
	else
		p.encr = pt.encr.icv_bytes == 8 ? BW_ESP_AES_GCM8 : pt.encr.icv_bytes == 12 ? BW_ESP_AES_GCM12 : BW_ESP_AES_GCM16;
	if (pt.integ.kind != TOK_BAD) {
		switch (pt.integ.hash) {
		case BW_HASH_MD5: p.auth = BW_ESP_AUTH_HMAC_MD5; break;
		case BW_HASH_SHA1: p.auth = BW_ESP_AUTH_HMAC_SHA1; break;
		case BW_HASH_SHA256: p.auth = BW_ESP_AUTH_HMAC_SHA256; break;
		case BW_HASH_SHA384: p.auth = BW_ESP_AUTH_HMAC_SHA384; break;
		case BW_HASH_SHA512: p.auth = BW_ESP_AUTH_HMAC_SHA512; break;
		}
	}
	if (pt.dh.kind != TOK_BAD)
		p.dh = pt.dh.dh;
	*out = p;
	return 0;
}

static const char *hash_name(enum bw_hash h)
{
	switch (h) {
	case BW_HASH_MD5: return "md5";
	case BW_HASH_SHA1: return "sha1";
	case BW_HASH_SHA256: return "sha256";
	case BW_HASH_SHA384: return "sha384";
	case BW_HASH_SHA512: return "sha512";
	}
	return NULL;
}

static int fmt_result(int n, size_t len)
{
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

int bw_p1_proposal_format(const struct bw_p1_proposal *p, char *buf, size_t len)
{
	const char *h = hash_name(p->hash);

	if (!h || (p->encr != BW_P1_ENCR_3DES && p->encr != BW_P1_ENCR_AES_CBC))
		return -1;
	if (p->encr == BW_P1_ENCR_3DES)
		return fmt_result(snprintf(buf, len, "3des-%s-%s", h, bw_dh_group_name(p->dh)), len);
	return fmt_result(snprintf(buf, len, "aes%u-%s-%s", p->key_bits, h,
				   bw_dh_group_name(p->dh)), len);
}

int bw_p2_proposal_format(const struct bw_p2_proposal *p, char *buf, size_t len)
{
	char encr[24], integ[16] = "";
	const char *a = NULL;

	switch (p->encr) {
	case BW_ESP_3DES: snprintf(encr, sizeof(encr), "3des"); break;
	case BW_ESP_AES_CBC: snprintf(encr, sizeof(encr), "aes%u", p->key_bits); break;
	case BW_ESP_AES_GCM8: snprintf(encr, sizeof(encr), "aes%ugcm8", p->key_bits); break;
	case BW_ESP_AES_GCM12: snprintf(encr, sizeof(encr), "aes%ugcm12", p->key_bits); break;
	case BW_ESP_AES_GCM16: snprintf(encr, sizeof(encr), "aes%ugcm16", p->key_bits); break;
	default: return -1;
	}
	switch (p->auth) {
	case BW_ESP_AUTH_NONE: break;
	case BW_ESP_AUTH_HMAC_MD5: a = "md5"; break;
	case BW_ESP_AUTH_HMAC_SHA1: a = "sha1"; break;
	case BW_ESP_AUTH_HMAC_SHA256: a = "sha256"; break;
	case BW_ESP_AUTH_HMAC_SHA384: a = "sha384"; break;
	case BW_ESP_AUTH_HMAC_SHA512: a = "sha512"; break;
	default: return -1;
	}
	if (a)
		snprintf(integ, sizeof(integ), "-%s", a);
	if (p->dh != BW_DH_NONE)
		return fmt_result(snprintf(buf, len, "%s%s-%s", encr, integ, bw_dh_group_name(p->dh)),
				  len);
	return fmt_result(snprintf(buf, len, "%s%s", encr, integ), len);
}

/* Enum names exactly as DESIGN.md spells them; the tables serve parsing as well. */
const char *const bw_topology_names[] = { "host-to-host", "host-to-network",
					  "host-to-everywhere", "network-to-network", NULL };
const char *const bw_mode_names[] = { "tunnel", "transport", NULL };
const char *const bw_autostart_names[] = { "never", "login", "boot", NULL };
const char *const bw_auth_names[] = { "psk", "rsa", "ecdsa", NULL };
const char *const bw_id_type_names[] = { "address", "fqdn", "user-fqdn", "asn1dn", "key-id",
					 NULL };
const char *const bw_modecfg_names[] = { "no", "pull", "push", NULL };
const char *const bw_scope_names[] = { "split", "global", NULL };
const char *const bw_exchange_names[] = { "main", "aggressive", NULL };
const char *const bw_natt_names[] = { "auto", "force", "off", NULL };
const char *const bw_backend_names[] = { "auto", "userspace", "xfrm", NULL };

static const char *enum_name(const char *const *names, size_t n, unsigned v)
{
	return v < n - 1 ? names[v] : "unknown";
}

#define ENUM_NAME(tbl, v) enum_name(tbl, BW_ARRAY_SIZE(tbl), (unsigned)(v))

const char *bw_topology_name(enum bw_topology t) { return ENUM_NAME(bw_topology_names, t); }
const char *bw_autostart_name(enum bw_autostart a) { return ENUM_NAME(bw_autostart_names, a); }
const char *bw_backend_name(enum bw_backend b) { return ENUM_NAME(bw_backend_names, b); }
const char *bw_ipsec_mode_name(enum bw_ipsec_mode m) { return ENUM_NAME(bw_mode_names, m); }
const char *bw_auth_method_name(enum bw_auth_method m) { return ENUM_NAME(bw_auth_names, m); }
const char *bw_id_type_name(enum bw_id_type t) { return ENUM_NAME(bw_id_type_names, t); }
const char *bw_modecfg_name(enum bw_modecfg m) { return ENUM_NAME(bw_modecfg_names, m); }
const char *bw_dns_scope_name(enum bw_dns_scope s) { return ENUM_NAME(bw_scope_names, s); }
const char *bw_exchange_name(enum bw_exchange e) { return ENUM_NAME(bw_exchange_names, e); }
const char *bw_natt_name(enum bw_natt n) { return ENUM_NAME(bw_natt_names, n); }

int bw_cfg_enum_parse(const char *const *names, const char *s)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(names[i], s) == 0)
			return i;
	return -1;
}

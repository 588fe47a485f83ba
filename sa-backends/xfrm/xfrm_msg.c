/* The XFRM netlink messages of the kernel backend, built from the backend interface's types,
 * and the parsers for what the kernel answers. No I/O: the tests build and read these bytes. */
#include "sa-backends/xfrm/xfrm_msg.h"

#include <errno.h>
#include <linux/udp.h>
#include <linux/xfrm.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <openssl/crypto.h>

#ifndef UDP_ENCAP_ESPINUDP
#define UDP_ENCAP_ESPINUDP 2
#endif

uint32_t bw_xfrm_reqid(const char *conn_name, unsigned slot)
{
	uint32_t h = 2166136261u;	/* FNV-1a, folded to 16 bits */

	for (const char *p = conn_name; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h = (h ^ (h >> 16)) & 0xffff;
	return BW_XFRM_REQID_TAG | h << 8 | (slot & 0xff);
}

bool bw_xfrm_reqid_is_ours(uint32_t reqid)
{
	return (reqid & BW_XFRM_REQID_MASK) == BW_XFRM_REQID_TAG;
}

uint32_t bw_xfrm_priority(const struct bw_cidr *local_ts, const struct bw_cidr *remote_ts)
{
	return BW_XFRM_PRIO_BASE - ((uint32_t)remote_ts->prefix << 8) - local_ts->prefix;
}

int bw_xfrm_alg_map(const struct bw_p2_proposal *p, struct bw_xfrm_alg *out)
{
	static const char *const auth[] = {
		[BW_ESP_AUTH_HMAC_MD5] = "hmac(md5)", [BW_ESP_AUTH_HMAC_SHA1] = "hmac(sha1)",
		[BW_ESP_AUTH_HMAC_SHA256] = "hmac(sha256)", [BW_ESP_AUTH_HMAC_SHA384] = "hmac(sha384)",
		[BW_ESP_AUTH_HMAC_SHA512] = "hmac(sha512)",
	};
	struct bw_xfrm_alg a = { 0 };
	struct bw_esp_sizes sz;

	if (bw_esp_sizes(p, &sz) < 0)	/* the sizes, and what is supported, come from algs.c */
		return -EOPNOTSUPP;
	if (sz.aead) {
		a.aead_name = "rfc4106(gcm(aes))";
		a.aead_key_len = sz.enc_key_len + sz.salt_len;
		a.aead_icv_bits = (unsigned)sz.icv_len * 8;
	} else {
		a.enc_name = p->encr == BW_ESP_3DES ? "cbc(des3_ede)" : "cbc(aes)";
		a.enc_key_len = sz.enc_key_len;
		a.auth_name = auth[p->auth];
		a.auth_key_len = sz.auth_key_len;
		a.auth_trunc_bits = (unsigned)sz.icv_len * 8;
	}
	*out = a;
	return 0;
}

size_t bw_xfrm_keymat_len(const struct bw_xfrm_alg *a)
{
	return a->aead_name ? a->aead_key_len : a->enc_key_len + a->auth_key_len;
}

void bw_xfrm_life_from(uint32_t hard_s, uint64_t hard_bytes, struct bw_xfrm_life *out)
{
	out->hard_s = hard_s;
	out->soft_s = hard_s - hard_s / 10;
	if (hard_s && out->soft_s == hard_s)
		out->soft_s = hard_s > 1 ? hard_s - 1 : 0;
	out->hard_bytes = hard_bytes;
	out->soft_bytes = hard_bytes - hard_bytes / 10;
}

/* ---- addresses ---- */

static size_t alen(sa_family_t f)
{
	return f == AF_INET ? 4 : 16;
}

static int sockaddr_split(const struct sockaddr_storage *ss, xfrm_address_t *a, uint16_t *port_host)
{
	memset(a, 0, sizeof(*a));
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, ss, sizeof(sin));
		memcpy(a, &sin.sin_addr, 4);
		*port_host = ntohs(sin.sin_port);
		return AF_INET;
	}
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, ss, sizeof(sin6));
		memcpy(a, &sin6.sin6_addr, 16);
		*port_host = ntohs(sin6.sin6_port);
		return AF_INET6;
	}
	return -EAFNOSUPPORT;
}

static void cidr_to_xaddr(const struct bw_cidr *c, xfrm_address_t *a)
{
	memset(a, 0, sizeof(*a));
	memcpy(a, c->addr, alen(c->family));
}

static void xaddr_to_cidr(sa_family_t f, const xfrm_address_t *a, struct bw_cidr *c)
{
	memset(c, 0, sizeof(*c));
	c->family = f;
	memcpy(c->addr, a, alen(f));
	c->prefix = (uint8_t)(alen(f) * 8);
}

static bool cidr_ok(const struct bw_cidr *c)
{
	return (c->family == AF_INET && c->prefix <= 32) || (c->family == AF_INET6 && c->prefix <= 128);
}

static void lft_infinite(struct xfrm_lifetime_cfg *l)
{
	l->soft_byte_limit = l->hard_byte_limit = XFRM_INF;
	l->soft_packet_limit = l->hard_packet_limit = XFRM_INF;
}

/* ---- SAs ---- */

static int put_algo(struct nl_msg *m, int type, const char *name, const uint8_t *key, size_t key_len,
		    unsigned extra_bits)
{
	/* xfrm_algo, xfrm_algo_auth and xfrm_algo_aead share name and key length; the
	 * last two add one more 32-bit field (truncation, ICV length) before the key. */
	size_t head = type == XFRMA_ALG_CRYPT ? sizeof(struct xfrm_algo) : sizeof(struct xfrm_algo_auth);
	size_t len = head + key_len;
	uint8_t *buf = calloc(1, len);
	struct xfrm_algo_auth *aa = (struct xfrm_algo_auth *)(void *)buf;
	int err;

	if (!buf)
		return -ENOMEM;
	snprintf(aa->alg_name, sizeof(aa->alg_name), "%s", name);
	aa->alg_key_len = (unsigned)(key_len * 8);
	if (type != XFRMA_ALG_CRYPT)
		aa->alg_trunc_len = extra_bits;	/* alg_icv_len sits at the same offset */
	memcpy(buf + head, key, key_len);
	err = nla_put(m, type, (int)len, buf);
	OPENSSL_cleanse(buf, len);
	free(buf);
	return err < 0 ? -EMSGSIZE : 0;
}

int bw_xfrm_msg_sa(int type, const struct bw_sa_params *p, uint32_t reqid,
		   const struct bw_xfrm_life *life, struct nl_msg **out)
{
	struct xfrm_usersa_info sa = { 0 };
	xfrm_address_t la, ra;
	uint16_t lport, rport;
	struct bw_xfrm_alg alg;
	struct nl_msg *m;
	int lf, rf, err;

	*out = NULL;
	if ((type != XFRM_MSG_NEWSA && type != XFRM_MSG_UPDSA) || p->spi == 0 ||
	    (p->dir != BW_SA_IN && p->dir != BW_SA_OUT))
		return -EINVAL;
	if ((err = bw_xfrm_alg_map(&p->alg, &alg)) < 0)
		return err;
	if (p->keymat_len != bw_xfrm_keymat_len(&alg) || p->keymat_len > sizeof(p->keymat))
		return -EINVAL;
	lf = sockaddr_split(&p->local, &la, &lport);
	rf = sockaddr_split(&p->remote, &ra, &rport);
	if (lf < 0 || rf < 0 || lf != rf)
		return -EAFNOSUPPORT;

	sa.family = (uint16_t)lf;
	sa.sel.family = (uint16_t)lf;	/* tunnel mode: the policies select, the SA takes all */
	sa.id.proto = IPPROTO_ESP;
	sa.id.spi = htonl(p->spi);
	sa.id.daddr = p->dir == BW_SA_OUT ? ra : la;
	sa.saddr = p->dir == BW_SA_OUT ? la : ra;
	sa.reqid = reqid;
	sa.mode = p->mode == BW_MODE_TRANSPORT ? XFRM_MODE_TRANSPORT : XFRM_MODE_TUNNEL;
	sa.replay_window = p->dir == BW_SA_IN ? BW_XFRM_REPLAY_WINDOW : 0;
	lft_infinite(&sa.lft);
	if (life) {
		sa.lft.soft_add_expires_seconds = life->soft_s;
		sa.lft.hard_add_expires_seconds = life->hard_s;
		if (life->hard_bytes) {
			sa.lft.soft_byte_limit = life->soft_bytes;
			sa.lft.hard_byte_limit = life->hard_bytes;
		}
	}

	m = nlmsg_alloc_simple(type, 0);
	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &sa, sizeof(sa), NLMSG_ALIGNTO) < 0) {
		err = -EMSGSIZE;
		goto fail;
	}
	if (alg.aead_name) {
		err = put_algo(m, XFRMA_ALG_AEAD, alg.aead_name, p->keymat, alg.aead_key_len,
			       alg.aead_icv_bits);
	} else {
		err = put_algo(m, XFRMA_ALG_CRYPT, alg.enc_name, p->keymat, alg.enc_key_len, 0);
		if (err == 0)
			err = put_algo(m, XFRMA_ALG_AUTH_TRUNC, alg.auth_name, p->keymat + alg.enc_key_len,
				       alg.auth_key_len, alg.auth_trunc_bits);
	}
	if (err == 0 && p->udp_encap) {
		struct xfrm_encap_tmpl enc = { .encap_type = UDP_ENCAP_ESPINUDP };
		/* The NAT-T port of the gateway is 4500 unless the caller knows another. */
		if (rport == 0 || rport == 500)
			rport = 4500;
		if (lport == 0)
			lport = 4500;
		enc.encap_sport = htons(p->dir == BW_SA_OUT ? lport : rport);
		enc.encap_dport = htons(p->dir == BW_SA_OUT ? rport : lport);
		if (nla_put(m, XFRMA_ENCAP, sizeof(enc), &enc) < 0)
			err = -EMSGSIZE;
	}
	if (err < 0)
		goto fail;
	*out = m;
	return 0;
fail:
	bw_xfrm_msg_free(m);
	return err;
}

int bw_xfrm_msg_sa_id(int type, const struct bw_cidr *dst, uint32_t spi, struct nl_msg **out)
{
	struct xfrm_usersa_id id = { 0 };
	struct nl_msg *m;

	*out = NULL;
	if ((type != XFRM_MSG_DELSA && type != XFRM_MSG_GETSA) || !cidr_ok(dst))
		return -EINVAL;
	cidr_to_xaddr(dst, &id.daddr);
	id.spi = htonl(spi);
	id.family = dst->family;
	id.proto = IPPROTO_ESP;
	m = nlmsg_alloc_simple(type, 0);
	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &id, sizeof(id), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return -EMSGSIZE;
	}
	*out = m;
	return 0;
}

/* ---- policies ---- */

static void sel_set(struct xfrm_selector *s, const struct bw_cidr *src, const struct bw_cidr *dst)
{
	memset(s, 0, sizeof(*s));
	s->family = src->family;
	cidr_to_xaddr(src, &s->saddr);
	cidr_to_xaddr(dst, &s->daddr);
	s->prefixlen_s = src->prefix;
	s->prefixlen_d = dst->prefix;
}

void bw_xfrm_policies_for(const struct bw_cidr *local_ts, const struct bw_cidr *remote_ts,
			  const struct bw_cidr *outer_local, const struct bw_cidr *outer_remote,
			  enum bw_ipsec_mode mode, uint32_t reqid, struct bw_xfrm_policy out[3])
{
	uint32_t prio = bw_xfrm_priority(local_ts, remote_ts);
	static const int dirs[3] = { XFRM_POLICY_OUT, XFRM_POLICY_IN, XFRM_POLICY_FWD };

	for (int i = 0; i < 3; i++) {
		bool outbound = dirs[i] == XFRM_POLICY_OUT;
		struct bw_xfrm_policy *p = &out[i];

		memset(p, 0, sizeof(*p));
		p->dir = dirs[i];
		p->sel_src = outbound ? *local_ts : *remote_ts;
		p->sel_dst = outbound ? *remote_ts : *local_ts;
		p->priority = prio;
		p->mode = mode;
		p->tmpl_src = outbound ? *outer_local : *outer_remote;
		p->tmpl_dst = outbound ? *outer_remote : *outer_local;
		p->reqid = reqid;
	}
}

int bw_xfrm_msg_policy(int type, const struct bw_xfrm_policy *pol, struct nl_msg **out)
{
	struct xfrm_userpolicy_info pi = { 0 };
	struct xfrm_user_tmpl t = { 0 };
	struct nl_msg *m;

	*out = NULL;
	if ((type != XFRM_MSG_NEWPOLICY && type != XFRM_MSG_UPDPOLICY) ||
	    (pol->dir != XFRM_POLICY_IN && pol->dir != XFRM_POLICY_OUT && pol->dir != XFRM_POLICY_FWD) ||
	    !cidr_ok(&pol->sel_src) || !cidr_ok(&pol->sel_dst) ||
	    pol->sel_src.family != pol->sel_dst.family || !cidr_ok(&pol->tmpl_src) ||
	    pol->tmpl_src.family != pol->tmpl_dst.family)
		return -EINVAL;
	sel_set(&pi.sel, &pol->sel_src, &pol->sel_dst);
	lft_infinite(&pi.lft);
	pi.priority = pol->priority;
	pi.dir = (uint8_t)pol->dir;
	pi.action = XFRM_POLICY_ALLOW;
	pi.share = XFRM_SHARE_ANY;

	t.family = pol->tmpl_src.family;
	cidr_to_xaddr(&pol->tmpl_dst, &t.id.daddr);
	cidr_to_xaddr(&pol->tmpl_src, &t.saddr);
	t.id.proto = IPPROTO_ESP;
	t.reqid = pol->reqid;
	t.mode = pol->mode == BW_MODE_TRANSPORT ? XFRM_MODE_TRANSPORT : XFRM_MODE_TUNNEL;
	t.share = XFRM_SHARE_ANY;
	t.aalgos = t.ealgos = t.calgos = ~0u;

	m = nlmsg_alloc_simple(type, 0);
	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &pi, sizeof(pi), NLMSG_ALIGNTO) < 0 ||
	    nla_put(m, XFRMA_TMPL, sizeof(t), &t) < 0) {
		nlmsg_free(m);
		return -EMSGSIZE;
	}
	*out = m;
	return 0;
}

int bw_xfrm_msg_policy_id(int type, int dir, const struct bw_cidr *sel_src,
			  const struct bw_cidr *sel_dst, struct nl_msg **out)
{
	struct xfrm_userpolicy_id id = { 0 };
	struct nl_msg *m;

	*out = NULL;
	if ((type != XFRM_MSG_DELPOLICY && type != XFRM_MSG_GETPOLICY) || !cidr_ok(sel_src) ||
	    !cidr_ok(sel_dst) || sel_src->family != sel_dst->family)
		return -EINVAL;
	sel_set(&id.sel, sel_src, sel_dst);
	id.dir = (uint8_t)dir;
	m = nlmsg_alloc_simple(type, 0);
	if (!m)
		return -ENOMEM;
	if (nlmsg_append(m, &id, sizeof(id), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return -EMSGSIZE;
	}
	*out = m;
	return 0;
}

void bw_xfrm_msg_free(struct nl_msg *msg)
{
	struct nlmsghdr *nlh;

	if (!msg)
		return;
	nlh = nlmsg_hdr(msg);
	OPENSSL_cleanse(nlmsg_data(nlh), (size_t)nlmsg_datalen(nlh));
	nlmsg_free(msg);
}

/* ---- replies and events ---- */

int bw_xfrm_parse_ack(const struct nlmsghdr *nlh)
{
	struct nlmsgerr e;

	if (nlh->nlmsg_type != NLMSG_ERROR)
		return 1;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
		return -EBADMSG;
	memset(&e, 0, sizeof(e));
	memcpy(&e.error, NLMSG_DATA(nlh), sizeof(int));
	return e.error > 0 ? -e.error : e.error;
}

static void sa_info_fill(const struct xfrm_usersa_info *s, struct bw_xfrm_sa_info *out)
{
	memset(out, 0, sizeof(*out));
	xaddr_to_cidr(s->family, &s->id.daddr, &out->dst);
	xaddr_to_cidr(s->family, &s->saddr, &out->src);
	out->spi = ntohl(s->id.spi);
	out->proto = s->id.proto;
	out->reqid = s->reqid;
	out->bytes = s->curlft.bytes;
	out->packets = s->curlft.packets;
	out->replay_drops = s->stats.replay;
	out->integrity_failed = s->stats.integrity_failed;
}

static bool family_ok(uint16_t f)
{
	return f == AF_INET || f == AF_INET6;
}

int bw_xfrm_parse_sa(const struct nlmsghdr *nlh, struct bw_xfrm_sa_info *out, bool *hard)
{
	if (nlh->nlmsg_type == XFRM_MSG_NEWSA) {
		struct xfrm_usersa_info s;

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(s)))
			return -EBADMSG;
		memcpy(&s, NLMSG_DATA(nlh), sizeof(s));
		if (!family_ok(s.family))
			return -EAFNOSUPPORT;
		sa_info_fill(&s, out);
		if (hard)
			*hard = false;
		return 0;
	}
	if (nlh->nlmsg_type == XFRM_MSG_EXPIRE) {
		struct xfrm_user_expire x;

		if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(x)))
			return -EBADMSG;
		memcpy(&x, NLMSG_DATA(nlh), sizeof(x));
		if (!family_ok(x.state.family))
			return -EAFNOSUPPORT;
		sa_info_fill(&x.state, out);
		if (hard)
			*hard = x.hard != 0;
		return 0;
	}
	return -EPROTO;
}

int bw_xfrm_parse_delsa(const struct nlmsghdr *nlh, struct bw_xfrm_sa_info *out)
{
	struct xfrm_usersa_id id;
	struct nlattr *a;

	if (nlh->nlmsg_type != XFRM_MSG_DELSA)
		return -EPROTO;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(id)))
		return -EBADMSG;
	memcpy(&id, NLMSG_DATA(nlh), sizeof(id));
	if (!family_ok(id.family))
		return -EAFNOSUPPORT;
	memset(out, 0, sizeof(*out));
	xaddr_to_cidr(id.family, &id.daddr, &out->dst);
	out->spi = ntohl(id.spi);
	out->proto = id.proto;
	/* The whole SA follows as XFRMA_SA: its reqid and final counters. */
	a = nlmsg_find_attr((struct nlmsghdr *)(uintptr_t)nlh, (int)sizeof(id), XFRMA_SA);
	if (a && nla_len(a) >= (int)sizeof(struct xfrm_usersa_info)) {
		struct xfrm_usersa_info s;
		memcpy(&s, nla_data(a), sizeof(s));
		if (family_ok(s.family)) {
			sa_info_fill(&s, out);
			out->proto = id.proto;
		}
	}
	return 0;
}

int bw_xfrm_parse_policy_reqid(const struct nlmsghdr *nlh, uint32_t *reqid)
{
	struct xfrm_user_tmpl t;
	struct nlattr *a;

	if (nlh->nlmsg_type != XFRM_MSG_NEWPOLICY)
		return -EPROTO;
	if (nlh->nlmsg_len < NLMSG_LENGTH(sizeof(struct xfrm_userpolicy_info)))
		return -EBADMSG;
	*reqid = 0;
	a = nlmsg_find_attr((struct nlmsghdr *)(uintptr_t)nlh, (int)sizeof(struct xfrm_userpolicy_info),
			    XFRMA_TMPL);
	if (!a)
		return 0;
	if (nla_len(a) < (int)sizeof(t))
		return -EBADMSG;
	memcpy(&t, nla_data(a), sizeof(t));
	*reqid = t.reqid;
	return 0;
}

void bw_xfrm_probe_reason(int err, char *buf, size_t len)
{
	switch (err < 0 ? -err : err) {
	case 0:
		snprintf(buf, len, "the kernel holds ESP SAs with UDP encapsulation");
		break;
	case ESOCKTNOSUPPORT:
		snprintf(buf, len, "this kernel has no XFRM netlink interface (CONFIG_XFRM_USER, module "
			 "xfrm_user)");
		break;
	case EPROTONOSUPPORT:
	case ENOPROTOOPT:
		snprintf(buf, len, "this kernel cannot hold ESP SAs (it lacks CONFIG_INET_ESP, module esp4)");
		break;
	case ENOSYS:
	case ENOENT:
		snprintf(buf, len, "the kernel cannot load the ESP ciphers (crypto modules missing, or "
			 "/proc/sys/kernel/modprobe is not set)");
		break;
	case EPERM:
	case EACCES:
		snprintf(buf, len, "kernel SAs need root (CAP_NET_ADMIN); run burrowd as root");
		break;
	default:
		snprintf(buf, len, "the kernel refused a test ESP SA (%s)", strerror(err < 0 ? -err : err));
		break;
	}
}

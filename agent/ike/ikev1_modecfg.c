/* The transaction exchange (type 6, draft-dukes-ike-mode-cfg) and Mode Config: its own HASH and
 * IV per message ID, pull (REQUEST/REPLY) and push (SET/ACK), Unity split-include and split DNS. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "util.h"

static void on_cfg_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, txn.timer);

	(void)loop;
	(void)revents;
	if (ike->txn.state == CFG_XAUTH_WAIT)
		ike_fail(ike, "xauth-missing", "the gateway did not ask for XAUTH credentials",
			 "This connection expects XAUTH (xauth = yes) but the gateway never asked for a user "
			 "name and password. Set xauth = no if the gateway does not use XAUTH.");
	else
		ike_fail(ike, "modecfg-missing", "the gateway did not send its Mode Config settings",
			 "This connection expects an address from the gateway (mode_config), but none came. "
			 "Check that the gateway has an address pool for this client, or set mode_config = no "
			 "and local_address.");
}

static void wait_for(struct bw_ike_conn *ike, enum cfg_state st, const char *step)
{
	ike->txn.state = st;
	snprintf(ike->last_step, sizeof(ike->last_step), "%s", step);
	ev_timer_stop(ike->agent->loop, &ike->txn.timer);
	ev_timer_init(&ike->txn.timer, on_cfg_timeout, IKE_CFG_WAIT_S, 0.0);
	ev_timer_start(ike->agent->loop, &ike->txn.timer);
}

int ike_cfg_send(struct bw_ike_conn *ike, uint32_t msgid, const struct isakmp_cfg *cfg, bool expect_reply)
{
	struct isakmp_builder b;
	struct isakmp_hdr h;
	size_t off, len;

	if (msgid == 0) {
		/* A new exchange: fresh message ID, IV from the last phase-1 block. */
		if (ike_exchange_begin(ike, &ike->tx) != 0)
			return -1;
		msgid = ike->tx.msgid;
	}
	ike->tx.msgid = msgid;
	ike_hdr_init(ike, &h, ISAKMP_EXCH_TRANSACTION, msgid, ISAKMP_FLAG_ENC);
	if (isakmp_b_init(&b, &h) != 0)
		return -1;
	isakmp_b_hash_reserve(&b, ike->sa.prf_len, &off);
	isakmp_b_attr(&b, cfg);
	if (isakmp_b_finish(&b) != 0) {
		isakmp_b_free(&b);
		return -1;
	}
	len = isakmp_b_len(&b);
	bw_ike_qm_hash1(ike->sa.alg.hash, ike->sa.skeyid_a, msgid, isakmp_b_buf(&b) + off + ike->sa.prf_len,
			len - off - ike->sa.prf_len, isakmp_b_buf(&b) + off);
	if (ike_encrypt_msg(ike, &b, ike->tx.iv) != 0) {
		isakmp_b_free(&b);
		return -1;
	}
	if (expect_reply)
		return ike_send(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
	ike_send_raw(ike, isakmp_b_buf(&b), isakmp_b_len(&b));
	isakmp_b_free(&b);
	return 0;
}

static void empty_attr(struct isakmp_cfg *c, uint16_t type)
{
	struct isakmp_attr *a = &c->attrs[c->n_attrs++];

	memset(a, 0, sizeof(*a));
	a->type = type;
	a->fmt = ISAKMP_ATTR_TLV;
}

static int modecfg_pull(struct bw_ike_conn *ike)
{
	struct isakmp_cfg req = { .type = ISAKMP_CFG_REQUEST };

	bw_random(&req.id, 2);
	empty_attr(&req, ISAKMP_CFG_INTERNAL_IP4_ADDRESS);
	empty_attr(&req, ISAKMP_CFG_INTERNAL_IP4_NETMASK);
	empty_attr(&req, ISAKMP_CFG_INTERNAL_IP4_DNS);
	empty_attr(&req, ISAKMP_CFG_INTERNAL_IP4_NBNS);
	if (ike->sa.peer_unity) {
		empty_attr(&req, ISAKMP_CFG_UNITY_BANNER);
		empty_attr(&req, ISAKMP_CFG_UNITY_DEF_DOMAIN);
		empty_attr(&req, ISAKMP_CFG_UNITY_SPLITDNS_NAME);
		empty_attr(&req, ISAKMP_CFG_UNITY_SPLIT_INCLUDE);
	}
	wait_for(ike, CFG_MC_SENT, "waiting for the gateway's Mode Config reply");
	ike_log(ike, BW_LOG_DEBUG, "Mode Config: requesting an address and settings");
	return ike_cfg_send(ike, 0, &req, true);
}

void ike_cfg_next(struct bw_ike_conn *ike)
{
	ev_timer_stop(ike->agent->loop, &ike->txn.timer);
	if (ike->cfg.xauth && !ike->txn.xauth_done) {
		wait_for(ike, CFG_XAUTH_WAIT, "waiting for the gateway to ask for XAUTH credentials");
		return;
	}
	if (ike->cfg.mode_config == BW_MODECFG_PULL && ike->txn.state != CFG_DONE) {
		if (modecfg_pull(ike) != 0)
			ike_fail(ike, "internal", "cannot send the Mode Config request", NULL);
		return;
	}
	if (ike->cfg.mode_config == BW_MODECFG_PUSH && ike->txn.state != CFG_DONE) {
		wait_for(ike, CFG_MC_WAIT_SET, "waiting for the gateway to push its Mode Config settings");
		return;
	}
	ike->txn.state = CFG_DONE;
	ike_start_children(ike);
}

void ike_cfg_begin(struct bw_ike_conn *ike)
{
	ike->txn.state = CFG_NONE;
	ev_init(&ike->txn.timer, on_cfg_timeout);
	ike_cfg_next(ike);
}

static void text_attr(const struct isakmp_attr *a, char *out, size_t cap)
{
	size_t k = 0;

	for (size_t i = 0; a->data && i < a->len && k + 1 < cap; i++)
		if (a->data[i] >= 0x20 || a->data[i] == '\n' || a->data[i] == '\t')
			out[k++] = (char)a->data[i];
	out[k] = '\0';
}

static bool ip4_attr(const struct isakmp_attr *a, struct bw_cidr *out)
{
	if (a->fmt != ISAKMP_ATTR_TLV || a->len != 4 || !a->data)
		return false;
	memset(out, 0, sizeof(*out));
	out->family = AF_INET;
	memcpy(out->addr, a->data, 4);
	out->prefix = 32;
	return true;
}

static void add_split(struct ike_modecfg *mc, const uint8_t *addr, const uint8_t *mask)
{
	struct bw_cidr c = { .family = AF_INET };
	uint32_t m = (uint32_t)mask[0] << 24 | (uint32_t)mask[1] << 16 | (uint32_t)mask[2] << 8 | mask[3];
	uint8_t prefix = 0;

	while (prefix < 32 && (m & (0x80000000u >> prefix)))
		prefix++;
	if (prefix < 32 && (uint32_t)(m << prefix) != 0)
		return;	/* not a contiguous mask */
	for (int i = 0; i < 4; i++)
		c.addr[i] = addr[i] & mask[i];
	c.prefix = prefix;
	for (size_t i = 0; i < mc->n_split; i++)
		if (memcmp(&mc->split[i], &c, sizeof(c)) == 0)
			return;	/* strongSwan sends its local_ts again */
	if (mc->n_split < BW_MAX_NETS)
		mc->split[mc->n_split++] = c;
}

/* Interprets the attributes of the gateway's Mode Config answer (untrusted; fuzzed by
 * tests/fuzz/fuzz_modecfg.c): addresses must be 4 bytes, texts keep printable characters only,
 * split networks need contiguous masks and lose their host bits. Returns how many attributes
 * were not understood. */
size_t ike_modecfg_read(const struct isakmp_cfg *cfg, struct ike_modecfg *out)
{
	struct ike_modecfg mc;
	size_t ignored = 0;

	memset(&mc, 0, sizeof(mc));
	for (size_t i = 0; i < cfg->n_attrs; i++) {
		const struct isakmp_attr *a = &cfg->attrs[i];
		char text[1024];

		switch (a->type) {
		case ISAKMP_CFG_INTERNAL_IP4_ADDRESS:
			if (!mc.have_vip)	/* the first valid one; a later one does not undo it */
				mc.have_vip = ip4_attr(a, &mc.vip);
			break;
		case ISAKMP_CFG_INTERNAL_IP4_DNS:
			if (mc.n_dns < IKE_MAX_DNS && ip4_attr(a, &mc.dns[mc.n_dns]))
				mc.n_dns++;
			break;
		case ISAKMP_CFG_INTERNAL_IP4_NBNS:
			if (mc.n_nbns < 2 && ip4_attr(a, &mc.nbns[mc.n_nbns]))
				mc.n_nbns++;
			break;
		case ISAKMP_CFG_UNITY_BANNER:
			text_attr(a, mc.banner, sizeof(mc.banner));
			break;
		case ISAKMP_CFG_UNITY_DEF_DOMAIN:
			text_attr(a, mc.domain, sizeof(mc.domain));
			break;
		case ISAKMP_CFG_UNITY_SPLITDNS_NAME:
			/* A comma-separated list of domains. */
			text_attr(a, text, sizeof(text));
			for (char *save = NULL, *d = strtok_r(text, ", \n\t", &save); d && mc.n_split_dns < IKE_MAX_SPLIT_DNS;
			     d = strtok_r(NULL, ", \n\t", &save))
				bw_strlcpy(mc.split_dns[mc.n_split_dns++], d, sizeof(mc.split_dns[0]));
			break;
		case ISAKMP_CFG_UNITY_SPLIT_INCLUDE:
			/* Entries of address, mask and 6 bytes of padding (optional after the last). */
			for (size_t o = 0; a->data && o + 8 <= a->len; o += 14)
				add_split(&mc, a->data + o, a->data + o + 4);
			break;
		case ISAKMP_CFG_INTERNAL_IP4_NETMASK:
			break;	/* the virtual address is a host address on our side */
		default:
			ignored++;
			break;
		}
	}
	*out = mc;
	return ignored;
}

/* Takes the gateway's answer; only a complete, valid one is kept. */
static int take_modecfg(struct bw_ike_conn *ike, const struct isakmp_cfg *cfg)
{
	struct ike_modecfg mc;
	size_t ignored = ike_modecfg_read(cfg, &mc);

	if (ignored)
		ike_log(ike, BW_LOG_DEBUG, "Mode Config: ignoring %zu attribute(s) the gateway sent unasked", ignored);
	if (!mc.have_vip) {
		ike_fail(ike, "modecfg-no-address", "the gateway sent no virtual address",
			 "The gateway answered Mode Config without an address for us. Check its address pool "
			 "for this client.");
		return -1;
	}
	ike->txn.mc = mc;
	ike->dp.vip = mc.vip;
	ike->dp.have_vip = true;
	{
		char a[64];

		bw_cidr_format(&mc.vip, a, sizeof(a));
		ike_log(ike, BW_LOG_INFO, "Mode Config: address %s, %zu DNS server(s), %zu split network(s)%s%s",
			a, mc.n_dns, mc.n_split, mc.domain[0] ? ", domain " : "", mc.domain);
		if (mc.banner[0])
			ike_log(ike, BW_LOG_INFO, "gateway banner: %s", mc.banner);
	}
	return 0;
}

static void modecfg_set(struct bw_ike_conn *ike, const struct isakmp_hdr *h, const struct isakmp_cfg *set)
{
	struct isakmp_cfg ack = { .type = ISAKMP_CFG_ACK, .id = set->id };

	if (ike->txn.state != CFG_MC_WAIT_SET) {
		ike_log(ike, BW_LOG_DEBUG, "Mode Config SET we did not wait for; ignored");
		return;
	}
	if (take_modecfg(ike, set) != 0)
		return;
	/* ACK names the attributes we took, with empty values. */
	for (size_t i = 0; i < set->n_attrs && ack.n_attrs < ISAKMP_MAX_CFG_ATTRS; i++)
		empty_attr(&ack, set->attrs[i].type);
	ike_cfg_send(ike, h->msgid, &ack, false);
	ike->txn.state = CFG_DONE;
	ike_cfg_next(ike);
}

/* Decrypts and authenticates a transaction message; *cfg points into msg. */
static int txn_open(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len,
		    struct isakmp_cfg *cfg)
{
	/* The answer within our exchange goes on from its IV; anything else starts a new one. */
	const struct ike_exchange *ex = h->msgid == ike->tx.msgid ? &ike->tx : NULL;
	struct ike_msg m;
	int rc = ike_msg_open(ike, h, msg, len, IKE_MSG_TXN, ex, &m);

	ike_msg_close(&m);
	if (rc == IKE_OPEN_BAD_HASH)
		ike_log(ike, BW_LOG_WARN, "transaction message with a wrong hash ignored");
	if (rc != IKE_OPEN_OK || m.attr < 0 || isakmp_parse_attr(&m.pls.p[m.attr], cfg) != 0)
		return -1;
	ike->tx.msgid = h->msgid;
	memcpy(ike->tx.iv, m.iv, sizeof(m.iv));
	return 0;
}

void ike_cfg_process(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	struct isakmp_cfg cfg;	/* 2 KiB of attributes */

	if (txn_open(ike, h, msg, len, &cfg) != 0) {
		ike_log(ike, BW_LOG_DEBUG, "transaction message that does not decrypt; ignored");
		return;
	}
	ike_log(ike, BW_LOG_DEBUG, "transaction %s with %zu attribute(s)",
		cfg.type == ISAKMP_CFG_REQUEST ? "REQUEST" : cfg.type == ISAKMP_CFG_REPLY ? "REPLY" :
		cfg.type == ISAKMP_CFG_SET ? "SET" : "ACK", cfg.n_attrs);
	switch (cfg.type) {
	case ISAKMP_CFG_REQUEST:
		if (isakmp_attr_find(cfg.attrs, cfg.n_attrs, ISAKMP_CFG_XAUTH_USER_NAME) ||
		    isakmp_attr_find(cfg.attrs, cfg.n_attrs, ISAKMP_CFG_XAUTH_USER_PASSWORD) ||
		    isakmp_attr_find(cfg.attrs, cfg.n_attrs, ISAKMP_CFG_XAUTH_TYPE))
			ike_xauth_request(ike, &cfg);
		else
			ike_log(ike, BW_LOG_DEBUG, "the gateway asked for attributes we do not serve; ignored");
		return;
	case ISAKMP_CFG_SET:
		if (isakmp_attr_find(cfg.attrs, cfg.n_attrs, ISAKMP_CFG_XAUTH_STATUS))
			ike_xauth_status(ike, &cfg);
		else
			modecfg_set(ike, h, &cfg);
		return;
	case ISAKMP_CFG_REPLY:
		if (ike->txn.state != CFG_MC_SENT || h->msgid != ike->tx.msgid)
			return;
		ike_rexmit_stop(ike);
		if (take_modecfg(ike, &cfg) != 0)
			return;
		ike->txn.state = CFG_DONE;
		ike_cfg_next(ike);
		return;
	default:
		return;
	}
}

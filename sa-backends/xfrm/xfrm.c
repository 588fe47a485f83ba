/* The kernel SA backend: ESP SAs and their in/out/fwd policies in XFRM through netlink, a dummy
 * device bw-NAME for the connection's address and routes, kernel events for expiry and deletes. */
#include "sa-backends/xfrm/xfrm.h"

#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <netlink/errno.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/socket.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "sa-backends/common/sysnet.h"
#include "sa-backends/xfrm/xfrm_msg.h"
#include "sa-backends/xfrm/xfrm_record.h"
#include "util.h"

#define XF_EVENTS_MAX 32	/* kernel events handled per wakeup */
#define XF_DUMMY_MTU 1500	/* the kernel sizes ESP by the outer path, not by this device */

/* An SA Burrow knows of. Until add_policy names its selectors the SA is only pending: its
 * reqid (and so its place in the kernel) depends on the selector pair it will carry. */
struct xf_sa {
	bool used, installed;
	enum bw_sa_dir dir;
	uint32_t spi, reqid;
	struct bw_cidr src, dst;		/* outer addresses, host prefixes */
	struct bw_sa_params pending;		/* keys: wiped once installed or dropped */
};

struct xf_policy {
	bool used;
	struct bw_cidr local_ts, remote_ts;
	uint32_t reqid;
	uint32_t out_spi, in_spi;
};

struct xf_event {
	int type;			/* XFRM_MSG_EXPIRE, XFRM_MSG_DELSA, XFRM_MSG_FLUSHSA */
	struct bw_xfrm_sa_info sa;
	bool hard;
};

struct bw_sa_conn {
	struct ev_loop *loop;
	char name[BW_NAME_MAX];
	char record_path[PATH_MAX];
	struct bw_sa_conn_cbs cbs;
	struct nl_sock *nl;		/* XFRM requests */
	struct nl_sock *nl_ev;		/* XFRM multicast: expire, SA deletes */
	struct nl_sock *rt;		/* routes, addresses, the device */
	ev_io ev_io;
	int ifindex;
	unsigned next_slot;
	bool warned_input;
	bool dispatching, closing;	/* conn_close from inside a callback defers the free */
	struct xf_record rec;		/* what is installed; mirrored in record_path */
	struct xf_sa sas[XF_MAX_SAS];
	struct xf_policy pols[XF_MAX_POLICIES / 3];
	struct bw_sa_counters retired;	/* totals of SAs that are gone */
	struct xf_event evq[XF_EVENTS_MAX];
	size_t n_evq;
	bool evq_overflow;
};

static const char *dir_name(enum bw_sa_dir d)
{
	return d == BW_SA_IN ? "in" : "out";
}

/* ---- netlink requests ---- */

/* libnl's codes for its own failures (no kernel answer); kernel errors come back as -errno. */
static int nlerr(int e)
{
	switch (e < 0 ? -e : e) {
	case 0: return 0;
	case NLE_NOMEM: return -ENOMEM;
	case NLE_PERM: return -EPERM;
	case NLE_NOACCESS: return -EACCES;
	case NLE_EXIST: return -EEXIST;
	case NLE_OBJ_NOTFOUND: return -ENOENT;
	case NLE_NODEV: return -ENODEV;
	case NLE_OPNOTSUPP: return -EOPNOTSUPP;
	case NLE_AGAIN: return -EAGAIN;
	case NLE_PROTO_MISMATCH: return -EPROTONOSUPPORT;
	case NLE_INVAL: return -EINVAL;
	default: return -EIO;
	}
}

struct xf_txn {
	bool done;
	int err;
	int (*parse)(const struct nlmsghdr *nlh, void *arg);
	void *arg;
	int parse_err;
};

static int txn_valid(struct nl_msg *msg, void *arg)
{
	struct xf_txn *t = arg;

	if (t->parse)
		t->parse_err = t->parse(nlmsg_hdr(msg), t->arg);
	return NL_OK;
}

static int txn_ack(struct nl_msg *msg, void *arg)
{
	struct xf_txn *t = arg;

	(void)msg;
	t->done = true;
	t->err = 0;
	return NL_STOP;
}

static int txn_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct xf_txn *t = arg;

	(void)who;
	t->done = true;
	t->err = e->error > 0 ? -e->error : e->error;
	return NL_STOP;
}

/* Sends msg (and frees it, wiping keys), waits for the kernel's answer; replies go to parse.
 * Returns 0 or the kernel's -errno. */
static int xf_transact(struct nl_sock *sk, struct nl_msg *msg,
		       int (*parse)(const struct nlmsghdr *, void *), void *arg)
{
	struct xf_txn t = { .parse = parse, .arg = arg };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int rc;

	if (!cb) {
		bw_xfrm_msg_free(msg);
		return -ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, txn_valid, &t);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, txn_ack, &t);
	nl_cb_err(cb, NL_CB_CUSTOM, txn_error, &t);
	nlmsg_hdr(msg)->nlmsg_flags |= NLM_F_REQUEST | NLM_F_ACK;
	rc = nl_send_auto(sk, msg);
	bw_xfrm_msg_free(msg);
	while (rc >= 0 && !t.done)
		rc = nl_recvmsgs(sk, cb);
	nl_cb_put(cb);
	if (!t.done)
		return rc < 0 ? nlerr(rc) : -EIO;
	if (t.err == 0 && t.parse_err < 0)
		return t.parse_err;
	return t.err;
}

static int xf_nl_open(struct nl_sock **out)
{
	struct nl_sock *sk = nl_socket_alloc();
	int rc;

	if (!sk)
		return -ENOMEM;
	rc = nl_connect(sk, NETLINK_XFRM);
	if (rc < 0) {
		nl_socket_free(sk);
		return -ESOCKTNOSUPPORT;
	}
	*out = sk;
	return 0;
}

static int parse_sa_cb(const struct nlmsghdr *nlh, void *arg)
{
	return bw_xfrm_parse_sa(nlh, arg, NULL);
}

static int parse_policy_cb(const struct nlmsghdr *nlh, void *arg)
{
	return bw_xfrm_parse_policy_reqid(nlh, arg);
}

static int sa_get(struct nl_sock *sk, const struct bw_cidr *dst, uint32_t spi, struct bw_xfrm_sa_info *info)
{
	struct nl_msg *m;
	int err = bw_xfrm_msg_sa_id(XFRM_MSG_GETSA, dst, spi, &m);

	memset(info, 0, sizeof(*info));
	return err < 0 ? err : xf_transact(sk, m, parse_sa_cb, info);
}

static int sa_delete(struct nl_sock *sk, const struct bw_cidr *dst, uint32_t spi)
{
	struct nl_msg *m;
	int err = bw_xfrm_msg_sa_id(XFRM_MSG_DELSA, dst, spi, &m);

	err = err < 0 ? err : xf_transact(sk, m, NULL, NULL);
	return err == -ESRCH ? -ENOENT : err;
}

static int policy_delete(struct nl_sock *sk, const struct xf_rec_policy *p)
{
	struct nl_msg *m;
	int err = bw_xfrm_msg_policy_id(XFRM_MSG_DELPOLICY, p->dir, &p->src, &p->dst, &m);

	err = err < 0 ? err : xf_transact(sk, m, NULL, NULL);
	return err == -ESRCH ? -ENOENT : err;
}

/* ---- the record ---- */

static int record_save(struct bw_sa_conn *c)
{
	int err = xf_record_write(c->record_path, c->name, &c->rec);

	if (err < 0)
		bw_log(BW_LOG_ERROR, c->name, "cannot write %s: %s", c->record_path, strerror(-err));
	return err;
}

static void rec_sa_drop(struct bw_sa_conn *c, uint32_t spi, const struct bw_cidr *dst)
{
	for (size_t i = 0; i < c->rec.n_sas; i++)
		if (c->rec.sas[i].spi == spi && sn_cidr_equal(&c->rec.sas[i].dst, dst)) {
			c->rec.sas[i] = c->rec.sas[--c->rec.n_sas];
			record_save(c);
			return;
		}
}

static void rec_policy_drop(struct bw_sa_conn *c, const struct xf_rec_policy *p)
{
	for (size_t i = 0; i < c->rec.n_pols; i++)
		if (c->rec.pols[i].dir == p->dir && sn_cidr_equal(&c->rec.pols[i].src, &p->src) &&
		    sn_cidr_equal(&c->rec.pols[i].dst, &p->dst)) {
			memmove(&c->rec.pols[i], &c->rec.pols[i + 1],
				(c->rec.n_pols - i - 1) * sizeof(c->rec.pols[0]));
			c->rec.n_pols--;
			record_save(c);
			return;
		}
}

/* ---- SAs ---- */

static struct xf_sa *sa_find(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir)
{
	for (size_t i = 0; i < XF_MAX_SAS; i++)
		if (c->sas[i].used && c->sas[i].spi == spi && c->sas[i].dir == dir)
			return &c->sas[i];
	return NULL;
}

static struct xf_sa *sa_find_dst(struct bw_sa_conn *c, uint32_t spi, const struct bw_cidr *dst)
{
	for (size_t i = 0; i < XF_MAX_SAS; i++)
		if (c->sas[i].used && c->sas[i].installed && c->sas[i].spi == spi &&
		    sn_cidr_equal(&c->sas[i].dst, dst))
			return &c->sas[i];
	return NULL;
}

static void sa_forget(struct xf_sa *sa)
{
	OPENSSL_cleanse(&sa->pending, sizeof(sa->pending));
	memset(sa, 0, sizeof(*sa));
}

static void counters_retire(struct bw_sa_conn *c, enum bw_sa_dir dir, const struct bw_xfrm_sa_info *i)
{
	if (dir == BW_SA_IN) {
		c->retired.bytes_in += i->bytes;
		c->retired.packets_in += i->packets;
		c->retired.errors_in += (uint64_t)i->replay_drops + i->integrity_failed;
	} else {
		c->retired.bytes_out += i->bytes;
		c->retired.packets_out += i->packets;
	}
}

static bool sockaddr_host(const struct sockaddr_storage *ss, struct bw_cidr *out)
{
	memset(out, 0, sizeof(*out));
	if (ss->ss_family == AF_INET) {
		struct sockaddr_in sin;
		memcpy(&sin, ss, sizeof(sin));
		out->family = AF_INET;
		memcpy(out->addr, &sin.sin_addr, 4);
		out->prefix = 32;
		return true;
	}
	if (ss->ss_family == AF_INET6) {
		struct sockaddr_in6 sin6;
		memcpy(&sin6, ss, sizeof(sin6));
		out->family = AF_INET6;
		memcpy(out->addr, &sin6.sin6_addr, 16);
		out->prefix = 128;
		return true;
	}
	return false;
}

static int xf_add_sa(struct bw_sa_conn *c, const struct bw_sa_params *p)
{
	struct bw_cidr l, r;
	struct bw_xfrm_alg alg;
	struct xf_sa *sa = NULL;
	char a[64];

	if (p->spi == 0 || (p->dir != BW_SA_IN && p->dir != BW_SA_OUT) || p->keymat_len > sizeof(p->keymat) ||
	    !sockaddr_host(&p->local, &l) || !sockaddr_host(&p->remote, &r) || l.family != r.family)
		return -EINVAL;
	if (bw_xfrm_alg_map(&p->alg, &alg) < 0) {
		bw_p2_proposal_format(&p->alg, a, sizeof(a));
		bw_log(BW_LOG_ERROR, c->name, "SA %s 0x%08x: the kernel backend has no name for %s",
		       dir_name(p->dir), p->spi, a);
		return -EOPNOTSUPP;
	}
	if (p->keymat_len != bw_xfrm_keymat_len(&alg)) {
		bw_log(BW_LOG_ERROR, c->name, "SA %s 0x%08x: %zu bytes of keys, the algorithms need %zu",
		       dir_name(p->dir), p->spi, p->keymat_len, bw_xfrm_keymat_len(&alg));
		return -EINVAL;
	}
	if (sa_find(c, p->spi, p->dir))
		return -EEXIST;
	for (size_t i = 0; i < XF_MAX_SAS && !sa; i++)
		if (!c->sas[i].used)
			sa = &c->sas[i];
	if (!sa)
		return -ENOSPC;
	sa->used = true;
	sa->dir = p->dir;
	sa->spi = p->spi;
	sa->src = p->dir == BW_SA_OUT ? l : r;
	sa->dst = p->dir == BW_SA_OUT ? r : l;
	sa->pending = *p;
	bw_log(BW_LOG_DEBUG, c->name, "SA %s 0x%08x ready; installed with its policy", dir_name(p->dir), p->spi);
	return 0;
}

/* Record first, install second (a crash in between leaves a record of nothing, which
 * cleanup tolerates). The keys are wiped whatever happens. */
static int sa_install(struct bw_sa_conn *c, struct xf_sa *sa, uint32_t reqid)
{
	struct bw_xfrm_life life;
	struct nl_msg *m;
	struct xf_rec_sa *r;
	int err;

	if (c->rec.n_sas == XF_MAX_SAS)
		return -ENOSPC;
	r = &c->rec.sas[c->rec.n_sas++];
	r->dir = sa->dir;
	r->spi = sa->spi;
	r->dst = sa->dst;
	r->reqid = reqid;
	err = record_save(c);
	bw_xfrm_life_from(sa->pending.lifetime_s, 0, &life);
	if (err == 0)
		err = bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &sa->pending, reqid, &life, &m);
	if (err == 0)
		err = xf_transact(c->nl, m, NULL, NULL);
	OPENSSL_cleanse(&sa->pending.keymat, sizeof(sa->pending.keymat));
	if (err < 0) {
		c->rec.n_sas--;
		record_save(c);
		bw_log(BW_LOG_ERROR, c->name, "the kernel refused SA %s 0x%08x: %s", dir_name(sa->dir), sa->spi,
		       strerror(-err));
		return err;
	}
	sa->installed = true;
	sa->reqid = reqid;
	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x added (reqid 0x%08x%s, lifetime %us soft, %us hard)",
	       dir_name(sa->dir), sa->spi, reqid, sa->pending.udp_encap ? ", ESP in UDP" : "", life.soft_s,
	       life.hard_s);
	return 0;
}

static int xf_del_sa(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir)
{
	struct xf_sa *sa = sa_find(c, spi, dir);
	struct bw_xfrm_sa_info info;
	int err = 0;

	if (!sa)
		return -ENOENT;
	if (sa->installed) {
		if (sa_get(c->nl, &sa->dst, spi, &info) == 0)
			counters_retire(c, dir, &info);
		err = sa_delete(c->nl, &sa->dst, spi);
		if (err < 0 && err != -ENOENT) {
			bw_log(BW_LOG_ERROR, c->name, "cannot delete SA %s 0x%08x: %s", dir_name(dir), spi,
			       strerror(-err));
			return err;
		}
		rec_sa_drop(c, spi, &sa->dst);
	}
	sa_forget(sa);
	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x deleted", dir_name(dir), spi);
	return 0;
}

/* ---- policies ---- */

static struct xf_policy *policy_find(struct bw_sa_conn *c, const struct bw_cidr *l, const struct bw_cidr *r)
{
	for (size_t i = 0; i < XF_MAX_POLICIES / 3; i++)
		if (c->pols[i].used && sn_cidr_equal(&c->pols[i].local_ts, l) &&
		    sn_cidr_equal(&c->pols[i].remote_ts, r))
			return &c->pols[i];
	return NULL;
}

static uint32_t reqid_new(struct bw_sa_conn *c)
{
	for (;;) {
		uint32_t reqid;
		bool taken = false;

		c->next_slot = c->next_slot % 255 + 1;
		reqid = bw_xfrm_reqid(c->name, c->next_slot);
		for (size_t i = 0; i < XF_MAX_SAS; i++)
			taken = taken || (c->sas[i].installed && c->sas[i].reqid == reqid);
		for (size_t i = 0; i < XF_MAX_POLICIES / 3; i++)
			taken = taken || (c->pols[i].used && c->pols[i].reqid == reqid);
		if (!taken)
			return reqid;
	}
}

static int policies_install(struct bw_sa_conn *c, const struct bw_cidr *l, const struct bw_cidr *r,
			    const struct xf_sa *out, enum bw_ipsec_mode mode, uint32_t reqid)
{
	struct bw_xfrm_policy pols[3];
	char ls[64], rs[64];
	size_t done = 0;
	int err = 0;

	bw_xfrm_policies_for(l, r, &out->src, &out->dst, mode, reqid, pols);
	for (; done < 3 && err == 0; done++) {
		struct xf_rec_policy *rp;
		struct nl_msg *m;

		if (c->rec.n_pols == XF_MAX_POLICIES) {
			err = -ENOSPC;
			break;
		}
		rp = &c->rec.pols[c->rec.n_pols++];
		rp->dir = pols[done].dir;
		rp->src = pols[done].sel_src;
		rp->dst = pols[done].sel_dst;
		rp->reqid = reqid;
		err = record_save(c);
		if (err == 0)
			err = bw_xfrm_msg_policy(XFRM_MSG_NEWPOLICY, &pols[done], &m);
		if (err == 0)
			err = xf_transact(c->nl, m, NULL, NULL);
		if (err < 0) {
			c->rec.n_pols--;
			record_save(c);
			break;
		}
	}
	if (err == 0)
		return 0;
	sn_cidr_format(l, ls, sizeof(ls));
	sn_cidr_format(r, rs, sizeof(rs));
	if (err == -EEXIST)
		bw_log(BW_LOG_ERROR, c->name, "a kernel policy for %s <-> %s exists already and is not Burrow's; "
		       "another IPsec daemon (strongSwan, libreswan) may be running", ls, rs);
	else
		bw_log(BW_LOG_ERROR, c->name, "the kernel refused the policy %s %s <-> %s: %s",
		       xf_dir_name(pols[done < 3 ? done : 2].dir), ls, rs, strerror(-err));
	while (done-- > 0) {	/* the ones that went in */
		struct xf_rec_policy rp = { .dir = pols[done].dir, .src = pols[done].sel_src,
					    .dst = pols[done].sel_dst };
		if (policy_delete(c->nl, &rp) == 0)
			rec_policy_drop(c, &rp);
	}
	return err;
}

static int xf_add_policy(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			 const struct bw_cidr *remote_ts, uint32_t out_spi, uint32_t in_spi)
{
	struct xf_sa *out = sa_find(c, out_spi, BW_SA_OUT), *in = sa_find(c, in_spi, BW_SA_IN);
	struct xf_policy *pol;
	uint32_t reqid;
	char l[64], r[64];
	int err;

	if (!sn_cidr_valid(local_ts) || !sn_cidr_valid(remote_ts) || local_ts->family != remote_ts->family)
		return -EINVAL;
	if (!out || !in)
		return -ENOENT;
	if (out->pending.mode != in->pending.mode && !out->installed && !in->installed)
		return -EINVAL;
	sn_cidr_format(local_ts, l, sizeof(l));
	sn_cidr_format(remote_ts, r, sizeof(r));
	pol = policy_find(c, local_ts, remote_ts);
	/* One reqid per selector pair, kept across rekeys: the kernel sends with the newest SA
	 * of the reqid and accepts every SA of it, so a rekey changes no policy. */
	reqid = pol ? pol->reqid : in->installed ? in->reqid : out->installed ? out->reqid : reqid_new(c);
	if ((in->installed && in->reqid != reqid) || (out->installed && out->reqid != reqid)) {
		bw_log(BW_LOG_ERROR, c->name, "SAs 0x%08x/0x%08x already carry other networks than %s <-> %s",
		       out_spi, in_spi, l, r);
		return -EINVAL;
	}
	if (!pol) {
		for (size_t i = 0; i < XF_MAX_POLICIES / 3 && !pol; i++)
			if (!c->pols[i].used)
				pol = &c->pols[i];
		if (!pol)
			return -ENOSPC;
	}
	if (!in->installed && (err = sa_install(c, in, reqid)) < 0)
		return err;
	if (!out->installed && (err = sa_install(c, out, reqid)) < 0)
		return err;
	if (pol->used) {
		bw_log(BW_LOG_INFO, c->name, "policy %s <-> %s: out 0x%08x -> 0x%08x, in 0x%08x -> 0x%08x", l, r,
		       pol->out_spi, out_spi, pol->in_spi, in_spi);
	} else {
		err = policies_install(c, local_ts, remote_ts, out, out->pending.mode, reqid);
		if (err < 0)
			return err;
		pol->used = true;
		pol->local_ts = *local_ts;
		pol->remote_ts = *remote_ts;
		pol->reqid = reqid;
		bw_log(BW_LOG_INFO, c->name, "policies %s <-> %s (out, in, fwd; reqid 0x%08x): out 0x%08x, in 0x%08x",
		       l, r, reqid, out_spi, in_spi);
	}
	pol->out_spi = out_spi;
	pol->in_spi = in_spi;
	return 0;
}

static int xf_del_policy(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			 const struct bw_cidr *remote_ts)
{
	struct xf_policy *pol = policy_find(c, local_ts, remote_ts);
	struct bw_xfrm_policy pols[3];
	struct bw_cidr none = { .family = local_ts->family, .prefix = 0 };
	int first = 0;

	if (!pol)
		return -ENOENT;
	bw_xfrm_policies_for(local_ts, remote_ts, &none, &none, BW_MODE_TUNNEL, pol->reqid, pols);
	for (int i = 0; i < 3; i++) {
		struct xf_rec_policy rp = { .dir = pols[i].dir, .src = pols[i].sel_src, .dst = pols[i].sel_dst };
		int err = policy_delete(c->nl, &rp);
		if (err < 0 && err != -ENOENT && !first)
			first = err;
		if (err == 0 || err == -ENOENT)
			rec_policy_drop(c, &rp);
	}
	memset(pol, 0, sizeof(*pol));
	return first;
}

/* ---- counters ---- */

static int xf_counters(struct bw_sa_conn *c, struct bw_sa_counters *out)
{
	*out = c->retired;
	for (size_t i = 0; i < XF_MAX_SAS; i++) {
		struct xf_sa *sa = &c->sas[i];
		struct bw_xfrm_sa_info info;

		if (!sa->installed || sa_get(c->nl, &sa->dst, sa->spi, &info) < 0)
			continue;
		if (sa->dir == BW_SA_IN) {
			out->bytes_in += info.bytes;
			out->packets_in += info.packets;
			out->errors_in += (uint64_t)info.replay_drops + info.integrity_failed;
		} else {
			out->bytes_out += info.bytes;
			out->packets_out += info.packets;
		}
	}
	return 0;
}

static int xf_sa_packets(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir, uint64_t *packets)
{
	struct xf_sa *sa = sa_find(c, spi, dir);
	struct bw_xfrm_sa_info info;
	int err;

	if (!sa)
		return -ENOENT;
	*packets = 0;
	if (!sa->installed)
		return 0;	/* added but not yet given to the kernel: nothing went through it */
	if ((err = sa_get(c->nl, &sa->dst, sa->spi, &info)) < 0)
		return err;
	*packets = info.packets;
	return 0;
}

static int xf_input(struct bw_sa_conn *c, const uint8_t *pkt, size_t len)
{
	(void)pkt;
	(void)len;
	/* The kernel decrypts ESP itself; one reaching burrowd means the NAT-T socket was not
	 * switched to UDP_ENCAP_ESPINUDP (bw_xfrm_socket_espinudp). */
	if (!c->warned_input) {
		bw_log(BW_LOG_WARN, c->name, "an ESP packet reached burrowd instead of the kernel; the NAT-T "
		       "socket lacks UDP_ENCAP_ESPINUDP, so ESP in UDP cannot work with backend = xfrm");
		c->warned_input = true;
	}
	return -EOPNOTSUPP;
}

/* ---- kernel events ---- */

static int ev_valid(struct nl_msg *msg, void *arg)
{
	struct bw_sa_conn *c = arg;
	struct nlmsghdr *nlh = nlmsg_hdr(msg);
	struct xf_event e = { .type = nlh->nlmsg_type };
	int err;

	switch (nlh->nlmsg_type) {
	case XFRM_MSG_EXPIRE:
		err = bw_xfrm_parse_sa(nlh, &e.sa, &e.hard);
		break;
	case XFRM_MSG_DELSA:
		err = bw_xfrm_parse_delsa(nlh, &e.sa);
		break;
	case XFRM_MSG_FLUSHSA:
		err = 0;
		break;
	default:
		return NL_OK;
	}
	if (err < 0)
		return NL_OK;
	if (c->n_evq == XF_EVENTS_MAX) {
		c->evq_overflow = true;
		return NL_OK;
	}
	c->evq[c->n_evq++] = e;
	return NL_OK;
}

/* An SA the kernel no longer has: forget it and tell the owner (last: it may close c). */
static void sa_gone(struct bw_sa_conn *c, struct xf_sa *sa, const char *why)
{
	uint32_t spi = sa->spi;
	enum bw_sa_dir dir = sa->dir;

	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x %s; removed", dir_name(dir), spi, why);
	rec_sa_drop(c, spi, &sa->dst);
	sa_forget(sa);
	if (c->cbs.expired)
		c->cbs.expired(c->cbs.ctx, spi, dir, true);
}

static void ev_dispatch(struct bw_sa_conn *c, const struct xf_event *e)
{
	struct xf_sa *sa;

	if (e->type == XFRM_MSG_FLUSHSA) {
		/* Someone flushed the SA database: see which of ours went with it. */
		for (size_t i = 0; i < XF_MAX_SAS && !c->closing; i++) {
			struct bw_xfrm_sa_info info;
			sa = &c->sas[i];
			if (sa->installed && sa_get(c->nl, &sa->dst, sa->spi, &info) == -ESRCH)
				sa_gone(c, sa, "was flushed from the kernel");
		}
		return;
	}
	if (e->sa.proto != IPPROTO_ESP || !(sa = sa_find_dst(c, e->sa.spi, &e->sa.dst)))
		return;	/* not ours, or our own delete */
	if (e->type == XFRM_MSG_EXPIRE && !e->hard) {
		bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x reached its soft lifetime", dir_name(sa->dir), sa->spi);
		if (c->cbs.expired)
			c->cbs.expired(c->cbs.ctx, sa->spi, sa->dir, false);
		return;
	}
	counters_retire(c, sa->dir, &e->sa);
	sa_gone(c, sa, e->type == XFRM_MSG_EXPIRE ? "expired (hard)" : "was deleted by someone else");
}

static void conn_free(struct bw_sa_conn *c);

static void ev_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bw_sa_conn *c = bw_container_of(w, struct bw_sa_conn, ev_io);
	struct xf_event q[XF_EVENTS_MAX];
	size_t n;

	(void)loop;
	(void)revents;
	c->n_evq = 0;
	for (int i = 0; i < 16 && c->n_evq < XF_EVENTS_MAX; i++)
		if (nl_recvmsgs_default(c->nl_ev) < 0)
			break;
	if (c->evq_overflow) {
		bw_log(BW_LOG_WARN, c->name, "more kernel XFRM events than expected at once; some were skipped");
		c->evq_overflow = false;
	}
	n = c->n_evq;
	memcpy(q, c->evq, n * sizeof(q[0]));
	/* Callbacks may close the connection: the free waits until the last one returned. */
	c->dispatching = true;
	for (size_t i = 0; i < n && !c->closing; i++)
		ev_dispatch(c, &q[i]);
	c->dispatching = false;
	if (c->closing)
		conn_free(c);
}

static int events_open(struct bw_sa_conn *c)
{
	int rc;

	c->nl_ev = nl_socket_alloc();
	if (!c->nl_ev)
		return -ENOMEM;
	nl_socket_disable_seq_check(c->nl_ev);
	nl_socket_modify_cb(c->nl_ev, NL_CB_VALID, NL_CB_CUSTOM, ev_valid, c);
	rc = nl_connect(c->nl_ev, NETLINK_XFRM);
	if (rc == 0)
		rc = nl_socket_add_memberships(c->nl_ev, XFRMNLGRP_EXPIRE, XFRMNLGRP_SA, 0);
	if (rc == 0)
		rc = nl_socket_set_nonblocking(c->nl_ev);
	if (rc < 0)
		return nlerr(rc);
	ev_io_init(&c->ev_io, ev_read_cb, nl_socket_get_fd(c->nl_ev), EV_READ);
	ev_io_start(c->loop, &c->ev_io);
	return 0;
}

/* ---- the device, addresses, routes ---- */

static int dummy_create(struct nl_sock *rt, const char *ifname)
{
	struct rtnl_link *l = rtnl_link_alloc();
	int rc;

	if (!l)
		return -ENOMEM;
	rtnl_link_set_name(l, ifname);
	rc = rtnl_link_set_type(l, "dummy");
	if (rc == 0)
		rc = rtnl_link_add(rt, l, NLM_F_CREATE | NLM_F_EXCL);
	rtnl_link_put(l);
	return rc == -NLE_EXIST ? -EEXIST : rc == -NLE_OPNOTSUPP ? -EOPNOTSUPP : rc < 0 ? nlerr(rc) : 0;
}

/* Deletes ifname only when it is a dummy device (Burrow's kind); its addresses and routes go
 * with it. -ENOENT when there is none, -EINVAL when it is something else. */
static int dummy_remove(struct nl_sock *rt, const char *ifname)
{
	struct rtnl_link *l = NULL;
	const char *type;
	int rc = rtnl_link_get_kernel(rt, 0, ifname, &l);

	if (rc < 0)
		return -ENOENT;
	type = rtnl_link_get_type(l);
	if (!type || strcmp(type, "dummy") != 0)
		rc = -EINVAL;
	else
		rc = nlerr(rtnl_link_delete(rt, l));
	rtnl_link_put(l);
	return rc;
}

static int net_save(void *ctx)
{
	return record_save(ctx);
}

/* The addresses and routes of the record, for the code both backends share. */
static struct sn_net net_of(struct bw_sa_conn *c)
{
	return (struct sn_net){ .nl = c->rt, .conn = c->name, .ifindex = c->ifindex, .ifname = c->rec.ifname,
				.addrs = c->rec.addrs, .n_addrs = &c->rec.n_addrs, .routes = c->rec.routes,
				.n_routes = &c->rec.n_routes, .save = net_save, .ctx = c };
}

static int xf_set_address(struct bw_sa_conn *c, const struct bw_cidr *addr)
{
	struct sn_net n = net_of(c);

	return sn_net_add_address(&n, addr);
}

/* Routes through the dummy device only choose the source address: the kernel's policy
 * lookup then sends the packet through the SA. Without a policy, what the routes catch
 * goes nowhere instead of out in clear. */
static int xf_add_route(struct bw_sa_conn *c, const struct bw_cidr *net, const struct bw_cidr *src)
{
	struct sn_net n = net_of(c);

	return sn_net_add_routes(&n, net, src);
}

int bw_xfrm_route_exception(struct bw_sa_conn *c, const struct sockaddr *gateway)
{
	struct sn_net n = net_of(c);

	return sn_net_route_exception(&n, gateway);
}

static const char *xf_ifname(struct bw_sa_conn *c)
{
	return c->rec.ifname;
}

/* ---- undo ---- */

/* Removes what rec lists. With check_reqid (after a crash: the kernel may have been given
 * the same SPI or selector by someone else since), an SA or policy goes only when the
 * kernel still shows it with the recorded reqid, and that reqid carries Burrow's tag (a
 * damaged record must not aim at strongSwan's). */
static void undo_record(struct nl_sock *nl, struct nl_sock *rt, const char *conn, const struct xf_record *rec,
			bool check_reqid)
{
	char a[64], b[64];
	int err;

	for (size_t i = rec->n_pols; nl && i-- > 0;) {
		const struct xf_rec_policy *p = &rec->pols[i];
		if (check_reqid) {
			struct nl_msg *m;
			uint32_t reqid = 0;
			err = bw_xfrm_msg_policy_id(XFRM_MSG_GETPOLICY, p->dir, &p->src, &p->dst, &m);
			if (err == 0)
				err = xf_transact(nl, m, parse_policy_cb, &reqid);
			if (err < 0 || reqid != p->reqid || !bw_xfrm_reqid_is_ours(reqid))
				continue;
		}
		err = policy_delete(nl, p);
		if (err < 0 && err != -ENOENT) {
			sn_cidr_format(&p->src, a, sizeof(a));
			sn_cidr_format(&p->dst, b, sizeof(b));
			bw_log(BW_LOG_WARN, conn, "cannot remove policy %s %s -> %s: %s", xf_dir_name(p->dir), a, b,
			       strerror(-err));
		}
	}
	for (size_t i = rec->n_sas; nl && i-- > 0;) {
		const struct xf_rec_sa *s = &rec->sas[i];
		if (check_reqid) {
			struct bw_xfrm_sa_info info;
			if (sa_get(nl, &s->dst, s->spi, &info) < 0 || info.reqid != s->reqid ||
			    !bw_xfrm_reqid_is_ours(info.reqid))
				continue;
		}
		err = sa_delete(nl, &s->dst, s->spi);
		if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove SA %s 0x%08x: %s", s->dir == BW_SA_IN ? "in" : "out",
			       s->spi, strerror(-err));
	}
	/* Exceptions sit on other interfaces; the rest leave with the device. */
	for (size_t i = rec->n_routes; rt && i-- > 0;) {
		const struct sn_route *r = &rec->routes[i];
		if (!r->exception)
			continue;
		err = sn_route_del(rt, r);
		sn_cidr_format(&r->dst, a, sizeof(a));
		if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove route %s dev %s: %s", a, r->ifname, strerror(-err));
	}
	if (rt && rec->ifname[0]) {
		err = dummy_remove(rt, rec->ifname);
		if (err == -EINVAL)
			bw_log(BW_LOG_WARN, conn, "%s exists but is not a dummy device; leaving it alone", rec->ifname);
		else if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove %s: %s", rec->ifname, strerror(-err));
	}
}

static void conn_free(struct bw_sa_conn *c)
{
	OPENSSL_cleanse(c->sas, sizeof(c->sas));
	free(c);
}

static void xf_conn_close(struct bw_sa_conn *c)
{
	bool had_dev;

	if (!c || c->closing)
		return;
	c->closing = true;
	if (c->nl_ev) {
		ev_io_stop(c->loop, &c->ev_io);
		nl_socket_free(c->nl_ev);
		c->nl_ev = NULL;
	}
	had_dev = c->ifindex > 0;
	undo_record(c->nl, c->rt, c->name, &c->rec, false);
	if (c->record_path[0] && unlink(c->record_path) < 0 && errno != ENOENT)
		bw_log(BW_LOG_WARN, c->name, "cannot remove %s: %s", c->record_path, strerror(errno));
	if (c->nl)
		nl_socket_free(c->nl);
	if (c->rt)
		sn_nl_close(c->rt);
	c->nl = c->rt = NULL;
	if (had_dev)
		bw_log(BW_LOG_INFO, c->name, "kernel SAs and policies removed, %s removed", c->rec.ifname);
	if (!c->dispatching)
		conn_free(c);
}

static void xf_cleanup_stale(const char *conn_name, const char *state_dir)
{
	char path[PATH_MAX];
	struct xf_record *rec;
	struct nl_sock *nl = NULL, *rt = NULL;
	int err;

	if (xf_record_path(state_dir, conn_name, path, sizeof(path)) < 0)
		return;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return;
	err = xf_record_read(path, rec);
	if (err == -ENOENT)
		goto out;
	if (err < 0) {
		bw_log(BW_LOG_WARN, conn_name, "cannot read %s: %s", path, strerror(-err));
		goto out;
	}
	bw_log(BW_LOG_INFO, conn_name, "undoing what a previous run left in %s", path);
	if (xf_nl_open(&nl) < 0)
		nl = NULL;
	if (sn_nl_open(&rt) < 0)
		rt = NULL;
	undo_record(nl, rt, conn_name, rec, true);
	if (nl)
		nl_socket_free(nl);
	if (rt)
		sn_nl_close(rt);
	if (unlink(path) < 0 && errno != ENOENT)
		bw_log(BW_LOG_WARN, conn_name, "cannot remove %s: %s", path, strerror(errno));
out:
	free(rec);
}

static int xf_conn_open(struct ev_loop *loop, const char *conn_name, const char *state_dir,
			const struct bw_sa_conn_cbs *cbs, struct bw_sa_conn **out)
{
	struct bw_sa_conn *c;
	int err;

	if (!conn_name[0] || strlen(conn_name) >= BW_NAME_MAX || strchr(conn_name, '/'))
		return -EINVAL;
	if (access(state_dir, W_OK) < 0)
		return -errno;
	xf_cleanup_stale(conn_name, state_dir);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->cbs = *cbs;
	bw_strlcpy(c->name, conn_name, sizeof(c->name));
	sn_ifname(conn_name, c->rec.ifname);
	err = xf_record_path(state_dir, conn_name, c->record_path, sizeof(c->record_path));
	if (err == 0)
		err = xf_nl_open(&c->nl);
	if (err == 0)
		err = sn_nl_open(&c->rt);
	if (err == 0)
		err = events_open(c);
	if (err == 0)
		err = record_save(c);
	if (err < 0)
		goto fail;
	err = dummy_create(c->rt, c->rec.ifname);
	if (err < 0) {
		bw_log(BW_LOG_ERROR, c->name, "cannot create the dummy device %s: %s%s", c->rec.ifname,
		       strerror(-err), err == -EEXIST ? " (it exists and is not Burrow's)" :
		       err == -EOPNOTSUPP ? " (the kernel needs CONFIG_DUMMY, module dummy)" : "");
		if (err == -EEXIST)
			c->rec.ifname[0] = '\0';	/* not ours: close must leave it */
		goto fail;
	}
	err = sn_link_setup(c->rt, c->rec.ifname, XF_DUMMY_MTU);
	if (err < 0) {
		bw_log(BW_LOG_ERROR, c->name, "cannot bring %s up: %s", c->rec.ifname, strerror(-err));
		goto fail;
	}
	c->ifindex = err;
	bw_log(BW_LOG_INFO, c->name, "kernel datapath (xfrm), addresses and routes on %s", c->rec.ifname);
	*out = c;
	return 0;
fail:
	xf_conn_close(c);
	return err;
}

/* ---- the probe and the socket hooks ---- */

static int probe_once(void)
{
	struct bw_sa_params p = { .dir = BW_SA_OUT, .mode = BW_MODE_TUNNEL, .udp_encap = true,
				  .lifetime_s = 30 };
	struct sockaddr_in l = { .sin_family = AF_INET, .sin_port = htons(4500) };
	struct sockaddr_in r = l;
	struct bw_cidr dst = { .family = AF_INET, .prefix = 32 };
	struct bw_xfrm_life life;
	struct nl_sock *nl;
	struct nl_msg *m;
	int err = -EEXIST;

	if ((err = xf_nl_open(&nl)) < 0)
		return err;
	/* A test SA between two loopback addresses that nothing uses; it holds a zero key and
	 * dies on its own after 30 s should this process be killed before deleting it. */
	l.sin_addr.s_addr = htonl(0x7f000001);
	r.sin_addr.s_addr = htonl(0x7f0000fe);
	memcpy(&p.local, &l, sizeof(l));
	memcpy(&p.remote, &r, sizeof(r));
	memcpy(dst.addr, &r.sin_addr, 4);
	p.alg = (struct bw_p2_proposal){ .encr = BW_ESP_AES_CBC, .key_bits = 128,
					 .auth = BW_ESP_AUTH_HMAC_SHA256 };
	p.keymat_len = 16 + 32;
	bw_xfrm_life_from(p.lifetime_s, 0, &life);
	err = -EEXIST;
	for (int tries = 0; tries < 4 && err == -EEXIST; tries++) {
		if (RAND_bytes((unsigned char *)&p.spi, sizeof(p.spi)) != 1)
			p.spi = (uint32_t)getpid() << 8;
		p.spi |= 0x100;		/* 1-255 are reserved */
		err = bw_xfrm_msg_sa(XFRM_MSG_NEWSA, &p, bw_xfrm_reqid("burrow-probe", 0), &life, &m);
		if (err == 0)
			err = xf_transact(nl, m, NULL, NULL);
	}
	if (err == 0)
		sa_delete(nl, &dst, p.spi);
	nl_socket_free(nl);
	return err;
}

int bw_xfrm_probe(char *why, size_t len)
{
	static bool done;
	static int result;

	if (!done) {
		result = probe_once();
		done = true;
	}
	bw_xfrm_probe_reason(result, why, len);
	return result;
}

int bw_xfrm_socket_bypass(int fd, int family)
{
	struct xfrm_userpolicy_info pol = { 0 };
	int level, opt;

	if (family == AF_INET)
		level = IPPROTO_IP, opt = IP_XFRM_POLICY;
	else if (family == AF_INET6)
		level = IPPROTO_IPV6, opt = IPV6_XFRM_POLICY;
	else
		return -EAFNOSUPPORT;
	pol.action = XFRM_POLICY_ALLOW;
	pol.sel.family = (uint16_t)family;
	pol.lft.soft_byte_limit = pol.lft.hard_byte_limit = XFRM_INF;
	pol.lft.soft_packet_limit = pol.lft.hard_packet_limit = XFRM_INF;
	pol.dir = XFRM_POLICY_OUT;
	if (setsockopt(fd, level, opt, &pol, sizeof(pol)) < 0)
		return -errno;
	pol.dir = XFRM_POLICY_IN;
	if (setsockopt(fd, level, opt, &pol, sizeof(pol)) < 0)
		return -errno;
	return 0;
}

int bw_xfrm_socket_espinudp(int fd)
{
	int type = UDP_ENCAP_ESPINUDP;

	return setsockopt(fd, IPPROTO_UDP, UDP_ENCAP, &type, sizeof(type)) < 0 ? -errno : 0;
}

/* IKE must bypass every policy (host-to-everywhere would otherwise swallow it), and the
 * kernel takes ESP in UDP off the NAT-T socket. */
static int xf_prepare_ike_socket(int fd, bool natt)
{
	int rc = bw_xfrm_socket_bypass(fd, AF_INET);

	return rc == 0 && natt ? bw_xfrm_socket_espinudp(fd) : rc;
}

const struct bw_sa_backend_ops bw_sa_backend_xfrm = {
	.name = "xfrm",
	.caps = BW_SA_CAP_KERNEL_ESP,
	.prepare_ike_socket = xf_prepare_ike_socket,
	.conn_open = xf_conn_open,
	.add_sa = xf_add_sa,
	.del_sa = xf_del_sa,
	.add_policy = xf_add_policy,
	.del_policy = xf_del_policy,
	.set_address = xf_set_address,
	.add_route = xf_add_route,
	.route_exception = bw_xfrm_route_exception,
	.input = xf_input,
	.counters = xf_counters,
	.sa_packets = xf_sa_packets,
	.ifname = xf_ifname,
	.conn_close = xf_conn_close,
	.cleanup_stale = xf_cleanup_stale,
};

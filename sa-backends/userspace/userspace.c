/* The userspace SA backend: one TUN device per connection, ESP (RFC 4303) done in this
 * process, the outbound selector table and the inbound policy check of RFC 4301. */
#include "sa-backends/userspace/userspace.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/if_tun.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "log.h"
#include "sa-backends/userspace/transport.h"
#include "sa-backends/userspace/tun_offload.h"
#include "sa-backends/common/sysnet.h"
#include "util.h"

#ifndef TUN_F_USO4	/* Linux 6.2; older headers lack them */
#define TUN_F_USO4 0x20
#define TUN_F_USO6 0x40
#endif

#define US_MAX_SAS 64		/* both directions, old and new during rekeys */
#define US_MAX_POLICIES 32
#define US_MAX_SA_SELECTORS 16	/* selector pairs one inbound SA may carry */
#define US_PKT_MAX 65535
/* One TUN read with offloads: the vnet header and an IPv6 super-packet of 40 + 65535. */
#define US_TUN_READ_MAX (TUN_VNET_HDR_LEN + 40 + TUN_PKT_MAX)

#define NH_IPV4 4
#define NH_IPV6 41
#define NH_NONE 59		/* dummy packet (RFC 4303 2.6): discard silently */

struct us_selector {
	struct bw_cidr local_ts, remote_ts;
};

struct us_sa {
	bool used;
	enum bw_sa_dir dir;
	uint32_t spi;
	struct bw_esp_sa *esp;
	struct bw_sa_counters cnt;
	ev_timer lifetime;		/* hard lifetime; also fires at once when seq runs out */
	/* Inbound: the selector pairs this SA was bound to by add_policy. They stay with the
	 * SA when a rekey points the policy at a newer SA, so the old SA keeps accepting
	 * its traffic until it is deleted (make-before-break). */
	struct us_selector sel[US_MAX_SA_SELECTORS];
	size_t n_sel;
	/* Transport mode (IPv4): the IP header is stripped on the way out and rebuilt from these
	 * on the way in, from the peer to this host. */
	bool transport;
	uint8_t peer4[4], local4[4];
	uint16_t ip_id;
};

struct us_policy {
	bool used;
	struct us_selector sel;
	uint32_t out_spi, in_spi;
};

struct bw_sa_conn {
	struct ev_loop *loop;
	ev_io tun_io;
	int tun_fd;
	int ifindex;
	char name[BW_NAME_MAX];
	char record_path[PATH_MAX];
	struct bw_sa_conn_cbs cbs;
	struct nl_sock *nl;
	struct sn_record rec;		/* what is installed; mirrored in record_path */

	struct us_sa sas[US_MAX_SAS];
	struct us_policy pols[US_MAX_POLICIES];
	/* Totals of deleted SAs and drops that no SA can be blamed for: counters() adds the
	 * live SAs, so the totals survive rekeys. */
	struct bw_sa_counters retired;

	/* TUN offloads (IFF_VNET_HDR + TSO/USO): every read and write carries a vnet header,
	 * reads may be 64 KiB super-packets that output() gets segment by segment, and
	 * bw_us_input_burst coalesces TCP segments through gro into super-packets. */
	bool vnet;
	struct tun_gro *gro;		/* only while a burst runs, allocated on the first */
	bool in_burst;

	uint8_t pkt[US_PKT_MAX];			/* cleartext: wiped on close */
	uint8_t esp[US_PKT_MAX + BW_ESP_MAX_OVERHEAD];
	uint8_t tun_in[US_TUN_READ_MAX];		/* cleartext too (vnet reads only) */
};

static const char *dir_name(enum bw_sa_dir d)
{
	return d == BW_SA_IN ? "in" : "out";
}

/* ---- interface name ---- */

/* ---- the record ---- */

static int record_save(struct bw_sa_conn *c)
{
	int err = sn_record_write(c->record_path, c->name, &c->rec);

	if (err < 0)
		bw_log(BW_LOG_ERROR, c->name, "cannot write %s: %s", c->record_path,
		       strerror(-err));
	return err;
}

static int net_save(void *ctx)
{
	return record_save(ctx);
}

/* The addresses and routes of the record, for the code both backends share. */
static struct sn_net net_of(struct bw_sa_conn *c)
{
	return (struct sn_net){ .nl = c->nl, .conn = c->name, .ifindex = c->ifindex, .ifname = c->rec.ifname,
				.addrs = c->rec.addrs, .n_addrs = &c->rec.n_addrs, .routes = c->rec.routes,
				.n_routes = &c->rec.n_routes, .save = net_save, .ctx = c };
}

/* ---- SAs ---- */

static struct us_sa *sa_find(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir)
{
	for (size_t i = 0; i < US_MAX_SAS; i++)
		if (c->sas[i].used && c->sas[i].spi == spi && c->sas[i].dir == dir)
			return &c->sas[i];
	return NULL;
}

static void counters_add(struct bw_sa_counters *to, const struct bw_sa_counters *from)
{
	to->bytes_in += from->bytes_in;
	to->bytes_out += from->bytes_out;
	to->packets_in += from->packets_in;
	to->packets_out += from->packets_out;
	to->errors_in += from->errors_in;
	to->errors_out += from->errors_out;
}

static void sa_release(struct bw_sa_conn *c, struct us_sa *sa)
{
	ev_timer_stop(c->loop, &sa->lifetime);
	counters_add(&c->retired, &sa->cnt);
	bw_esp_sa_free(sa->esp);	/* wipes the keys */
	memset(sa, 0, sizeof(*sa));
}

static void sa_lifetime_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct us_sa *sa = bw_container_of(w, struct us_sa, lifetime);
	struct bw_sa_conn *c = w->data;
	uint32_t spi = sa->spi;
	enum bw_sa_dir dir = sa->dir;

	(void)loop;
	(void)revents;
	/* Like the kernel: a hard expiry removes the SA, then tells the owner. */
	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x expired (hard); removed", dir_name(dir), spi);
	sa_release(c, sa);
	if (c->cbs.expired)
		c->cbs.expired(c->cbs.ctx, spi, dir, true);
}

static int us_add_sa(struct bw_sa_conn *c, const struct bw_sa_params *p)
{
	struct us_sa *sa = NULL;

	if (p->mode == BW_MODE_TRANSPORT &&
	    (p->local.ss_family != AF_INET || p->remote.ss_family != AF_INET)) {
		bw_log(BW_LOG_ERROR, c->name,
		       "transport mode on the userspace datapath carries IPv4 between two IPv4 hosts only");
		return -EOPNOTSUPP;
	}
	if (p->spi == 0 || p->keymat_len > sizeof(p->keymat) ||
	    (p->dir != BW_SA_IN && p->dir != BW_SA_OUT))
		return -EINVAL;
	if (sa_find(c, p->spi, p->dir))
		return -EEXIST;
	for (size_t i = 0; i < US_MAX_SAS && !sa; i++)
		if (!c->sas[i].used)
			sa = &c->sas[i];
	if (!sa)
		return -ENOSPC;
	sa->esp = bw_esp_sa_new(p->dir == BW_SA_IN ? BW_ESP_IN : BW_ESP_OUT, p->spi, &p->alg,
				p->keymat, p->keymat_len);
	if (!sa->esp) {
		bw_log(BW_LOG_ERROR, c->name, "SA %s 0x%08x: algorithm or key length (%zu) not usable",
		       dir_name(p->dir), p->spi, p->keymat_len);
		return -EINVAL;
	}
	sa->used = true;
	sa->dir = p->dir;
	sa->spi = p->spi;
	sa->transport = p->mode == BW_MODE_TRANSPORT;
	if (sa->transport) {
		memcpy(sa->peer4, &((const struct sockaddr_in *)&p->remote)->sin_addr, 4);
		memcpy(sa->local4, &((const struct sockaddr_in *)&p->local)->sin_addr, 4);
		RAND_bytes((uint8_t *)&sa->ip_id, sizeof(sa->ip_id));
	}
	ev_timer_init(&sa->lifetime, sa_lifetime_cb, (ev_tstamp)p->lifetime_s, 0.);
	sa->lifetime.data = c;
	if (p->lifetime_s)
		ev_timer_start(c->loop, &sa->lifetime);
	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x added", dir_name(p->dir), p->spi);
	return 0;
}

static int us_del_sa(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir)
{
	struct us_sa *sa = sa_find(c, spi, dir);

	if (!sa)
		return -ENOENT;
	sa_release(c, sa);
	bw_log(BW_LOG_INFO, c->name, "SA %s 0x%08x deleted", dir_name(dir), spi);
	return 0;
}

/* ---- policies ---- */

static bool selector_equal(const struct us_selector *a, const struct us_selector *b)
{
	return sn_cidr_equal(&a->local_ts, &b->local_ts) &&
	       sn_cidr_equal(&a->remote_ts, &b->remote_ts);
}

static void sa_bind(struct us_sa *sa, const struct us_selector *sel)
{
	for (size_t i = 0; i < sa->n_sel; i++)
		if (selector_equal(&sa->sel[i], sel))
			return;
	if (sa->n_sel < US_MAX_SA_SELECTORS)
		sa->sel[sa->n_sel++] = *sel;
}

static void sa_unbind_all(struct bw_sa_conn *c, const struct us_selector *sel)
{
	for (size_t i = 0; i < US_MAX_SAS; i++) {
		struct us_sa *sa = &c->sas[i];
		for (size_t j = 0; sa->used && j < sa->n_sel; j++)
			if (selector_equal(&sa->sel[j], sel)) {
				sa->sel[j] = sa->sel[--sa->n_sel];
				break;
			}
	}
}

static struct us_policy *policy_find(struct bw_sa_conn *c, const struct us_selector *sel)
{
	for (size_t i = 0; i < US_MAX_POLICIES; i++)
		if (c->pols[i].used && selector_equal(&c->pols[i].sel, sel))
			return &c->pols[i];
	return NULL;
}

static int us_add_policy(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			 const struct bw_cidr *remote_ts, uint32_t out_spi, uint32_t in_spi)
{
	struct us_selector sel = { *local_ts, *remote_ts };
	struct us_sa *in = sa_find(c, in_spi, BW_SA_IN);
	struct us_policy *pol;
	char l[64], r[64];

	if (!sn_cidr_valid(local_ts) || !sn_cidr_valid(remote_ts) ||
	    local_ts->family != remote_ts->family)
		return -EINVAL;
	if (!sa_find(c, out_spi, BW_SA_OUT) || !in)
		return -ENOENT;
	if (in->n_sel == US_MAX_SA_SELECTORS)
		return -ENOSPC;
	sn_cidr_format(local_ts, l, sizeof(l));
	sn_cidr_format(remote_ts, r, sizeof(r));
	pol = policy_find(c, &sel);
	if (pol) {
		/* A rekey: the newest SAs take over; the old inbound SA keeps its binding. */
		bw_log(BW_LOG_INFO, c->name, "policy %s <-> %s: out 0x%08x -> 0x%08x, in 0x%08x -> 0x%08x",
		       l, r, pol->out_spi, out_spi, pol->in_spi, in_spi);
	} else {
		for (size_t i = 0; i < US_MAX_POLICIES && !pol; i++)
			if (!c->pols[i].used)
				pol = &c->pols[i];
		if (!pol)
			return -ENOSPC;
		pol->used = true;
		pol->sel = sel;
		bw_log(BW_LOG_INFO, c->name, "policy %s <-> %s: out 0x%08x, in 0x%08x", l, r,
		       out_spi, in_spi);
	}
	pol->out_spi = out_spi;
	pol->in_spi = in_spi;
	sa_bind(in, &sel);
	return 0;
}

static int us_del_policy(struct bw_sa_conn *c, const struct bw_cidr *local_ts,
			 const struct bw_cidr *remote_ts)
{
	struct us_selector sel = { *local_ts, *remote_ts };
	struct us_policy *pol = policy_find(c, &sel);

	if (!pol)
		return -ENOENT;
	memset(pol, 0, sizeof(*pol));
	sa_unbind_all(c, &sel);
	return 0;
}

/* ---- the datapath ---- */

/* The addresses of an inner IP packet, after checking that its header is whole and its
 * length field agrees with what we hold. *len is trimmed to the IP length (an ESP
 * payload may carry TFC padding after it, RFC 4303 2.7). */
struct us_ip {
	sa_family_t family;
	uint8_t src[16], dst[16];
};

static int ip_parse(const uint8_t *pkt, size_t *len, struct us_ip *ip)
{
	if (*len < 1)
		return -EINVAL;
	if (pkt[0] >> 4 == 4) {
		size_t ihl, tot;
		if (*len < 20)
			return -EINVAL;
		ihl = (size_t)(pkt[0] & 0xf) * 4;
		tot = (size_t)pkt[2] << 8 | pkt[3];
		if (ihl < 20 || tot < ihl || tot > *len)
			return -EINVAL;
		ip->family = AF_INET;
		memcpy(ip->src, pkt + 12, 4);
		memcpy(ip->dst, pkt + 16, 4);
		*len = tot;
		return 0;
	}
	if (pkt[0] >> 4 == 6) {
		size_t plen;
		if (*len < 40)
			return -EINVAL;
		plen = (size_t)pkt[4] << 8 | pkt[5];
		if (plen == 0 || 40 + plen > *len)	/* no jumbograms */
			return -EINVAL;
		ip->family = AF_INET6;
		memcpy(ip->src, pkt + 8, 16);
		memcpy(ip->dst, pkt + 24, 16);
		*len = 40 + plen;
		return 0;
	}
	return -EPROTONOSUPPORT;
}

/* The policy for an outbound packet: the most specific remote_ts, then local_ts. */
static struct us_policy *policy_match(struct bw_sa_conn *c, const struct us_ip *ip)
{
	struct us_policy *best = NULL;

	for (size_t i = 0; i < US_MAX_POLICIES; i++) {
		struct us_policy *p = &c->pols[i];
		if (!p->used || !sn_cidr_contains(&p->sel.local_ts, ip->family, ip->src) ||
		    !sn_cidr_contains(&p->sel.remote_ts, ip->family, ip->dst))
			continue;
		if (!best || p->sel.remote_ts.prefix > best->sel.remote_ts.prefix ||
		    (p->sel.remote_ts.prefix == best->sel.remote_ts.prefix &&
		     p->sel.local_ts.prefix > best->sel.local_ts.prefix))
			best = p;
	}
	return best;
}

static void output(struct bw_sa_conn *c, const uint8_t *pkt, size_t len)
{
	struct us_policy *pol;
	struct us_sa *sa;
	struct us_ip ip;
	size_t out_len;
	int err;

	if (ip_parse(pkt, &len, &ip) < 0) {
		c->retired.errors_out++;
		return;
	}
	pol = policy_match(c, &ip);
	sa = pol ? sa_find(c, pol->out_spi, BW_SA_OUT) : NULL;
	if (!sa) {
		bw_log(BW_LOG_TRACE, c->name, "outbound packet matches no policy with an SA; dropped");
		c->retired.errors_out++;
		return;
	}
	if (sa->transport) {
		/* Only the payload travels; its protocol is the next header. */
		size_t hl = 0;
		uint8_t proto = 0;

		err = us_transport_strip(pkt, len, &hl, &proto);
		if (err < 0) {
			bw_log(BW_LOG_DEBUG, c->name, "SA out 0x%08x: %s cannot travel in transport mode; dropped",
			       sa->spi, err == -EMSGSIZE ? "a fragment" : "this packet");
			sa->cnt.errors_out++;
			return;
		}
		err = bw_esp_encap(sa->esp, pkt + hl, len - hl, proto, c->esp, sizeof(c->esp), &out_len);
	} else {
		err = bw_esp_encap(sa->esp, pkt, len, ip.family == AF_INET ? NH_IPV4 : NH_IPV6,
				   c->esp, sizeof(c->esp), &out_len);
	}
	if (err != BW_ESP_OK) {
		sa->cnt.errors_out++;
		if (err == BW_ESP_ERR_SEQ_EXHAUSTED && !ev_is_pending(&sa->lifetime)) {
			/* The SA cannot send any more: expire it from the loop, not from here. */
			ev_timer_stop(c->loop, &sa->lifetime);
			ev_timer_set(&sa->lifetime, 0., 0.);
			ev_timer_start(c->loop, &sa->lifetime);
		}
		bw_log(BW_LOG_DEBUG, c->name, "SA out 0x%08x: %s", sa->spi, bw_esp_strerror(err));
		return;
	}
	if (!c->cbs.send_esp || c->cbs.send_esp(c->cbs.ctx, c->esp, out_len) < 0) {
		sa->cnt.errors_out++;
		return;
	}
	sa->cnt.bytes_out += len;
	sa->cnt.packets_out++;
}

static void segment_cb(void *ctx, uint8_t *pkt, size_t len)
{
	output(ctx, pkt, len);
}

/* A read with a vnet header: one packet, or a super-packet that leaves as its segments. */
static void output_vnet(struct bw_sa_conn *c, size_t n)
{
	struct tun_vnet h;

	if (tun_vnet_parse(c->tun_in, n, &h) < 0 ||
	    tun_segment(&h, c->tun_in + TUN_VNET_HDR_LEN, n - TUN_VNET_HDR_LEN, c->pkt,
			sizeof(c->pkt), segment_cb, c) < 0) {
		bw_log(BW_LOG_DEBUG, c->name, "%s: a read of %zu bytes has a vnet header that does "
		       "not fit its packet; dropped", c->rec.ifname, n);
		c->retired.errors_out++;
	}
}

static void tun_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bw_sa_conn *c = bw_container_of(w, struct bw_sa_conn, tun_io);

	(void)loop;
	(void)revents;
	for (int i = 0; i < BW_US_READ_BATCH; i++) {
		uint8_t *buf = c->vnet ? c->tun_in : c->pkt;
		size_t cap = c->vnet ? sizeof(c->tun_in) : sizeof(c->pkt);
		ssize_t n = read(c->tun_fd, buf, cap);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				bw_log(BW_LOG_WARN, c->name, "reading %s: %s", c->rec.ifname,
				       strerror(errno));
			break;
		}
		if (c->vnet)
			output_vnet(c, (size_t)n);
		else
			output(c, c->pkt, (size_t)n);
	}
	/* What send_esp queued during this batch leaves now, together. */
	if (c->cbs.flush_esp)
		c->cbs.flush_esp(c->cbs.ctx);
}

/* One write to the device: with offloads, the vnet header goes in front. */
static int tun_write(struct bw_sa_conn *c, const uint8_t hdr[TUN_VNET_HDR_LEN],
		     const uint8_t *pkt, size_t len)
{
	struct iovec iov[2] = { { (void *)hdr, TUN_VNET_HDR_LEN }, { (void *)pkt, len } };
	size_t want = c->vnet ? TUN_VNET_HDR_LEN + len : len;
	ssize_t n;

	errno = 0;
	n = c->vnet ? writev(c->tun_fd, iov, 2) : write(c->tun_fd, pkt, len);
	if (n != (ssize_t)want)
		return errno ? -errno : -EIO;
	return 0;
}

/* From the coalescer: the packets it stands for were counted by their SAs when accepted,
 * so a failed write can only be blamed on the connection. */
static int gro_emit_cb(void *ctx, const uint8_t hdr[TUN_VNET_HDR_LEN], const uint8_t *pkt,
		       size_t len, unsigned n_segs)
{
	struct bw_sa_conn *c = ctx;
	int err = tun_write(c, hdr, pkt, len);

	if (err < 0)
		c->retired.errors_in += n_segs;
	return err;
}

static bool inbound_allowed(const struct us_sa *sa, const struct us_ip *ip)
{
	for (size_t i = 0; i < sa->n_sel; i++)
		if (sn_cidr_contains(&sa->sel[i].remote_ts, ip->family, ip->src) &&
		    sn_cidr_contains(&sa->sel[i].local_ts, ip->family, ip->dst))
			return true;
	return false;
}

static int us_input(struct bw_sa_conn *c, const uint8_t *pkt, size_t len)
{
	uint32_t spi = bw_esp_peek_spi(pkt, len);
	struct us_sa *sa = spi ? sa_find(c, spi, BW_SA_IN) : NULL;
	struct us_ip ip;
	size_t plen, hroom;
	uint8_t nh;
	int err;

	if (!sa) {
		bw_log(BW_LOG_TRACE, c->name, "ESP packet for unknown SPI 0x%08x; dropped", spi);
		c->retired.errors_in++;
		return spi ? -ENOENT : -EINVAL;
	}
	/* Transport mode leaves room in front for the IP header it rebuilds. */
	hroom = sa->transport ? US_TRANSPORT_HDR : 0;
	err = bw_esp_decap(sa->esp, pkt, len, c->pkt + hroom, sizeof(c->pkt) - hroom, &plen, &nh);
	if (err != BW_ESP_OK) {
		bw_log(BW_LOG_DEBUG, c->name, "SA in 0x%08x: %s", spi, bw_esp_strerror(err));
		sa->cnt.errors_in++;
		return err == BW_ESP_ERR_SPACE ? -EMSGSIZE : -EBADMSG;
	}
	if (nh == NH_NONE)
		return 0;
	if (sa->transport) {
		if (us_transport_rebuild(c->pkt, plen, sa->peer4, sa->local4, nh, sa->ip_id++, &plen) < 0) {
			bw_log(BW_LOG_DEBUG, c->name, "SA in 0x%08x: a transport payload (protocol %u) with a "
			       "broken header; dropped", spi, nh);
			sa->cnt.errors_in++;
			return -EPROTO;
		}
		nh = NH_IPV4;
	}
	if ((nh != NH_IPV4 && nh != NH_IPV6) || ip_parse(c->pkt, &plen, &ip) < 0 ||
	    (nh == NH_IPV4) != (ip.family == AF_INET)) {
		sa->cnt.errors_in++;
		return -EPROTO;
	}
	/* RFC 4301 5.2: what arrives on an SA must be traffic that SA was negotiated for. */
	if (!inbound_allowed(sa, &ip)) {
		char s[INET6_ADDRSTRLEN], d[INET6_ADDRSTRLEN];
		inet_ntop(ip.family, ip.src, s, sizeof(s));
		inet_ntop(ip.family, ip.dst, d, sizeof(d));
		bw_log(BW_LOG_DEBUG, c->name, "SA in 0x%08x: %s -> %s is outside its selectors; dropped",
		       spi, s, d);
		sa->cnt.errors_in++;
		return -EPERM;
	}
	if (c->in_burst) {
		/* held at most until bw_us_input_burst returns; counted as carried now */
		tun_gro_add(c->gro, c->pkt, plen, gro_emit_cb, c);
	} else {
		static const uint8_t no_offload[TUN_VNET_HDR_LEN];
		err = tun_write(c, no_offload, c->pkt, plen);
		if (err < 0) {
			sa->cnt.errors_in++;
			return err;
		}
	}
	sa->cnt.bytes_in += plen;
	sa->cnt.packets_in++;
	return 0;
}

size_t bw_us_input_burst(struct bw_sa_conn *c, const struct iovec *pkts, size_t n, int *errs)
{
	size_t dropped = 0;

	if (c->vnet && !c->gro)
		c->gro = tun_gro_new();	/* without it, the packets go one by one */
	c->in_burst = c->vnet && c->gro;
	for (size_t i = 0; i < n; i++) {
		int err = us_input(c, pkts[i].iov_base, pkts[i].iov_len);
		if (errs)
			errs[i] = err;
		dropped += err < 0;
	}
	if (c->in_burst)
		tun_gro_flush(c->gro, gro_emit_cb, c);
	c->in_burst = false;
	return dropped;
}

static int us_counters(struct bw_sa_conn *c, struct bw_sa_counters *out)
{
	*out = c->retired;
	for (size_t i = 0; i < US_MAX_SAS; i++)
		if (c->sas[i].used)
			counters_add(out, &c->sas[i].cnt);
	return 0;
}

/* ---- addresses and routes ---- */

static int us_set_address(struct bw_sa_conn *c, const struct bw_cidr *addr)
{
	struct sn_net n = net_of(c);

	return sn_net_add_address(&n, addr);
}

static int us_add_route(struct bw_sa_conn *c, const struct bw_cidr *net, const struct bw_cidr *src)
{
	struct sn_net n = net_of(c);

	return sn_net_add_routes(&n, net, src);
}

int bw_us_route_exception(struct bw_sa_conn *c, const struct sockaddr *gateway)
{
	struct sn_net n = net_of(c);

	return sn_net_route_exception(&n, gateway);
}

int bw_us_transport_route(struct bw_sa_conn *c, const struct bw_cidr *peer, const struct bw_cidr *src)
{
	struct sn_rule rule = { .family = AF_INET, .table = SN_RULE_TABLE_BASE + (uint32_t)c->ifindex,
				.prio = SN_RULE_PRIO };
	struct sn_route r = { .dst = *peer, .has_src = true, .src = *src, .table = rule.table };
	struct sn_net n = net_of(c);
	int err;

	if (peer->family != AF_INET || peer->prefix != 32 || src->family != AF_INET || src->prefix != 32)
		return -EINVAL;
	bw_strlcpy(r.ifname, c->rec.ifname, sizeof(r.ifname));
	err = sn_net_route_install(&n, &r);
	if (err < 0 || c->rec.n_rules > 0)
		return err;
	/* Recorded first, like routes: a crash in between leaves a record of nothing. */
	c->rec.rules[c->rec.n_rules++] = rule;
	err = record_save(c);
	if (err == 0)
		err = sn_rule_add(c->nl, &rule);
	if (err < 0) {
		c->rec.n_rules--;
		record_save(c);
		bw_log(BW_LOG_ERROR, c->name, "cannot add the routing rule for table %u: %s", rule.table,
		       strerror(-err));
		return err;
	}
	bw_log(BW_LOG_INFO, c->name, "rule: packets without Burrow's IKE mark 0x%08x look up table %u (pref %u)",
	       BW_IKE_FWMARK, rule.table, rule.prio);
	return 0;
}

static void undo_record(struct nl_sock *nl, const char *conn, const struct sn_record *rec,
			bool device_ours)
{
	int ifindex = rec->ifname[0] ? (int)if_nametoindex(rec->ifname) : 0;
	char d[64];
	int err;

	for (size_t i = rec->n_routes; i-- > 0;) {
		const struct sn_route *r = &rec->routes[i];
		if (!r->exception && (!device_ours || ifindex == 0))
			continue;
		err = sn_route_del(nl, r);
		sn_cidr_format(&r->dst, d, sizeof(d));
		if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove route %s dev %s: %s", d, r->ifname,
			       strerror(-err));
	}
	/* A rule outlives the device; one of a device another process holds stays with it. */
	for (size_t i = 0; (device_ours || ifindex == 0) && i < rec->n_rules; i++) {
		err = sn_rule_del(nl, &rec->rules[i]);
		if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove the routing rule for table %u: %s", rec->rules[i].table,
			       strerror(-err));
	}
	for (size_t i = 0; device_ours && ifindex > 0 && i < rec->n_addrs; i++) {
		err = sn_addr_del(nl, ifindex, &rec->addrs[i]);
		sn_cidr_format(&rec->addrs[i], d, sizeof(d));
		if (err < 0 && err != -ENOENT)
			bw_log(BW_LOG_WARN, conn, "cannot remove address %s from %s: %s", d,
			       rec->ifname, strerror(-err));
	}
}

static void us_conn_close(struct bw_sa_conn *c)
{
	if (!c)
		return;
	ev_io_stop(c->loop, &c->tun_io);
	for (size_t i = 0; i < US_MAX_SAS; i++)
		if (c->sas[i].used)
			sa_release(c, &c->sas[i]);
	if (c->nl)
		undo_record(c->nl, c->name, &c->rec, c->tun_fd >= 0);
	if (c->tun_fd >= 0)
		close(c->tun_fd);	/* the device goes with its last file */
	tun_gro_free(c->gro);
	if (c->record_path[0] && unlink(c->record_path) < 0 && errno != ENOENT)
		bw_log(BW_LOG_WARN, c->name, "cannot remove %s: %s", c->record_path, strerror(errno));
	if (c->nl)
		sn_nl_close(c->nl);
	if (c->ifindex > 0)
		bw_log(BW_LOG_INFO, c->name, "%s removed", c->rec.ifname);
	OPENSSL_cleanse(c->pkt, sizeof(c->pkt));
	OPENSSL_cleanse(c->esp, sizeof(c->esp));
	OPENSSL_cleanse(c->tun_in, sizeof(c->tun_in));
	free(c);
}

/* The device with a vnet header and segmentation offloads (TCP, and UDP where the kernel
 * has it): the kernel then hands us 64 KiB super-packets and takes them back. -errno when
 * any step fails; the caller then opens it the plain way. */
static int tun_open_offload(const char *conn, const char *ifname, int *fd_out)
{
	unsigned long base = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
	struct ifreq ifr = { 0 };
	int fd, hdr_len = TUN_VNET_HDR_LEN, err = 0;

	fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	ifr.ifr_flags = IFF_TUN | IFF_NO_PI | IFF_VNET_HDR;
	bw_strlcpy(ifr.ifr_name, ifname, sizeof(ifr.ifr_name));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		err = -errno;	/* the plain open will fail the same way and say so */
		close(fd);
		return err;
	}
	if (ioctl(fd, TUNSETVNETHDRSZ, &hdr_len) < 0)
		err = -errno;
#if __BYTE_ORDER == __BIG_ENDIAN
	/* the header is read and written little-endian (virtio 1.0) */
	if (err == 0 && ioctl(fd, TUNSETVNETLE, &(int){ 1 }) < 0)
		err = -errno;
#endif
	if (err == 0 && ioctl(fd, TUNSETOFFLOAD, base | TUN_F_USO4 | TUN_F_USO6) < 0 &&
	    ioctl(fd, TUNSETOFFLOAD, base) < 0)
		err = -errno;
	if (err < 0) {
		bw_log(BW_LOG_INFO, conn, "%s: no TUN offloads (%s); one packet per read and write",
		       ifname, strerror(-err));
		close(fd);	/* takes the device along if it made it */
		return err;
	}
	*fd_out = fd;
	return 0;
}

static void us_cleanup_stale(const char *conn_name, const char *state_dir)
{
	char path[PATH_MAX];
	struct sn_record *rec;
	struct nl_sock *nl = NULL;
	int err;

	if (sn_record_path(state_dir, conn_name, path, sizeof(path)) < 0)
		return;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return;
	err = sn_record_read(path, rec);
	if (err == -ENOENT)
		goto out;
	if (err < 0) {
		bw_log(BW_LOG_WARN, conn_name, "cannot read %s: %s", path, strerror(-err));
		goto out;
	}
	bw_log(BW_LOG_INFO, conn_name, "undoing what a previous run left in %s", path);
	err = rec->ifname[0] ? sn_tun_remove_stale(rec->ifname) : -ENOENT;
	if (err == -EBUSY || err == -EINVAL)
		bw_log(BW_LOG_WARN, conn_name,
		       "%s exists but is %s; leaving it and its routes alone", rec->ifname,
		       err == -EBUSY ? "held by another process" : "not a TUN device");
	else if (err < 0 && err != -ENOENT)
		bw_log(BW_LOG_WARN, conn_name, "cannot remove %s: %s", rec->ifname, strerror(-err));
	/* The device took its own addresses and routes along; the exceptions sit on other
	 * interfaces and are still there. */
	if (sn_nl_open(&nl) == 0) {
		undo_record(nl, conn_name, rec, false);
		sn_nl_close(nl);
	}
	if (unlink(path) < 0 && errno != ENOENT)
		bw_log(BW_LOG_WARN, conn_name, "cannot remove %s: %s", path, strerror(errno));
out:
	free(rec);
}

static int us_conn_open(struct ev_loop *loop, const char *conn_name, const char *state_dir,
			const struct bw_sa_conn_cbs *cbs, struct bw_sa_conn **out)
{
	struct bw_sa_conn *c;
	int err;

	if (!conn_name[0] || strlen(conn_name) >= BW_NAME_MAX || strchr(conn_name, '/'))
		return -EINVAL;
	if (access(state_dir, W_OK) < 0)
		return -errno;
	us_cleanup_stale(conn_name, state_dir);

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->tun_fd = -1;
	c->cbs = *cbs;
	bw_strlcpy(c->name, conn_name, sizeof(c->name));
	sn_ifname(conn_name, c->rec.ifname);
	err = sn_record_path(state_dir, conn_name, c->record_path, sizeof(c->record_path));
	if (err == 0)
		err = sn_nl_open(&c->nl);
	if (err == 0)
		err = record_save(c);
	if (err < 0)
		goto fail;
	/* BURROW_TUN_OFFLOAD=0: the plain device, one packet per read and write (for kernels
	 * whose offloads misbehave, and for the test of this path). */
	{
		const char *off = getenv("BURROW_TUN_OFFLOAD");

		err = off && strcmp(off, "0") == 0 ? -ENOTSUP : tun_open_offload(c->name, c->rec.ifname, &c->tun_fd);
	}
	c->vnet = err == 0;
	if (err < 0)
		err = sn_tun_open(c->rec.ifname, &c->tun_fd);
	if (err < 0) {
		bw_log(BW_LOG_ERROR, c->name, "cannot create %s: %s%s", c->rec.ifname, strerror(-err),
		       err == -EBUSY ? " (another process holds it)" : "");
		goto fail;
	}
	err = sn_link_setup(c->nl, c->rec.ifname, BW_US_MTU);
	if (err < 0) {
		bw_log(BW_LOG_ERROR, c->name, "cannot bring %s up: %s", c->rec.ifname, strerror(-err));
		goto fail;
	}
	c->ifindex = err;
	ev_io_init(&c->tun_io, tun_read_cb, c->tun_fd, EV_READ);
	ev_io_start(loop, &c->tun_io);
	bw_log(BW_LOG_INFO, c->name, "%s up, mtu %d%s", c->rec.ifname, BW_US_MTU,
	       c->vnet ? ", TSO/GRO offloads" : "");
	*out = c;
	return 0;
fail:
	us_conn_close(c);
	return err;
}

static const char *us_ifname(struct bw_sa_conn *c)
{
	return c->rec.ifname;
}

static int us_sa_packets(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir, uint64_t *packets)
{
	const struct us_sa *sa = sa_find(c, spi, dir);

	if (!sa)
		return -ENOENT;
	*packets = dir == BW_SA_IN ? sa->cnt.packets_in : sa->cnt.packets_out;
	return 0;
}

const struct bw_sa_backend_ops bw_sa_backend_userspace = {
	.name = "userspace",
	.caps = BW_SA_CAP_ESP_IN_UDP_ONLY,
	.conn_open = us_conn_open,
	.add_sa = us_add_sa,
	.del_sa = us_del_sa,
	.add_policy = us_add_policy,
	.del_policy = us_del_policy,
	.set_address = us_set_address,
	.add_route = us_add_route,
	.route_exception = bw_us_route_exception,
	.transport_route = bw_us_transport_route,
	.input = us_input,
	.input_burst = bw_us_input_burst,
	.counters = us_counters,
	.sa_packets = us_sa_packets,
	.ifname = us_ifname,
	.conn_close = us_conn_close,
	.cleanup_stale = us_cleanup_stale,
};

/* The IKEv1 engine as the connection manager drives it: start (resolve, pick the datapath,
 * run phase 1 and Quick Mode), stop (deletes, undo), failures, status and the ESP hand-off. */
#include "ike/ike_conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <openssl/crypto.h>

#include "agent.h"
#include "conn.h"
#include "killswitch.h"
#include "ike/ike_resolve.h"
#include "ike/ikev1.h"
#include "log.h"
#include "sa-backends/sa_backend.h"
#include "util.h"

static struct bw_ike_conn *engine_list;

static int set_ip_forward(bool on);

void ike_register(struct bw_ike_conn *ike)
{
	ike->next = engine_list;
	engine_list = ike;
}

void ike_unregister(struct bw_ike_conn *ike)
{
	for (struct bw_ike_conn **pp = &engine_list; *pp; pp = &(*pp)->next)
		if (*pp == ike) {
			*pp = ike->next;
			return;
		}
}

struct bw_ike_conn *ike_find_by_cookie(const uint8_t icookie[8])
{
	for (struct bw_ike_conn *ike = engine_list; ike; ike = ike->next)
		if (memcmp(ike->sa.icookie, icookie, 8) == 0)
			return ike;
	return NULL;
}

static uint32_t spi_host(const uint8_t s[4])
{
	return (uint32_t)s[0] << 24 | (uint32_t)s[1] << 16 | (uint32_t)s[2] << 8 | s[3];
}

struct bw_ike_conn *ike_find_by_spi(uint32_t spi)
{
	for (struct bw_ike_conn *ike = engine_list; ike; ike = ike->next)
		for (size_t i = 0; i < ike->children.n; i++) {
			const struct ike_child *ch = &ike->children.sa[i];

			if ((ch->installed && spi_host(ch->spi_in) == spi) ||
			    (ch->old_in_valid && spi_host(ch->old_spi_in) == spi))
				return ike;
		}
	return NULL;
}

void ike_esp_input(struct bw_ike_conn *ike, const uint8_t *pkt, size_t len)
{
	/* Traffic that decrypts is proof of life: DPD stays quiet while it flows. */
	if (ike->dp.conn && ike->dp.be->input(ike->dp.conn, pkt, len) == 0)
		ike->dpd.last_rx = ev_now(ike->agent->loop);
}

/* n ESP packets for this connection that arrived together (ike_socket.c), in order. */
void ike_esp_input_burst(struct bw_ike_conn *ike, const struct iovec *pkts, size_t n)
{
	size_t accepted = 0;

	if (!ike->dp.conn)
		return;
	if (ike->dp.be->input_burst) {
		accepted = n - ike->dp.be->input_burst(ike->dp.conn, pkts, n, NULL);
	} else {
		for (size_t i = 0; i < n; i++)
			accepted += ike->dp.be->input(ike->dp.conn, pkts[i].iov_base, pkts[i].iov_len) == 0;
	}
	/* One packet of the burst that decrypts is proof enough. */
	if (accepted > 0)
		ike->dpd.last_rx = ev_now(ike->agent->loop);
}

void ike_seen_peer(struct bw_ike_conn *ike)
{
	ike->dpd.last_rx = ev_now(ike->agent->loop);
	ike->dpd.outstanding = 0;
}

void ike_dpd_ack(struct bw_ike_conn *ike, uint32_t seq)
{
	if (seq == ike->dpd.seq) {
		ike_log(ike, BW_LOG_DEBUG, "DPD: the gateway answered R-U-THERE %u", seq);
		ike_seen_peer(ike);
	}
}

static void dpd_dead(struct bw_ike_conn *ike);

/* Probes only when the gateway has been quiet for a whole interval (RFC 3706 "worry metric"),
 * then every half interval; three unanswered probes declare it dead. */
static void on_dpd(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, dpd.timer);
	uint8_t cookies[16], seq[4];

	(void)revents;
	if (ike->dpd.outstanding == 0 && ev_now(loop) - ike->dpd.last_rx < ike->cfg.dpd_s)
		return;
	if (ike->dpd.outstanding >= IKE_DPD_MAX_PROBES) {
		dpd_dead(ike);
		return;
	}
	ike->dpd.seq++;
	seq[0] = (uint8_t)(ike->dpd.seq >> 24);
	seq[1] = (uint8_t)(ike->dpd.seq >> 16);
	seq[2] = (uint8_t)(ike->dpd.seq >> 8);
	seq[3] = (uint8_t)ike->dpd.seq;
	memcpy(cookies, ike->sa.icookie, 8);
	memcpy(cookies + 8, ike->sa.rcookie, 8);
	ike->dpd.outstanding++;
	ike_log(ike, BW_LOG_DEBUG, "DPD: gateway quiet for %.0fs; R-U-THERE %u (%d of %d)",
		ev_now(loop) - ike->dpd.last_rx, ike->dpd.seq, ike->dpd.outstanding, IKE_DPD_MAX_PROBES);
	ike_info_send_notify(ike, ISAKMP_N_DPD_R_U_THERE, cookies, 16, seq, 4);
}

static void schedule_rekey(struct bw_ike_conn *ike);

static void start_rekey(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, rekey.timer);

	(void)revents;
	if (ike->rekey.switch_child >= 0)
		return;		/* a renewed SA is about to take over; that finish reschedules */
	if (ike->reauth.next) {
		/* A replacement with IPsec SAs of its own is on its way: renewing these now would
		 * only be thrown away. Look again in a second, in case the replacement fails. */
		ev_timer_set(&ike->rekey.timer, 1.0, 0.0);
		ev_timer_start(loop, &ike->rekey.timer);
		return;
	}
	for (size_t i = 0; i < ike->children.n; i++) {
		struct ike_child *ch = &ike->children.sa[i];

		if (ch->state == QM_DONE && ch->rekey_at <= ev_now(loop) + 0.5) {
			for (size_t k = 0; k < ike->children.n; k++)
				if (ike->children.sa[k].state == QM_SENT1)
					return;	/* one Quick Mode at a time; the next tick comes */
			ike_log(ike, BW_LOG_INFO, "rekeying the IPsec SA before its lifetime ends");
			ch->rekeying = true;
			ike->children.cur = i;
			bw_conn_set_state(ike->conn, BW_CONN_REKEYING, NULL);
			ike_quick_start(ike);
			return;
		}
	}
	schedule_rekey(ike);
}

/* Rekey at 80-90% of the lifetime, randomised so that both ends do not rekey at once. */
static void set_rekey_time(struct bw_ike_conn *ike, struct ike_child *ch)
{
	uint16_t r = 0;

	bw_random(&r, sizeof(r));
	ch->rekey_at = ev_now(ike->agent->loop) + ch->lifetime_s * (0.80 + 0.10 * (r / 65535.0));
}

static void schedule_rekey(struct bw_ike_conn *ike)
{
	double first = 0;

	for (size_t i = 0; i < ike->children.n; i++)
		if (ike->children.sa[i].state == QM_DONE && (first == 0 || ike->children.sa[i].rekey_at < first))
			first = ike->children.sa[i].rekey_at;
	ev_timer_stop(ike->agent->loop, &ike->rekey.timer);
	if (first == 0)
		return;
	ev_timer_set(&ike->rekey.timer, first - ev_now(ike->agent->loop) > 0.1 ? first - ev_now(ike->agent->loop) : 0.1, 0.0);
	ev_timer_start(ike->agent->loop, &ike->rekey.timer);
}

static void on_old_sas(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, rekey.old_sa_timer);

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < ike->children.n; i++) {
		struct ike_child *ch = &ike->children.sa[i];

		/* A child being renewed again holds its current SA as the old one: not yet. */
		if (ch->old_in_valid && !ch->rekeying && ike->dp.conn) {
			ike->dp.be->del_sa(ike->dp.conn, spi_host(ch->old_spi_in), BW_SA_IN);
			ch->old_in_valid = false;
		}
	}
}

void ike_rekey_done(struct bw_ike_conn *ike, struct ike_child *ch)
{
	/* The new pair carries traffic now: the old outbound SA goes at once, the old inbound one
	 * after a grace period for packets already on their way, and the gateway hears of both. */
	if (ike->dp.conn)
		ike->dp.be->del_sa(ike->dp.conn, spi_host(ch->old_spi_out), BW_SA_OUT);
	ike_info_send_delete(ike, ISAKMP_PROTO_ESP, ch->old_spi_in, 4);
	ch->old_in_valid = true;
	ch->rekeying = false;
	ev_timer_stop(ike->agent->loop, &ike->rekey.old_sa_timer);
	ev_timer_init(&ike->rekey.old_sa_timer, on_old_sas, IKE_OLD_SA_GRACE_S, 0.0);
	ev_timer_start(ike->agent->loop, &ike->rekey.old_sa_timer);
	set_rekey_time(ike, ch);
	ike_log(ike, BW_LOG_INFO, "rekeyed: the new SAs carry the traffic, the old ones are deleted");
	if (ike->conn->state == BW_CONN_REKEYING)
		bw_conn_set_state(ike->conn, BW_CONN_UP, NULL);
	schedule_rekey(ike);
}

/* The datapath outlives engine instances (re-authentication hands it over), so its callbacks
 * find the current instance through the connection. */
static int cb_send_esp(void *ctx, const uint8_t *pkt, size_t len)
{
	struct bw_conn *c = ctx;

	return c->ike ? ike_send_esp(c->ike, pkt, len) : -ENOTCONN;
}

/* The queue of ike_socket.c is shared by every connection: flushing it is all there is. */
static void cb_flush_esp(void *ctx)
{
	(void)ctx;
	ike_flush_esp();
}

static void cb_expired(void *ctx, uint32_t spi, enum bw_sa_dir dir, bool hard)
{
	struct bw_conn *c = ctx;
	struct bw_ike_conn *ike = c->ike;

	if (!ike)
		return;

	ike_log(ike, BW_LOG_WARN, "%s SA %08x expired%s", dir == BW_SA_IN ? "inbound" : "outbound", spi,
		hard ? "" : " (soft)");
	if (hard)
		ike_fail(ike, "expired", "an IPsec SA expired before it was renewed",
			 "The tunnel's IPsec SA reached its lifetime. Rekeying is not available in this release; "
			 "restart the connection, or raise lifetime in [phase2].");
}

/* Everything the engine set up is undone here; the struct is freed on the next loop turn so
 * that callers up the stack may still look at it (they check p1 == P1_IDLE). */
static void reap(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = w->data;

	(void)revents;
	ev_timer_stop(loop, w);
	free(ike);
}

static void teardown(struct bw_ike_conn *ike)
{
	struct ev_loop *loop = ike->agent->loop;
	static ev_timer reaper_pool[64];
	static size_t reaper_next;
	ev_timer *reaper;

	if (ike->sa.p1 == P1_IDLE && !ike->conn && !ike->dp.conn)
		return;
	ev_timer_stop(loop, &ike->resend.timer);
	ev_timer_stop(loop, &ike->keepalive);
	ev_timer_stop(loop, &ike->path.resolve_timer);
	ev_timer_stop(loop, &ike->stop_timer);
	ev_timer_stop(loop, &ike->txn.timer);
	ev_timer_stop(loop, &ike->dpd.timer);
	ev_timer_stop(loop, &ike->rekey.timer);
	ev_timer_stop(loop, &ike->rekey.old_sa_timer);
	ev_timer_stop(loop, &ike->rekey.switch_timer);
	ike->rekey.switch_child = -1;
	ike->rekey.switch_commit = false;
	if (ike->dns.applied)
		ike_dns_revert(ike);
	if (ike->dp.forwarding_enabled) {
		set_ip_forward(false);
		ike->dp.forwarding_enabled = false;
	}
	ike_resolve_cancel(ike->path.resolve);
	ike->path.resolve = NULL;
	ev_timer_stop(loop, &ike->reauth.timer);
	if (ike->reauth.next) {
		struct bw_ike_conn *n = ike->reauth.next;

		ike->reauth.next = NULL;
		n->reauth.of = NULL;
		n->conn = NULL;
		teardown(n);	/* it shares our datapath: it goes first */
	}
	if (ike->reauth.of)
		ike->reauth.of->reauth.next = NULL;
	ike_unregister(ike);
	if (ike->dp.conn && !ike->dp.shared)
		ike->dp.be->conn_close(ike->dp.conn);
	ike->dp.conn = NULL;
	free(ike->resend.msg);
	ike->resend.msg = NULL;
	free(ike->resend.final_msg);
	ike->resend.final_msg = NULL;
	ike_exchange_end(&ike->qm);
	ike_exchange_end(&ike->qr);
	ike_exchange_end(&ike->tx);
	free(ike->p1x.sai_b);
	ike->p1x.sai_b = NULL;
	bw_dh_free(ike->p1x.dh);
	ike->p1x.dh = NULL;
	bw_secrets_wipe(&ike->sec);
	bw_cert_free(ike->sa.cert);
	ike->sa.cert = NULL;
	OPENSSL_cleanse(ike->sa.skeyid, sizeof(ike->sa.skeyid));
	OPENSSL_cleanse(ike->sa.skeyid_d, sizeof(ike->sa.skeyid_d));
	OPENSSL_cleanse(ike->sa.skeyid_a, sizeof(ike->sa.skeyid_a));
	OPENSSL_cleanse(ike->sa.skeyid_e, sizeof(ike->sa.skeyid_e));
	OPENSSL_cleanse(ike->sa.enc_key, sizeof(ike->sa.enc_key));
	ike->sa.p1 = P1_IDLE;
	if (ike->conn && ike->conn->ike == ike)
		ike->conn->ike = NULL;
	ike->conn = NULL;
	/* A small ring of reapers: at most one teardown per connection per loop turn. */
	reaper = &reaper_pool[reaper_next++ % BW_ARRAY_SIZE(reaper_pool)];
	if (ev_is_active(reaper))
		reap(loop, reaper, 0);
	ev_timer_init(reaper, reap, 0.0, 0.0);
	reaper->data = ike;
	ev_timer_start(loop, reaper);
}

/* network-to-network: the client forwards for its LAN; what we turn on we turn off again. */
static int set_ip_forward(bool on)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r+");
	int cur = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &cur) != 1)
		cur = -1;
	if (cur >= 0 && cur != (on ? 1 : 0)) {
		rewind(f);
		fprintf(f, "%d\n", on ? 1 : 0);
	}
	fclose(f);
	return cur;
}

static void send_deletes(struct bw_ike_conn *ike)
{
	uint8_t cookies[16];

	if (ike->sa.p1 != P1_DONE && !ike->sa.authenticated)
		return;
	for (size_t i = 0; i < ike->children.n; i++) {
		const struct ike_child *ch = &ike->children.sa[i];

		if (ch->state == QM_DONE)
			ike_info_send_delete(ike, ISAKMP_PROTO_ESP, ch->spi_in, 4);
		/* The SA an unfinished renewal was replacing (a finished one sent its delete). */
		if (ch->rekeying && ch->old_in_valid)
			ike_info_send_delete(ike, ISAKMP_PROTO_ESP, ch->old_spi_in, 4);
	}
	memcpy(cookies, ike->sa.icookie, 8);
	memcpy(cookies + 8, ike->sa.rcookie, 8);
	ike_info_send_delete(ike, ISAKMP_PROTO_ISAKMP, cookies, 16);
}

static void reauth_abandon(struct bw_ike_conn *ike, const char *why);

void ike_fail(struct bw_ike_conn *ike, const char *code, const char *error, const char *explanation)
{
	struct bw_conn *c = ike->conn;

	if (!c)
		return;
	if (ike->reauth.of) {
		(void)code;
		(void)explanation;
		reauth_abandon(ike, error);
		return;
	}
	if (c->state == BW_CONN_REKEYING) {
		/* A tunnel that worked until its SA had to be renewed: say so, whatever the cause. */
		char e2[320], x2[768];

		snprintf(e2, sizeof(e2), "rekeying failed: %s", error);
		snprintf(x2, sizeof(x2), "The tunnel worked, but its IPsec SA could not be renewed before its "
			 "lifetime ended (%s). A phase-2 lifetime or PFS group that differs from the gateway's is the "
			 "usual cause: make lifetime and pfs in [phase2] match the gateway's settings. If the gateway "
			 "stopped answering, check the path to it.", error);
		send_deletes(ike);
		teardown(ike);
		bw_conn_fail(c, "rekey-failed", e2, x2);
		return;
	}
	send_deletes(ike);
	teardown(ike);
	bw_conn_fail(c, code, error, explanation ? explanation : error);
}

void ike_failf(struct bw_ike_conn *ike, const char *code, const char *error, const char *fmt, ...)
{
	char x[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(x, sizeof(x), fmt, ap);
	va_end(ap);
	ike_fail(ike, code, error, x);
}

const char *ike_config_dir(const struct bw_ike_conn *ike)
{
	return ike->agent->opts.config_dir;
}

static void dpd_dead(struct bw_ike_conn *ike)
{
	struct bw_conn *c = ike->conn;
	char exp[400];

	if (ike->reauth.of) {
		reauth_abandon(ike, "the gateway stopped answering");
		return;
	}
	ike_log(ike, BW_LOG_WARN, "DPD: the gateway did not answer %d probes; declaring it dead", IKE_DPD_MAX_PROBES);
	teardown(ike);
	snprintf(exp, sizeof(exp), "The gateway stopped answering (dead peer detection, %d probes over about %us). It "
		 "may have restarted or the network path is broken; the tunnel was taken down. Policies "
		 "(defaults.lua) restart it; check the gateway if it keeps happening.", IKE_DPD_MAX_PROBES,
		 (unsigned)(c->cfg.dpd_s * 2));
	bw_conn_fail_to(c, BW_CONN_DOWN, "dpd", "dpd", "the gateway stopped answering (DPD timeout)", exp);
}

void ike_peer_deleted(struct bw_ike_conn *ike, const char *what)
{
	struct bw_conn *c = ike->conn;

	if (!c)
		return;
	if (ike->reauth.of) {
		reauth_abandon(ike, "the gateway deleted the new SA");
		return;
	}
	ike_log(ike, BW_LOG_WARN, "the gateway deleted %s; the tunnel is down", what);
	send_deletes(ike);
	teardown(ike);
	if (c->state == BW_CONN_CONNECTING)
		bw_conn_fail(c, "deleted-by-peer", "the gateway deleted the SA while we were connecting",
			     "The gateway ended the negotiation. Its log says why.");
	else
		bw_conn_fail_to(c, BW_CONN_DOWN, "deleted-by-peer", "deleted-by-peer", "the gateway deleted the SA",
				"The gateway deleted the tunnel's SA: its admin stopped it, it restarted, or it "
				"removed this client. Start the connection again; if it keeps happening, check the "
				"gateway's log.");
}

void ike_dispatch(struct bw_ike_conn *ike, const struct isakmp_hdr *h, uint8_t *msg, size_t len)
{
	ike_log(ike, BW_LOG_TRACE, "received %s, %zu bytes%s", isakmp_exchange_name(h->exchange), len,
		h->flags & ISAKMP_FLAG_ENC ? " (encrypted)" : "");
	if (ike->sa.p1 != P1_MM_SENT1 && ike->sa.p1 != P1_AM_SENT1 && memcmp(h->rcookie, ike->sa.rcookie, 8) != 0)
		return;
	/* The gateway repeats its message when our final one was lost: send that again. */
	if (ike->resend.final_msg && h->exchange == ike->resend.final_exchange && h->msgid == ike->resend.final_msgid &&
	    !(ike->rekey.switch_commit && h->exchange == ISAKMP_EXCH_QUICK)) {	/* CONNECTED may follow: ikev1_quick.c */
		ike_log(ike, BW_LOG_DEBUG, "the gateway repeated its %s message; resending our last one",
			isakmp_exchange_name(h->exchange));
		ike_send_raw(ike, ike->resend.final_msg, ike->resend.final_len);
		return;
	}
	switch (h->exchange) {
	case ISAKMP_EXCH_MAIN:
		ike_main_process(ike, h, msg, len);
		break;
	case ISAKMP_EXCH_AGGRESSIVE:
		ike_aggr_process(ike, h, msg, len);
		break;
	case ISAKMP_EXCH_QUICK:
		if (ike->sa.p1 == P1_DONE)
			ike_quick_process(ike, h, msg, len);
		break;
	case ISAKMP_EXCH_INFO:
		ike_info_process(ike, h, msg, len);
		break;
	case ISAKMP_EXCH_TRANSACTION:
		if (ike->sa.p1 == P1_DONE)
			ike_cfg_process(ike, h, msg, len);
		break;
	default:
		ike_log(ike, BW_LOG_DEBUG, "%s exchange is not supported yet; ignored",
			isakmp_exchange_name(h->exchange));
		break;
	}
}

static void on_keepalive(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, keepalive);

	(void)loop;
	(void)revents;
	ike_send_keepalive(ike);
}

static void set_children(struct bw_ike_conn *ike)
{
	const struct bw_conn_config *cfg = &ike->cfg;
	struct bw_cidr local = { .family = AF_INET, .prefix = 32 }, any = { .family = AF_INET };
	struct bw_cidr gw = { .family = AF_INET, .prefix = 32 };

	memcpy(local.addr, &((struct sockaddr_in *)&ike->path.local)->sin_addr, 4);
	memcpy(gw.addr, &((struct sockaddr_in *)&ike->path.peer)->sin_addr, 4);
	if (ike->dp.have_vip)
		local = ike->dp.vip;
	ike->children.n = 0;
	switch (cfg->topology) {
	case BW_TOPO_HOST_TO_HOST:
		ike->children.sa[ike->children.n++] = (struct ike_child){ .local_ts = local, .remote_ts = gw };
		break;
	case BW_TOPO_HOST_TO_EVERYWHERE:
		ike->children.sa[ike->children.n++] = (struct ike_child){ .local_ts = local, .remote_ts = any };
		break;
	case BW_TOPO_NETWORK_TO_NETWORK:
		for (size_t l = 0; l < cfg->n_local_networks; l++)
			for (size_t r = 0; r < cfg->n_remote_networks && ike->children.n < BW_MAX_NETS; r++)
				ike->children.sa[ike->children.n++] = (struct ike_child){
					.local_ts = cfg->local_networks[l], .remote_ts = cfg->remote_networks[r] };
		break;
	case BW_TOPO_HOST_TO_NETWORK:
		/* The gateway's split-include list wins over the connection's own networks. */
		if (ike->txn.mc.n_split) {
			for (size_t r = 0; r < ike->txn.mc.n_split; r++)
				ike->children.sa[ike->children.n++] = (struct ike_child){
					.local_ts = local, .remote_ts = ike->txn.mc.split[r] };
			break;
		}
		for (size_t r = 0; r < cfg->n_remote_networks; r++)
			ike->children.sa[ike->children.n++] = (struct ike_child){
				.local_ts = local, .remote_ts = cfg->remote_networks[r] };
		break;
	}
	ike->children.cur = 0;
}

void ike_phase1_done(struct bw_ike_conn *ike)
{
	ike->sa.p1 = P1_DONE;
	ike_log(ike, BW_LOG_INFO, "phase 1 established with %s%s", ike->cfg.gateway,
		ike->path.floated ? " (NAT-T, UDP 4500)" : "");
	if (ike->path.floated && ike->path.nat_local) {
		ev_timer_init(&ike->keepalive, on_keepalive, IKE_KEEPALIVE_S, IKE_KEEPALIVE_S);
		ev_timer_start(ike->agent->loop, &ike->keepalive);
	}
	/* The key is proven; nothing else needs the typed-in secrets any more. */
	if (ike->conn)
		bw_secrets_wipe(&ike->conn->prompted);
	ike_cfg_begin(ike);
}

void ike_start_children(struct bw_ike_conn *ike)
{
	set_children(ike);
	if (ike->children.n == 0) {
		ike_fail(ike, "config", "there are no networks to tunnel",
			 "Neither the connection (remote_networks) nor the gateway (split-include) names a "
			 "network for the tunnel. Set remote_networks, or topology = host-to-everywhere.");
		return;
	}
	ike_quick_start(ike);
}

static void reauth_switch(struct bw_ike_conn *ike);
static void start_liveness(struct bw_ike_conn *ike);

static bool cidr_same(const struct bw_cidr *x, const struct bw_cidr *y)
{
	return x->family == y->family && x->prefix == y->prefix &&
	       memcmp(x->addr, y->addr, x->family == AF_INET ? 4 : 16) == 0;
}

/* The other Burrow connection that routes net into its tunnel: one that is up, by its
 * negotiated traffic selectors. One still negotiating holds no route yet: two connections
 * to the same networks may both try, and the first one up has them. */
static struct bw_conn *route_holder(const struct bw_conn *self, const struct bw_cidr *net)
{
	struct bw_agent *a = self->agent;

	for (size_t i = 0; i < a->n_conns; i++) {
		struct bw_conn *o = a->conns[i];

		if (o == self || !o->valid || !o->ike || o->cfg.mode == BW_MODE_TRANSPORT ||
		    (o->state != BW_CONN_UP && o->state != BW_CONN_REKEYING))
			continue;
		for (size_t j = 0; j < o->ike->children.n; j++)
			if (cidr_same(&o->ike->children.sa[j].remote_ts, net))
				return o;
	}
	return NULL;
}

/* The sentence and the explanation of a route conflict: the route, and who holds it. */
static void route_conflict_text(const struct bw_conn *c, const struct bw_cidr *net, const struct bw_conn *holder,
				char *err, size_t errlen, char *x, size_t xlen)
{
	char r[48];

	bw_cidr_format(net, r, sizeof(r));
	if (holder) {
		snprintf(err, errlen, "the route %s is already held by the Burrow connection '%s'", r, holder->name);
		snprintf(x, xlen, "%s cannot route %s into its tunnel: the Burrow connection '%s' (%s) holds that "
			 "route, and two tunnels cannot carry the same network. Stop one of them (burrow stop %s), or "
			 "change remote_networks in %.200s.", c->name, r, holder->name, bw_conn_state_name(holder->state),
			 holder->name, c->file);
	} else {
		snprintf(err, errlen, "the route %s is already held by another program (ip route show %s)", r, r);
		snprintf(x, xlen, "%s cannot route %s into its tunnel: the kernel already has that route and it is "
			 "not Burrow's (ip route show %s shows it; another VPN or a static route). Remove it "
			 "(ip route del %s) or change remote_networks in %.200s, then burrow start %s.", c->name, r, r,
			 r, c->file, c->name);
	}
}

/* Before anything is sent: does another Burrow connection already route one of ours? */
static bool route_conflict_at_start(const struct bw_conn *c, char *err, size_t errlen, char *x, size_t xlen)
{
	if (c->cfg.mode == BW_MODE_TRANSPORT)
		return false;
	for (size_t i = 0; i < c->cfg.n_remote_networks; i++) {
		const struct bw_conn *o = route_holder(c, &c->cfg.remote_networks[i]);

		if (o) {
			char e[200];

			route_conflict_text(c, &c->cfg.remote_networks[i], o, e, sizeof(e), x, xlen);
			snprintf(err, errlen, "%s: %s", c->name, e);
			return true;
		}
	}
	return false;
}

/* A route the kernel refused as existing (EEXIST): ours or another program's. */
static void fail_route_conflict(struct bw_ike_conn *ike, const struct bw_cidr *net)
{
	char err[256], x[768];

	route_conflict_text(ike->conn, net, route_holder(ike->conn, net), err, sizeof(err), x, sizeof(x));
	ike_fail(ike, "route-conflict", err, x);
}

void ike_children_done(struct bw_ike_conn *ike)
{
	struct bw_sa_conn *bc = ike->dp.conn;
	const struct bw_cidr *conflict = NULL;
	int rc = 0;

	if (ike->reauth.of) {
		reauth_switch(ike);
		return;
	}

	/* Transport mode protects the traffic between the two hosts themselves: no address to add
	 * and no network to route. The kernel's policies select it; the userspace datapath needs
	 * the gateway's own address routed into its device, except for IKE (the sockets' mark). */
	if (ike->cfg.mode == BW_MODE_TRANSPORT) {
		for (size_t i = 0; rc == 0 && ike->dp.be->transport_route && i < ike->children.n; i++)
			rc = ike->dp.be->transport_route(bc, &ike->children.sa[i].remote_ts, &ike->children.sa[i].local_ts);
	} else {
		if (ike->dp.have_vip)
			rc = ike->dp.be->set_address(bc, &ike->dp.vip);
		if (rc == 0 && ike->cfg.topology == BW_TOPO_HOST_TO_EVERYWHERE)
			rc = ike->dp.be->route_exception(bc, (const struct sockaddr *)&ike->path.peer);
		for (size_t i = 0; rc == 0 && i < ike->children.n; i++) {
			struct bw_cidr src = ike->children.sa[i].local_ts;

			rc = ike->dp.be->add_route(bc, &ike->children.sa[i].remote_ts,
						src.prefix == 32 ? &src : (ike->dp.have_vip ? &ike->dp.vip : NULL));
			if (rc == -EEXIST)
				conflict = &ike->children.sa[i].remote_ts;
		}
	}
	if (rc == 0 && ike->cfg.topology == BW_TOPO_NETWORK_TO_NETWORK && set_ip_forward(true) == 0) {
		ike->dp.forwarding_enabled = true;
		ike_log(ike, BW_LOG_INFO, "IPv4 forwarding turned on for the local networks (off again on stop)");
	}
	if (rc == 0) {
		char err[400];

		rc = ike_dns_apply(ike, err, sizeof(err));
		if (rc < 0) {
			ike_fail(ike, "dns", err, err);
			return;
		}
		if (rc == 0)
			ike_dns_started(ike, NULL);
		return;		/* 1: the DNS forwarder calls ike_dns_started once it answers */
	}
	if (conflict) {
		fail_route_conflict(ike, conflict);
		return;
	}
	{
		char err[160], x[300];

		snprintf(err, sizeof(err), "cannot set up the tunnel's address or routes: %s", strerror(-rc));
		snprintf(x, sizeof(x), "Burrow could not add the tunnel's address or routes; another program may "
			 "own the same routes. See burrow log %s.", ike->cfg.name);
		ike_fail(ike, "datapath", err, x);
	}
}

void ike_dns_started(struct bw_ike_conn *ike, const char *err)
{
	if (err) {
		ike_fail(ike, "dns", err, err);
		return;
	}
	bw_conn_set_state(ike->conn, BW_CONN_UP, NULL);
	start_liveness(ike);
}

static void on_reauth(struct ev_loop *loop, ev_timer *w, int revents);

/* DPD, rekeying of each IPsec SA and re-authentication of the IKE SA, from "up" on. */
static void start_liveness(struct bw_ike_conn *ike)
{
	uint16_t r = 0;

	ike_seen_peer(ike);
	if (ike->cfg.dpd_s && ike->sa.peer_dpd) {
		ev_timer_init(&ike->dpd.timer, on_dpd, ike->cfg.dpd_s / 2.0, ike->cfg.dpd_s / 2.0);
		ev_timer_start(ike->agent->loop, &ike->dpd.timer);
	}
	for (size_t i = 0; i < ike->children.n; i++)
		set_rekey_time(ike, &ike->children.sa[i]);
	ev_init(&ike->rekey.timer, start_rekey);
	schedule_rekey(ike);
	bw_random(&r, sizeof(r));
	ev_timer_init(&ike->reauth.timer, on_reauth, ike->sa.lifetime_s * (0.80 + 0.10 * (r / 65535.0)), 0.0);
	ev_timer_start(ike->agent->loop, &ike->reauth.timer);
}

static int begin_exchange(struct bw_ike_conn *ike)
{
	struct sockaddr_in *peer = (struct sockaddr_in *)&ike->path.peer;
	socklen_t len = sizeof(struct sockaddr_in);
	char err[512], addr[INET_ADDRSTRLEN];
	struct bw_sa_conn_cbs cbs = { .ctx = ike->conn, .send_esp = cb_send_esp, .flush_esp = cb_flush_esp,
				      .expired = cb_expired };
	int fd, rc;

	/* Our address towards the gateway: what the kernel's routing picks. */
	peer->sin_port = htons(500);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)peer, sizeof(*peer)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&ike->path.local, &len) != 0) {
		snprintf(err, sizeof(err), "no route to the gateway %s: %s", ike->cfg.gateway, strerror(errno));
		if (fd >= 0)
			close(fd);
		ike_fail(ike, "no-route", err, "This machine has no route to the gateway. Check the network "
			 "connection and the gateway address.");
		return -1;
	}
	close(fd);
	((struct sockaddr_in *)&ike->path.local)->sin_port = htons(ike_sockets_port(false));
	inet_ntop(AF_INET, &peer->sin_addr, addr, sizeof(addr));
	ike_log(ike, BW_LOG_INFO, "connecting to %s (%s) with %s Mode", ike->cfg.gateway, addr,
		ike->cfg.exchange == BW_EXCHANGE_MAIN ? "Main" : "Aggressive");

	rc = ike->dp.shared ? 0 : ike->dp.be->conn_open(ike->agent->loop, ike->cfg.name, ike->agent->opts.state_dir,
						      &cbs, &ike->dp.conn);
	if (rc != 0) {
		snprintf(err, sizeof(err), "cannot create the tunnel interface: %s", strerror(-rc));
		ike_fail(ike, "datapath", err, "Burrow could not create its TUN interface. Run burrowd as root "
			 "and check that /dev/net/tun exists (burrow doctor).");
		return -1;
	}
	ike->sa.p1 = P1_IDLE + 1;	/* leaves IDLE so that failures from here on are reported */
	if (ike->cfg.kill_switch && !ike->dp.shared &&
	    bw_killswitch_on(ike->cfg.name, ike->dp.be->ifname(ike->dp.conn), &peer->sin_addr, err, sizeof(err)) != 0) {
		ike_fail(ike, "kill-switch", err, err);
		return -1;
	}
	return ike->cfg.exchange == BW_EXCHANGE_MAIN ? ike_main_start(ike) : ike_aggr_start(ike);
}

static void on_resolve_timeout(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, path.resolve_timer);
	char err[320];

	(void)loop;
	(void)revents;
	snprintf(err, sizeof(err), "the gateway name %s did not resolve in time", ike->cfg.gateway);
	ike_fail(ike, "dns", err, "The gateway's name could not be looked up. Check DNS, or use its "
		 "address in gateway =.");
}

/* The resolver's answer, from the loop as soon as it came. */
static void on_resolved(void *ctx, int rc, const struct sockaddr_in *addr)
{
	struct bw_ike_conn *ike = ctx;
	char err[320];

	ike->path.resolve = NULL;
	ev_timer_stop(ike->agent->loop, &ike->path.resolve_timer);
	if (rc != 0) {
		snprintf(err, sizeof(err), "cannot resolve the gateway name %s: %s", ike->cfg.gateway, gai_strerror(rc));
		ike_fail(ike, "dns", err, "The gateway's name could not be looked up. Check the spelling and "
			 "DNS, or use its address in gateway =.");
		return;
	}
	memcpy(&ike->path.peer, addr, sizeof(*addr));
	ike->sa.p1 = P1_IDLE + 1;
	begin_exchange(ike);
}

/* The code of a secrets file that could not be used: refused for its owner or mode, or broken. */
static const char *secrets_code(const char *path)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    ((st.st_mode & 077) || (st.st_uid != 0 && st.st_uid != geteuid())))
		return "secrets-insecure";
	return "secrets-invalid";
}

/* Certificate, private key and CAs, before any packet: a key that does not match its
 * certificate or a wrong passphrase fails here. */
static int ike_load_cert(struct bw_ike_conn *ike, char *err, size_t errlen, const char **missing_out,
			 struct bw_cert_err *cert_err)
{
	struct bw_cert_err ce;
	const char *key = bw_cert_secret_key(&ike->cfg);
	bool p12 = strcmp(key, "pkcs12_password") == 0;

	ike->sa.cert = bw_cert_load(&ike->cfg, p12 ? (ike->sec.has_pkcs12_password ? ike->sec.pkcs12_password : NULL) :
				 ike->sec.has_private_key_passphrase ? ike->sec.private_key_passphrase : NULL, &ce);
	if (ike->sa.cert) {
		struct bw_cert_info own;

		bw_cert_own_info(ike->sa.cert, &own);
		ike_log(ike, BW_LOG_INFO, "our certificate: %s, issued by %s, valid until %s", own.subject, own.issuer,
			own.not_after);
		return 0;
	}
	snprintf(err, errlen, "%s", ce.msg);
	if (strcmp(ce.code, "needs-secret") == 0) {
		snprintf(err, errlen, "%s: the %s %s is %s; put %s = ... in "
			 "%s/secrets/%s.secrets (mode 0600), or run burrow start on a terminal to type it",
			 ike->cfg.name, p12 ? "PKCS#12 file" : "private key", p12 ? ike->cfg.certificate :
			 ike->cfg.private_key, p12 ? "protected by a password" : "encrypted", key,
			 ike->agent->opts.config_dir, ike->cfg.name);
		if (missing_out)
			*missing_out = key;
	} else if (cert_err) {
		*cert_err = ce;
	}
	return -1;
}

/* Secrets typed in at `burrow start` fill what the file lacks. */
static void fill_prompted(struct bw_secrets *sec, const struct bw_conn *c)
{
	if (!sec->has_psk && c->prompted.has_psk) {
		memcpy(sec->psk, c->prompted.psk, sizeof(sec->psk));
		sec->psk_len = c->prompted.psk_len;
		sec->has_psk = true;
	}
	if (!sec->has_xauth_password && c->prompted.has_xauth_password) {
		memcpy(sec->xauth_password, c->prompted.xauth_password, sizeof(sec->xauth_password));
		sec->has_xauth_password = true;
	}
	if (!sec->has_private_key_passphrase && c->prompted.has_private_key_passphrase) {
		memcpy(sec->private_key_passphrase, c->prompted.private_key_passphrase,
		       sizeof(sec->private_key_passphrase));
		sec->has_private_key_passphrase = true;
	}
	if (!sec->has_pkcs12_password && c->prompted.has_pkcs12_password) {
		memcpy(sec->pkcs12_password, c->prompted.pkcs12_password, sizeof(sec->pkcs12_password));
		sec->has_pkcs12_password = true;
	}
}

static void init_timers(struct bw_ike_conn *ike)
{
	ev_init(&ike->resend.timer, NULL);
	ev_init(&ike->keepalive, NULL);
	ev_init(&ike->stop_timer, NULL);
	ev_init(&ike->dpd.timer, NULL);
	ev_init(&ike->rekey.timer, start_rekey);
	ev_init(&ike->rekey.old_sa_timer, NULL);
	ev_init(&ike->rekey.switch_timer, NULL);
	ike->rekey.switch_child = -1;
	ev_init(&ike->txn.timer, NULL);
	ev_init(&ike->reauth.timer, on_reauth);
	ev_timer_init(&ike->path.resolve_timer, on_resolve_timeout, IKE_RESOLVE_WAIT_S, 0.0);
}

/* A new engine instance for c: secrets loaded, cookies drawn, registered; nothing sent yet.
 * NULL with a reason in err and its failure code in *code_out; *missing_out names a
 * missing secret. */
static struct bw_ike_conn *ike_new_x(struct bw_conn *c, const struct bw_sa_backend_ops *be, char *err,
				     size_t errlen, const char **missing_out, const char **code_out,
				     struct bw_cert_err *cert_err)
{
	struct bw_agent *a = c->agent;
	struct bw_ike_conn *ike;
	struct bw_cfg_error cerr;
	int rc;

	*code_out = "internal";
	ike = calloc(1, sizeof(*ike));
	if (!ike) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	ike->conn = c;
	ike->agent = a;
	ike->cfg = c->cfg;
	ike->dp.be = be;
	rc = bw_agent_load_secrets(a, c->name, &ike->sec, &cerr);
	if (rc < 0) {
		*code_out = secrets_code(cerr.file);
		if (cerr.line)
			snprintf(err, errlen, "%s:%d: %s", cerr.file, cerr.line, cerr.msg);
		else
			snprintf(err, errlen, "%s: %s", c->name, cerr.msg);
		bw_secrets_wipe(&ike->sec);
		free(ike);
		return NULL;
	}
	fill_prompted(&ike->sec, c);
	if (c->cfg.auth_method != BW_AUTH_PSK) {
		const char *missing = NULL;

		if (ike_load_cert(ike, err, errlen, &missing, cert_err) != 0) {
			if (missing_out)
				*missing_out = missing;
			*code_out = missing ? "needs-secret" : "cert-invalid";
			bw_secrets_wipe(&ike->sec);
			free(ike);
			return NULL;
		}
	}
	{
		const char *missing = c->cfg.auth_method == BW_AUTH_PSK && !ike->sec.has_psk ? "psk" :
				      c->cfg.xauth && !ike->sec.has_xauth_password ? "xauth_password" : NULL;

		if (missing) {
			snprintf(err, errlen, "%s needs %s: put %s = ... in %s/secrets/%s.secrets (mode 0600), "
				 "or run burrow start on a terminal to type it", c->name,
				 strcmp(missing, "psk") == 0 ? "a pre-shared key" : "the XAUTH password", missing,
				 a->opts.config_dir, c->name);
			bw_secrets_wipe(&ike->sec);
			free(ike);
			if (missing_out)
				*missing_out = missing;
			*code_out = "needs-secret";
			return NULL;
		}
	}
	if (c->cfg.has_local_address) {
		ike->dp.vip = c->cfg.local_address;
		ike->dp.vip.prefix = 32;
		ike->dp.have_vip = true;
	}
	/* The userspace datapath can only carry ESP in UDP: make the gateway use it. */
	if ((be->caps & BW_SA_CAP_ESP_IN_UDP_ONLY) && ike->cfg.nat_traversal == BW_NATT_AUTO) {
		ike->cfg.nat_traversal = BW_NATT_FORCE;
		bw_log(BW_LOG_DEBUG, c->name, "%s datapath: forcing ESP in UDP (NAT-T)", be->name);
	}
	ike->path.use_natt = ike->cfg.nat_traversal != BW_NATT_OFF;
	do {
		if (bw_random(ike->sa.icookie, 8) != 0) {
			bw_cert_free(ike->sa.cert);
			bw_secrets_wipe(&ike->sec);
			free(ike);
			snprintf(err, errlen, "no randomness available");
			return NULL;
		}
	} while (ike_find_by_cookie(ike->sa.icookie));
	ike_register(ike);
	init_timers(ike);
	return ike;
}

static struct bw_ike_conn *ike_new(struct bw_conn *c, const struct bw_sa_backend_ops *be, char *err, size_t errlen)
{
	const char *code;

	return ike_new_x(c, be, err, errlen, NULL, &code, NULL);
}

/* The replacement failed: put traffic back on the old SAs and forget it; the old IKE SA keeps
 * the tunnel until it expires or the gateway drops it, and we try once more later. */
static void reauth_abandon(struct bw_ike_conn *n, const char *why)
{
	struct bw_ike_conn *old = n->reauth.of;

	ike_log(n, BW_LOG_WARN, "re-authentication failed (%s); the tunnel stays on the current SAs", why);
	for (size_t i = 0; old && i < n->children.n && i < old->children.n; i++) {
		struct ike_child *nc = &n->children.sa[i], *oc = &old->children.sa[i];

		if (!nc->installed || nc->rekeying)
			continue;
		n->dp.be->add_policy(n->dp.conn, &oc->local_ts, &oc->remote_ts, spi_host(oc->spi_out), spi_host(oc->spi_in));
		n->dp.be->del_sa(n->dp.conn, spi_host(nc->spi_out), BW_SA_OUT);
		n->dp.be->del_sa(n->dp.conn, spi_host(nc->spi_in), BW_SA_IN);
		nc->installed = false;
	}
	send_deletes(n);
	if (old) {
		old->reauth.next = NULL;
		ev_timer_set(&old->reauth.timer, 30.0, 0.0);
		ev_timer_start(old->agent->loop, &old->reauth.timer);
	}
	n->reauth.of = NULL;
	n->conn = NULL;
	teardown(n);
}

/* The replacement is up: its IPsec SAs already carry the traffic (policies switched as each
 * Quick Mode finished). Retire the old IKE SA and its IPsec SAs and hand over the datapath. */
static void reauth_switch(struct bw_ike_conn *n)
{
	struct bw_ike_conn *old = n->reauth.of;
	struct bw_conn *c = n->conn;

	for (size_t i = 0; i < n->children.n && i < old->children.n; i++) {
		struct ike_child *oc = &old->children.sa[i], *nc = &n->children.sa[i];

		if (oc->state != QM_DONE)
			continue;
		n->dp.be->del_sa(n->dp.conn, spi_host(oc->spi_out), BW_SA_OUT);
		memcpy(nc->old_spi_in, oc->spi_in, 4);
		nc->old_in_valid = true;	/* late packets on the old inbound SA still count */
		if (oc->old_in_valid)
			n->dp.be->del_sa(n->dp.conn, spi_host(oc->old_spi_in), BW_SA_IN);
		oc->old_in_valid = false;
		oc->installed = false;
	}
	ev_timer_init(&n->rekey.old_sa_timer, on_old_sas, IKE_OLD_SA_GRACE_S, 0.0);
	ev_timer_start(n->agent->loop, &n->rekey.old_sa_timer);
	send_deletes(old);
	/* DNS, forwarding and the datapath move to the new instance. */
	n->dns.applied = old->dns.applied;
	n->dns.via_resolved = old->dns.via_resolved;
	n->dns.fwd = old->dns.fwd;
	memcpy(n->dns.warning, old->dns.warning, sizeof(n->dns.warning));
	n->dp.forwarding_enabled = old->dp.forwarding_enabled;
	old->dns.applied = old->dns.via_resolved = old->dp.forwarding_enabled = false;
	old->dns.fwd = NULL;
	n->dp.shared = false;
	old->dp.shared = true;
	old->reauth.next = NULL;
	n->reauth.of = NULL;
	c->ike = n;
	old->conn = NULL;
	teardown(old);
	ike_log(n, BW_LOG_INFO, "re-authenticated: a new IKE SA and new IPsec SAs replace the old ones");
	start_liveness(n);
}

static int begin_exchange(struct bw_ike_conn *ike);

static void on_reauth(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *old = bw_container_of(w, struct bw_ike_conn, reauth.timer), *n;
	char err[512];

	(void)revents;
	if (old->reauth.next || !old->conn)
		return;
	if (old->conn->state != BW_CONN_UP) {
		ev_timer_set(w, 5.0, 0.0);	/* after the rekey in progress */
		ev_timer_start(loop, w);
		return;
	}
	n = ike_new(old->conn, old->dp.be, err, sizeof(err));
	if (!n) {
		ike_log(old, BW_LOG_WARN, "cannot re-authenticate: %s; the tunnel ends when the IKE SA expires", err);
		return;
	}
	ike_log(old, BW_LOG_INFO, "re-authenticating the IKE SA before its lifetime ends");
	n->reauth.of = old;
	old->reauth.next = n;
	n->dp.conn = old->dp.conn;
	n->dp.shared = true;
	n->path.peer = old->path.peer;
	begin_exchange(n);
}

/* A start refused before anything is sent: reported like every other failure. */
static int refuse(struct bw_conn *c, const char *code, const char *err, const char *explanation)
{
	bw_conn_fail(c, code, err, explanation);
	return -1;
}

/* Why a start failed in ike_new_x, and what to do, with the real names and paths. */
static int refuse_new(struct bw_conn *c, const char *code, const char *missing, const char *err)
{
	char x[768], path[PATH_MAX + BW_NAME_MAX + 32];

	snprintf(path, sizeof(path), "%s/secrets/%s.secrets", c->agent->opts.config_dir, c->name);
	if (missing) {
		bw_strlcpy(c->needs_secret, missing, sizeof(c->needs_secret));
		snprintf(x, sizeof(x), "%s needs %s (%s) and none is in %.160s. A start without a terminal (a "
			 "headless agent, a policy, burrow start with no tty) cannot ask for it. Put %s = ... in "
			 "%.160s (mode 0600), or run burrow start %s on a terminal to type it.", c->name,
			 strcmp(missing, "psk") == 0 ? "a pre-shared key" :
			 strcmp(missing, "private_key_passphrase") == 0 ? "the passphrase of its private key" :
			 strcmp(missing, "pkcs12_password") == 0 ? "the password of its PKCS#12 file" :
			 "the XAUTH password", missing, path, missing, path, c->name);
		bw_conn_fail_to(c, BW_CONN_NEEDS_SECRET, NULL, code, err, x);
		return -1;
	}
	if (strcmp(code, "secrets-insecure") == 0)
		snprintf(x, sizeof(x), "Burrow refuses the secrets file %.160s because users other than root "
			 "could read or change it. Run chmod 600 %.160s and chown root %.160s, then burrow start %s.", path, path,
			 path, c->name);
	else if (strcmp(code, "secrets-invalid") == 0)
		snprintf(x, sizeof(x), "The secrets file %.160s could not be used (%.300s). Fix it, then burrow start %s.",
			 path, err, c->name);
	else
		snprintf(x, sizeof(x), "%s could not be started: %.600s.", c->name, err);
	return refuse(c, code, err, x);
}

int bw_ike_conn_start(struct bw_conn *c, char *err, size_t errlen)
{
	struct bw_agent *a = c->agent;
	struct bw_ike_conn *ike;
	const struct bw_sa_backend_ops *be;
	const char *missing = NULL, *code = NULL;
	struct bw_cert_err cert_err = { .code = "" };
	struct in_addr in;
	char x[768];

	if (c->ike) {
		snprintf(err, errlen, "%s is already being started", c->name);
		return -1;
	}
	if (c->cfg.auth_method != BW_AUTH_PSK && c->cfg.exchange != BW_EXCHANGE_MAIN) {
		snprintf(err, errlen, "%s: certificates work with Main Mode only so far; set exchange = main in [phase1]",
			 c->name);
		snprintf(x, sizeof(x), "%s sets method = %s and exchange = aggressive in %.200s. This release of Burrow "
			 "authenticates with certificates in Main Mode only: set exchange = main in [phase1].", c->name,
			 bw_auth_method_name(c->cfg.auth_method), c->file);
		return refuse(c, "unsupported-method", err, x);
	}
	if (c->cfg.auth_method == BW_AUTH_ECDSA && c->cfg.xauth) {
		snprintf(err, errlen, "%s: IKEv1 has no XAUTH variant of ECDSA authentication; use method = rsa or "
			 "xauth = no", c->name);
		snprintf(x, sizeof(x), "%s sets method = ecdsa and xauth = yes in %.200s, but IKEv1 defines XAUTH with "
			 "RSA signatures and pre-shared keys only. Use method = rsa with an RSA certificate, or xauth = no.",
			 c->name, c->file);
		return refuse(c, "unsupported-method", err, x);
	}
	be = bw_sa_backend_pick(a->cfg.backend, err, errlen);
	if (!be) {
		snprintf(x, sizeof(x), "No datapath can carry %s's tunnel on this machine: %.400s. burrow doctor %s "
			 "checks kernel ESP and /dev/net/tun.", c->name, err, c->name);
		return refuse(c, "backend-unavailable", err, x);
	}
	if (c->cfg.mode == BW_MODE_TRANSPORT && c->cfg.has_local_address) {
		snprintf(err, errlen, "%s: transport mode protects this host's own address; remove local_address",
			 c->name);
		snprintf(x, sizeof(x), "%s sets mode = transport and local_address in %.200s. Transport mode protects "
			 "the traffic of this host's own address, so there is no tunnel address to set: remove "
			 "local_address, or use mode = tunnel.", c->name, c->file);
		return refuse(c, "unsupported-setting", err, x);
	}
	if (c->cfg.nat_traversal == BW_NATT_OFF && (be->caps & BW_SA_CAP_ESP_IN_UDP_ONLY)) {
		snprintf(err, errlen, "%s: the %s datapath carries ESP in UDP only; set nat_traversal = auto",
			 c->name, be->name);
		snprintf(x, sizeof(x), "%s sets nat_traversal = no in %.200s, but the datapath on this machine is "
			 "Burrow's %s one, which carries ESP in UDP only. Set nat_traversal = auto, or use the "
			 "kernel's ESP (backend = xfrm in burrow.conf) where the kernel has it.", c->name, c->file,
			 be->name);
		return refuse(c, "unsupported-setting", err, x);
	}
	if (route_conflict_at_start(c, err, errlen, x, sizeof(x)))
		return refuse(c, "route-conflict", err, x);
	if (ike_sockets_open(a, a->cfg.ike_port, a->cfg.natt_port, be, err, errlen) != 0) {
		snprintf(x, sizeof(x), "%s cannot start because Burrow cannot open its IKE ports: %.500s.", c->name, err);
		return refuse(c, "ike-port", err, x);
	}
	ike = ike_new_x(c, be, err, errlen, &missing, &code, &cert_err);
	if (!ike && cert_err.code[0]) {
		bw_conn_fail(c, cert_err.code, cert_err.msg, cert_err.explanation);
		return -1;
	}
	if (!ike)
		return refuse_new(c, code, missing, err);
	c->needs_secret[0] = '\0';
	c->ike = ike;
	c->fail_code[0] = '\0';
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);

	if (inet_pton(AF_INET, c->cfg.gateway, &in) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ike->path.peer;

		sin->sin_family = AF_INET;
		sin->sin_addr = in;
		begin_exchange(ike);
		return 0;
	}
	/* A name: resolved without blocking the loop; the resolver tells us when it is done. */
	ike->path.resolve = ike_resolve_start(a->loop, ike->cfg.gateway, on_resolved, ike, err, errlen);
	if (!ike->path.resolve) {
		ike_fail(ike, "dns", err, NULL);
		return 0;
	}
	ike->sa.p1 = P1_RESOLVING;
	ev_timer_start(a->loop, &ike->path.resolve_timer);
	return 0;
}

/* After tunnel_stopping: the policies' actions (unmounting a share, say) are done or timed out. */
static void finish_stop(void *ctx)
{
	struct bw_conn *c = ctx;
	struct bw_ike_conn *ike = c->ike;

	if (c->state != BW_CONN_STOPPING)
		return;	/* someone else finished it meanwhile */
	if (ike) {
		send_deletes(ike);
		teardown(ike);
	}
	bw_conn_set_state(c, BW_CONN_DOWN, c->stop_reason);
}

void bw_ike_conn_stop(struct bw_conn *c, const char *reason)
{
	struct bw_ike_conn *ike = c->ike;

	if (!ike) {
		bw_conn_set_state(c, BW_CONN_DOWN, reason);
		return;
	}
	if (c->state == BW_CONN_UP || c->state == BW_CONN_REKEYING) {
		/* tunnel_stopping goes out first; the SAs stay until its actions are done (bounded). */
		bw_strlcpy(c->stop_reason, reason ? reason : "stopped", sizeof(c->stop_reason));
		bw_conn_set_state(c, BW_CONN_STOPPING, reason);
		if (!c->agent->stopping && c->stopping_barrier.await) {
			c->stopping_barrier.await(c->stopping_barrier.ctx, c->name, finish_stop, c);
			return;
		}
		finish_stop(c);
		return;
	}
	send_deletes(ike);
	teardown(ike);
	bw_conn_set_state(c, BW_CONN_DOWN, reason);
}

/* After a change of network: the tunnel is bound to our address towards the gateway; when that
 * address is gone or another one would be used now, the tunnel is taken down with reason network
 * (defaults.lua brings it back once the network is there). */
void bw_ike_conn_network_changed(struct bw_conn *c)
{
	struct bw_ike_conn *ike = c->ike;
	struct sockaddr_in peer, now;
	socklen_t len = sizeof(now);
	bool moved = false;
	int fd;

	if (!ike || ike->reauth.of || (c->state != BW_CONN_UP && c->state != BW_CONN_REKEYING))
		return;
	peer = *(struct sockaddr_in *)&ike->path.peer;
	peer.sin_port = htons(500);
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (connect(fd, (struct sockaddr *)&peer, sizeof(peer)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&now, &len) != 0)
		moved = true;	/* no route to the gateway at all */
	else
		moved = now.sin_addr.s_addr != ((struct sockaddr_in *)&ike->path.local)->sin_addr.s_addr;
	close(fd);
	if (!moved)
		return;
	ike_log(ike, BW_LOG_WARN, "our address towards the gateway changed; the tunnel goes down and is "
		"negotiated again from the new address");
	send_deletes(ike);
	teardown(ike);
	bw_conn_fail_to(c, BW_CONN_DOWN, "network", "network", "the network changed under the tunnel",
			"This machine's address or route towards the gateway changed (another network, a new "
			"lease). The tunnel was taken down; policies (defaults.lua) bring it back from the new "
			"network.");
}

void bw_ike_conn_status(const struct bw_conn *c, json_t *st)
{
	const struct bw_ike_conn *ike = c->ike;
	struct bw_sa_counters cnt = { 0 };
	json_t *sas = json_array();
	char a[64];

	if (ike && ike->dp.conn) {
		ike->dp.be->counters(ike->dp.conn, &cnt);
		json_object_set_new(st, "interface", json_string(ike->dp.be->ifname(ike->dp.conn)));
		json_object_set_new(st, "backend", json_string(ike->dp.be->name));
	}
	if (ike && ike->sa.p1 >= P1_MM_SENT1) {
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&ike->path.local)->sin_addr, a, sizeof(a));
		json_object_set_new(st, "local_address", json_string(a));
		inet_ntop(AF_INET, &((const struct sockaddr_in *)&ike->path.peer)->sin_addr, a, sizeof(a));
		json_object_set_new(st, "gateway_address", json_string(a));
		json_object_set_new(st, "nat_traversal", json_boolean(ike->path.floated));
	}
	if (ike && ike->dp.have_vip) {
		bw_cidr_format(&ike->dp.vip, a, sizeof(a));
		json_object_set_new(st, "virtual_ip", json_string(a));
	}
	for (size_t i = 0; ike && i < ike->children.n; i++) {
		const struct ike_child *ch = &ike->children.sa[i];
		char l[64], r[64], alg[64];

		if (ch->state != QM_DONE)
			continue;
		bw_cidr_format(&ch->local_ts, l, sizeof(l));
		bw_cidr_format(&ch->remote_ts, r, sizeof(r));
		bw_p2_proposal_format(&ch->alg, alg, sizeof(alg));
		json_array_append_new(sas, json_sprintf("%s === %s %s in %02x%02x%02x%02x out %02x%02x%02x%02x",
							 l, r, alg, ch->spi_in[0], ch->spi_in[1], ch->spi_in[2],
							 ch->spi_in[3], ch->spi_out[0], ch->spi_out[1], ch->spi_out[2],
							 ch->spi_out[3]));
	}
	if (ike && ike->txn.mc.banner[0])
		json_object_set_new(st, "banner", json_string(ike->txn.mc.banner));
	if (ike && ike->dns.warning[0])
		json_object_set_new(st, "warnings", json_pack("[s]", ike->dns.warning));
	if (ike && ike->txn.mc.domain[0])
		json_object_set_new(st, "domain", json_string(ike->txn.mc.domain));
	if (ike && ike->txn.mc.n_dns) {
		json_t *d = json_array();

		for (size_t i = 0; i < ike->txn.mc.n_dns; i++) {
			bw_cidr_format(&ike->txn.mc.dns[i], a, sizeof(a));
			json_array_append_new(d, json_string(a));
		}
		json_object_set_new(st, "gateway_dns", d);
	}
	if (ike && ike->sa.have_peer_cert)
		json_object_set_new(st, "gateway_certificate",
				    json_pack("{s:s,s:s,s:s}", "subject", ike->sa.peer_cert.subject, "issuer",
					      ike->sa.peer_cert.issuer, "not_after", ike->sa.peer_cert.not_after));
	json_object_set_new(st, "sas", sas);
	json_object_set_new(st, "bytes_in", json_integer((json_int_t)cnt.bytes_in));
	json_object_set_new(st, "bytes_out", json_integer((json_int_t)cnt.bytes_out));
	json_object_set_new(st, "packets_in", json_integer((json_int_t)cnt.packets_in));
	json_object_set_new(st, "packets_out", json_integer((json_int_t)cnt.packets_out));
}

json_t *bw_ike_conn_up_event(const struct bw_conn *c)
{
	const struct bw_ike_conn *ike = c->ike;
	json_t *o = json_pack("{s:s}", "connection", c->name), *nets = json_array();
	char buf[64];

	if (ike && ike->dp.have_vip) {
		bw_cidr_format(&ike->dp.vip, buf, sizeof(buf));
		json_object_set_new(o, "virtual_ip", json_string(buf));
	}
	for (size_t i = 0; ike && i < ike->children.n; i++) {
		bw_cidr_format(&ike->children.sa[i].remote_ts, buf, sizeof(buf));
		json_array_append_new(nets, json_string(buf));
	}
	json_object_set_new(o, "networks", nets);
	{
		json_t *d = json_array();

		for (size_t i = 0; ike && i < ike->txn.mc.n_dns; i++) {
			bw_cidr_format(&ike->txn.mc.dns[i], buf, sizeof(buf));
			json_array_append_new(d, json_string(buf));
		}
		json_object_set_new(o, "dns", d);
	}
	return o;
}

void bw_ike_conn_bytes(const struct bw_conn *c, uint64_t *in, uint64_t *out)
{
	struct bw_sa_counters cnt = { 0 };

	if (c->ike && c->ike->dp.conn)
		c->ike->dp.be->counters(c->ike->dp.conn, &cnt);
	*in = cnt.bytes_in;
	*out = cnt.bytes_out;
}

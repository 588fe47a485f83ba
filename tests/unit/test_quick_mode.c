/* Quick Mode as initiator against a gateway played by this test, on top of an established
 * phase 1 (keys made up here): the real engine (ikev1_quick.c, ike_conn.c) builds and parses
 * every message; the test decrypts, answers and encrypts with the same IKE primitives the
 * way the gateway would, and watches a fake datapath. What it proves: without the commit bit
 * the SA is put to use right after HASH(3); with it (RFC 2408 3.1), only once the gateway's
 * CONNECTED arrives (or traffic on the new SA, or the wait ends), while a repeated second
 * message or a fourth message with a wrong HASH(4) gets our third message again. */
#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "agent.h"
#include "conn.h"
#include "ike/ike_crypto.h"
#include "ike/ikev1.h"
#include "ike/isakmp.h"
#include "log.h"
#include "tap.h"

/* ---- what the engine sends ---- */
static uint8_t sent[8][4096];
static size_t sent_len[8];
static int n_sent;

static void on_sent(const uint8_t *msg, size_t len)
{
	if (n_sent < 8 && len <= sizeof(sent[0])) {
		memcpy(sent[n_sent], msg, len);
		sent_len[n_sent] = len;
	}
	n_sent++;
}

/* ---- a datapath that only counts ---- */
static struct {
	int sa, policy, route;
	uint32_t pol_out;
	uint64_t in_packets;
} fk;

static int f_add_sa(struct bw_sa_conn *c, const struct bw_sa_params *p)
{
	(void)c;
	(void)p;
	fk.sa++;
	return 0;
}

static int f_del_sa(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir)
{
	(void)c;
	(void)spi;
	(void)dir;
	return 0;
}

static int f_add_policy(struct bw_sa_conn *c, const struct bw_cidr *l, const struct bw_cidr *r, uint32_t out,
			uint32_t in)
{
	(void)c;
	(void)l;
	(void)r;
	(void)in;
	fk.policy++;
	fk.pol_out = out;
	return 0;
}

static int f_del_policy(struct bw_sa_conn *c, const struct bw_cidr *l, const struct bw_cidr *r)
{
	(void)c;
	(void)l;
	(void)r;
	return 0;
}

static int f_set_address(struct bw_sa_conn *c, const struct bw_cidr *a)
{
	(void)c;
	(void)a;
	return 0;
}

static int f_add_route(struct bw_sa_conn *c, const struct bw_cidr *net, const struct bw_cidr *src)
{
	(void)c;
	(void)net;
	(void)src;
	fk.route++;
	return 0;
}

static int f_counters(struct bw_sa_conn *c, struct bw_sa_counters *out)
{
	(void)c;
	memset(out, 0, sizeof(*out));
	return 0;
}

static int f_sa_packets(struct bw_sa_conn *c, uint32_t spi, enum bw_sa_dir dir, uint64_t *packets)
{
	(void)c;
	(void)spi;
	*packets = dir == BW_SA_IN ? fk.in_packets : 0;
	return 0;
}

static const char *f_ifname(struct bw_sa_conn *c)
{
	(void)c;
	return "bw-qm";
}

static void f_conn_close(struct bw_sa_conn *c)
{
	(void)c;
}

static const struct bw_sa_backend_ops fake_ops = {
	.name = "fake", .add_sa = f_add_sa, .del_sa = f_del_sa, .add_policy = f_add_policy,
	.del_policy = f_del_policy, .set_address = f_set_address, .add_route = f_add_route,
	.counters = f_counters, .sa_packets = f_sa_packets, .ifname = f_ifname, .conn_close = f_conn_close,
};

/* ---- the engine, after phase 1 ---- */
static struct bw_agent agent;
static struct bw_conn *conn;
static struct bw_ike_conn ike;
static struct isakmp_sa sa;	/* large: not on the stack */

/* What the previous run left: its timers run in the loop, its messages are on the heap. */
static void engine_clear(void)
{
	ev_timer *timers[] = { &ike.resend.timer, &ike.keepalive, &ike.path.resolve_timer, &ike.stop_timer, &ike.txn.timer,
			       &ike.dpd.timer, &ike.rekey.timer, &ike.rekey.old_sa_timer, &ike.rekey.switch_timer,
			       &ike.reauth.timer };

	if (!ike.agent)
		return;
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
		ev_timer_stop(agent.loop, timers[i]);
	free(ike.resend.msg);
	free(ike.resend.final_msg);
	free(ike.qr.sent);
	bw_dh_free(ike.qm.dh);
	memset(&ike, 0, sizeof(ike));
}

static void engine_reset(void)
{
	struct sockaddr_in *peer = (struct sockaddr_in *)&ike.path.peer, *local = (struct sockaddr_in *)&ike.path.local;

	engine_clear();
	memset(&fk, 0, sizeof(fk));
	n_sent = 0;
	ike.conn = conn;
	ike.agent = &agent;
	ike.cfg = conn->cfg;
	ike.sa.p1 = P1_DONE;
	ike.sa.authenticated = true;
	ike.sa.lifetime_s = 86400;
	ike.sa.alg.encr = BW_P1_ENCR_AES_CBC;
	ike.sa.alg.key_bits = 128;
	ike.sa.alg.hash = BW_HASH_SHA256;
	ike.sa.alg.dh = BW_DH_MODP2048;
	ike.sa.enc_key_len = 16;
	ike.sa.block = 16;
	ike.sa.prf_len = 32;
	RAND_bytes(ike.sa.enc_key, 16);
	RAND_bytes(ike.sa.skeyid_a, 32);
	RAND_bytes(ike.sa.skeyid_d, 32);
	RAND_bytes(ike.sa.iv, 16);
	RAND_bytes(ike.sa.icookie, 8);
	RAND_bytes(ike.sa.rcookie, 8);
	peer->sin_family = local->sin_family = AF_INET;
	peer->sin_port = local->sin_port = htons(500);
	inet_pton(AF_INET, "192.0.2.1", &peer->sin_addr);
	inet_pton(AF_INET, "192.0.2.2", &local->sin_addr);
	ike.children.n = 1;
	bw_cidr_parse("10.9.0.2/32", &ike.children.sa[0].local_ts);
	bw_cidr_parse("10.1.0.0/24", &ike.children.sa[0].remote_ts);
	ike.dp.be = &fake_ops;
	ike.dp.conn = (struct bw_sa_conn *)&fk;
	ike.rekey.switch_child = -1;
	conn->ike = &ike;
	conn->state = BW_CONN_CONNECTING;
}

/* ---- the gateway ---- */
static uint32_t msgid;
static uint8_t iv[BW_IKE_BLOCK_MAX];	/* the exchange's running IV, as both ends keep it */
static uint8_t ni[256], idci[64], idcr[64];
static size_t ni_len, idci_len, idcr_len;
static uint8_t qm2[4096];
static size_t qm2_len;

/* Decrypts our first message and keeps what the answer needs. */
static int read_qm1(void)
{
	uint8_t msg[4096];
	struct isakmp_hdr h;
	struct isakmp_payloads pls;
	int id = 0;

	memcpy(msg, sent[0], sent_len[0]);
	if (isakmp_hdr_parse(msg, sent_len[0], &h) != 0 || h.exchange != ISAKMP_EXCH_QUICK)
		return -1;
	msgid = h.msgid;
	bw_ike_iv_msgid(BW_HASH_SHA256, ike.sa.iv, 16, msgid, iv);
	if (ike_decrypt_msg(&ike, msg, sent_len[0], iv) != 0 ||
	    isakmp_payloads_parse(h.np, msg + ISAKMP_HDR_LEN, sent_len[0] - ISAKMP_HDR_LEN, &pls) != 0)
		return -1;
	for (size_t i = 0; i < pls.n; i++) {
		const struct isakmp_payload *p = &pls.p[i];

		if (p->type == ISAKMP_PL_SA && isakmp_parse_sa(p, &sa) != 0)
			return -1;
		if (p->type == ISAKMP_PL_NONCE && p->len <= sizeof(ni)) {
			memcpy(ni, p->data, p->len);
			ni_len = p->len;
		}
		if (p->type == ISAKMP_PL_ID && p->len <= sizeof(idci)) {
			memcpy(id ? idcr : idci, p->data, p->len);
			*(id++ ? &idcr_len : &idci_len) = p->len;
		}
	}
	return sa.n_proposals == 1 && ni_len && id == 2 ? 0 : -1;
}

/* Encrypts b (header flags as given) with the running IV and hands it to the engine. */
static void deliver(struct isakmp_builder *b, uint8_t *copy, size_t *copy_len)
{
	struct isakmp_hdr h;
	uint8_t *m;
	size_t len;

	ike_encrypt_msg(&ike, b, iv);
	m = isakmp_b_buf(b);
	len = isakmp_b_len(b);
	if (copy) {
		memcpy(copy, m, len);
		*copy_len = len;
	}
	isakmp_hdr_parse(m, len, &h);
	ike_dispatch(&ike, &h, m, len);
	isakmp_b_free(b);
}

static void hdr(struct isakmp_hdr *h, uint8_t flags)
{
	memset(h, 0, sizeof(*h));
	memcpy(h->icookie, ike.sa.icookie, 8);
	memcpy(h->rcookie, ike.sa.rcookie, 8);
	h->version = ISAKMP_VERSION;
	h->exchange = ISAKMP_EXCH_QUICK;
	h->flags = flags;
	h->msgid = msgid;
}

/* HDR*, HASH(2), SA (our first transform, the gateway's SPI), Nr [, extra], IDci, IDcr; extra is a
 * second SA or a vendor ID when asked for (0: none), under a valid HASH(2) all the same. */
static void send_qm2_with(bool commit, uint8_t extra)
{
	static const uint8_t nr[16] = "gateway's nonce";
	struct isakmp_builder b;
	struct isakmp_hdr h;
	size_t off, len;

	hdr(&h, ISAKMP_FLAG_ENC | (commit ? ISAKMP_FLAG_COMMIT : 0));
	sa.p[0].n_transforms = 1;
	memcpy(sa.p[0].spi, "\xab\xcd\x00\x01", 4);
	isakmp_b_init(&b, &h);
	isakmp_b_hash_reserve(&b, 32, &off);
	isakmp_b_sa(&b, &sa);
	isakmp_b_nonce(&b, nr, sizeof(nr));
	if (extra == ISAKMP_PL_SA)
		isakmp_b_sa(&b, &sa);
	else if (extra == ISAKMP_PL_VID)
		isakmp_b_vid(&b, (const uint8_t *)"not-in-QM", 9);
	isakmp_b_payload(&b, ISAKMP_PL_ID, idci, idci_len);
	isakmp_b_payload(&b, ISAKMP_PL_ID, idcr, idcr_len);
	isakmp_b_finish(&b);
	len = isakmp_b_len(&b);
	bw_ike_qm_hash2(BW_HASH_SHA256, ike.sa.skeyid_a, msgid, ni, ni_len, isakmp_b_buf(&b) + off + 32,
			len - off - 32, isakmp_b_buf(&b) + off);
	deliver(&b, qm2, &qm2_len);
}

static void send_qm2(bool commit)
{
	send_qm2_with(commit, 0);
}

/* Our third message, decrypted: the running IV moves past it as the gateway's would. */
static int read_qm3(int k)
{
	uint8_t msg[4096];
	struct isakmp_hdr h;

	memcpy(msg, sent[k], sent_len[k]);
	return isakmp_hdr_parse(msg, sent_len[k], &h) == 0 && h.msgid == msgid && h.exchange == ISAKMP_EXCH_QUICK &&
			       ike_decrypt_msg(&ike, msg, sent_len[k], iv) == 0 ? 0 : -1;
}

/* HDR*, HASH(4), N(CONNECTED); a broken HASH(4) when bad. */
static void send_qm4(bool bad)
{
	struct isakmp_notify n = { .doi = ISAKMP_DOI_IPSEC, .proto = ISAKMP_PROTO_ESP, .spi_size = 4,
				   .type = ISAKMP_N_CONNECTED };
	struct isakmp_builder b;
	struct isakmp_hdr h;
	size_t off, len;

	memcpy(n.spi, "\xab\xcd\x00\x01", 4);
	hdr(&h, ISAKMP_FLAG_ENC | ISAKMP_FLAG_COMMIT);
	isakmp_b_init(&b, &h);
	isakmp_b_hash_reserve(&b, 32, &off);
	isakmp_b_notify(&b, &n);
	isakmp_b_finish(&b);
	len = isakmp_b_len(&b);
	bw_ike_qm_hash1(BW_HASH_SHA256, ike.sa.skeyid_a, msgid, isakmp_b_buf(&b) + off + 32, len - off - 32,
			isakmp_b_buf(&b) + off);
	if (bad)
		isakmp_b_buf(&b)[off] ^= 1;
	deliver(&b, NULL, NULL);
}

static void run_loop(double seconds)
{
	double until = ev_time() + seconds;

	while (ev_time() < until) {
		ev_run(agent.loop, EVRUN_NOWAIT);
		usleep(5000);
	}
}

static void test_no_commit(void)
{
	engine_reset();
	ike_quick_start(&ike);	/* there is no socket: only ike_test_sent sees the message */
	tap_is_int(n_sent, 1, "Quick Mode sends its first message");
	tap_is_int(read_qm1(), 0, "it decrypts to HASH(1), SA, Ni and two IDs");
	send_qm2(false);
	tap_is_int(n_sent, 2, "HASH(3) goes out after the gateway's answer");
	tap_ok(fk.sa == 2 && fk.policy == 1 && fk.pol_out == 0xabcd0001, "both SAs and the policy are installed");
	tap_is_int(fk.route, 1, "without the commit bit the SA is put to use at once (route added)");
	tap_is_int(conn->state, BW_CONN_UP, "and the connection is up");
}

/* The answer is opened by one function that refuses payloads Quick Mode does not carry and
 * repeated ones, even under a valid HASH(2); the engine waits for a well-formed answer. */
static void test_refused_payloads(void)
{
	uint8_t iv_qm2[BW_IKE_BLOCK_MAX];

	engine_reset();
	ike_quick_start(&ike);
	read_qm1();
	memcpy(iv_qm2, iv, sizeof(iv));
	send_qm2_with(false, ISAKMP_PL_SA);
	tap_ok(n_sent == 1 && fk.sa == 0 && conn->state != BW_CONN_UP,
	       "an answer with a repeated SA payload is refused: no SA installed, no HASH(3)");
	memcpy(iv, iv_qm2, sizeof(iv));
	send_qm2_with(false, ISAKMP_PL_VID);
	tap_ok(n_sent == 1 && fk.sa == 0 && conn->state != BW_CONN_UP,
	       "an answer with a vendor ID, which Quick Mode does not carry, is refused");
	memcpy(iv, iv_qm2, sizeof(iv));
	send_qm2(false);
	tap_ok(n_sent == 2 && fk.sa == 2 && conn->state == BW_CONN_UP,
	       "the well-formed answer after them is taken and the connection is up");
}

static void test_commit_connected(void)
{
	uint8_t iv_after_qm3[BW_IKE_BLOCK_MAX];
	struct isakmp_hdr h;

	engine_reset();
	ike_quick_start(&ike);
	read_qm1();
	send_qm2(true);
	tap_ok(n_sent == 2 && read_qm3(1) == 0, "commit bit: HASH(3) goes out");
	tap_ok(fk.sa == 2 && fk.route == 0 && conn->state != BW_CONN_UP,
	       "the SAs are installed but not used until the gateway confirms");
	memcpy(iv_after_qm3, iv, sizeof(iv));

	/* The gateway did not get HASH(3): it repeats its answer, and gets it again. */
	isakmp_hdr_parse(qm2, qm2_len, &h);
	ike_dispatch(&ike, &h, qm2, qm2_len);
	tap_ok(n_sent == 3 && sent_len[2] == sent_len[1] && memcmp(sent[2], sent[1], sent_len[1]) == 0,
	       "a repeated second message gets the same third message again");
	tap_is_int(fk.route, 0, "and is not taken for the confirmation");

	send_qm4(true);
	tap_is_int(n_sent, 4, "a fourth message with a wrong HASH(4) gets our third message again");
	tap_ok(fk.route == 0 && conn->state != BW_CONN_UP, "and confirms nothing");

	memcpy(iv, iv_after_qm3, sizeof(iv));
	send_qm4(false);
	tap_is_int(fk.route, 1, "CONNECTED with a valid HASH(4): the SA is put to use");
	tap_is_int(conn->state, BW_CONN_UP, "and the connection is up");
	{
		json_t *log = bw_conn_log_json(conn, BW_LOG_INFO, 50);
		char *text = log ? json_dumps(log, 0) : NULL;

		tap_ok(text && strstr(text, "the gateway set the commit bit") &&
		       strstr(text, "the gateway confirmed the IPsec SA (CONNECTED)"),
		       "the connection's log says the gateway asked for and gave its confirmation");
		free(text);
		json_decref(log);
	}
}

static void test_commit_traffic(void)
{
	engine_reset();
	ike_quick_start(&ike);
	read_qm1();
	send_qm2(true);
	run_loop(0.2);
	tap_is_int(fk.route, 0, "commit bit, no CONNECTED, no traffic: still waiting after 0.2 s");
	fk.in_packets = 1;
	run_loop(0.2);
	tap_is_int(fk.route, 1, "a packet on the new inbound SA confirms it as well");
	tap_is_int(conn->state, BW_CONN_UP, "and the connection is up");
}

int main(void)
{
	char tmpl[] = "/tmp/bw-test-qm-XXXXXX", path[PATH_MAX + 64];
	struct bw_agent_opts o = { 0 };
	FILE *f;

	if (!mkdtemp(tmpl))
		return 1;
	snprintf(o.config_dir, sizeof(o.config_dir), "%s/etc", tmpl);
	snprintf(o.state_dir, sizeof(o.state_dir), "%s/state", tmpl);
	snprintf(o.socket_path, sizeof(o.socket_path), "%s/burrowd.sock", tmpl);
	snprintf(o.devices_dir, sizeof(o.devices_dir), "%s/devices", tmpl);
	o.log_level = BW_LOG_ERROR;
	snprintf(path, sizeof(path), "%s/etc", tmpl);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/etc/connections", tmpl);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/devices", tmpl);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/etc/connections/office.conf", tmpl);
	f = fopen(path, "w");
	if (!f)
		return 1;
	fputs("[connection]\ngateway = 192.0.2.1\nremote_networks = 10.1.0.0/24\nautostart = never\n"
	      "[phase2]\nproposals = aes128-sha256\npfs = none\n", f);
	fclose(f);
	bw_log_init("test", 0, BW_LOG_ERROR);
	if (bw_agent_init(&agent, ev_default_loop(0), &o) != 0 || !(conn = bw_agent_find(&agent, "office"))) {
		printf("1..0 # SKIP the agent did not start\n");
		return 0;
	}
	ike_test_sent = on_sent;

	test_no_commit();
	test_refused_payloads();
	test_commit_connected();
	test_commit_traffic();

	engine_clear();
	conn->ike = NULL;
	conn->state = BW_CONN_DOWN;
	snprintf(path, sizeof(path), "rm -rf '%s'", tmpl);
	if (system(path) != 0)
		tap_diag("could not remove %s", tmpl);
	return tap_done_testing();
}

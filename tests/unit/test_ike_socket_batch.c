/* The batched ESP paths of the IKE sockets, against real UDP sockets in a private network
 * namespace: bursts in (recvmmsg, UDP_GRO, grouped per connection), the send queue out
 * (sendmmsg, UDP_SEGMENT) with its flush before the loop sleeps and its fallback. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "sa-backends/sa_backend.h"
#include "tap.h"


/* ---- a backend that records what it is given ---- */

#define REC_MAX 512

static struct {
	int conn[REC_MAX];	/* 'a' or 'b' */
	uint32_t seq[REC_MAX];
	size_t n;
	int bursts, singles;	/* calls of input_burst and input */
	bool reject;
} rec;

static char conn_a = 'a', conn_b = 'b';

static void record(struct bw_sa_conn *c, const uint8_t *pkt, size_t len)
{
	if (rec.n < REC_MAX && len >= 8) {
		rec.conn[rec.n] = *(const char *)c;
		rec.seq[rec.n] = (uint32_t)pkt[4] << 24 | (uint32_t)pkt[5] << 16 | (uint32_t)pkt[6] << 8 | pkt[7];
		rec.n++;
	}
}

static int fake_input(struct bw_sa_conn *c, const uint8_t *pkt, size_t len)
{
	rec.singles++;
	record(c, pkt, len);
	return rec.reject ? -EBADMSG : 0;
}

static size_t fake_input_burst(struct bw_sa_conn *c, const struct iovec *pkts, size_t n, int *errs)
{
	rec.bursts++;
	for (size_t i = 0; i < n; i++) {
		record(c, pkts[i].iov_base, pkts[i].iov_len);
		if (errs)
			errs[i] = rec.reject ? -EBADMSG : 0;
	}
	return rec.reject ? n : 0;
}

static const struct bw_sa_backend_ops fake_ops = {
	.name = "fake",
	.input = fake_input,
	.input_burst = fake_input_burst,
};

/* ---- the lab: two connections whose gateway is 127.0.0.1:4500, a socket standing for it ---- */

static struct bw_agent agent;
static struct bw_ike_conn *ike_a, *ike_b;
static int gw = -1;			/* the gateway's socket, bound to 127.0.0.1:4500 */
static struct sockaddr_in natt;		/* our NAT-T socket */

static struct bw_ike_conn *fake_ike(const char *name, uint32_t spi, char *tag)
{
	struct bw_ike_conn *ike = calloc(1, sizeof(*ike));
	struct sockaddr_in *peer = (struct sockaddr_in *)&ike->path.peer;

	ike->agent = &agent;
	snprintf(ike->cfg.name, sizeof(ike->cfg.name), "%s", name);
	ike->children.n = 1;
	ike->children.sa[0].installed = true;
	for (int i = 0; i < 4; i++)
		ike->children.sa[0].spi_in[i] = (uint8_t)(spi >> (24 - 8 * i));
	peer->sin_family = AF_INET;
	peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ike->dp.be = &fake_ops;
	ike->dp.conn = (struct bw_sa_conn *)tag;
	ike_register(ike);
	return ike;
}

/* An ESP-looking datagram of len bytes (>= 8): the SPI, then seq where ESP has its own. */
static size_t esp(uint8_t *buf, uint32_t spi, uint32_t seq, size_t len)
{
	for (int i = 0; i < 4; i++) {
		buf[i] = (uint8_t)(spi >> (24 - 8 * i));
		buf[4 + i] = (uint8_t)(seq >> (24 - 8 * i));
	}
	for (size_t i = 8; i < len; i++)
		buf[i] = (uint8_t)(seq + i);
	return len;
}

static void gw_send(const uint8_t *buf, size_t len)
{
	if (sendto(gw, buf, len, 0, (struct sockaddr *)&natt, sizeof(natt)) != (ssize_t)len)
		tap_diag("gateway send: %s", strerror(errno));
}

static void gw_send_esp(uint32_t spi, uint32_t seq, size_t len)
{
	uint8_t buf[2048];

	gw_send(buf, esp(buf, spi, seq, len));
}

static void rec_reset(void)
{
	memset(&rec, 0, sizeof(rec));
}

/* What the gateway has received so far, without waiting: lengths and seqs in arrival order,
 * and whether each datagram is byte for byte what esp() built. */
static size_t gw_drain(size_t *lens, uint32_t *seqs, size_t max, int *bad)
{
	uint8_t buf[4096], want[4096];
	size_t n = 0;
	ssize_t r;

	while ((r = recv(gw, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		uint32_t seq = r >= 8 ? (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
						(uint32_t)buf[6] << 8 | buf[7] : 0;

		if (r < 8 || (size_t)r > sizeof(want) ||
		    memcmp(buf, want, esp(want, 0x1001, seq, (size_t)r)) != 0)
			(*bad)++;
		if (n < max) {
			lens[n] = (size_t)r;
			seqs[n] = seq;
		}
		n++;
	}
	return n;
}

static int send_a(uint32_t seq, size_t len)
{
	uint8_t buf[4096];

	return ike_send_esp(ike_a, buf, esp(buf, 0x1001, seq, len));
}

static bool in_order(const uint32_t *seqs, size_t n, uint32_t from)
{
	for (size_t i = 0; i < n; i++)
		if (seqs[i] != from + i)
			return false;
	return true;
}

/* ---- receive ---- */

static void test_receive(void)
{
	uint8_t buf[2048];
	bool ok = true;
	int seg = 200;

	rec_reset();
	ike_a->dpd.last_rx = 0;
	for (uint32_t i = 0; i < 40; i++)
		gw_send_esp(0x1001, i, 60 + 37 * i);
	ev_run(agent.loop, EVRUN_NOWAIT);
	for (size_t i = 0; i < rec.n; i++)
		ok = ok && rec.conn[i] == 'a' && rec.seq[i] == i;
	tap_ok(rec.n == 40 && ok, "a burst of 40 ESP datagrams reaches its connection complete and in order (%zu)",
	       rec.n);
	tap_is_int(rec.bursts * 100 + rec.singles, 100, "in one input_burst call");
	tap_ok(ike_a->dpd.last_rx > 0, "a burst that decrypts counts as life for DPD");

	/* A3, keepalive, B2, unknown SPI, a malformed IKE packet, A2: the keepalive and the
	 * unknown SPI vanish, IKE splits the group, the connection switch does too. */
	rec_reset();
	ike_a->dpd.last_rx = ike_b->dpd.last_rx = 0;
	for (uint32_t i = 0; i < 3; i++)
		gw_send_esp(0x1001, i, 100);
	gw_send((const uint8_t *)"\xff", 1);
	gw_send_esp(0x2002, 0, 100);
	gw_send_esp(0x2002, 1, 100);
	gw_send_esp(0x7777, 99, 100);
	memset(buf, 0, 12);
	gw_send(buf, 12);
	gw_send_esp(0x1001, 3, 100);
	gw_send_esp(0x1001, 4, 100);
	ev_run(agent.loop, EVRUN_NOWAIT);
	ok = rec.n == 7;
	for (size_t i = 0; ok && i < 7; i++)
		ok = rec.conn[i] == "aaabbaa"[i] && rec.seq[i] == (uint32_t[]){ 0, 1, 2, 0, 1, 3, 4 }[i];
	tap_ok(ok, "mixed traffic: each connection gets its own datagrams, in order, and nothing else");
	tap_is_int(rec.bursts, 3, "three groups: a connection switch and an IKE packet end a group");
	tap_ok(ike_a->dpd.last_rx > 0 && ike_b->dpd.last_rx > 0, "both connections are seen alive");

	rec_reset();
	rec.reject = true;
	ike_a->dpd.last_rx = 0;
	for (uint32_t i = 0; i < 5; i++)
		gw_send_esp(0x1001, i, 100);
	ev_run(agent.loop, EVRUN_NOWAIT);
	tap_ok(rec.n == 5 && ike_a->dpd.last_rx == 0, "a burst that does not decrypt is no proof of life");
	rec.reject = false;

	/* On loopback a UDP_SEGMENT send reaches a UDP_GRO socket in one piece: the read must
	 * be cut back into its datagrams (10 x 200 bytes and a shorter last one). */
	rec_reset();
	{
		uint8_t big[11 * 200];
		char ctl[CMSG_SPACE(sizeof(uint16_t))] = { 0 };
		struct iovec iov = { big, 0 };
		struct msghdr mh = { .msg_name = &natt, .msg_namelen = sizeof(natt), .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof(ctl) };
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		uint16_t gso = (uint16_t)seg;

		for (uint32_t i = 0; i < 10; i++)
			iov.iov_len += esp(big + iov.iov_len, 0x1001, i, (size_t)seg);
		iov.iov_len += esp(big + iov.iov_len, 0x1001, 10, 50);
		cm->cmsg_level = SOL_UDP;
		cm->cmsg_type = UDP_SEGMENT;
		cm->cmsg_len = CMSG_LEN(sizeof(gso));
		memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
		if (sendmsg(gw, &mh, 0) < 0)
			tap_diag("UDP_SEGMENT send: %s", strerror(errno));
	}
	ev_run(agent.loop, EVRUN_NOWAIT);
	ok = rec.n == 11;
	for (size_t i = 0; ok && i < 11; i++)
		ok = rec.conn[i] == 'a' && rec.seq[i] == i;
	tap_ok(ok, "a coalesced (GRO) read is split into its 11 datagrams, in order (%zu)", rec.n);
}

/* ---- send ---- */

static void test_send(void)
{
	size_t lens[128];
	uint32_t seqs[128];
	unsigned long gso0;
	int bad = 0, rc = 0;
	size_t n;
	bool ok;

	gw_drain(lens, seqs, 128, &bad);	/* nothing should be there, but start clean */
	bad = 0;
	gso0 = ike_esp_gso_sends();
	for (uint32_t i = 0; i < 16; i++)
		rc |= send_a(i, i == 10 ? 300 : 1000);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(rc == 0 && n == 0, "ESP is queued, not sent, while the burst goes on (%zu sent)", n);
	ev_run(agent.loop, EVRUN_NOWAIT);
	n = gw_drain(lens, seqs, 128, &bad);
	ok = n == 16 && bad == 0 && in_order(seqs, n, 0);
	for (size_t i = 0; ok && i < n; i++)
		ok = lens[i] == (i == 10 ? 300u : 1000u);
	tap_ok(ok, "before the loop sleeps the queue is flushed: 16 datagrams complete and in order (%zu, %d bad)",
	       n, bad);
	tap_is_int(ike_esp_gso_sends() - gso0, 2,
		   "as two UDP_SEGMENT sends: 10 x 1000 + 300 (a shorter last), then 5 x 1000");

	for (uint32_t i = 0; i < 5; i++)
		send_a(100 + i, 700);
	ike_flush_esp();
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(n == 5 && in_order(seqs, n, 100), "the datapath's flush_esp sends at once (%zu)", n);

	for (uint32_t i = 0; i < 70; i++)
		send_a(200 + i, 500 + (i % 3) * 100);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(n == 64 && in_order(seqs, n, 200), "a full queue (64) is sent before the 65th joins it (%zu)", n);
	ev_run(agent.loop, EVRUN_NOWAIT);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(n == 6 && in_order(seqs, n, 264) && bad == 0, "and the other 6 follow in order (%zu)", n);

	send_a(300, 1000);
	send_a(301, 1000);
	send_a(302, 3000);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(n == 3 && in_order(seqs, n, 300) && lens[2] == 3000 && bad == 0,
	       "a datagram too large for the queue leaves at once, behind what was queued (%zu)", n);

	/* The kernel refuses UDP_SEGMENT (EIO: no checksum offload on the way, or xfrm). */
	ike_esp_test_refuse_gso(EIO);
	gso0 = ike_esp_gso_sends();
	rc = 0;
	for (uint32_t i = 0; i < 8; i++)
		rc |= send_a(400 + i, 1000);
	ev_run(agent.loop, EVRUN_NOWAIT);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(rc == 0 && n == 8 && in_order(seqs, n, 400) && bad == 0,
	       "UDP_SEGMENT refused: the same datagrams go out with sendmmsg, complete and in order (%zu)", n);
	for (uint32_t i = 0; i < 8; i++)
		send_a(500 + i, 1000);
	ev_run(agent.loop, EVRUN_NOWAIT);
	n = gw_drain(lens, seqs, 128, &bad);
	tap_ok(!ike_esp_gso_on() && ike_esp_gso_sends() == gso0 && n == 8 && in_order(seqs, n, 500),
	       "and segmentation stays off for good (%zu)", n);

	/* A flush that fails cannot tell the packets' callers; the next callers hear it. */
	{
		struct sockaddr_in *peer = (struct sockaddr_in *)&ike_b->path.peer;
		uint8_t buf[100];
		int r1, r2, r3;

		peer->sin_addr.s_addr = htonl(INADDR_BROADCAST);	/* nowhere to go from this namespace */
		ike_send_esp(ike_b, buf, esp(buf, 0x1001, 1, sizeof(buf)));
		ike_send_esp(ike_b, buf, esp(buf, 0x1001, 2, sizeof(buf)));
		ike_flush_esp();
		peer->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		r1 = send_a(600, 100);
		r2 = send_a(601, 100);
		r3 = send_a(602, 100);
		ike_flush_esp();
		n = gw_drain(lens, seqs, 128, &bad);
		tap_ok(r1 < 0 && r2 == r1 && r3 == 0 && n == 3,
		       "two failed sends (no route to broadcast) are reported on the next two calls (%d %d %d, %zu sent)",
		       r1, r2, r3, n);
	}
}

/* ---- BURROW_ESP_BATCH=0: one syscall per packet, as before ---- */

static void test_unbatched(void)
{
	size_t lens[16];
	uint32_t seqs[16];
	char err[256];
	int bad = 0;
	size_t n;

	ike_sockets_close();
	setenv("BURROW_ESP_BATCH", "0", 1);
	if (ike_sockets_open(&agent, 0, 0, NULL, err, sizeof(err)) != 0) {
		tap_ok(0, "sockets reopen without batching: %s", err);
		return;
	}
	natt.sin_port = htons(ike_sockets_port(true));
	send_a(700, 1000);
	send_a(701, 1000);
	n = gw_drain(lens, seqs, 16, &bad);
	tap_ok(n == 2 && in_order(seqs, n, 700), "BURROW_ESP_BATCH=0: each ESP packet is sent at once (%zu)", n);
	rec_reset();
	for (uint32_t i = 0; i < 5; i++)
		gw_send_esp(0x1001, i, 100);
	ev_run(agent.loop, EVRUN_NOWAIT);
	tap_ok(rec.n == 5 && rec.singles == 5 && rec.bursts == 0 && in_order(rec.seq, rec.n, 0),
	       "and each one received goes to input on its own (%d singles, %d bursts)", rec.singles, rec.bursts);
	unsetenv("BURROW_ESP_BATCH");
}

int main(void)
{
	struct sockaddr_in gwa = { .sin_family = AF_INET, .sin_port = htons(4500),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	char err[256];

	bw_log_set_level(BW_LOG_WARN);
	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0 || system("ip link set lo up") != 0) {
		printf("1..0 # SKIP needs root and network namespaces\n");
		return 0;
	}
	unsetenv("BURROW_ESP_BATCH");
	agent.loop = ev_loop_new(EVFLAG_AUTO);
	if (ike_sockets_open(&agent, 0, 0, NULL, err, sizeof(err)) != 0) {
		printf("1..0 # SKIP cannot open the IKE sockets: %s\n", err);
		return 0;
	}
	natt = (struct sockaddr_in){ .sin_family = AF_INET, .sin_port = htons(ike_sockets_port(true)),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	gw = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (gw < 0 || bind(gw, (struct sockaddr *)&gwa, sizeof(gwa)) != 0) {
		printf("1..0 # SKIP cannot bind 127.0.0.1:4500 in the namespace: %s\n", strerror(errno));
		return 0;
	}
	ike_a = fake_ike("a", 0x1001, &conn_a);
	ike_b = fake_ike("b", 0x2002, &conn_b);

	test_receive();
	test_send();
	test_unbatched();

	ike_sockets_close();
	ike_unregister(ike_a);
	ike_unregister(ike_b);
	free(ike_a);
	free(ike_b);
	close(gw);
	ev_loop_destroy(agent.loop);
	return tap_done_testing();
}

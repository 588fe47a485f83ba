/* One end of a manually keyed tunnel through Burrow's userspace datapath (TUN + ESP in UDP),
 * for bench/throughput: no IKE, the SAs come from the command line.
 *
 *   bench_us_tunnel --name t --local-addr 10.77.0.1/32 --remote-net 10.77.0.2/32 \
 *       --peer 192.0.2.2 --port 4500 --spi-out 0x1001 --spi-in 0x1002 \
 *       --alg aes128gcm16 --key HEX [--state-dir DIR] [--batch N] [--gso]
 *
 * Opens bw_sa_backend_userspace (TUN device bw-NAME), adds the outbound and inbound SA (both
 * with KEYMAT --key, as Quick Mode KEYMAT: encryption key then auth key, or key then 4-byte
 * salt for GCM), the policy local-addr <-> remote-net, the address and the route. ESP goes
 * in UDP (RFC 3948) from a socket bound to --port and connected to --peer:--port; received
 * datagrams go to ops->input. Up to --batch datagrams per sendmmsg/recvmmsg (1 = plain
 * send/recv, as burrowd's NAT-T socket does today); with --gso, equal-sized datagrams of a
 * batch go out as one UDP_SEGMENT send and come in as one UDP_GRO read. The TUN side is the
 * backend's own: with TUN offloads it reads 64 KiB TCP super-packets and segments them; with
 * --batch > 1 the datagrams of one recvmmsg go to bw_us_input_burst, which coalesces their
 * TCP segments into super-packets for the TUN (--batch 1: ops->input per datagram, as
 * burrowd). Prints "ready" on stdout once set up; runs until SIGTERM or SIGINT, then prints
 * the counters on stderr and removes the device. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "log.h"
#include "sa-backends/sa_backend.h"
#include "sa-backends/userspace/esp.h"
#include "sa-backends/userspace/tun_offload.h"
#include "sa-backends/userspace/userspace.h"
#include "sa-backends/common/sysnet.h"
#include "util.h"

#define MAX_BATCH 128
#define DGRAM_MAX 2048		/* ESP in UDP on a 1500-byte path, with room to spare */
#define GRO_MAX 65536		/* one coalesced UDP_GRO read */
#define GSO_MAX_BYTES 65000	/* UDP payload of one UDP_SEGMENT send (IPv4 limit 65507) */
#define GSO_MAX_SEGS 64		/* UDP_MAX_SEGMENTS is 64 on older kernels, 128 on newer */
#define SOCK_BUF (4 << 20)
#define BURST_MAX (MAX_BATCH * GSO_MAX_SEGS)	/* ESP datagrams of one recvmmsg round */

struct tunnel {
	const struct bw_sa_backend_ops *ops;
	struct bw_sa_conn *conn;
	int fd;
	int batch;
	bool gso;		/* UDP_SEGMENT on send, UDP_GRO on receive */
	ev_io sock_io;
	ev_prepare flush_w;
	ev_signal sigterm_w, sigint_w;

	/* outbound datagrams queued by send_esp, flushed when full and before the loop sleeps */
	uint8_t out_buf[MAX_BATCH][DGRAM_MAX];
	struct iovec out_iov[MAX_BATCH];
	struct mmsghdr out_msg[MAX_BATCH];
	int out_segs[MAX_BATCH];	/* datagrams carried by out_msg[i] */
	union {
		char buf[CMSG_SPACE(sizeof(uint16_t))];
		struct cmsghdr align;
	} out_ctl[MAX_BATCH];
	int n_out;

	uint8_t *in_buf;		/* batch slots of in_slot bytes */
	size_t in_slot;
	struct iovec in_iov[MAX_BATCH];
	struct mmsghdr in_msg[MAX_BATCH];
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} in_ctl[MAX_BATCH];
	struct iovec burst[BURST_MAX];	/* datagrams for bw_us_input_burst, pointing into in_buf */
	size_t n_burst;

	uint64_t send_calls, sent, send_dropped, recv_calls, received, recv_reads, input_errors,
		 not_esp;
};

static void usage(void)
{
	fprintf(stderr,
		"usage: bench_us_tunnel --name NAME --local-addr CIDR --remote-net CIDR --peer IPV4\n"
		"       [--port 4500] --spi-out SPI --spi-in SPI [--alg aes128gcm16] --key HEX\n"
		"       [--state-dir DIR] [--batch N (1..%d, default 64)] [--gso] [--log-level LEVEL]\n"
		"  --alg: aes{128,192,256}gcm{8,12,16} or aes{128,192,256}-{md5,sha1,sha256,sha384,sha512}\n"
		"  --batch 1: one send()/recv() per datagram; N > 1: sendmmsg/recvmmsg of up to N\n"
		"  --gso: equal-sized datagrams of a batch leave as one UDP_SEGMENT send, arrive as one\n"
		"         UDP_GRO read (needs --batch > 1 and --gso at both ends to pay off)\n",
		MAX_BATCH);
	exit(2);
}

static int parse_alg(const char *s, struct bw_p2_proposal *p)
{
	unsigned bits, icv;
	char mac[16];
	int n = 0;

	memset(p, 0, sizeof(*p));
	p->dh = BW_DH_NONE;
	if (sscanf(s, "aes%ugcm%u%n", &bits, &icv, &n) == 2 && s[n] == '\0') {
		p->auth = BW_ESP_AUTH_NONE;
		p->encr = icv == 8 ? BW_ESP_AES_GCM8 : icv == 12 ? BW_ESP_AES_GCM12 :
			  icv == 16 ? BW_ESP_AES_GCM16 : 0;
	} else if (sscanf(s, "aes%u-%15[a-z0-9]%n", &bits, mac, &n) == 2 && s[n] == '\0') {
		p->encr = BW_ESP_AES_CBC;
		p->auth = !strcmp(mac, "md5") ? BW_ESP_AUTH_HMAC_MD5 :
			  !strcmp(mac, "sha1") ? BW_ESP_AUTH_HMAC_SHA1 :
			  !strcmp(mac, "sha256") ? BW_ESP_AUTH_HMAC_SHA256 :
			  !strcmp(mac, "sha384") ? BW_ESP_AUTH_HMAC_SHA384 :
			  !strcmp(mac, "sha512") ? BW_ESP_AUTH_HMAC_SHA512 : BW_ESP_AUTH_NONE;
		if (p->auth == BW_ESP_AUTH_NONE)
			return -1;
	} else {
		return -1;
	}
	if (!p->encr || (bits != 128 && bits != 192 && bits != 256))
		return -1;
	p->key_bits = (uint16_t)bits;
	return 0;
}

static int parse_spi(const char *s, uint32_t *spi)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v == 0 || v > 0xffffffffUL || v < 256)	/* 1..255 are reserved */
		return -1;
	*spi = (uint32_t)v;
	return 0;
}

/* ---- ESP in UDP ---- */

/* Groups the queued datagrams into messages: one per datagram, or with --gso runs of
 * datagrams of one size (the last of a run may be shorter) as one UDP_SEGMENT message whose
 * iovecs are the datagrams. Returns the number of messages. */
static int build_msgs(struct tunnel *t)
{
	int m = 0;

	for (int i = 0; i < t->n_out; m++) {
		struct msghdr *h = &t->out_msg[m].msg_hdr;
		size_t seg = t->out_iov[i].iov_len, total = seg;
		int j = i + 1;

		if (t->gso) {
			while (j < t->n_out && j - i < GSO_MAX_SEGS &&
			       total + t->out_iov[j].iov_len <= GSO_MAX_BYTES &&
			       t->out_iov[j].iov_len <= seg) {
				total += t->out_iov[j].iov_len;
				if (t->out_iov[j++].iov_len < seg)
					break;	/* a shorter one ends the run */
			}
		}
		memset(h, 0, sizeof(*h));
		h->msg_iov = &t->out_iov[i];
		h->msg_iovlen = (size_t)(j - i);
		if (j - i > 1) {
			struct cmsghdr *cm;
			uint16_t gso = (uint16_t)seg;

			h->msg_control = t->out_ctl[m].buf;
			h->msg_controllen = sizeof(t->out_ctl[m].buf);
			cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(gso));
			memcpy(CMSG_DATA(cm), &gso, sizeof(gso));
		}
		t->out_segs[m] = j - i;
		i = j;
	}
	return m;
}

static void flush_out(struct tunnel *t)
{
	int m = t->batch == 1 ? t->n_out : build_msgs(t), done = 0;

	while (done < m) {
		int n;
		t->send_calls++;
		if (t->batch == 1)
			n = send(t->fd, t->out_buf[done], t->out_iov[done].iov_len, 0) < 0 ? -1 : 1;
		else
			n = sendmmsg(t->fd, t->out_msg + done, (unsigned)(m - done), 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			/* EAGAIN (socket buffer full), ECONNREFUSED (peer not up yet): drop the
			 * rest; TCP above retransmits. */
			for (; done < m; done++)
				t->send_dropped += t->batch == 1 ? 1 : (uint64_t)t->out_segs[done];
			break;
		}
		for (int k = 0; k < n; k++, done++)
			t->sent += t->batch == 1 ? 1 : (uint64_t)t->out_segs[done];
	}
	t->n_out = 0;
}

static int send_esp(void *ctx, const uint8_t *pkt, size_t len)
{
	struct tunnel *t = ctx;

	if (len > DGRAM_MAX)
		return -EMSGSIZE;
	memcpy(t->out_buf[t->n_out], pkt, len);
	t->out_iov[t->n_out].iov_len = len;
	if (++t->n_out == t->batch)
		flush_out(t);
	return 0;
}

/* Runs after every callback of a loop iteration, before the loop waits: whatever the TUN
 * reads of this round queued goes out in one call. */
static void flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	struct tunnel *t = w->data;

	(void)loop;
	(void)revents;
	if (t->n_out)
		flush_out(t);
}

/* Before in_buf is read into again: everything of this round goes to the backend at once. */
static void burst_flush(struct tunnel *t)
{
	if (t->n_burst)
		t->input_errors += bw_us_input_burst(t->conn, t->burst, t->n_burst, NULL);
	t->n_burst = 0;
}

static void deliver(struct tunnel *t, const uint8_t *pkt, size_t len)
{
	/* RFC 3948: a 1-byte 0xff is a NAT-keepalive, a zero "SPI" is the non-ESP marker of IKE */
	if (len < 8 || bw_esp_peek_spi(pkt, len) == 0) {
		t->not_esp++;
		return;
	}
	t->received++;
	if (t->batch == 1) {
		if (t->ops->input(t->conn, pkt, len) < 0)
			t->input_errors++;
		return;
	}
	t->burst[t->n_burst++] = (struct iovec){ (void *)pkt, len };
	if (t->n_burst == BURST_MAX)
		burst_flush(t);
}

/* One read: a datagram, or with UDP_GRO several of gso_size bytes (the last may be shorter). */
static void deliver_read(struct tunnel *t, int slot)
{
	const uint8_t *p = t->in_buf + (size_t)slot * t->in_slot;
	size_t len = t->in_msg[slot].msg_len, seg = len;
	struct msghdr *h = &t->in_msg[slot].msg_hdr;

	t->recv_reads++;
	if (t->gso) {
		for (struct cmsghdr *cm = CMSG_FIRSTHDR(h); cm; cm = CMSG_NXTHDR(h, cm))
			if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO) {
				int v;
				memcpy(&v, CMSG_DATA(cm), sizeof(v));
				if (v > 0)
					seg = (size_t)v;
			}
	}
	while (len > 0) {
		size_t n = len < seg ? len : seg;
		deliver(t, p, n);
		p += n;
		len -= n;
	}
}

static void sock_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct tunnel *t = w->data;

	(void)loop;
	(void)revents;
	/* a bounded number of batches per wakeup, so the TUN side gets its turn */
	for (int round = 0; round < 4; round++) {
		int n;
		t->recv_calls++;
		if (t->batch == 1) {
			ssize_t r = recv(t->fd, t->in_buf, t->in_slot, 0);
			if (r >= 0)
				t->in_msg[0].msg_len = (unsigned)r;
			n = r < 0 ? -1 : 1;
		} else {
			for (int i = 0; i < t->batch && t->gso; i++)
				t->in_msg[i].msg_hdr.msg_controllen = sizeof(t->in_ctl[i].buf);
			n = recvmmsg(t->fd, t->in_msg, (unsigned)t->batch, MSG_DONTWAIT, NULL);
		}
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;		/* EAGAIN, or ECONNREFUSED from an ICMP error: try later */
		}
		for (int i = 0; i < n; i++)
			deliver_read(t, i);
		burst_flush(t);
		if (n < t->batch)
			return;
	}
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static int open_socket(struct tunnel *t, const struct sockaddr_in *peer, uint16_t port)
{
	struct sockaddr_in local = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1, sz = SOCK_BUF;

	t->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0)
		return -errno;
	setsockopt(t->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* as root the FORCE variants pass net.core.[rw]mem_max; bursts of a TCP window fit */
	if (setsockopt(t->fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(t->fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (setsockopt(t->fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof(sz)) < 0)
		setsockopt(t->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if (t->gso && setsockopt(t->fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) < 0) {
		fprintf(stderr, "bench_us_tunnel: UDP_GRO: %s; running without --gso\n", strerror(errno));
		t->gso = false;
	}
	if (bind(t->fd, (const struct sockaddr *)&local, sizeof(local)) < 0 ||
	    connect(t->fd, (const struct sockaddr *)peer, sizeof(*peer)) < 0)
		return -errno;
	t->in_slot = t->gso ? GRO_MAX : DGRAM_MAX;
	t->in_buf = malloc((size_t)t->batch * t->in_slot);
	if (!t->in_buf)
		return -ENOMEM;
	for (int i = 0; i < MAX_BATCH; i++) {
		t->out_iov[i].iov_base = t->out_buf[i];
		if (i >= t->batch)
			continue;
		t->in_iov[i].iov_base = t->in_buf + (size_t)i * t->in_slot;
		t->in_iov[i].iov_len = t->in_slot;
		t->in_msg[i].msg_hdr.msg_iov = &t->in_iov[i];
		t->in_msg[i].msg_hdr.msg_iovlen = 1;
		if (t->gso) {
			t->in_msg[i].msg_hdr.msg_control = t->in_ctl[i].buf;
			t->in_msg[i].msg_hdr.msg_controllen = sizeof(t->in_ctl[i].buf);
		}
	}
	return 0;
}

static void die_err(const char *what, int err)
{
	fprintf(stderr, "bench_us_tunnel: %s: %s\n", what, strerror(-err));
	exit(1);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "name", required_argument, NULL, 'n' },
		{ "local-addr", required_argument, NULL, 'l' },
		{ "remote-net", required_argument, NULL, 'r' },
		{ "peer", required_argument, NULL, 'p' },
		{ "port", required_argument, NULL, 'P' },
		{ "spi-out", required_argument, NULL, 'o' },
		{ "spi-in", required_argument, NULL, 'i' },
		{ "alg", required_argument, NULL, 'a' },
		{ "key", required_argument, NULL, 'k' },
		{ "state-dir", required_argument, NULL, 's' },
		{ "batch", required_argument, NULL, 'b' },
		{ "gso", no_argument, NULL, 'g' },
		{ "log-level", required_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *name = NULL, *local_s = NULL, *remote_s = NULL, *peer_s = NULL, *key_s = NULL;
	const char *alg_s = "aes128gcm16", *state_dir = NULL;
	char tmp_state[] = "/tmp/bench_us_tunnel.XXXXXX";
	struct bw_cidr local_addr, remote_net;
	struct sockaddr_in peer = { .sin_family = AF_INET };
	struct bw_sa_params sa;
	struct bw_sa_counters cnt;
	struct bw_sa_conn_cbs cbs;
	struct tunnel *t;
	struct ev_loop *loop;
	uint32_t spi_out = 0, spi_in = 0;
	unsigned long port = 4500;
	int log_level = BW_LOG_WARN, opt, err, keylen;
	size_t need;

	t = calloc(1, sizeof(*t));
	if (!t)
		return 1;
	t->batch = 64;
	memset(&sa, 0, sizeof(sa));
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'n': name = optarg; break;
		case 'l': local_s = optarg; break;
		case 'r': remote_s = optarg; break;
		case 'p': peer_s = optarg; break;
		case 'P':
			port = strtoul(optarg, NULL, 10);
			if (port == 0 || port > 65535)
				usage();
			break;
		case 'o': if (parse_spi(optarg, &spi_out) < 0) usage(); break;
		case 'i': if (parse_spi(optarg, &spi_in) < 0) usage(); break;
		case 'a': alg_s = optarg; break;
		case 'k': key_s = optarg; break;
		case 's': state_dir = optarg; break;
		case 'b':
			t->batch = atoi(optarg);
			if (t->batch < 1 || t->batch > MAX_BATCH)
				usage();
			break;
		case 'g': t->gso = true; break;
		case 'L':
			log_level = bw_log_level_parse(optarg);
			if (log_level < 0)
				usage();
			break;
		default: usage();
		}
	}
	if (t->batch == 1)
		t->gso = false;
	if (optind != argc || !name || !local_s || !remote_s || !peer_s || !key_s || !spi_out ||
	    !spi_in)
		usage();
	if (sn_cidr_parse(local_s, &local_addr) < 0 || sn_cidr_parse(remote_s, &remote_net) < 0 ||
	    local_addr.family != remote_net.family) {
		fprintf(stderr, "bench_us_tunnel: bad --local-addr or --remote-net\n");
		return 2;
	}
	if (inet_pton(AF_INET, peer_s, &peer.sin_addr) != 1) {
		fprintf(stderr, "bench_us_tunnel: --peer must be an IPv4 address\n");
		return 2;
	}
	peer.sin_port = htons((uint16_t)port);
	if (parse_alg(alg_s, &sa.alg) < 0) {
		fprintf(stderr, "bench_us_tunnel: unknown --alg %s\n", alg_s);
		return 2;
	}
	need = bw_esp_keymat_len(&sa.alg);
	keylen = bw_unhex(sa.keymat, sizeof(sa.keymat), key_s);
	if (keylen < 0 || (size_t)keylen != need) {
		fprintf(stderr, "bench_us_tunnel: --key must be %zu bytes (%zu hex digits) for %s\n",
			need, 2 * need, alg_s);
		return 2;
	}
	sa.keymat_len = (size_t)keylen;
	sa.mode = BW_MODE_TUNNEL;
	sa.udp_encap = true;
	sa.lifetime_s = 0;
	((struct sockaddr_in *)&sa.local)->sin_family = AF_INET;
	((struct sockaddr_in *)&sa.local)->sin_port = htons((uint16_t)port);
	memcpy(&sa.remote, &peer, sizeof(peer));

	bw_log_init("bench_us_tunnel", 0, (enum bw_log_level)log_level);
	signal(SIGPIPE, SIG_IGN);
	if (!state_dir) {
		if (!mkdtemp(tmp_state)) {
			perror("bench_us_tunnel: mkdtemp");
			return 1;
		}
		state_dir = tmp_state;
	}
	loop = ev_default_loop(0);
	if (!loop) {
		fprintf(stderr, "bench_us_tunnel: no event loop\n");
		return 1;
	}

	err = open_socket(t, &peer, (uint16_t)port);
	if (err < 0)
		die_err("UDP socket", err);
	t->ops = &bw_sa_backend_userspace;
	cbs = (struct bw_sa_conn_cbs){ .ctx = t, .send_esp = send_esp, .expired = NULL };
	err = t->ops->conn_open(loop, name, state_dir, &cbs, &t->conn);
	if (err < 0)
		die_err("conn_open", err);
	sa.dir = BW_SA_OUT;
	sa.spi = spi_out;
	err = t->ops->add_sa(t->conn, &sa);
	if (err < 0)
		die_err("add_sa out", err);
	sa.dir = BW_SA_IN;
	sa.spi = spi_in;
	err = t->ops->add_sa(t->conn, &sa);
	if (err < 0)
		die_err("add_sa in", err);
	OPENSSL_cleanse(sa.keymat, sizeof(sa.keymat));
	if ((err = t->ops->add_policy(t->conn, &local_addr, &remote_net, spi_out, spi_in)) < 0)
		die_err("add_policy", err);
	if ((err = t->ops->set_address(t->conn, &local_addr)) < 0)
		die_err("set_address", err);
	if ((err = t->ops->add_route(t->conn, &remote_net, &local_addr)) < 0)
		die_err("add_route", err);

	ev_io_init(&t->sock_io, sock_cb, t->fd, EV_READ);
	t->sock_io.data = t;
	ev_io_start(loop, &t->sock_io);
	ev_prepare_init(&t->flush_w, flush_cb);
	t->flush_w.data = t;
	ev_prepare_start(loop, &t->flush_w);
	ev_signal_init(&t->sigterm_w, stop_cb, SIGTERM);
	ev_signal_start(loop, &t->sigterm_w);
	ev_signal_init(&t->sigint_w, stop_cb, SIGINT);
	ev_signal_start(loop, &t->sigint_w);

	printf("ready %s %s <-> %s via %s:%lu, %s, batch %d%s\n", t->ops->ifname(t->conn), local_s,
	       remote_s, peer_s, port, alg_s, t->batch, t->gso ? ", gso" : "");
	fflush(stdout);

	ev_run(loop, 0);

	t->ops->counters(t->conn, &cnt);
	fprintf(stderr,
		"bench_us_tunnel %s: out %llu packets %llu bytes (%llu errors), in %llu packets %llu bytes "
		"(%llu errors); udp: %llu sent in %llu calls, %llu dropped, %llu received in %llu calls, "
		"%llu reads, %llu not ESP\n",
		name, (unsigned long long)cnt.packets_out, (unsigned long long)cnt.bytes_out,
		(unsigned long long)cnt.errors_out, (unsigned long long)cnt.packets_in,
		(unsigned long long)cnt.bytes_in, (unsigned long long)cnt.errors_in,
		(unsigned long long)t->sent, (unsigned long long)t->send_calls,
		(unsigned long long)t->send_dropped, (unsigned long long)t->received,
		(unsigned long long)t->recv_calls, (unsigned long long)t->recv_reads,
		(unsigned long long)t->not_esp);
	t->ops->conn_close(t->conn);
	close(t->fd);
	free(t->in_buf);
	if (state_dir == tmp_state)
		rmdir(tmp_state);
	free(t);
	return 0;
}

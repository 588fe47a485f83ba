/* The IKE sockets: UDP 500 and 4500 (or dynamic ports), shared by every connection.
 * Datagrams are demultiplexed by our initiator cookie (IKE) or by SPI (ESP on the NAT-T port). */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "sa-backends/sa_backend.h"
#include "sa-backends/sa_backend.h"
#include "util.h"

/* ESP on the NAT-T socket moves in batches: recvmmsg (with UDP_GRO) in, consecutive datagrams
 * of one connection to the backend in one call; out, a queue sent with sendmmsg (UDP_SEGMENT
 * for runs of equal size to one peer) when the backend ends a burst or the loop is about to
 * sleep. BURROW_ESP_BATCH=0 in the environment restores one syscall per packet. */
#define RX_BATCH 64		/* datagrams (or GRO reads) per wakeup, the budget of the plain path */
#define RX_SLOT (65536 + 64)	/* any datagram, or one UDP_GRO read (64 KiB at most) */
#define RX_GROUP_MAX 256	/* ESP datagrams handed to the backend in one call */
#define TX_QUEUE 64		/* ESP datagrams held until a flush */
#define TX_SLOT 2048		/* a larger datagram goes out at once, behind the queue */
#define TX_GSO_SEGS 64		/* UDP_MAX_SEGMENTS of older kernels */
#define TX_GSO_BYTES (65535 - 20 - 8)	/* what one IPv4 UDP send may carry */

struct ike_sock {
	int fd;
	bool natt;
	uint16_t port;
	ev_io io;
};

static struct ike_sock socks[2] = { { .fd = -1 }, { .fd = -1, .natt = true } };
static struct ev_loop *sock_loop;
static bool esp_batch;

union cmsg_room {
	char buf[CMSG_SPACE(sizeof(int))];
	struct cmsghdr align;
};

static struct {
	uint8_t buf[RX_BATCH][RX_SLOT];
	struct mmsghdr msg[RX_BATCH];
	struct iovec iov[RX_BATCH];
	struct sockaddr_storage from[RX_BATCH];
	union cmsg_room ctl[RX_BATCH];
	/* Consecutive ESP datagrams for grp_ike, pointing into buf: handed over before buf is
	 * read into again and before any IKE packet is handled. */
	struct bw_ike_conn *grp_ike;
	struct iovec grp[RX_GROUP_MAX];
	size_t grp_n;
} rx;

struct tx_entry {
	struct sockaddr_in to;
	size_t len;
};

static struct {
	uint8_t buf[TX_QUEUE][TX_SLOT];	/* copies: the backend reuses its buffer */
	struct tx_entry ent[TX_QUEUE];
	size_t n;
	/* One sendmmsg round: message m carries entries first[m] .. first[m] + cnt[m] - 1. */
	struct mmsghdr msg[TX_QUEUE];
	struct iovec iov[TX_QUEUE];
	union cmsg_room ctl[TX_QUEUE];
	size_t first[TX_QUEUE], cnt[TX_QUEUE];
	bool gso_off;			/* the kernel refused UDP_SEGMENT: sendmmsg only, for good */
	/* Datagrams a flush could not send, not yet reported to a send_esp caller. */
	size_t owed;
	int owed_err;
	ev_prepare flush_w;		/* nothing stays queued while the loop sleeps */
	int refuse_gso;			/* test seam: fail the next UDP_SEGMENT send with this */
	unsigned long gso_sends;
} tx;

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents);

/* Hands the ESP collected for one connection to it. */
static void esp_group_flush(void)
{
	if (rx.grp_n == 1)
		ike_esp_input(rx.grp_ike, rx.grp[0].iov_base, rx.grp[0].iov_len);
	else if (rx.grp_n > 1)
		ike_esp_input_burst(rx.grp_ike, rx.grp, rx.grp_n);
	rx.grp_n = 0;
	rx.grp_ike = NULL;
}

static void esp_group_add(struct bw_ike_conn *ike, uint8_t *pkt, size_t len)
{
	if (rx.grp_n > 0 && (rx.grp_ike != ike || rx.grp_n == RX_GROUP_MAX))
		esp_group_flush();
	rx.grp_ike = ike;
	rx.grp[rx.grp_n++] = (struct iovec){ .iov_base = pkt, .iov_len = len };
	if (!esp_batch)
		esp_group_flush();
}

static void on_datagram(struct ike_sock *s, uint8_t *msg, size_t len, const struct sockaddr_storage *from)
{
	struct isakmp_hdr h;
	struct bw_ike_conn *ike;

	if (s->natt) {
		/* RFC 3948 2.2: one 0xff byte is a keepalive; 4 zero bytes mark IKE; else ESP. */
		if (len == 1 && msg[0] == 0xff)
			return;
		if (len >= 4 && memcmp(msg, "\0\0\0\0", 4) == 0) {
			msg += 4;
			len -= 4;
		} else {
			uint32_t spi = len >= 8 ? (uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 |
							 (uint32_t)msg[2] << 8 | msg[3] : 0;

			ike = spi ? ike_find_by_spi(spi) : NULL;
			if (ike)
				esp_group_add(ike, msg, len);
			else
				bw_trace("ESP packet of %zu bytes for unknown SPI %08x dropped", len, spi);
			return;
		}
	}
	/* IKE may install or remove SAs, or end a connection: the ESP that came before goes first. */
	esp_group_flush();
	if (isakmp_hdr_parse(msg, len, &h) != 0) {
		bw_debug("malformed IKE packet of %zu bytes dropped", len);
		return;
	}
	ike = ike_find_by_cookie(h.icookie);
	if (!ike) {
		bw_debug("IKE packet for unknown cookies dropped (%s)", isakmp_exchange_name(h.exchange));
		return;
	}
	/* Only the gateway we talk to may drive the exchange. */
	if (from->ss_family != AF_INET ||
	    ((const struct sockaddr_in *)from)->sin_addr.s_addr !=
		    ((struct sockaddr_in *)&ike->path.peer)->sin_addr.s_addr) {
		ike_log(ike, BW_LOG_DEBUG, "IKE packet from an unexpected address dropped");
		return;
	}
	ike_dispatch(ike, &h, msg, h.length);
}

/* The segment size of a UDP_GRO read, 0 when the read is one datagram. */
static size_t gro_size(struct msghdr *m)
{
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm; cm = CMSG_NXTHDR(m, cm)) {
		int seg;

		if (cm->cmsg_level != SOL_UDP || cm->cmsg_type != UDP_GRO || cm->cmsg_len < CMSG_LEN(sizeof(seg)))
			continue;
		memcpy(&seg, CMSG_DATA(cm), sizeof(seg));
		return seg > 0 ? (size_t)seg : 0;
	}
	return 0;
}

static void read_batch(struct ike_sock *s)
{
	int n;

	for (int i = 0; i < RX_BATCH; i++) {
		rx.iov[i] = (struct iovec){ .iov_base = rx.buf[i], .iov_len = RX_SLOT };
		rx.msg[i].msg_hdr = (struct msghdr){
			.msg_name = &rx.from[i], .msg_namelen = sizeof(rx.from[i]),
			.msg_iov = &rx.iov[i], .msg_iovlen = 1,
			.msg_control = rx.ctl[i].buf, .msg_controllen = sizeof(rx.ctl[i].buf),
		};
	}
	n = recvmmsg(s->fd, rx.msg, RX_BATCH, MSG_DONTWAIT, NULL);
	for (int i = 0; i < n; i++) {
		size_t len = rx.msg[i].msg_len, seg = gro_size(&rx.msg[i].msg_hdr), off = 0;

		if (len > RX_SLOT || (rx.msg[i].msg_hdr.msg_flags & MSG_TRUNC)) {
			bw_debug("a datagram larger than %d bytes dropped", RX_SLOT);
			continue;
		}
		if (rx.msg[i].msg_hdr.msg_namelen > sizeof(rx.from[i]))
			rx.from[i].ss_family = AF_UNSPEC;
		if (seg == 0 || seg > len)
			seg = len;
		/* A GRO read is datagrams of seg bytes from one sender, the last maybe shorter. */
		do {
			size_t l = len - off < seg ? len - off : seg;

			on_datagram(s, rx.buf[i] + off, l, &rx.from[i]);
			off += l;
		} while (off < len);
	}
	esp_group_flush();
}

static void on_packet(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ike_sock *s = bw_container_of(w, struct ike_sock, io);
	struct sockaddr_storage from;
	int budget = 64;

	(void)loop;
	(void)revents;
	if (s->natt && esp_batch) {
		read_batch(s);
		return;
	}
	while (budget-- > 0) {
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s->fd, rx.buf[0], RX_SLOT, MSG_DONTWAIT, (struct sockaddr *)&from, &flen);

		if (n < 0)
			return;
		on_datagram(s, rx.buf[0], (size_t)n, &from);
	}
}

static int open_one(struct ike_sock *s, uint16_t port, char *err, size_t errlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	socklen_t len = sizeof(sin);
	int one = 1;
	unsigned int mark = BW_IKE_FWMARK;

	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		goto fail;
	setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	/* Routing rules that send this host's traffic into a tunnel (transport mode on the
	 * userspace datapath) skip what carries the mark: IKE and ESP in UDP stay outside. */
	if (setsockopt(s->fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) != 0)
		bw_warn("cannot mark the IKE socket (SO_MARK): %s; transport mode on the userspace datapath "
			"will not work", strerror(errno));
	if (bind(s->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		goto fail;
	if (getsockname(s->fd, (struct sockaddr *)&sin, &len) != 0)
		goto fail;
	s->port = ntohs(sin.sin_port);
	ev_io_init(&s->io, on_packet, s->fd, EV_READ);
	ev_io_start(sock_loop, &s->io);
	return 0;
fail:
	snprintf(err, errlen, "cannot open UDP port %u for IKE: %s; is another IKE daemon (strongSwan, "
		 "libreswan) running? Stop it or set ike_port/natt_port in burrow.conf", port, strerror(errno));
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
	return -1;
}

int ike_sockets_open(struct bw_agent *a, uint16_t ike_port, uint16_t natt_port,
		     const struct bw_sa_backend_ops *be, char *err, size_t errlen)
{
	bool kernel_esp = be && (be->caps & BW_SA_CAP_KERNEL_ESP);
	int rc = 0;

	if (socks[0].fd >= 0)
		return 0;
	sock_loop = a->loop;
	if (open_one(&socks[0], ike_port, err, errlen) != 0)
		return -1;
	if (open_one(&socks[1], natt_port, err, errlen) != 0) {
		ike_sockets_close();
		return -1;
	}
	/* Kernel ESP (xfrm backend): IKE must bypass every policy and the kernel takes ESP in UDP
	 * off the NAT-T socket; the backend knows how. */
	if (be && be->prepare_ike_socket) {
		for (int i = 0; i < 2 && rc == 0; i++)
			rc = be->prepare_ike_socket(socks[i].fd, i == 1);
		if (rc < 0) {
			snprintf(err, errlen, "cannot prepare the IKE sockets for the %s datapath: %s", be->name,
				 strerror(-rc));
			ike_sockets_close();
			return -1;
		}
	}
	esp_batch = !getenv("BURROW_ESP_BATCH") || strcmp(getenv("BURROW_ESP_BATCH"), "0") != 0;
	if (esp_batch) {
		int one = 1;

		/* The kernel's ESP-in-UDP decapsulation has GRO of its own; ours is for ESP we read. */
		if (!kernel_esp && setsockopt(socks[1].fd, SOL_UDP, UDP_GRO, &one, sizeof(one)) != 0)
			bw_debug("no UDP_GRO on the NAT-T socket (%s); one datagram per read", strerror(errno));
		ev_prepare_init(&tx.flush_w, on_prepare);
		ev_prepare_start(sock_loop, &tx.flush_w);
		ev_unref(sock_loop);	/* the flush alone must not keep the loop running */
	} else {
		bw_info("ESP batching is off (BURROW_ESP_BATCH=0): one syscall per ESP packet");
	}
	bw_info("IKE listening on UDP ports %u and %u", socks[0].port, socks[1].port);
	return 0;
}

void ike_sockets_close(void)
{
	if (ev_is_active(&tx.flush_w)) {
		ike_flush_esp();
		ev_ref(sock_loop);
		ev_prepare_stop(sock_loop, &tx.flush_w);
	}
	tx.n = 0;
	tx.owed = 0;
	for (int i = 0; i < 2; i++) {
		if (socks[i].fd < 0)
			continue;
		ev_io_stop(sock_loop, &socks[i].io);
		close(socks[i].fd);
		socks[i].fd = -1;
	}
}

uint16_t ike_sockets_port(bool natt)
{
	return socks[natt ? 1 : 0].port;
}

void (*ike_test_sent)(const uint8_t *msg, size_t len);

int ike_send_raw(struct bw_ike_conn *ike, const uint8_t *msg, size_t len)
{
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->path.peer;
	static const uint8_t non_esp[4];	/* RFC 3948 2.2: the marker before IKE on port 4500 */
	const struct ike_sock *s = &socks[ike->path.floated ? 1 : 0];
	struct iovec iov[2] = { { (void *)non_esp, sizeof(non_esp) }, { (void *)msg, len } };
	struct msghdr mh = { .msg_name = &to, .msg_namelen = sizeof(to) };

	if (ike_test_sent)
		ike_test_sent(msg, len);
	if (s->fd < 0 || len > 65536)
		return -1;
	if (ike->path.floated)
		ike_flush_esp();	/* ESP queued before this message leaves before it */
	to.sin_port = htons(ike->path.floated ? 4500 : 500);
	mh.msg_iov = ike->path.floated ? iov : iov + 1;
	mh.msg_iovlen = ike->path.floated ? 2 : 1;
	if (sendmsg(s->fd, &mh, 0) < 0) {
		ike_log(ike, BW_LOG_WARN, "cannot send to the gateway: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* The messages for the queue from entry i on, at most one per entry: a run of datagrams to
 * one peer, all of one size but the last (which may be shorter), becomes one UDP_SEGMENT
 * message. Returns how many messages. */
static unsigned tx_build(size_t i)
{
	unsigned m = 0;
	size_t k = 0;

	while (i < tx.n) {
		const struct tx_entry *e = &tx.ent[i];
		struct msghdr *h = &tx.msg[m].msg_hdr;
		size_t j = i + 1, bytes = e->len;

		while (!tx.gso_off && e->len > 0 && j < tx.n && j - i < TX_GSO_SEGS &&
		       tx.ent[j - 1].len == e->len && tx.ent[j].len <= e->len &&
		       bytes + tx.ent[j].len <= TX_GSO_BYTES &&
		       tx.ent[j].to.sin_addr.s_addr == e->to.sin_addr.s_addr &&
		       tx.ent[j].to.sin_port == e->to.sin_port)
			bytes += tx.ent[j++].len;
		*h = (struct msghdr){ .msg_name = (void *)&e->to, .msg_namelen = sizeof(e->to),
				      .msg_iov = &tx.iov[k], .msg_iovlen = j - i };
		for (size_t q = i; q < j; q++)
			tx.iov[k++] = (struct iovec){ .iov_base = tx.buf[q], .iov_len = tx.ent[q].len };
		if (j - i > 1) {
			uint16_t seg = (uint16_t)e->len;
			struct cmsghdr *cm;

			h->msg_control = tx.ctl[m].buf;
			h->msg_controllen = CMSG_SPACE(sizeof(seg));
			cm = CMSG_FIRSTHDR(h);
			cm->cmsg_level = SOL_UDP;
			cm->cmsg_type = UDP_SEGMENT;
			cm->cmsg_len = CMSG_LEN(sizeof(seg));
			memcpy(CMSG_DATA(cm), &seg, sizeof(seg));
		}
		tx.first[m] = i;
		tx.cnt[m] = j - i;
		m++;
		i = j;
	}
	return m;
}

static int tx_send(unsigned m)
{
	if (tx.refuse_gso && tx.cnt[0] > 1) {
		errno = tx.refuse_gso;
		tx.refuse_gso = 0;
		return -1;
	}
	return sendmmsg(socks[1].fd, tx.msg, m, 0);
}

/* Sends what is queued, in order. Each round sends what it can; a message the kernel refuses
 * is given up (its datagrams owed as errors, see ike_send_esp) unless it was the first
 * UDP_SEGMENT message refused, which turns segmentation off and is sent again without. */
void ike_flush_esp(void)
{
	size_t i = 0;

	while (i < tx.n) {
		unsigned m = tx_build(i);
		int r = tx_send(m), err = errno;

		if (r > 0) {
			for (int q = 0; q < r; q++)
				tx.gso_sends += tx.cnt[q] > 1;
			i = tx.first[r - 1] + tx.cnt[r - 1];
			continue;
		}
		if (r == 0)
			err = EIO;
		if (tx.cnt[0] > 1 && (err == EIO || err == EINVAL)) {
			bw_info("the kernel refused UDP segmentation offload for ESP (%s); sendmmsg from now on",
				strerror(err));
			tx.gso_off = true;
			continue;
		}
		bw_trace("%zu ESP datagrams not sent: %s", tx.cnt[0], strerror(err));
		tx.owed += tx.cnt[0];
		tx.owed_err = err;
		i += tx.cnt[0];
	}
	tx.n = 0;
}

static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
	if (tx.n > 0)
		ike_flush_esp();
}

/* Sends an ESP packet (from the userspace datapath) on the NAT-T socket: with batching, a copy
 * joins the queue and leaves at the next flush. A failed flush cannot tell the packets' own
 * callers, so its failures are owed: each of the following calls returns the error (and the
 * backend counts it in errors_out) until they are paid. errors_out so keeps the right total
 * but may charge a later packet, of any connection, and bytes_out/packets_out count the
 * failed packets in place of those. */
int ike_send_esp(struct bw_ike_conn *ike, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->path.peer;

	to.sin_port = htons(4500);
	if (socks[1].fd < 0)
		return -EBADF;
	if (!esp_batch || len > TX_SLOT) {
		ike_flush_esp();
		if (sendto(socks[1].fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
			return -errno;
		return 0;
	}
	if (tx.n == TX_QUEUE)
		ike_flush_esp();
	memcpy(tx.buf[tx.n], pkt, len);
	tx.ent[tx.n] = (struct tx_entry){ .to = to, .len = len };
	tx.n++;
	if (tx.owed > 0) {
		tx.owed--;
		return -tx.owed_err;
	}
	return 0;
}

void ike_esp_test_refuse_gso(int err)
{
	tx.refuse_gso = err;
}

bool ike_esp_gso_on(void)
{
	return !tx.gso_off;
}

unsigned long ike_esp_gso_sends(void)
{
	return tx.gso_sends;
}

/* One 0xff byte keeps the NAT's mapping for port 4500 alive (RFC 3948 section 4). */
int ike_send_keepalive(struct bw_ike_conn *ike)
{
	static const uint8_t ka = 0xff;
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->path.peer;

	to.sin_port = htons(4500);
	ike_flush_esp();
	return sendto(socks[1].fd, &ka, 1, 0, (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

static const double schedule[IKE_RETRANSMITS + 1] = IKE_RETRANSMIT_SCHEDULE;

static void on_rexmit(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, resend.timer);
	char msg[512];

	(void)revents;
	if (ike->resend.tries >= IKE_RETRANSMITS) {
		ev_timer_stop(loop, w);
		snprintf(msg, sizeof(msg), "no answer from the gateway %s while %s", ike->cfg.gateway,
			 ike->last_step);
		if (ike->sa.p1 == P1_MM_SENT1 || ike->sa.p1 == P1_AM_SENT1)
			ike_fail(ike, "no-answer", msg,
				 "The gateway did not answer at all. Check that the gateway address is right, that it "
				 "runs an IKEv1 service, and that nothing between here and there blocks UDP port 500 "
				 "(and 4500). `burrow doctor` tests the path.");
		else if (ike->sa.p1 == P1_MM_SENT5 && ike->path.floated)
			ike_fail(ike, "natt-blocked", msg, ike->path.nat_local ?
				 "The exchange moved to UDP port 4500 (a NAT is in front of us, or ESP in UDP was "
				 "asked for), and from then on the gateway did not answer. Something between here and "
				 "the gateway blocks UDP 4500; allow it (and 500) towards the gateway. A wrong "
				 "pre-shared key is the other, less likely cause." :
				 "The exchange moved to UDP port 4500 and from then on the gateway did not answer. "
				 "Something on the way blocks UDP 4500; allow it towards the gateway.");
		else if (ike->sa.p1 == P1_MM_SENT5)
			ike_fail(ike, "auth-failed", msg,
				 "The gateway stopped answering after our authentication message. This almost always "
				 "means the pre-shared key differs from the gateway's (it cannot decrypt our message), "
				 "or the gateway rejected our identity. Check the psk in secrets/ and local_id.");
		else if (ike->sa.p1 == P1_MM_SENT3 && ike->path.use_natt)
			ike_fail(ike, "no-answer", msg,
				 "The gateway answered on port 500 but not after the key exchange. If there is a NAT "
				 "or firewall in between, check that UDP port 4500 passes.");
		else
			ike_fail(ike, "no-answer", msg,
				 "The gateway stopped answering in the middle of the exchange. Check the gateway's log; "
				 "a firewall may drop fragments or port 4500.");
		return;
	}
	ike->resend.tries++;
	ike_log(ike, BW_LOG_DEBUG, "no answer yet while %s: retransmitting (%d of %d)", ike->last_step,
		ike->resend.tries, IKE_RETRANSMITS);
	ike_send_raw(ike, ike->resend.msg, ike->resend.len);
	w->repeat = schedule[ike->resend.tries];
	ev_timer_again(loop, w);
}

int ike_send(struct bw_ike_conn *ike, uint8_t *msg, size_t len)
{
	free(ike->resend.msg);
	ike->resend.msg = msg;
	ike->resend.len = len;
	ike->resend.tries = 0;
	ev_timer_stop(ike->agent->loop, &ike->resend.timer);
	ev_timer_init(&ike->resend.timer, on_rexmit, 0.0, schedule[0]);
	ev_timer_again(ike->agent->loop, &ike->resend.timer);
	return ike_send_raw(ike, msg, len);
}

void ike_keep_final(struct bw_ike_conn *ike, uint8_t exchange, uint32_t msgid, const uint8_t *msg, size_t len)
{
	uint8_t *copy = malloc(len);

	if (!copy)
		return;
	memcpy(copy, msg, len);
	free(ike->resend.final_msg);
	ike->resend.final_msg = copy;
	ike->resend.final_len = len;
	ike->resend.final_exchange = exchange;
	ike->resend.final_msgid = msgid;
}

void ike_rexmit_stop(struct bw_ike_conn *ike)
{
	ev_timer_stop(ike->agent->loop, &ike->resend.timer);
	free(ike->resend.msg);
	ike->resend.msg = NULL;
	ike->resend.len = 0;
}

/* The IKE sockets: UDP 500 and 4500 (or dynamic ports), shared by every connection.
 * Datagrams are demultiplexed by our initiator cookie (IKE) or by SPI (ESP on the NAT-T port). */
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "sa-backends/sa_backend.h"
#include "sa-backends/xfrm/xfrm.h"
#include "util.h"

struct ike_sock {
	int fd;
	bool natt;
	uint16_t port;
	ev_io io;
};

static struct ike_sock socks[2] = { { .fd = -1 }, { .fd = -1, .natt = true } };
static struct ev_loop *sock_loop;
static uint8_t rxbuf[65536 + 64];

static void on_packet(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ike_sock *s = bw_container_of(w, struct ike_sock, io);
	struct sockaddr_storage from;
	struct isakmp_hdr h;
	int budget = 64;

	(void)loop;
	(void)revents;
	while (budget-- > 0) {
		socklen_t flen = sizeof(from);
		ssize_t n = recvfrom(s->fd, rxbuf, sizeof(rxbuf), MSG_DONTWAIT, (struct sockaddr *)&from, &flen);
		uint8_t *msg = rxbuf;
		size_t len;
		struct bw_ike_conn *ike;

		if (n < 0)
			return;
		len = (size_t)n;
		if (s->natt) {
			/* RFC 3948 2.2: one 0xff byte is a keepalive; 4 zero bytes mark IKE; else ESP. */
			if (len == 1 && msg[0] == 0xff)
				continue;
			if (len >= 4 && memcmp(msg, "\0\0\0\0", 4) == 0) {
				msg += 4;
				len -= 4;
			} else {
				uint32_t spi = len >= 8 ? (uint32_t)msg[0] << 24 | (uint32_t)msg[1] << 16 |
								 (uint32_t)msg[2] << 8 | msg[3] : 0;

				ike = spi ? ike_find_by_spi(spi) : NULL;
				if (ike)
					ike_esp_input(ike, msg, len);
				else
					bw_trace("ESP packet of %zu bytes for unknown SPI %08x dropped", len, spi);
				continue;
			}
		}
		if (isakmp_hdr_parse(msg, len, &h) != 0) {
			bw_debug("malformed IKE packet of %zu bytes dropped", len);
			continue;
		}
		ike = ike_find_by_cookie(h.icookie);
		if (!ike) {
			bw_debug("IKE packet for unknown cookies dropped (%s)", isakmp_exchange_name(h.exchange));
			continue;
		}
		/* Only the gateway we talk to may drive the exchange. */
		if (from.ss_family != AF_INET ||
		    ((struct sockaddr_in *)&from)->sin_addr.s_addr !=
			    ((struct sockaddr_in *)&ike->peer)->sin_addr.s_addr) {
			ike_log(ike, BW_LOG_DEBUG, "IKE packet from an unexpected address dropped");
			continue;
		}
		ike_dispatch(ike, &h, msg, h.length);
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

int ike_sockets_open(struct bw_agent *a, uint16_t ike_port, uint16_t natt_port, bool kernel_esp,
		     char *err, size_t errlen)
{
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
	/* Kernel ESP (xfrm backend): IKE must bypass every policy (host-to-everywhere would
	 * otherwise swallow it) and the kernel takes ESP-in-UDP off the NAT-T socket. */
	if (kernel_esp) {
		for (int i = 0; i < 2 && rc == 0; i++)
			rc = bw_xfrm_socket_bypass(socks[i].fd, AF_INET);
		if (rc == 0)
			rc = bw_xfrm_socket_espinudp(socks[1].fd);
		if (rc < 0) {
			snprintf(err, errlen, "cannot prepare the IKE sockets for kernel ESP: %s", strerror(-rc));
			ike_sockets_close();
			return -1;
		}
	}
	bw_info("IKE listening on UDP ports %u and %u", socks[0].port, socks[1].port);
	return 0;
}

void ike_sockets_close(void)
{
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

int ike_send_raw(struct bw_ike_conn *ike, const uint8_t *msg, size_t len)
{
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->peer;
	static uint8_t txbuf[65536 + 4];
	const struct ike_sock *s = &socks[ike->floated ? 1 : 0];
	const uint8_t *out = msg;
	size_t outlen = len;

	if (s->fd < 0 || len > 65536)
		return -1;
	to.sin_port = htons(ike->floated ? 4500 : 500);
	if (ike->floated) {
		memset(txbuf, 0, 4);
		memcpy(txbuf + 4, msg, len);
		out = txbuf;
		outlen = len + 4;
	}
	if (sendto(s->fd, out, outlen, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		ike_log(ike, BW_LOG_WARN, "cannot send to the gateway: %s", strerror(errno));
		return -1;
	}
	return 0;
}

/* Sends an ESP packet (from the userspace datapath) on the NAT-T socket. */
int ike_send_esp(struct bw_ike_conn *ike, const uint8_t *pkt, size_t len)
{
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->peer;

	to.sin_port = htons(4500);
	if (sendto(socks[1].fd, pkt, len, 0, (struct sockaddr *)&to, sizeof(to)) < 0)
		return -errno;
	return 0;
}

/* One 0xff byte keeps the NAT's mapping for port 4500 alive (RFC 3948 section 4). */
int ike_send_keepalive(struct bw_ike_conn *ike)
{
	static const uint8_t ka = 0xff;
	struct sockaddr_in to = *(struct sockaddr_in *)&ike->peer;

	to.sin_port = htons(4500);
	return sendto(socks[1].fd, &ka, 1, 0, (struct sockaddr *)&to, sizeof(to)) < 0 ? -errno : 0;
}

static const double schedule[IKE_RETRANSMITS + 1] = IKE_RETRANSMIT_SCHEDULE;

static void on_rexmit(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_ike_conn *ike = bw_container_of(w, struct bw_ike_conn, rexmit);
	char msg[512];

	(void)revents;
	if (ike->out_tries >= IKE_RETRANSMITS) {
		ev_timer_stop(loop, w);
		snprintf(msg, sizeof(msg), "no answer from the gateway %s while %s", ike->cfg.gateway,
			 ike->last_step);
		if (ike->p1 == P1_MM_SENT1 || ike->p1 == P1_AM_SENT1)
			ike_fail(ike, "no-answer", msg,
				 "The gateway did not answer at all. Check that the gateway address is right, that it "
				 "runs an IKEv1 service, and that nothing between here and there blocks UDP port 500 "
				 "(and 4500). `burrow doctor` tests the path.");
		else if (ike->p1 == P1_MM_SENT5 && ike->floated)
			ike_fail(ike, "natt-blocked", msg, ike->nat_local ?
				 "The exchange moved to UDP port 4500 (a NAT is in front of us, or ESP in UDP was "
				 "asked for), and from then on the gateway did not answer. Something between here and "
				 "the gateway blocks UDP 4500; allow it (and 500) towards the gateway. A wrong "
				 "pre-shared key is the other, less likely cause." :
				 "The exchange moved to UDP port 4500 and from then on the gateway did not answer. "
				 "Something on the way blocks UDP 4500; allow it towards the gateway.");
		else if (ike->p1 == P1_MM_SENT5)
			ike_fail(ike, "auth-failed", msg,
				 "The gateway stopped answering after our authentication message. This almost always "
				 "means the pre-shared key differs from the gateway's (it cannot decrypt our message), "
				 "or the gateway rejected our identity. Check the psk in secrets/ and local_id.");
		else if (ike->p1 == P1_MM_SENT3 && ike->use_natt)
			ike_fail(ike, "no-answer", msg,
				 "The gateway answered on port 500 but not after the key exchange. If there is a NAT "
				 "or firewall in between, check that UDP port 4500 passes.");
		else
			ike_fail(ike, "no-answer", msg,
				 "The gateway stopped answering in the middle of the exchange. Check the gateway's log; "
				 "a firewall may drop fragments or port 4500.");
		return;
	}
	ike->out_tries++;
	ike_log(ike, BW_LOG_DEBUG, "no answer yet while %s: retransmitting (%d of %d)", ike->last_step,
		ike->out_tries, IKE_RETRANSMITS);
	ike_send_raw(ike, ike->out_msg, ike->out_len);
	w->repeat = schedule[ike->out_tries];
	ev_timer_again(loop, w);
}

int ike_send(struct bw_ike_conn *ike, uint8_t *msg, size_t len)
{
	free(ike->out_msg);
	ike->out_msg = msg;
	ike->out_len = len;
	ike->out_tries = 0;
	ev_timer_stop(ike->agent->loop, &ike->rexmit);
	ev_timer_init(&ike->rexmit, on_rexmit, 0.0, schedule[0]);
	ev_timer_again(ike->agent->loop, &ike->rexmit);
	return ike_send_raw(ike, msg, len);
}

void ike_keep_final(struct bw_ike_conn *ike, uint8_t exchange, uint32_t msgid, const uint8_t *msg, size_t len)
{
	uint8_t *copy = malloc(len);

	if (!copy)
		return;
	memcpy(copy, msg, len);
	free(ike->final_msg);
	ike->final_msg = copy;
	ike->final_len = len;
	ike->final_exchange = exchange;
	ike->final_msgid = msgid;
}

void ike_rexmit_stop(struct bw_ike_conn *ike)
{
	ev_timer_stop(ike->agent->loop, &ike->rexmit);
	free(ike->out_msg);
	ike->out_msg = NULL;
	ike->out_len = 0;
}

/* The userspace SA backend against a real TUN device in a private network namespace:
 * device, addresses, routes, ESP both ways, the inbound policy check, rekey, cleanup. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "sa-backends/sa_backend.h"
#include "sa-backends/userspace/esp.h"
#include "sa-backends/userspace/userspace.h"
#include "sa-backends/common/sysnet.h"
#include "tap.h"

static const struct bw_sa_backend_ops *ops = &bw_sa_backend_userspace;
static struct ev_loop *loop;
static char state_dir[64];

struct capture {
	uint8_t pkt[4096];
	size_t len;
	int n;
	int expired_n;
	uint32_t expired_spi;
	enum bw_sa_dir expired_dir;
	bool expired_hard;
};

static int capture_esp(void *ctx, const uint8_t *pkt, size_t len)
{
	struct capture *cap = ctx;

	if (len > sizeof(cap->pkt))
		return -EMSGSIZE;
	memcpy(cap->pkt, pkt, len);
	cap->len = len;
	cap->n++;
	return 0;
}

static void capture_expired(void *ctx, uint32_t spi, enum bw_sa_dir dir, bool hard)
{
	struct capture *cap = ctx;

	cap->expired_n++;
	cap->expired_spi = spi;
	cap->expired_dir = dir;
	cap->expired_hard = hard;
}

/* Runs the loop until *counter moves past start or ms pass; true when it moved. */
static bool run_until(const int *counter, int start, int ms)
{
	for (int i = 0; i < ms; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		if (*counter != start)
			return true;
		usleep(1000);
	}
	return false;
}

static bool run_until_u64(struct bw_sa_conn *c, uint64_t errors_out_start, int ms)
{
	struct bw_sa_counters k;

	for (int i = 0; i < ms; i++) {
		ev_run(loop, EVRUN_NOWAIT);
		ops->counters(c, &k);
		if (k.errors_out != errors_out_start)
			return true;
		usleep(1000);
	}
	return false;
}

static void sh_out(const char *cmd, char *buf, size_t len)
{
	FILE *p = popen(cmd, "r");
	size_t n = 0;

	buf[0] = '\0';
	if (!p)
		return;
	n = fread(buf, 1, len - 1, p);
	buf[n] = '\0';
	pclose(p);
}

static bool cmd_has(const char *cmd, const char *needle)
{
	static char out[16384];

	sh_out(cmd, out, sizeof(out));
	return strstr(out, needle) != NULL;
}

static bool file_has(const char *path, const char *needle)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "cat %s 2>/dev/null", path);
	return cmd_has(cmd, needle);
}

static struct bw_cidr cidr4(const char *a, uint8_t prefix)
{
	struct bw_cidr c = { .family = AF_INET, .prefix = prefix };

	inet_pton(AF_INET, a, c.addr);
	return c;
}

static struct bw_cidr cidr6(const char *a, uint8_t prefix)
{
	struct bw_cidr c = { .family = AF_INET6, .prefix = prefix };

	inet_pton(AF_INET6, a, c.addr);
	return c;
}

static uint16_t ip_csum(const uint8_t *p, size_t len)
{
	uint32_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An IPv4 UDP packet (UDP checksum 0, which IPv4 allows). */
static size_t udp4(uint8_t *b, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   const char *payload)
{
	size_t plen = strlen(payload), tot = 20 + 8 + plen;
	uint16_t ck;

	memset(b, 0, 28);
	b[0] = 0x45;
	b[2] = (uint8_t)(tot >> 8);
	b[3] = (uint8_t)tot;
	b[8] = 64;
	b[9] = IPPROTO_UDP;
	inet_pton(AF_INET, src, b + 12);
	inet_pton(AF_INET, dst, b + 16);
	ck = ip_csum(b, 20);
	b[10] = (uint8_t)(ck >> 8);
	b[11] = (uint8_t)ck;
	b[20] = (uint8_t)(sport >> 8);
	b[21] = (uint8_t)sport;
	b[22] = (uint8_t)(dport >> 8);
	b[23] = (uint8_t)dport;
	b[24] = (uint8_t)((8 + plen) >> 8);
	b[25] = (uint8_t)(8 + plen);
	memcpy(b + 28, payload, plen);
	return tot;
}

/* An IPv6 UDP packet; IPv6 requires the UDP checksum (RFC 8200 8.1). */
static size_t udp6(uint8_t *b, const char *src, uint16_t sport, const char *dst, uint16_t dport,
		   const char *payload)
{
	size_t plen = strlen(payload), ulen = 8 + plen;
	uint32_t sum = 0;
	uint16_t ck;

	memset(b, 0, 48);
	b[0] = 0x60;
	b[4] = (uint8_t)(ulen >> 8);
	b[5] = (uint8_t)ulen;
	b[6] = IPPROTO_UDP;
	b[7] = 64;
	inet_pton(AF_INET6, src, b + 8);
	inet_pton(AF_INET6, dst, b + 24);
	b[40] = (uint8_t)(sport >> 8);
	b[41] = (uint8_t)sport;
	b[42] = (uint8_t)(dport >> 8);
	b[43] = (uint8_t)dport;
	b[44] = (uint8_t)(ulen >> 8);
	b[45] = (uint8_t)ulen;
	memcpy(b + 48, payload, plen);
	b[48 + plen] = 0;	/* pad for the 16-bit sum; not part of the packet */
	for (size_t i = 8; i < 40; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	sum += (uint32_t)ulen + IPPROTO_UDP;
	for (size_t i = 40; i < 40 + ulen; i += 2)
		sum += (uint32_t)b[i] << 8 | b[i + 1];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	ck = (uint16_t)~sum;
	if (ck == 0)
		ck = 0xffff;
	b[46] = (uint8_t)(ck >> 8);
	b[47] = (uint8_t)ck;
	return 40 + ulen;
}

static const struct bw_p2_proposal alg = {
	.encr = BW_ESP_AES_CBC, .key_bits = 256, .auth = BW_ESP_AUTH_HMAC_SHA256,
};

static void sa_params(struct bw_sa_params *p, enum bw_sa_dir dir, uint32_t spi,
		      const uint8_t *key, size_t klen, uint32_t lifetime_s)
{
	memset(p, 0, sizeof(*p));
	p->dir = dir;
	p->spi = spi;
	p->alg = alg;
	memcpy(p->keymat, key, klen);
	p->keymat_len = klen;
	p->mode = BW_MODE_TUNNEL;
	p->udp_encap = true;
	p->lifetime_s = lifetime_s;
}

static int udp_socket(const char *addr, uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET, addr, &sin.sin_addr);
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	return s;
}

static int udp6_socket(const char *addr, uint16_t port)
{
	struct sockaddr_in6 sin = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int s = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	inet_pton(AF_INET6, addr, &sin.sin6_addr);
	if (s < 0 || bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0)
		return -1;
	return s;
}

static int udp6_send(int s, const char *dst, uint16_t port, const char *msg)
{
	struct sockaddr_in6 sin = { .sin6_family = AF_INET6, .sin6_port = htons(port) };

	inet_pton(AF_INET6, dst, &sin.sin6_addr);
	return (int)sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&sin, sizeof(sin));
}

static int udp_send(int s, const char *dst, uint16_t port, const char *msg)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };

	inet_pton(AF_INET, dst, &sin.sin_addr);
	return (int)sendto(s, msg, strlen(msg), 0, (struct sockaddr *)&sin, sizeof(sin));
}

static ssize_t udp_recv(int s, char *buf, size_t len, int timeout_ms)
{
	struct pollfd pfd = { .fd = s, .events = POLLIN };
	ssize_t n;

	if (poll(&pfd, 1, timeout_ms) <= 0)
		return -1;
	n = recv(s, buf, len - 1, 0);
	if (n >= 0)
		buf[n] = '\0';
	return n;
}

/* The file descriptor of the TUN device this process holds, found the way a debugger
 * would: the test must not reach into the backend. */
static int find_tun_fd(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char path[300], target[64];
	int fd = -1;

	while (d && (e = readdir(d))) {
		ssize_t n;
		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		n = readlink(path, target, sizeof(target) - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, "/dev/net/tun") == 0)
				fd = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return fd;
}

static bool link_flags(const char *ifname, short *flags, int *mtu)
{
	struct ifreq ifr = { 0 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);
	bool ok;

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
	ok = s >= 0 && ioctl(s, SIOCGIFFLAGS, &ifr) == 0;
	if (ok)
		*flags = ifr.ifr_flags;
	ok = ok && ioctl(s, SIOCGIFMTU, &ifr) == 0;
	if (ok)
		*mtu = ifr.ifr_mtu;
	if (s >= 0)
		close(s);
	return ok;
}

static void test_names_and_pick(void)
{
	char a[IFNAMSIZ], b[IFNAMSIZ], c[IFNAMSIZ];
	const char *got = a;
	char err[256] = "";

	sn_ifname("office", a);
	tap_is_str(got, "bw-office", "a short connection name becomes bw-NAME");
	sn_ifname("a-very-long-connection-name", a);
	sn_ifname("a-very-long-connection-name", b);
	sn_ifname("a-very-long-connection-other", c);
	tap_ok(strlen(a) == IFNAMSIZ - 1 && strncmp(a, "bw-a-very", 9) == 0 && strcmp(a, b) == 0,
	       "a long name is truncated to 15 characters, deterministically (%s)", a);
	tap_ok(strcmp(a, c) != 0, "two long names with the same start get different hashes (%s, %s)",
	       a, c);
	sn_ifname("x:y", a);
	sn_ifname("x_y", b);
	tap_ok(strchr(a, ':') == NULL && strcmp(a, b) != 0,
	       "a name with characters interfaces cannot carry is sanitized and hashed (%s)", a);

	tap_ok(bw_sa_backend_pick(BW_BACKEND_AUTO, err, sizeof(err)) == &bw_sa_backend_userspace,
	       "backend = auto picks userspace");
	tap_ok(bw_sa_backend_pick(BW_BACKEND_USERSPACE, err, sizeof(err)) == &bw_sa_backend_userspace,
	       "backend = userspace picks userspace");
	err[0] = '\0';
	tap_ok(bw_sa_backend_pick(BW_BACKEND_XFRM, err, sizeof(err)) == NULL &&
	       strstr(err, "set backend = userspace"),
	       "backend = xfrm is refused with a sentence that says what to do");
}

/* A child that opens a connection, installs things and dies without closing, leaving the
 * device persistent, as if the agent had crashed while something else kept it alive. */
static void crash_child(void)
{
	struct bw_sa_conn_cbs cbs = { 0 };
	struct bw_sa_conn *c;
	struct bw_cidr a = cidr4("10.9.1.2", 32), n = cidr4("10.3.0.0", 16);
	struct sockaddr_in gw = { .sin_family = AF_INET };
	int fd;

	loop = ev_loop_new(EVFLAG_AUTO);
	inet_pton(AF_INET, "198.51.100.8", &gw.sin_addr);
	if (ops->conn_open(loop, "crashy", state_dir, &cbs, &c) < 0 ||
	    ops->set_address(c, &a) < 0 || bw_us_route_exception(c, (struct sockaddr *)&gw) < 0 ||
	    ops->add_route(c, &n, &a) < 0)
		_exit(1);
	fd = find_tun_fd();
	if (fd < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
		_exit(2);
	_exit(0);
}

/* Transport mode: the peer's own address is routed into the device for every packet without
 * Burrow's IKE mark; what leaves is the payload alone, what arrives gets its header back. */
static void test_transport(const uint8_t *kx, const uint8_t *ky, size_t klen)
{
	struct capture cap = { 0 };
	struct bw_sa_conn_cbs cbs = { .ctx = &cap, .send_esp = capture_esp, .expired = capture_expired };
	struct bw_sa_conn *c = NULL;
	struct bw_sa_params p;
	struct bw_cidr me = cidr4("192.0.2.1", 32), peer = cidr4("192.0.2.77", 32);
	struct bw_esp_sa *peer_in = bw_esp_sa_new(BW_ESP_IN, 0x5000, &alg, kx, klen);
	struct bw_esp_sa *peer_out = bw_esp_sa_new(BW_ESP_OUT, 0x6000, &alg, ky, klen);
	uint8_t inner[2048], esp[2048], seg[64];
	size_t ilen = 0, elen = 0;
	uint64_t pk = 0;
	char record[160], msg[256], table[32];
	uint8_t nh = 0;
	int s;

	snprintf(record, sizeof(record), "%s/tr.userspace", state_dir);
	if (!tap_is_int(ops->conn_open(loop, "tr", state_dir, &cbs, &c), 0, "transport: conn_open bw-tr"))
		return;
	sa_params(&p, BW_SA_OUT, 0x5000, kx, klen, 0);
	p.mode = BW_MODE_TRANSPORT;
	p.local.ss_family = p.remote.ss_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.1", &((struct sockaddr_in *)&p.local)->sin_addr);
	inet_pton(AF_INET, "192.0.2.77", &((struct sockaddr_in *)&p.remote)->sin_addr);
	tap_is_int(ops->add_sa(c, &p), 0, "transport: add_sa outbound 0x5000 in transport mode");
	p.dir = BW_SA_IN;
	p.spi = 0x6000;
	memcpy(p.keymat, ky, klen);
	tap_is_int(ops->add_sa(c, &p), 0, "transport: add_sa inbound 0x6000 in transport mode");
	OPENSSL_cleanse(p.keymat, sizeof(p.keymat));
	tap_is_int(ops->add_policy(c, &me, &peer, 0x5000, 0x6000), 0, "transport: policy 192.0.2.1/32 <-> 192.0.2.77/32");
	tap_is_int(bw_us_transport_route(c, &peer, &me), 0, "bw_us_transport_route routes the peer into bw-tr");
	snprintf(table, sizeof(table), "lookup %u", SN_RULE_TABLE_BASE + if_nametoindex("bw-tr"));
	tap_ok(cmd_has("ip -4 rule show", "not from all fwmark 0x62770000 lookup") && cmd_has("ip -4 rule show", table),
	       "a rule sends every packet without Burrow's IKE mark to the connection's table (%s)", table);
	tap_ok(file_has(record, "rule inet table ") && file_has(record, "route 192.0.2.77/32 dev bw-tr table "),
	       "the rule and the route are recorded");
	tap_ok(cmd_has("ip -o route get 192.0.2.77", "dev bw-tr"), "the peer's own address goes into bw-tr");
	tap_ok(cmd_has("ip -o route get 192.0.2.77 mark 0x62770000", "dev vt0"),
	       "packets with the IKE mark (burrowd's IKE and ESP in UDP) still go via vt0");
	tap_ok(cmd_has("ip -o route get 192.0.2.99", "dev vt0"), "other hosts on the link are not affected");

	/* Out: the UDP datagram's payload alone travels, next header 17. */
	s = udp_socket("192.0.2.1", 41000);
	udp_send(s, "192.0.2.77", 1701, "l2tp over transport");
	run_until(&cap.n, 0, 2000);
	tap_ok(cap.n == 1 && bw_esp_peek_spi(cap.pkt, cap.len) == 0x5000 &&
	       bw_esp_decap(peer_in, cap.pkt, cap.len, inner, sizeof(inner), &ilen, &nh) == 0 && nh == 17 &&
	       ilen == 8 + 19 && inner[0] == 0xa0 && inner[1] == 0x28 && inner[2] == 0x06 && inner[3] == 0xa5 &&
	       memcmp(inner + 8, "l2tp over transport", 19) == 0,
	       "a datagram to the peer leaves as ESP carrying the UDP header and data only, next header 17");

	/* In: the peer's answer, its UDP checksum computed for other addresses (a NAT's view). */
	seg[0] = 0x06;	/* 1701 -> 41000 */
	seg[1] = 0xa5;
	seg[2] = 0xa0;
	seg[3] = 0x28;
	seg[4] = 0;
	seg[5] = 8 + 16;
	seg[6] = 0x12;
	seg[7] = 0x34;
	memcpy(seg + 8, "answer from peer", 16);
	bw_esp_encap(peer_out, seg, 8 + 16, 17, esp, sizeof(esp), &elen);
	tap_is_int(ops->input(c, esp, elen), 0, "input accepts the peer's transport-mode packet");
	tap_ok(udp_recv(s, msg, sizeof(msg), 1000) == 16 && strcmp(msg, "answer from peer") == 0,
	       "the socket receives it: the rebuilt header and checksum pass the kernel's checks");
	tap_ok(ops->sa_packets(c, 0x6000, BW_SA_IN, &pk) == 0 && pk == 1, "the inbound SA counted it");
	seg[5] = 8 + 20;	/* a UDP length beyond the payload */
	bw_esp_encap(peer_out, seg, 8 + 16, 17, esp, sizeof(esp), &elen);
	tap_is_int(ops->input(c, esp, elen), -EPROTO, "a transport payload whose UDP length lies is dropped");
	close(s);

	ops->conn_close(c);
	tap_ok(!cmd_has("ip -4 rule show", table), "conn_close removes the rule");
	tap_ok(cmd_has("ip -o route get 192.0.2.77", "dev vt0"), "and the peer is reached via vt0 again");
	bw_esp_sa_free(peer_in);
	bw_esp_sa_free(peer_out);
}

/* IFF_VNET_HDR on the one TUN device this process holds: the offload path or the plain one. */
static int tun_flags_vnet(void)
{
	struct ifreq ifr;
	int fd = find_tun_fd();

	memset(&ifr, 0, sizeof(ifr));
	if (fd < 0 || ioctl(fd, TUNGETIFF, &ifr) < 0)
		return -1;
	return (ifr.ifr_flags & IFF_VNET_HDR) != 0;
}

/* BURROW_TUN_OFFLOAD=0, and kernels that refuse the offloads: the plain device carries the
 * same traffic one packet per read and write, bursts included. */
static void test_plain_device(const uint8_t *kx, const uint8_t *ky, size_t klen)
{
	struct capture cap = { 0 };
	struct bw_sa_conn_cbs cbs = { .ctx = &cap, .send_esp = capture_esp, .expired = capture_expired };
	struct bw_sa_conn *c = NULL;
	struct bw_sa_params p;
	struct bw_cidr vip = cidr4("10.9.5.2", 32), net = cidr4("10.5.0.0", 24);
	struct bw_esp_sa *peer_in = bw_esp_sa_new(BW_ESP_IN, 0x7000, &alg, kx, klen);
	struct bw_esp_sa *peer_out = bw_esp_sa_new(BW_ESP_OUT, 0x8000, &alg, ky, klen);
	uint8_t inner[2048], esp[2][2048];
	struct iovec burst[2];
	size_t ilen = 0, elen = 0;
	char msg[256];
	uint8_t nh = 0;
	int s, errs[2] = { 1, 1 };

	if (!tap_is_int(ops->conn_open(loop, "of", state_dir, &cbs, &c), 0, "plain: a device opened as usual"))
		return;
	tap_is_int(tun_flags_vnet(), 1, "has the vnet header (offloads) by default");
	ops->conn_close(c);
	c = NULL;
	setenv("BURROW_TUN_OFFLOAD", "0", 1);
	tap_is_int(ops->conn_open(loop, "pl", state_dir, &cbs, &c), 0, "BURROW_TUN_OFFLOAD=0: conn_open bw-pl");
	unsetenv("BURROW_TUN_OFFLOAD");
	if (!c)
		return;
	tap_is_int(tun_flags_vnet(), 0, "the device has no vnet header");
	sa_params(&p, BW_SA_OUT, 0x7000, kx, klen, 0);
	tap_is_int(ops->add_sa(c, &p), 0, "plain: add_sa outbound");
	sa_params(&p, BW_SA_IN, 0x8000, ky, klen, 0);
	tap_is_int(ops->add_sa(c, &p), 0, "plain: add_sa inbound");
	OPENSSL_cleanse(p.keymat, sizeof(p.keymat));
	tap_ok(ops->set_address(c, &vip) == 0 && ops->add_route(c, &net, &vip) == 0 &&
	       ops->add_policy(c, &vip, &net, 0x7000, 0x8000) == 0, "plain: address, route and policy");
	s = udp_socket("10.9.5.2", 42000);
	udp_send(s, "10.5.0.9", 9999, "out of a plain device");
	run_until(&cap.n, 0, 2000);
	tap_ok(cap.n == 1 && bw_esp_decap(peer_in, cap.pkt, cap.len, inner, sizeof(inner), &ilen, &nh) == 0 &&
	       nh == 4 && ilen == 28 + 21 && memcmp(inner + 28, "out of a plain device", 21) == 0,
	       "a datagram read from the plain device leaves as ESP");
	for (int i = 0; i < 2; i++) {
		char text[32];

		snprintf(text, sizeof(text), "burst reply %d", i);
		ilen = udp4(inner, "10.5.0.9", 9999, "10.9.5.2", 42000, text);
		bw_esp_encap(peer_out, inner, ilen, 4, esp[i], sizeof(esp[i]), &elen);
		burst[i] = (struct iovec){ .iov_base = esp[i], .iov_len = elen };
	}
	tap_is_int(ops->input_burst(c, burst, 2, errs), 0, "input_burst on the plain device drops nothing");
	tap_ok(errs[0] == 0 && errs[1] == 0, "and reports each packet as accepted");
	tap_ok(udp_recv(s, msg, sizeof(msg), 1000) > 0 && strcmp(msg, "burst reply 0") == 0 &&
	       udp_recv(s, msg, sizeof(msg), 1000) > 0 && strcmp(msg, "burst reply 1") == 0,
	       "both replies arrive on the socket, in order");
	close(s);
	ops->conn_close(c);
	bw_esp_sa_free(peer_in);
	bw_esp_sa_free(peer_out);
}

int main(void)
{
	uint8_t kx[64], ky[64], kx2[64], ky2[64], buf[2048], inner[2048], esp[2048];
	size_t klen = bw_esp_keymat_len(&alg), ilen, elen;
	struct bw_sa_conn_cbs cbs = { 0 };
	struct capture cap = { 0 };
	struct bw_sa_conn *c = NULL;
	struct bw_sa_params p;
	struct bw_sa_counters k0, k;
	struct bw_esp_sa *peer_in, *peer_out, *peer_in2, *peer_out2;
	uint64_t pk = 0;
	struct bw_cidr vip = cidr4("10.9.0.2", 32), rnet = cidr4("10.1.0.0", 24);
	struct bw_cidr other = cidr4("10.2.0.0", 24), all = cidr4("0.0.0.0", 0);
	struct sockaddr_in gw = { .sin_family = AF_INET };
	char record[128], msg[256];
	uint8_t nh;
	short flags = 0;
	int mtu = 0, s, rc, status;
	pid_t pid;

	if (geteuid() != 0 || access("/dev/net/tun", R_OK | W_OK) != 0) {
		printf("1..0 # SKIP needs root and /dev/net/tun\n");
		return 0;
	}
	if (unshare(CLONE_NEWNET) != 0) {
		printf("1..0 # SKIP cannot create a network namespace: %s\n", strerror(errno));
		return 0;
	}
	if (system("ip link set lo up && ip link add vt0 type veth peer name vt1 && "
		   "ip addr add 192.0.2.1/24 dev vt0 && ip link set vt0 up && ip link set vt1 up && "
		   "ip route add default via 192.0.2.254 dev vt0") != 0) {
		printf("1..0 # SKIP needs iproute2 and veth to build the test namespace\n");
		return 0;
	}
	snprintf(state_dir, sizeof(state_dir), "/tmp/bw-us-test.XXXXXX");
	if (!mkdtemp(state_dir)) {
		printf("1..0 # SKIP cannot create a state directory\n");
		return 0;
	}
	snprintf(record, sizeof(record), "%s/office.userspace", state_dir);
	loop = ev_loop_new(EVFLAG_AUTO);
	RAND_bytes(kx, sizeof(kx));
	RAND_bytes(ky, sizeof(ky));
	RAND_bytes(kx2, sizeof(kx2));
	RAND_bytes(ky2, sizeof(ky2));

	test_names_and_pick();

	/* ---- the device ---- */
	cbs.ctx = &cap;
	cbs.send_esp = capture_esp;
	cbs.expired = capture_expired;
	rc = ops->conn_open(loop, "office", state_dir, &cbs, &c);
	if (!tap_is_int(rc, 0, "conn_open creates the connection")) {
		tap_done_testing();
		return 1;
	}
	tap_is_str(ops->ifname(c), "bw-office", "the interface is named bw-office");
	tap_ok(if_nametoindex("bw-office") > 0, "the TUN device exists");
	tap_ok(link_flags("bw-office", &flags, &mtu) && (flags & IFF_UP) && !(flags & IFF_MULTICAST),
	       "the device is up and does not do multicast");
	tap_is_int(mtu, BW_US_MTU, "the MTU leaves room for IPv4 + UDP + ESP overhead (%d)", BW_US_MTU);
	tap_ok(BW_US_MTU + 20 + 8 + BW_ESP_MAX_OVERHEAD <= 1500, "an encapsulated full-size packet fits 1500 bytes");
	tap_ok(file_has(record, "ifname bw-office"), "the state record names the device");
	tap_ok(!cmd_has("ip -o addr show dev bw-office", "inet6"),
	       "no IPv6 link-local address appears on the device");

	/* ---- addresses and routes ---- */
	tap_is_int(ops->set_address(c, &vip), 0, "set_address puts the virtual IP on the device");
	tap_ok(cmd_has("ip -o addr show dev bw-office", "inet 10.9.0.2/32"),
	       "ip addr shows 10.9.0.2/32 on bw-office");
	tap_ok(file_has(record, "address 10.9.0.2/32"), "the address is recorded");
	tap_is_int(ops->add_route(c, &rnet, &vip), 0, "add_route 10.1.0.0/24 with source 10.9.0.2");
	tap_ok(cmd_has("ip -o route show dev bw-office", "10.1.0.0/24 proto static scope link src 10.9.0.2"),
	       "ip route shows 10.1.0.0/24 via bw-office with the preferred source");
	tap_ok(file_has(record, "route 10.1.0.0/24 dev bw-office table 254 src 10.9.0.2"),
	       "the route is recorded");
	tap_is_int(ops->add_route(c, &other, NULL), 0, "add_route 10.2.0.0/24 without a policy");

	inet_pton(AF_INET, "198.51.100.7", &gw.sin_addr);
	tap_is_int(bw_us_route_exception(c, (struct sockaddr *)&gw), 0,
		   "bw_us_route_exception pins the route to the gateway");
	tap_ok(cmd_has("ip -o route show", "198.51.100.7 via 192.0.2.254 dev vt0"),
	       "the gateway has a host route via the original next hop and interface");
	tap_ok(file_has(record, "exception 198.51.100.7/32 dev vt0 table 254 via 192.0.2.254"),
	       "the exception is recorded");
	tap_is_int(ops->add_route(c, &all, &vip), 0, "add_route 0.0.0.0/0");
	tap_ok(cmd_has("ip -o route show dev bw-office", "0.0.0.0/1 ") &&
	       cmd_has("ip -o route show dev bw-office", "128.0.0.0/1 "),
	       "0.0.0.0/0 is installed as 0.0.0.0/1 and 128.0.0.0/1");
	tap_ok(cmd_has("ip -o route show", "default via 192.0.2.254 dev vt0"),
	       "the default route is left as it was");
	tap_ok(cmd_has("ip -o route get 198.51.100.7", "dev vt0") &&
	       cmd_has("ip -o route get 198.51.100.99", "dev bw-office"),
	       "the gateway still goes via vt0 while everything else goes into the tunnel");
	inet_pton(AF_INET, "203.0.113.9", &gw.sin_addr);
	tap_is_int(bw_us_route_exception(c, (struct sockaddr *)&gw), -ELOOP,
		   "pinning a gateway that already routes into the tunnel is refused");

	/* ---- SAs and policies ---- */
	sa_params(&p, BW_SA_IN, 0x2000, ky, klen, 0);
	p.mode = BW_MODE_TRANSPORT;
	p.local.ss_family = p.remote.ss_family = AF_INET6;
	tap_is_int(ops->add_sa(c, &p), -EOPNOTSUPP, "transport mode between IPv6 hosts is refused");
	sa_params(&p, BW_SA_OUT, 0x1000, kx, klen, 0);
	tap_is_int(ops->add_sa(c, &p), 0, "add_sa outbound 0x1000");
	tap_is_int(ops->add_sa(c, &p), -EEXIST, "adding the same SPI and direction twice is refused");
	sa_params(&p, BW_SA_IN, 0x2000, ky, klen, 0);
	tap_is_int(ops->add_sa(c, &p), 0, "add_sa inbound 0x2000");
	OPENSSL_cleanse(p.keymat, sizeof(p.keymat));
	tap_is_int(ops->add_policy(c, &vip, &rnet, 0x1000, 0x9999), -ENOENT,
		   "a policy naming an unknown SA is refused");
	tap_is_int(ops->add_policy(c, &vip, &rnet, 0x1000, 0x2000), 0,
		   "add_policy 10.9.0.2/32 <-> 10.1.0.0/24");

	peer_in = bw_esp_sa_new(BW_ESP_IN, 0x1000, &alg, kx, klen);
	peer_out = bw_esp_sa_new(BW_ESP_OUT, 0x2000, &alg, ky, klen);
	s = udp_socket("10.9.0.2", 40000);
	tap_ok(peer_in && peer_out && s >= 0, "the peer's SAs and a UDP socket on the virtual IP");
	ops->counters(c, &k0);

	/* ---- outbound: socket -> TUN -> ESP ---- */
	udp_send(s, "10.1.0.5", 9999, "hello through the tunnel");
	tap_ok(run_until(&cap.n, 0, 2000), "a datagram routed into the TUN comes out as ESP");
	tap_is_int(bw_esp_peek_spi(cap.pkt, cap.len), 0x1000, "it carries the policy's outbound SPI");
	rc = bw_esp_decap(peer_in, cap.pkt, cap.len, inner, sizeof(inner), &ilen, &nh);
	tap_is_int(rc, BW_ESP_OK, "the peer decapsulates it with the same keys");
	tap_is_int(nh, 4, "tunnel mode: next header 4 (IPv4)");
	inet_ntop(AF_INET, inner + 16, msg, sizeof(msg));
	tap_ok(ilen == 28 + 24 && inner[9] == IPPROTO_UDP && strcmp(msg, "10.1.0.5") == 0 &&
	       memcmp(inner + 28, "hello through the tunnel", 24) == 0,
	       "the inner packet is the whole UDP datagram to 10.1.0.5");

	/* ---- inbound: ESP -> TUN -> socket ---- */
	ilen = udp4(inner, "10.1.0.5", 9999, "10.9.0.2", 40000, "reply from the office");
	bw_esp_encap(peer_out, inner, ilen, 4, esp, sizeof(esp), &elen);
	tap_is_int(ops->input(c, esp, elen), 0, "input accepts the peer's ESP packet");
	tap_ok(udp_recv(s, msg, sizeof(msg), 1000) == 21 && strcmp(msg, "reply from the office") == 0,
	       "the reply arrives on the UDP socket");
	tap_ok(ops->input(c, esp, elen) == -EBADMSG, "a replayed packet is dropped");

	ops->counters(c, &k);
	tap_ok(k.packets_out == k0.packets_out + 1 && k.bytes_out == k0.bytes_out + 52 &&
	       k.packets_in == k0.packets_in + 1 && k.bytes_in == k0.bytes_in + 49,
	       "counters: one packet each way, inner bytes");

	/* ---- IPv6 inside the same tunnel ---- */
	{
		struct bw_cidr vip6 = cidr6("fd00:9::2", 128), rnet6 = cidr6("fd00:1::", 64);
		int s6;

		tap_ok(ops->set_address(c, &vip6) == 0 && ops->add_route(c, &rnet6, &vip6) == 0 &&
		       cmd_has("ip -o addr show dev bw-office", "inet6 fd00:9::2/128") &&
		       cmd_has("ip -o -6 route show dev bw-office", "fd00:1::/64"),
		       "an IPv6 address and route on the device");
		tap_is_int(ops->add_policy(c, &vip6, &rnet6, 0x1000, 0x2000), 0,
			   "add_policy fd00:9::2/128 <-> fd00:1::/64 on the same SAs");
		s6 = udp6_socket("fd00:9::2", 40000);
		cap.n = 0;
		udp6_send(s6, "fd00:1::5", 9999, "hello over IPv6");
		run_until(&cap.n, 0, 2000);
		rc = cap.n == 1 ? bw_esp_decap(peer_in, cap.pkt, cap.len, inner, sizeof(inner), &ilen, &nh) : -1;
		tap_ok(s6 >= 0 && rc == 0 && nh == 41 && ilen == 40 + 8 + 15 && (inner[0] >> 4) == 6 &&
		       memcmp(inner + 48, "hello over IPv6", 15) == 0,
		       "an IPv6 datagram comes out as ESP with next header 41");
		ilen = udp6(inner, "fd00:1::5", 9999, "fd00:9::2", 40000, "reply over IPv6");
		bw_esp_encap(peer_out, inner, ilen, 41, esp, sizeof(esp), &elen);
		tap_is_int(ops->input(c, esp, elen), 0, "input accepts the IPv6 reply");
		tap_ok(udp_recv(s6, msg, sizeof(msg), 1000) == 15 && strcmp(msg, "reply over IPv6") == 0,
		       "the IPv6 reply arrives on the socket");
		ilen = udp6(inner, "fd00:1::5", 9999, "fd00:9::2", 40000, "mislabelled");
		bw_esp_encap(peer_out, inner, ilen, 4, esp, sizeof(esp), &elen);
		tap_is_int(ops->input(c, esp, elen), -EPROTO,
			   "an IPv6 packet labelled as IPv4 (next header 4) is dropped");
		if (s6 >= 0)
			close(s6);
	}

	/* ---- the inbound policy check ---- */
	ilen = udp4(inner, "10.7.7.7", 9999, "10.9.0.2", 40000, "spoofed");
	bw_esp_encap(peer_out, inner, ilen, 4, esp, sizeof(esp), &elen);
	ops->counters(c, &k0);
	tap_is_int(ops->input(c, esp, elen), -EPERM,
		   "an inner source outside the SA's remote selector is refused");
	ops->counters(c, &k);
	tap_ok(k.errors_in == k0.errors_in + 1 && k.packets_in == k0.packets_in,
	       "and counted as an inbound error");
	tap_ok(udp_recv(s, msg, sizeof(msg), 100) < 0, "and never reaches the socket");

	memcpy(buf, esp, elen);
	buf[elen - 1] ^= 1;
	tap_is_int(ops->input(c, buf, elen), -EBADMSG, "a packet with a broken ICV is dropped");
	buf[0] = 0x77;
	tap_is_int(ops->input(c, buf, elen), -ENOENT, "a packet for an unknown SPI is dropped");
	ops->counters(c, &k);
	tap_is_int(k.errors_in, k0.errors_in + 3, "each inbound drop is counted");

	/* ---- outbound with no policy ---- */
	ops->counters(c, &k0);
	cap.n = 0;
	udp_send(s, "10.2.0.9", 9999, "nobody negotiated this");
	tap_ok(run_until_u64(c, k0.errors_out, 2000) && cap.n == 0,
	       "a packet routed into the TUN that matches no policy is dropped and counted");

	/* ---- rekey, make-before-break ---- */
	sa_params(&p, BW_SA_OUT, 0x1001, kx2, klen, 0);
	rc = ops->add_sa(c, &p);
	sa_params(&p, BW_SA_IN, 0x2001, ky2, klen, 0);
	rc |= ops->add_sa(c, &p);
	OPENSSL_cleanse(p.keymat, sizeof(p.keymat));
	tap_is_int(rc, 0, "rekey: the new SAs are added while the old ones exist");
	/* Step 1: the new inbound SA is bound while outbound stays on the old one until the
	 * peer is seen using the new pair (the engine polls sa_packets). */
	tap_is_int(ops->add_policy(c, &vip, &rnet, 0x1000, 0x2001), 0,
		   "add_policy binds the new inbound SA and keeps the old outbound one");
	cap.n = 0;
	udp_send(s, "10.1.0.5", 9999, "during the rekey");
	run_until(&cap.n, 0, 2000);
	tap_ok(cap.n == 1 && bw_esp_peek_spi(cap.pkt, cap.len) == 0x1000,
	       "outbound traffic stays on the old SA until the switch");
	rc = ops->sa_packets(c, 0x2001, BW_SA_IN, &pk);
	tap_ok(rc == 0 && pk == 0, "sa_packets: the new inbound SA has carried nothing yet");
	peer_out2 = bw_esp_sa_new(BW_ESP_OUT, 0x2001, &alg, ky2, klen);
	ilen = udp4(inner, "10.1.0.5", 9999, "10.9.0.2", 40000, "first on the new SA");
	bw_esp_encap(peer_out2, inner, ilen, 4, esp, sizeof(esp), &elen);
	tap_is_int(ops->input(c, esp, elen), 0, "the new inbound SA accepts the peer's traffic before the switch");
	tap_ok(udp_recv(s, msg, sizeof(msg), 1000) > 0 && strcmp(msg, "first on the new SA") == 0, "and it is delivered");
	rc = ops->sa_packets(c, 0x2001, BW_SA_IN, &pk);
	tap_ok(rc == 0 && pk == 1, "sa_packets counts it (%llu)", (unsigned long long)pk);
	tap_is_int(ops->sa_packets(c, 0x7777, BW_SA_IN, &pk), -ENOENT, "sa_packets of an unknown SA is -ENOENT");
	/* Step 2: the switch. */
	tap_is_int(ops->add_policy(c, &vip, &rnet, 0x1001, 0x2001), 0,
		   "add_policy for the same selectors updates the policy");
	cap.n = 0;
	udp_send(s, "10.1.0.5", 9999, "after the rekey");
	run_until(&cap.n, 0, 2000);
	peer_in2 = bw_esp_sa_new(BW_ESP_IN, 0x1001, &alg, kx2, klen);
	tap_ok(cap.n == 1 && bw_esp_peek_spi(cap.pkt, cap.len) == 0x1001 &&
	       bw_esp_decap(peer_in2, cap.pkt, cap.len, inner, sizeof(inner), &ilen, &nh) == 0,
	       "outbound traffic moves to the newest SA");
	ilen = udp4(inner, "10.1.0.5", 9999, "10.9.0.2", 40000, "late on the old SA");
	bw_esp_encap(peer_out, inner, ilen, 4, esp, sizeof(esp), &elen);
	tap_is_int(ops->input(c, esp, elen), 0, "the old inbound SA still accepts its traffic");
	tap_ok(udp_recv(s, msg, sizeof(msg), 1000) > 0 && strcmp(msg, "late on the old SA") == 0,
	       "and it is delivered");
	ops->counters(c, &k0);
	tap_ok(ops->del_sa(c, 0x1000, BW_SA_OUT) == 0 && ops->del_sa(c, 0x2000, BW_SA_IN) == 0,
	       "the old SAs are deleted");
	ops->counters(c, &k);
	tap_ok(memcmp(&k, &k0, sizeof(k)) == 0, "counters keep the deleted SAs' totals");
	tap_is_int(ops->input(c, esp, elen), -ENOENT, "a deleted SA accepts nothing");
	tap_is_int(ops->del_sa(c, 0x1000, BW_SA_OUT), -ENOENT, "deleting it twice says it is gone");

	/* ---- hard lifetime ---- */
	sa_params(&p, BW_SA_IN, 0x3000, ky, klen, 1);
	ops->add_sa(c, &p);
	OPENSSL_cleanse(p.keymat, sizeof(p.keymat));
	tap_ok(run_until(&cap.expired_n, 0, 2500) && cap.expired_spi == 0x3000 &&
	       cap.expired_dir == BW_SA_IN && cap.expired_hard,
	       "an SA past its hard lifetime is reported expired");
	tap_is_int(ops->del_sa(c, 0x3000, BW_SA_IN), -ENOENT, "and is already removed");

	/* ---- close ---- */
	ops->conn_close(c);
	tap_ok(if_nametoindex("bw-office") == 0, "conn_close removes the device");
	tap_ok(!cmd_has("ip -o route show", "bw-office") && !cmd_has("ip -o route show", "198.51.100.7"),
	       "its routes and the gateway exception are gone");
	tap_ok(cmd_has("ip -o route show", "default via 192.0.2.254 dev vt0"),
	       "the original default route is untouched");
	tap_ok(access(record, F_OK) != 0, "the state record is deleted");
	close(s);

	test_transport(kx, ky, klen);
	test_plain_device(kx, ky, klen);

	/* ---- cleanup after a crash ---- */
	fflush(stdout);
	pid = fork();
	if (pid == 0)
		crash_child();
	waitpid(pid, &status, 0);
	snprintf(record, sizeof(record), "%s/crashy.userspace", state_dir);
	tap_ok(WIFEXITED(status) && WEXITSTATUS(status) == 0 && if_nametoindex("bw-crashy") > 0 &&
	       access(record, F_OK) == 0 && cmd_has("ip -o route show", "198.51.100.8 via"),
	       "a crashed run left a persistent device, a gateway exception and its record");
	ops->cleanup_stale("crashy", state_dir);
	tap_ok(if_nametoindex("bw-crashy") == 0, "cleanup_stale removes the device left behind");
	tap_ok(!cmd_has("ip -o route show", "198.51.100.8"), "and the gateway exception");
	tap_ok(access(record, F_OK) != 0, "and the record");
	/* A record whose device a live process holds: not ours to delete. */
	{
		struct ifreq ifr = { .ifr_flags = IFF_TUN | IFF_NO_PI };
		int tfd = open("/dev/net/tun", O_RDWR);
		FILE *f;

		snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "bw-busy");
		snprintf(record, sizeof(record), "%s/busy.userspace", state_dir);
		f = fopen(record, "w");
		if (f) {
			fprintf(f, "ifname bw-busy\naddress 10.9.2.2/32\n");
			fclose(f);
		}
		tap_ok(tfd >= 0 && ioctl(tfd, TUNSETIFF, &ifr) == 0 && f,
		       "another process holds bw-busy, named in a leftover record");
		ops->cleanup_stale("busy", state_dir);
		tap_ok(if_nametoindex("bw-busy") > 0 && access(record, F_OK) != 0,
		       "cleanup_stale leaves a device in use alone and drops the record");
		if (tfd >= 0)
			close(tfd);
	}

	/* conn_open itself undoes a leftover record before it starts. */
	{
		FILE *f;

		snprintf(record, sizeof(record), "%s/crashy.userspace", state_dir);
		rc = system("ip route add 198.51.100.9/32 via 192.0.2.254 dev vt0 proto static");
		f = fopen(record, "w");
		if (f) {
			fprintf(f, "ifname bw-crashy\n"
				   "exception 198.51.100.9/32 dev vt0 table 254 via 192.0.2.254\n");
			fclose(f);
		}
		tap_ok(rc == 0 && f && cmd_has("ip -o route show", "198.51.100.9 via"),
		       "a leftover record of an exception route that is still there");
		rc = ops->conn_open(loop, "crashy", state_dir, &cbs, &c);
		tap_ok(rc == 0 && !cmd_has("ip -o route show", "198.51.100.9"),
		       "conn_open removes it before creating the device");
		tap_ok(rc == 0 && !file_has(record, "198.51.100.9"), "and starts a fresh record");
		if (rc == 0)
			ops->conn_close(c);
	}

	bw_esp_sa_free(peer_in);
	bw_esp_sa_free(peer_in2);
	bw_esp_sa_free(peer_out2);
	bw_esp_sa_free(peer_out);
	OPENSSL_cleanse(kx, sizeof(kx));
	OPENSSL_cleanse(ky, sizeof(ky));
	OPENSSL_cleanse(kx2, sizeof(kx2));
	OPENSSL_cleanse(ky2, sizeof(ky2));
	ev_loop_destroy(loop);
	rmdir(state_dir);
	return tap_done_testing();
}

/* The kernel backend against the running kernel, in a private network namespace: the backend
 * choice and its sentence everywhere; where the kernel has ESP (the VM of tests/vm), the SAs,
 * policies, device, rekey, expiry events, close, and cleanup after a crash, without touching
 * what is not Burrow's. */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sa-backends/sa_backend.h"
#include "sa-backends/xfrm/xfrm.h"
#include "tap.h"

static const struct bw_sa_backend_ops *ops = &bw_sa_backend_xfrm;
static char state_dir[64];
static int n_soft, n_hard;
static uint32_t hard_spi;

static void on_expired(void *ctx, uint32_t spi, enum bw_sa_dir dir, bool hard)
{
	(void)ctx;
	(void)dir;
	if (hard) {
		n_hard++;
		hard_spi = spi;
	} else {
		n_soft++;
	}
}

static struct bw_cidr cidr(const char *a, int prefix)
{
	struct bw_cidr c = { .family = AF_INET, .prefix = (uint8_t)prefix };

	inet_pton(AF_INET, a, c.addr);
	return c;
}

static struct bw_sa_params sa(enum bw_sa_dir dir, uint32_t spi, uint32_t life)
{
	struct bw_sa_params p = { .dir = dir, .spi = spi, .mode = BW_MODE_TUNNEL, .lifetime_s = life };
	struct sockaddr_in l = { .sin_family = AF_INET }, r = { .sin_family = AF_INET };

	inet_pton(AF_INET, "192.0.2.2", &l.sin_addr);
	inet_pton(AF_INET, "192.0.2.1", &r.sin_addr);
	memcpy(&p.local, &l, sizeof(l));
	memcpy(&p.remote, &r, sizeof(r));
	p.alg = (struct bw_p2_proposal){ .encr = BW_ESP_AES_CBC, .key_bits = 256, .auth = BW_ESP_AUTH_HMAC_SHA256 };
	p.keymat_len = 64;
	for (int i = 0; i < 64; i++)
		p.keymat[i] = (uint8_t)(spi + (uint32_t)i);
	return p;
}

/* Lines of `ip -o CMD` that contain all of the words given (NULL-terminated). */
static int count(const char *cmd, ...)
{
	char line[2048], full[256];
	int n = 0;
	FILE *f;

	snprintf(full, sizeof(full), "ip -o %s 2>/dev/null", cmd);
	f = popen(full, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		va_list ap;
		const char *w;
		bool all = true;

		va_start(ap, cmd);
		while ((w = va_arg(ap, const char *)))
			all = all && strstr(line, w);
		va_end(ap);
		n += all;
	}
	pclose(f);
	return n;
}

static bool file_exists(const char *name)
{
	char p[128];

	snprintf(p, sizeof(p), "%s/%s", state_dir, name);
	return access(p, F_OK) == 0;
}

static void run_loop(struct ev_loop *loop, double seconds, bool (*until)(void))
{
	double end = ev_time() + seconds;

	while (ev_time() < end && !(until && until()))
		ev_run(loop, EVRUN_ONCE | EVRUN_NOWAIT), usleep(20000);
}

static bool hard_seen(void)
{
	return n_hard > 0;
}

static int n_wanted;

static bool all_seen(void)
{
	return n_hard >= n_wanted;
}

static void test_kernel_datapath(void)
{
	struct ev_loop *loop = ev_default_loop(0);
	struct bw_sa_conn_cbs cbs = { .expired = on_expired };
	struct bw_cidr l = cidr("10.9.0.2", 32), r = cidr("10.1.0.0", 24), all = cidr("0.0.0.0", 0);
	struct bw_sa_params in = sa(BW_SA_IN, 0xc1000001, 3600), out = sa(BW_SA_OUT, 0x00abc001, 3600);
	struct bw_sa_counters cnt;
	struct bw_sa_conn *c = NULL;
	pid_t pid;
	int st;

	tap_is_int(ops->conn_open(loop, "t1", state_dir, &cbs, &c), 0, "conn_open creates the connection");
	if (!c)
		return;
	tap_is_str(ops->ifname(c), "bw-t1", "its device is bw-t1");
	tap_is_int(count("link show dev bw-t1", "bw-t1", NULL), 1, "the dummy device bw-t1 exists");
	tap_ok(ops->add_sa(c, &in) == 0 && ops->add_sa(c, &out) == 0, "add_sa accepts both SAs");
	tap_is_int(ops->add_sa(c, &in), -EEXIST, "the same SA twice is -EEXIST");
	tap_is_int(ops->add_policy(c, &l, &r, out.spi, in.spi), 0, "add_policy installs SAs and policies");
	tap_is_int(count("xfrm state", "proto esp", "spi 0xc1000001", "mode tunnel", NULL), 1,
		   "the inbound SA is in the kernel");
	tap_is_int(count("xfrm state", "spi 0x00abc001", "src 192.0.2.2 dst 192.0.2.1", NULL), 1,
		   "the outbound SA is in the kernel, from us to the gateway");
	tap_is_int(count("xfrm policy", "src 10.9.0.2/32 dst 10.1.0.0/24", "dir out", NULL), 1, "policy out");
	tap_is_int(count("xfrm policy", "src 10.1.0.0/24 dst 10.9.0.2/32", "dir in", NULL), 1, "policy in");
	tap_is_int(count("xfrm policy", "src 10.1.0.0/24 dst 10.9.0.2/32", "dir fwd", NULL), 1, "policy fwd");
	tap_is_int(ops->set_address(c, &l), 0, "set_address puts the address on the device");
	tap_is_int(count("addr show dev bw-t1", "10.9.0.2/32", NULL), 1, "10.9.0.2/32 on bw-t1");
	tap_is_int(ops->add_route(c, &r, &l), 0, "add_route");
	tap_is_int(count("route show", "10.1.0.0/24 dev bw-t1", "src 10.9.0.2", NULL), 1,
		   "route 10.1.0.0/24 dev bw-t1 src 10.9.0.2");
	tap_is_int(ops->counters(c, &cnt), 0, "counters from the kernel's SA statistics");
	tap_ok(file_exists("t1.xfrm"), "the record is in the state directory");

	/* A rekey: a new pair for the same selectors, then the old pair goes. */
	{
		struct bw_sa_params in2 = sa(BW_SA_IN, 0xc1000002, 3600), out2 = sa(BW_SA_OUT, 0x00abc002, 3600);
		uint64_t pk = 1;

		tap_ok(ops->add_sa(c, &in2) == 0 && ops->add_sa(c, &out2) == 0 &&
		       ops->add_policy(c, &l, &r, out.spi, in2.spi) == 0,
		       "rekey, step 1: the new inbound SA is installed, outbound stays on the old one");
		tap_is_int(count("xfrm state", "proto esp", NULL), 3, "the new outbound SA waits outside the kernel");
		tap_ok(ops->sa_packets(c, in2.spi, BW_SA_IN, &pk) == 0 && pk == 0,
		       "sa_packets reads the new inbound SA's counter from the kernel (0)");
		tap_ok(ops->sa_packets(c, out2.spi, BW_SA_OUT, &pk) == 0 && pk == 0,
		       "sa_packets of an SA not yet in the kernel is 0");
		tap_is_int(ops->sa_packets(c, 0x12345678, BW_SA_IN, &pk), -ENOENT, "sa_packets of an unknown SA is -ENOENT");
		tap_is_int(ops->add_policy(c, &l, &r, out2.spi, in2.spi), 0, "rekey, step 2: outbound moves to the new SA");
		tap_is_int(count("xfrm state", "proto esp", NULL), 4, "old and new SAs side by side");
		tap_is_int(count("xfrm policy", "10.9.0.2/32", NULL), 3, "still three policies");
		tap_ok(ops->del_sa(c, in.spi, BW_SA_IN) == 0 && ops->del_sa(c, out.spi, BW_SA_OUT) == 0,
		       "the old pair is deleted");
		tap_is_int(count("xfrm state", "proto esp", NULL), 2, "two SAs remain");
	}
	tap_is_int(ops->del_sa(c, 0x12345678, BW_SA_IN), -ENOENT, "deleting an unknown SA is -ENOENT");

	/* Somebody else's policy on selectors Burrow wants: refused, and left alone. */
	system("ip xfrm policy add src 10.9.0.2/32 dst 10.2.0.0/16 dir out tmpl src 192.0.2.2 dst 192.0.2.9 "
	       "proto esp reqid 1 mode tunnel");
	{
		struct bw_cidr r2 = cidr("10.2.0.0", 16);
		struct bw_sa_params in3 = sa(BW_SA_IN, 0xc1000003, 3600), out3 = sa(BW_SA_OUT, 0x00abc003, 3600);
		ops->add_sa(c, &in3);
		ops->add_sa(c, &out3);
		tap_is_int(ops->add_policy(c, &l, &r2, out3.spi, in3.spi), -EEXIST,
			   "a selector another daemon holds is -EEXIST");
		tap_is_int(count("xfrm policy", "10.2.0.0/16", "dir", NULL), 1, "and its policy is untouched");
	}

	/* Expiry: a short-lived pair, the kernel's soft then hard expire reach the owner. */
	{
		struct bw_cidr r3 = cidr("10.3.0.0", 24);
		struct bw_sa_params in4 = sa(BW_SA_IN, 0xc1000004, 3), out4 = sa(BW_SA_OUT, 0x00abc004, 3600);
		ops->add_sa(c, &in4);
		ops->add_sa(c, &out4);
		tap_is_int(ops->add_policy(c, &l, &r3, out4.spi, in4.spi), 0, "a pair with a 3 s inbound lifetime");
		run_loop(loop, 8.0, hard_seen);
		tap_ok(n_soft >= 1, "the soft expiry is reported (%d)", n_soft);
		tap_ok(n_hard == 1 && hard_spi == in4.spi, "the hard expiry is reported for that SA");
		tap_is_int(count("xfrm state", "spi 0xc1000004", NULL), 0, "and the kernel removed it");
		tap_is_int(ops->del_policy(c, &l, &r3), 0, "del_policy removes that selector pair");
		tap_is_int(count("xfrm policy", "10.3.0.0/24", NULL), 0, "its three policies are gone");
		tap_is_int(ops->del_policy(c, &l, &r3), -ENOENT, "a second del_policy is -ENOENT");
	}

	/* Someone flushes the SA database: every SA of ours that went is reported as gone. */
	{
		int before = n_hard, installed = count("xfrm state", "proto esp", NULL);
		tap_ok(installed >= 3, "before the flush: %d SAs of ours", installed);
		system("ip xfrm state flush");
		n_wanted = before + installed;
		run_loop(loop, 6.0, all_seen);
		tap_is_int(n_hard - before, installed, "ip xfrm state flush: each lost SA is reported (hard)");
	}

	ops->conn_close(c);
	tap_is_int(count("xfrm state", "proto esp", NULL), 0, "close: no SA of Burrow's remains");
	tap_is_int(count("xfrm policy", "10.9.0.2", NULL), 1,
		   "close: no policy of Burrow's remains, only the other daemon's");
	tap_is_int(count("xfrm policy", "10.2.0.0/16", NULL), 1, "close: the other daemon's policy stays");
	tap_is_int(count("link show dev bw-t1", "bw-t1", NULL), 0, "close: the device is gone");
	tap_ok(!file_exists("t1.xfrm"), "close: the record is gone");

	/* A crash: the child installs and dies without closing; the next start undoes it. */
	pid = fork();
	if (pid == 0) {
		struct ev_loop *l2 = ev_loop_new(0);
		struct bw_sa_conn *cc = NULL;
		in = sa(BW_SA_IN, 0xc1000010, 3600);
		out = sa(BW_SA_OUT, 0x00abc010, 3600);
		if (ops->conn_open(l2, "t2", state_dir, &cbs, &cc) != 0 || ops->set_address(cc, &l) != 0 ||
		    ops->add_sa(cc, &in) != 0 ||
		    ops->add_sa(cc, &out) != 0 || ops->add_policy(cc, &l, &all, out.spi, in.spi) != 0 ||
		    ops->add_route(cc, &all, &l) != 0)
			_exit(1);
		_exit(0);
	}
	waitpid(pid, &st, 0);
	tap_ok(WIFEXITED(st) && WEXITSTATUS(st) == 0, "a crashed run left SAs, policies, routes behind");
	tap_is_int(count("xfrm state", "spi 0xc1000010", NULL), 1, "its inbound SA is still there");
	tap_is_int(count("xfrm policy", "dst 0.0.0.0/0", NULL), 1, "and its outbound policy");
	tap_is_int(count("route show", "128.0.0.0/1 dev bw-t2", NULL), 1, "and its routes");
	/* The outbound SPI was since given to another daemon: same destination, other reqid. */
	system("ip xfrm state delete src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x00abc010");
	system("ip xfrm state add src 192.0.2.2 dst 192.0.2.1 proto esp spi 0x00abc010 reqid 1 mode tunnel "
	       "enc 'cbc(aes)' 0x00112233445566778899aabbccddeeff auth-trunc 'hmac(sha1)' "
	       "0x00112233445566778899aabbccddeeff00112233 96");
	ops->cleanup_stale("t2", state_dir);
	tap_is_int(count("xfrm state", "spi 0xc1000010", NULL), 0, "cleanup_stale removes the SA it recorded");
	tap_is_int(count("xfrm policy", "0.0.0.0/0", NULL), 0, "and the policies");
	tap_is_int(count("link show dev bw-t2", "bw-t2", NULL), 0, "and the device with its routes");
	tap_is_int(count("xfrm state", "spi 0x00abc010", "reqid 1 ", NULL), 1,
		   "but not an SA with a recorded SPI that now belongs to someone else");
	tap_ok(!file_exists("t2.xfrm"), "the record is gone");
}

int main(void)
{
	char why[256], err[256];
	const struct bw_sa_backend_ops *b;
	int probe, fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNET) != 0) {
		printf("1..0 # SKIP needs root for a private network namespace\n");
		return 0;
	}
	system("ip link set lo up");
	snprintf(state_dir, sizeof(state_dir), "/tmp/bw-xfrm-kern.XXXXXX");
	if (!mkdtemp(state_dir)) {
		printf("1..0 # SKIP no temporary directory\n");
		return 0;
	}

	probe = bw_xfrm_probe(why, sizeof(why));
	tap_diag("probe: %d (%s)", probe, why);
	err[0] = '\0';
	b = bw_sa_backend_pick(BW_BACKEND_XFRM, err, sizeof(err));
	if (probe == 0) {
		tap_ok(b == &bw_sa_backend_xfrm, "this kernel holds ESP SAs: backend = xfrm is granted");
		b = bw_sa_backend_pick(BW_BACKEND_AUTO, err, sizeof(err));
		tap_ok(b == &bw_sa_backend_xfrm, "and backend = auto picks xfrm");
	} else {
		tap_ok(b == NULL && strstr(err, "CONFIG_INET_ESP") && strstr(err, "backend = userspace") &&
		       !strchr(err, '\n'),
		       "no ESP here: backend = xfrm fails with one sentence naming CONFIG_INET_ESP");
		tap_diag("%s", err);
		b = bw_sa_backend_pick(BW_BACKEND_XFRM, err, sizeof(err));
		tap_ok(b == NULL, "and fails again on the next start (the answer is kept)");
		b = bw_sa_backend_pick(BW_BACKEND_AUTO, err, sizeof(err));
		tap_ok(b == &bw_sa_backend_userspace || (!b && strstr(err, "/dev/net/tun")),
		       "backend = auto falls back to userspace");
		tap_is_int(count("xfrm state", "src", NULL), 0, "the probe left no SA behind");
	}

	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	tap_is_int(bw_xfrm_socket_bypass(fd, AF_INET), 0, "an IKE socket gets its bypass policies");
	tap_is_int(bw_xfrm_socket_espinudp(fd), 0, "the NAT-T socket takes UDP_ENCAP_ESPINUDP");
	tap_is_int(bw_xfrm_socket_bypass(fd, AF_UNIX), -EAFNOSUPPORT, "bypass for another family is refused");
	close(fd);
	tap_is_int(bw_xfrm_socket_bypass(-1, AF_INET), -EBADF, "a bad descriptor is -EBADF");

	if (probe == 0)
		test_kernel_datapath();
	else
		tap_diag("the kernel datapath part runs where the kernel has ESP (tests/vm)");
	rmdir(state_dir);
	return tap_done_testing();
}

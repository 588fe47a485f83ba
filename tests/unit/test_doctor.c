/* burrow doctor's checks that need neither root nor a network: the clock, other IKE daemons
 * in a fake /proc, port ownership, the phase-1 probe against canned gateways on loopback, and the
 * release of the half-open phase 1 the probe opens. */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tap.h"
#include "diag/doctor.h"
#include "ike/isakmp.h"
#include "ike/vendor.h"
#include "util.h"

static const char *jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

static json_t *find_check(json_t *arr, const char *name)
{
	json_t *c;
	size_t i;

	json_array_foreach(arr, i, c)
		if (strcmp(jstr(c, "name"), name) == 0)
			return c;
	return NULL;
}

static void test_clock(void)
{
	json_t *c = bw_doctor_check_clock(1735689600);	/* 2025-01-01 */

	tap_is_str(jstr(c, "status"), "ok", "a clock in 2025 is ok");
	tap_ok(strstr(jstr(c, "detail"), "2025-01-01") != NULL, "the detail shows the date it read");
	json_decref(c);
	c = bw_doctor_check_clock(978307200);	/* 2001-01-01 */
	tap_is_str(jstr(c, "status"), "fail", "a clock in 2001 fails");
	tap_ok(strstr(jstr(c, "hint"), "timedatectl") != NULL, "and the hint says how to set the clock");
	json_decref(c);
}

static void test_daemons(void)
{
	char root[] = "/tmp/bw-doctor-proc-XXXXXX", path[256];
	json_t *c;
	FILE *f;

	if (!mkdtemp(root)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	c = bw_doctor_check_daemons(root);
	tap_is_str(jstr(c, "status"), "ok", "an empty process table has no other IKE daemon");
	json_decref(c);
	snprintf(path, sizeof(path), "%s/4242", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/4242/comm", root);
	f = fopen(path, "w");
	fputs("charon\n", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/77", root);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/77/comm", root);
	f = fopen(path, "w");
	fputs("charonette\n", f);
	fclose(f);
	c = bw_doctor_check_daemons(root);
	tap_is_str(jstr(c, "status"), "warn", "a running charon is a warning");
	tap_ok(strstr(jstr(c, "detail"), "charon (pid 4242)") != NULL, "naming the daemon and its pid");
	tap_ok(strstr(jstr(c, "detail"), "charonette") == NULL, "a process whose name only starts alike is not named");
	tap_ok(*jstr(c, "hint") != '\0', "with a hint");
	json_decref(c);
	snprintf(path, sizeof(path), "rm -rf %s", root);
	if (system(path) != 0)
		tap_diag("could not remove %s", root);
}

/* A UDP socket on 127.0.0.1 (port 0: any), returning its port. */
static int udp_socket(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) != 0)
		return -1;
	*port = ntohs(sin.sin_port);
	return fd;
}

static void test_ports(void)
{
	uint16_t port, free_port;
	int fds[2], fd;
	pid_t child, owner;
	char comm[64];
	json_t *c;

	/* A port held by another process: that process is named. */
	if (pipe(fds) != 0)
		return;
	child = fork();
	if (child == 0) {
		int s = udp_socket(&port);

		if (write(fds[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		pause();
		_exit(s < 0);
	}
	if (read(fds[0], &port, sizeof(port)) != sizeof(port))
		port = 0;
	tap_is_int(bw_doctor_udp_port_owner(port, &owner, comm, sizeof(comm)), 1,
		   "a port another process holds is reported taken");
	tap_is_int(owner, child, "and its owner's pid is found through /proc");
	c = bw_doctor_check_port("port-ike", "ike_port", port);
	tap_is_str(jstr(c, "status"), "fail", "the port check fails for a port held by someone else");
	tap_ok(strstr(jstr(c, "detail"), "test_doctor") != NULL, "the detail names the program (%s)", jstr(c, "detail"));
	tap_ok(strstr(jstr(c, "hint"), "ike_port") != NULL, "the hint names the burrow.conf key to change");
	json_decref(c);
	kill(child, SIGTERM);
	waitpid(child, NULL, 0);
	close(fds[0]);
	close(fds[1]);

	/* Held by ourselves: that is burrowd's own IKE socket. */
	fd = udp_socket(&port);
	c = bw_doctor_check_port("port-ike", "ike_port", port);
	tap_is_str(jstr(c, "status"), "ok", "a port held by this process (burrowd itself) is ok");
	tap_ok(strstr(jstr(c, "detail"), "burrowd itself") != NULL, "and says so");
	json_decref(c);
	close(fd);

	fd = udp_socket(&free_port);
	close(fd);
	tap_is_int(bw_doctor_udp_port_owner(free_port, &owner, comm, sizeof(comm)), 0, "a closed port is free");
	c = bw_doctor_check_port("port-natt", "natt_port", 0);
	tap_is_str(jstr(c, "status"), "ok", "a dynamic port (0) needs no check");
	json_decref(c);
}

/* ---- A canned gateway ------------------------------------------------------------------------ */

/* ANSWER_MM2_TWICE: message 2, then another message 2 with another responder cookie (0x6b...),
 * as when a resent message 1 opened a second phase 1. */
enum answer { ANSWER_MM2, ANSWER_MM2_TWICE, ANSWER_NO_PROPOSAL, ANSWER_NOTHING };

static struct isakmp_sa reply_sa;

static size_t canned(const uint8_t icookie[8], enum answer how, uint8_t rcookie, uint8_t *out, size_t cap)
{
	struct isakmp_hdr h = { .version = ISAKMP_VERSION };
	struct isakmp_builder b;
	size_t len;
	const uint8_t *v;

	memcpy(h.icookie, icookie, 8);
	memset(h.rcookie, rcookie, 8);
	h.exchange = how == ANSWER_NO_PROPOSAL ? ISAKMP_EXCH_INFO : ISAKMP_EXCH_MAIN;
	isakmp_b_init_fixed(&b, out, cap, &h);
	if (how != ANSWER_NO_PROPOSAL) {
		struct isakmp_transform *t;

		memset(&reply_sa, 0, sizeof(reply_sa));
		reply_sa.doi = ISAKMP_DOI_IPSEC;
		reply_sa.situation = ISAKMP_SIT_IDENTITY_ONLY;
		reply_sa.n_proposals = 1;
		reply_sa.p[0].num = 1;
		reply_sa.p[0].proto = ISAKMP_PROTO_ISAKMP;
		reply_sa.p[0].n_transforms = 1;
		t = &reply_sa.p[0].t[0];
		t->num = 1;
		t->id = ISAKMP_KEY_IKE;
		t->n_attrs = 5;
		t->attrs[0] = (struct isakmp_attr){ .type = ISAKMP_P1_ENCR, .value = 7 };
		t->attrs[1] = (struct isakmp_attr){ .type = ISAKMP_P1_KEY_LENGTH, .value = 256 };
		t->attrs[2] = (struct isakmp_attr){ .type = ISAKMP_P1_HASH, .value = 4 };
		t->attrs[3] = (struct isakmp_attr){ .type = ISAKMP_P1_AUTH, .value = 1 };
		t->attrs[4] = (struct isakmp_attr){ .type = ISAKMP_P1_GROUP, .value = 14 };
		isakmp_b_sa(&b, &reply_sa);
		v = bw_vendor_bytes(BW_VID_NATT_RFC3947, &len);
		isakmp_b_vid(&b, v, len);
		v = bw_vendor_bytes(BW_VID_DPD, &len);
		isakmp_b_vid(&b, v, len);
	} else {
		struct isakmp_notify n = { .doi = ISAKMP_DOI_IPSEC, .proto = ISAKMP_PROTO_ISAKMP,
					   .type = ISAKMP_N_NO_PROPOSAL_CHOSEN };

		isakmp_b_notify(&b, &n);
	}
	if (isakmp_b_finish(&b) != 0)
		return 0;
	return isakmp_b_len(&b);
}

/* What the fake gateway saw, sent back to the test through a pipe. */
struct seen {
	int ok_mm1;		/* a Main Mode message 1 with an SA payload */
	int transforms;
	int marker;		/* the 4500 side: started with four zero bytes */
	int natt_vid;		/* RFC 3947 vendor ID announced */
	int releases;		/* messages giving up the phase 1 our answer opened */
	int late_releases;	/* the same for the second answer of ANSWER_MM2_TWICE */
};

/* An unencrypted Informational whose only payload is an error notification for protocol
 * ISAKMP naming the cookie pair of the phase 1 the canned answer opened. */
static bool is_release(const uint8_t *msg, size_t len, const uint8_t icookie[8], uint8_t rcookie)
{
	uint8_t pair[16];
	struct isakmp_hdr h;
	struct isakmp_payloads pls;
	struct isakmp_notify n;

	memcpy(pair, icookie, 8);
	memset(pair + 8, rcookie, 8);
	if (isakmp_hdr_parse(msg, len, &h) != 0 || h.exchange != ISAKMP_EXCH_INFO || (h.flags & ISAKMP_FLAG_ENC) ||
	    h.msgid == 0 || memcmp(h.icookie, pair, 8) != 0 || memcmp(h.rcookie, pair + 8, 8) != 0 ||
	    isakmp_payloads_parse(h.np, msg + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN, &pls) != 0 ||
	    pls.n != 1 || pls.p[0].type != ISAKMP_PL_N || isakmp_parse_notify(&pls.p[0], &n) != 0)
		return false;
	return n.doi == ISAKMP_DOI_IPSEC && n.proto == ISAKMP_PROTO_ISAKMP && n.type < 16384 &&
	       n.spi_size == 16 && memcmp(n.spi, pair, 16) == 0;
}

static struct isakmp_sa seen_sa;

static void inspect(const uint8_t *msg, size_t len, struct seen *s)
{
	struct isakmp_hdr h;
	struct isakmp_payloads pls;

	if (isakmp_hdr_parse(msg, len, &h) != 0 || h.exchange != ISAKMP_EXCH_MAIN ||
	    isakmp_payloads_parse(h.np, msg + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN, &pls) != 0)
		return;
	for (size_t i = 0; i < pls.n; i++) {
		struct isakmp_blob vid;

		if (pls.p[i].type == ISAKMP_PL_SA && isakmp_parse_sa(&pls.p[i], &seen_sa) == 0) {
			s->ok_mm1 = 1;
			s->transforms = (int)seen_sa.p[0].n_transforms;
		}
		if (pls.p[i].type == ISAKMP_PL_VID && isakmp_parse_vid(&pls.p[i], &vid) == 0) {
			const struct bw_vendor *v = bw_vendor_match(vid.data, vid.len);

			if (v && v->id == BW_VID_NATT_RFC3947)
				s->natt_vid = 1;
		}
	}
}

/* Answers the first datagram on fd (natt: behind the non-ESP marker), waits for a byte on
 * go_fd (the probe has returned), counts the releases queued on fd by then, and reports. */
static pid_t gateway(int fd, bool natt, enum answer how, int go_fd, int report_fd)
{
	pid_t pid = fork();

	if (pid == 0) {
		uint8_t buf[4096], out[4096];
		struct sockaddr_in from;
		socklen_t flen = sizeof(from);
		struct seen s = { 0 };
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &flen);
		const uint8_t *msg = buf;
		size_t len = n > 0 ? (size_t)n : 0;

		if (natt && len >= 4 && memcmp(buf, "\0\0\0\0", 4) == 0) {
			s.marker = 1;
			msg += 4;
			len -= 4;
		}
		inspect(msg, len, &s);
		if (how != ANSWER_NOTHING && len >= ISAKMP_HDR_LEN) {
			size_t off = natt ? 4 : 0, m;

			memset(out, 0, 4);
			m = canned(msg, how, 0x5a, out + off, sizeof(out) - off);
			if (m)
				sendto(fd, out, m + off, 0, (struct sockaddr *)&from, flen);
			m = how == ANSWER_MM2_TWICE ? canned(msg, how, 0x6b, out + off, sizeof(out) - off) : 0;
			if (m)
				sendto(fd, out, m + off, 0, (struct sockaddr *)&from, flen);
		}
		if (len >= ISAKMP_HDR_LEN) {
			uint8_t icookie[8], go;

			memcpy(icookie, msg, 8);
			if (read(go_fd, &go, 1) != 1)
				_exit(1);
			while ((n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
				size_t off = natt ? 4 : 0;

				if (natt && (n < 4 || memcmp(buf, "\0\0\0\0", 4) != 0))
					continue;
				if (is_release(buf + off, (size_t)n - off, icookie, 0x5a))
					s.releases++;
				if (is_release(buf + off, (size_t)n - off, icookie, 0x6b))
					s.late_releases++;
			}
		}
		if (write(report_fd, &s, sizeof(s)) != sizeof(s))
			_exit(1);
		_exit(0);
	}
	return pid;
}

static struct bw_conn_config cfg;

static void load_cfg(void)
{
	static const char text[] = "[connection]\ngateway = 127.0.0.1\nremote_networks = 10.1.0.0/24\n"
				   "[phase1]\nproposals = aes256-sha256-modp2048, aes128-sha1-modp2048\n";
	struct bw_cfg_error err;

	tap_is_int(bw_conn_config_parse("t", "t.conf", text, sizeof(text) - 1, NULL, &cfg, &err), 0,
		   "the test connection parses");
}

static struct sockaddr_in loopback(uint16_t port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return sin;
}

static void test_probe_answers(void)
{
	uint16_t p500, p4500;
	int f500 = udp_socket(&p500), f4500 = udp_socket(&p4500), rep[2], go[2];
	struct sockaddr_in a500 = loopback(p500), a4500 = loopback(p4500), local = loopback(0);
	struct bw_doctor_probe r1, r2;
	struct seen s1 = { 0 }, s2 = { 0 };
	pid_t g1, g2;
	char err[256];
	json_t *checks, *c;

	if (pipe(rep) != 0 || pipe(go) != 0)
		return;
	g1 = gateway(f500, false, ANSWER_MM2, go[0], rep[1]);
	g2 = gateway(f4500, true, ANSWER_MM2, go[0], rep[1]);
	tap_is_int(bw_doctor_probe_run(&cfg, &a500, &a4500, 2000, &r1, &r2, err, sizeof(err)), 0, "the probe runs");
	if (write(go[1], "gg", 2) != 2)
		tap_diag("cannot wake the canned gateways");
	waitpid(g1, NULL, 0);
	waitpid(g2, NULL, 0);
	/* Two reports in the pipe; tell them apart by the marker. */
	{
		struct seen x, y;

		if (read(rep[0], &x, sizeof(x)) == sizeof(x) && read(rep[0], &y, sizeof(y)) == sizeof(y)) {
			s1 = x.marker ? y : x;
			s2 = x.marker ? x : y;
		}
	}
	tap_ok(s1.ok_mm1, "the gateway received a Main Mode message 1 with an SA payload");
	tap_is_int(s1.transforms, 2, "offering the connection's two phase-1 proposals");
	tap_ok(s1.natt_vid, "announcing RFC 3947 NAT traversal");
	tap_ok(s2.marker && s2.ok_mm1, "the 4500 probe carries the non-ESP marker and the same offer");

	tap_ok(r1.answered, "the answer on 500 is taken");
	tap_ok(r1.chose && r1.chosen.encr == BW_P1_ENCR_AES_CBC && r1.chosen.key_bits == 256 &&
	       r1.chosen.hash == BW_HASH_SHA256 && r1.chosen.dh == BW_DH_MODP2048,
	       "the chosen transform is read from the answer");
	tap_ok(r1.peer_natt, "the gateway's RFC 3947 vendor ID is noticed");
	tap_ok(r2.answered, "the answer on 4500 is taken after its marker");
	tap_is_int(s1.releases, 2, "the phase 1 the answer on 500 opened is given up, by a notification sent twice");
	tap_is_int(s2.releases, 2, "and so is the one on 4500, behind the non-ESP marker");
	tap_ok(r1.released && r2.released, "the results say both were released");

	checks = bw_doctor_probe_checks(&cfg, "gw", &local, &r1, &r2, true, 2000);
	c = find_check(checks, "ike-500");
	tap_is_str(jstr(c, "status"), "ok", "ike-500 is ok");
	c = find_check(checks, "phase1");
	tap_is_str(jstr(c, "status"), "ok", "phase1 is ok");
	tap_ok(strstr(jstr(c, "detail"), "aes256-sha256-modp2048") != NULL, "and names the chosen proposal");
	tap_ok(strstr(jstr(c, "detail"), "DPD") != NULL || strstr(jstr(c, "detail"), "3706") != NULL,
	       "and lists the gateway's vendor IDs (%s)", jstr(c, "detail"));
	c = find_check(checks, "nat-t-4500");
	tap_is_str(jstr(c, "status"), "ok", "nat-t-4500 is ok");
	json_decref(checks);
	close(f500);
	close(f4500);
	close(rep[0]);
	close(rep[1]);
	close(go[0]);
	close(go[1]);
}

static void test_probe_refusals(void)
{
	uint16_t p500, closed;
	int f500 = udp_socket(&p500), fc = udp_socket(&closed), rep[2], go[2];
	struct sockaddr_in a500, ac;
	struct bw_doctor_probe r1, r2;
	struct seen s;
	pid_t g;
	char err[256];
	json_t *checks, *c;

	close(fc);	/* nothing listens there any more: loopback answers with port unreachable */
	a500 = loopback(p500);
	ac = loopback(closed);
	if (pipe(rep) != 0 || pipe(go) != 0)
		return;
	g = gateway(f500, false, ANSWER_NO_PROPOSAL, go[0], rep[1]);
	bw_doctor_probe_run(&cfg, &a500, &ac, 2000, &r1, &r2, err, sizeof(err));
	if (write(go[1], "g", 1) != 1)
		tap_diag("cannot wake the canned gateway");
	waitpid(g, NULL, 0);
	if (read(rep[0], &s, sizeof(s)) != sizeof(s))
		memset(&s, 0, sizeof(s));
	close(go[0]);
	close(go[1]);
	tap_ok(r1.answered && r1.notify == ISAKMP_N_NO_PROPOSAL_CHOSEN, "a NO-PROPOSAL-CHOSEN notify is an answer");
	tap_ok(s.ok_mm1 && s.releases == 0 && !r1.released,
	       "a gateway that refused in an Informational kept nothing, so nothing is released");
	tap_is_int(r2.error, ECONNREFUSED, "a closed 4500 comes back as port unreachable");
	checks = bw_doctor_probe_checks(&cfg, "gw", NULL, &r1, &r2, true, 2000);
	c = find_check(checks, "ike-500");
	tap_is_str(jstr(c, "status"), "ok", "NO-PROPOSAL-CHOSEN still proves UDP 500 reaches the gateway");
	c = find_check(checks, "phase1");
	tap_is_str(jstr(c, "status"), "fail", "but phase1 fails");
	tap_ok(strstr(jstr(c, "detail"), "aes256-sha256-modp2048, aes128-sha1-modp2048") != NULL,
	       "showing what was offered");
	tap_ok(strstr(jstr(c, "hint"), "device profile") != NULL, "and suggesting the device profile");
	c = find_check(checks, "nat-t-4500");
	tap_is_str(jstr(c, "status"), "fail", "no answer on 4500 fails when the datapath needs ESP in UDP");
	tap_ok(strstr(jstr(c, "hint"), "4500") != NULL, "with a hint about UDP 4500");
	json_decref(checks);
	close(f500);

	/* Nobody on 500 at all. */
	r1 = (struct bw_doctor_probe){ 0 };
	bw_doctor_probe_run(&cfg, &ac, NULL, 1500, &r1, NULL, err, sizeof(err));
	tap_ok(!r1.answered && r1.error == ECONNREFUSED, "a closed port 500 is refused");
	checks = bw_doctor_probe_checks(&cfg, "gw", NULL, &r1, NULL, true, 1500);
	c = find_check(checks, "ike-500");
	tap_is_str(jstr(c, "status"), "fail", "ike-500 fails against a closed port");
	tap_ok(strstr(jstr(c, "detail"), "refused") && *jstr(c, "hint"), "saying it was refused, with a hint");
	tap_ok(find_check(checks, "phase1") == NULL, "and no phase1 verdict without an answer");
	json_decref(checks);

	/* A black hole: bound, never answers. */
	if (pipe(rep) == 0) {
		uint16_t ph;
		int fh = udp_socket(&ph);
		struct sockaddr_in ah = loopback(ph);
		uint64_t t0 = bw_now_ms();

		bw_doctor_probe_run(&cfg, &ah, NULL, 1200, &r1, NULL, err, sizeof(err));
		/* A lower bound only: the call returning at all shows it gave up; how fast is for bench/. */
		tap_ok(bw_now_ms() - t0 >= 1200, "the probe waits its whole timeout before giving up on a silent gateway");
		tap_ok(!r1.answered && r1.sent, "a silent gateway is no answer");
		checks = bw_doctor_probe_checks(&cfg, "gw", NULL, &r1, NULL, true, 1200);
		c = find_check(checks, "ike-500");
		tap_ok(strcmp(jstr(c, "status"), "fail") == 0 && strstr(jstr(c, "detail"), "no answer") &&
		       strstr(jstr(c, "hint"), "UDP 500"), "ike-500 fails with no answer and a hint about UDP 500");
		json_decref(checks);
		close(fh);
	}
}

/* A second answer, to a resent message 1, stands for a second half-open phase 1: it is released
 * too, while the probe still waits for the other port (here a black hole). */
static void test_probe_late_answer(void)
{
	uint16_t p500, ph;
	int f500 = udp_socket(&p500), fh = udp_socket(&ph), rep[2], go[2];
	struct sockaddr_in a500 = loopback(p500), ah = loopback(ph);
	struct bw_doctor_probe r1, r2;
	struct seen s = { 0 };
	pid_t g;
	char err[256];

	if (pipe(rep) != 0 || pipe(go) != 0)
		return;
	g = gateway(f500, false, ANSWER_MM2_TWICE, go[0], rep[1]);
	bw_doctor_probe_run(&cfg, &a500, &ah, 1200, &r1, &r2, err, sizeof(err));
	if (write(go[1], "g", 1) != 1)
		tap_diag("cannot wake the canned gateway");
	waitpid(g, NULL, 0);
	if (read(rep[0], &s, sizeof(s)) != sizeof(s))
		memset(&s, 0, sizeof(s));
	tap_ok(r1.answered && r1.chose, "the first answer is the one reported");
	tap_is_int(s.releases, 2, "its phase 1 is released");
	tap_is_int(s.late_releases, 2, "and so is the one the late second answer stands for");
	close(f500);
	close(fh);
	close(rep[0]);
	close(rep[1]);
	close(go[0]);
	close(go[1]);
}

static void test_release_message(void)
{
	const uint8_t ic[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, rc[8] = { 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a, 0x5a };
	uint8_t buf[256], small[40];
	struct isakmp_hdr h;
	struct isakmp_payloads pls;
	struct isakmp_notify n;
	size_t len = 0;

	tap_is_int(bw_doctor_build_release(ic, rc, buf, sizeof(buf), &len), 0, "the release message builds");
	tap_ok(is_release(buf, len, ic, 0x5a), "as an unencrypted Informational with one error notification for the cookie pair");
	tap_ok(isakmp_hdr_parse(buf, len, &h) == 0 && h.length == len && h.version == ISAKMP_VERSION,
	       "its header is ISAKMP 1.0 and covers the message (%zu bytes)", len);
	if (isakmp_hdr_parse(buf, len, &h) == 0 &&
	    isakmp_payloads_parse(h.np, buf + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN, &pls) == 0 && pls.n == 1 &&
	    isakmp_parse_notify(&pls.p[0], &n) == 0)
		tap_is_int(n.type, ISAKMP_N_NO_PROPOSAL_CHOSEN, "the notification is NO-PROPOSAL-CHOSEN");
	else
		tap_ok(0, "the notification is NO-PROPOSAL-CHOSEN");
	tap_is_int(bw_doctor_build_release(ic, rc, small, sizeof(small), &len), -1,
		   "a buffer too small for it is an error, not a truncated message");
}

static void test_resolve(void)
{
	struct sockaddr_in out;
	char err[256];

	tap_is_int(bw_doctor_resolve("192.0.2.7", 100, &out, err, sizeof(err)), 0, "an address needs no resolver");
	tap_is_int(bw_doctor_resolve("name.invalid", 2000, &out, err, sizeof(err)), -1,
		   "a name under .invalid does not resolve");
	tap_ok(strstr(err, "name.invalid") != NULL, "the error names it");
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_clock();
	test_daemons();
	test_ports();
	load_cfg();
	test_probe_answers();
	test_probe_refusals();
	test_probe_late_answer();
	test_release_message();
	test_resolve();
	return tap_done_testing();
}

/* `burrow doctor`: one function per check, each returning {name, status, detail, hint}.
 * Every check is bounded in time; only the gateway probe waits on the network (≤ 3 s). */
#include "diag/doctor.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "ike/ike_crypto.h"
#include "ike/ikev1.h"
#include "ike/ike_cert.h"
#include "ike/isakmp.h"
#include "ike/vendor.h"
#include "sa-backends/sa_backend.h"
#include "sa-backends/xfrm/xfrm.h"
#include "util.h"

json_t *bw_doctor_check(const char *name, const char *status, const char *detail, const char *hint)
{
	return json_pack("{s:s,s:s,s:s,s:s}", "name", name, "status", status, "detail", detail ? detail : "",
			 "hint", hint ? hint : "");
}

static json_t *checkf(const char *name, const char *status, const char *hint, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static json_t *checkf(const char *name, const char *status, const char *hint, const char *fmt, ...)
{
	char detail[768];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	return bw_doctor_check(name, status, detail, hint);
}

/* ---- Host checks --------------------------------------------------------------------------- */

json_t *bw_doctor_check_clock(time_t now)
{
	struct tm tm;
	char when[32];

	if (!gmtime_r(&now, &tm))
		return bw_doctor_check("clock", "fail", "the system clock cannot be read",
				       "set the clock (timedatectl set-ntp true)");
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
	if (tm.tm_year + 1900 < 2024)
		return checkf("clock", "fail",
			      "set the clock, e.g. with timedatectl set-ntp true, or certificates will look not yet valid",
			      "the system clock says %s, which is in the past", when);
	return checkf("clock", "ok", "", "the system clock says %s", when);
}

static const char *const ike_daemons[] = {
	"charon", "charon-systemd", "charon-nm", "pluto", "racoon", "iked", "isakmpd", "vpnc",
};

json_t *bw_doctor_check_daemons(const char *proc_root)
{
	char found[512] = "", self_ns[PATH_MAX], my_ns[64];
	DIR *d = opendir(proc_root);
	ssize_t l;
	struct dirent *e;
	size_t n = 0;

	if (!d)
		return checkf("ike-daemons", "warn", "mount /proc so that burrowd can see other daemons",
			      "cannot look for other IKE daemons: %s is not readable", proc_root);
	/* A daemon in another network namespace (a container, a test lab) is no conflict. */
	snprintf(self_ns, sizeof(self_ns), "%s/self/ns/net", proc_root);
	if ((l = readlink(self_ns, my_ns, sizeof(my_ns) - 1)) > 0)
		my_ns[l] = '\0';
	else
		my_ns[0] = '\0';
	while ((e = readdir(d))) {
		char path[PATH_MAX], comm[64] = "", ns[64];
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		FILE *f;

		if (*end || pid <= 0 || pid == (long)getpid())
			continue;
		snprintf(path, sizeof(path), "%s/%s/comm", proc_root, e->d_name);
		if (!(f = fopen(path, "re")))
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		snprintf(path, sizeof(path), "%s/%s/ns/net", proc_root, e->d_name);
		if (my_ns[0] && (l = readlink(path, ns, sizeof(ns) - 1)) > 0) {
			ns[l] = '\0';
			if (strcmp(ns, my_ns) != 0)
				continue;
		}
		for (size_t i = 0; i < BW_ARRAY_SIZE(ike_daemons); i++)
			if (strcmp(comm, ike_daemons[i]) == 0) {
				size_t used = strlen(found);

				snprintf(found + used, sizeof(found) - used, "%s%s (pid %ld)", n ? ", " : "",
					 comm, pid);
				n++;
			}
	}
	closedir(d);
	if (n == 0)
		return bw_doctor_check("ike-daemons", "ok", "no other IKE daemon (charon, pluto, racoon, iked) is running", "");
	return checkf("ike-daemons", "warn",
		      "stop it (e.g. systemctl stop strongswan) unless it uses other ports; else it may hold UDP 500/4500 "
		      "and its SAs and policies may take this host's traffic",
		      "another IKE daemon runs in this network namespace: %s", found);
}

/* CAP_NET_ADMIN is bit 12 of CapEff in /proc/self/status. */
static bool have_net_admin(void)
{
	char line[256];
	bool yes = false;
	FILE *f = fopen("/proc/self/status", "re");

	if (!f)
		return geteuid() == 0;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, "CapEff:", 7) == 0) {
			unsigned long long caps = strtoull(line + 7, NULL, 16);

			yes = caps & (1ull << 12);
		}
	fclose(f);
	return yes;
}

json_t *bw_doctor_check_tun(void)
{
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);

	if (fd < 0) {
		if (errno == ENOENT || errno == ENODEV || errno == ENXIO)
			return checkf("tun", "fail",
				      "load the tun module (modprobe tun); in a container, pass the device in "
				      "(e.g. --device /dev/net/tun)",
				      "/dev/net/tun is missing: %s", strerror(errno));
		return checkf("tun", "fail", "run burrowd as root",
			      "/dev/net/tun cannot be opened: %s", strerror(errno));
	}
	close(fd);
	/* Opening is not creating: an interface needs CAP_NET_ADMIN. Creating one here would
	 * show up as a link change to everything that watches links, so it is not tried. */
	if (!have_net_admin())
		return bw_doctor_check("tun", "warn", "/dev/net/tun opens, but without CAP_NET_ADMIN burrowd cannot create its bw-NAME interfaces",
				       "run burrowd as root");
	return bw_doctor_check("tun", "ok", "/dev/net/tun is usable", "");
}

/* The xfrm backend's own probe (a test SA added and deleted through netlink), so that this
 * check and `backend = auto` never disagree. It runs once per process: a module loaded
 * later is seen after a restart of burrowd. */
json_t *bw_doctor_check_kernel_esp(enum bw_backend want)
{
	char why[256], detail[320];
	int rc = bw_xfrm_probe(why, sizeof(why));

	why[strcspn(why, ";")] = '\0';
	if (rc == 0)
		return checkf("kernel-esp", "ok", "", "%s: the xfrm (kernel) datapath can be used", why);
	snprintf(detail, sizeof(detail), "%s%s", why,
		 want == BW_BACKEND_XFRM ? "" : "; the userspace backend works without it");
	if (rc == -EPERM || rc == -EACCES)
		return bw_doctor_check("kernel-esp", want == BW_BACKEND_XFRM ? "fail" : "warn", detail,
				       "run burrowd as root (CAP_NET_ADMIN)");
	return bw_doctor_check("kernel-esp", want == BW_BACKEND_XFRM ? "fail" : "warn", detail,
			       "for the faster kernel datapath, load the missing modules (modprobe -a xfrm_user esp4) "
			       "or use a kernel with CONFIG_INET_ESP, then restart burrowd");
}

json_t *bw_doctor_check_backend(enum bw_backend want, const char **picked)
{
	char err[256], why[256];
	const struct bw_sa_backend_ops *be = bw_sa_backend_pick(want, err, sizeof(err));

	*picked = be ? be->name : NULL;
	if (!be)
		return checkf("backend", "fail", "see the reason; backend is set in burrow.conf [agent]",
			      "backend = %s cannot work here: %s", bw_backend_name(want), err);
	if (want != BW_BACKEND_AUTO)
		return checkf("backend", "ok", "", "backend = %s, as burrow.conf asks", be->name);
	bw_xfrm_probe(why, sizeof(why));
	why[strcspn(why, ";")] = '\0';
	return checkf("backend", "ok", "", "backend = auto picks %s because %s", be->name, why);
}

/* ---- Ports --------------------------------------------------------------------------------- */

/* Inodes of the UDP sockets bound to port, from /proc/net/udp and udp6. */
static size_t udp_inodes(uint16_t port, unsigned long *out, size_t max)
{
	static const char *const files[] = { "/proc/net/udp", "/proc/net/udp6" };
	size_t n = 0;

	for (size_t i = 0; i < BW_ARRAY_SIZE(files); i++) {
		char line[512];
		FILE *f = fopen(files[i], "re");

		if (!f)
			continue;
		while (fgets(line, sizeof(line), f) && n < max) {
			unsigned lport;
			unsigned long inode;

			if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*[0-9A-Fa-f]:%*x %*x %*x:%*x %*x:%*x %*x %*u %*d %lu",
				   &lport, &inode) == 2 && lport == port && inode)
				out[n++] = inode;
		}
		fclose(f);
	}
	return n;
}

/* The process holding one of the socket inodes, by its /proc/PID/fd links. */
static pid_t inode_owner(const unsigned long *inodes, size_t n, char *comm, size_t commlen)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = 0;

	if (!d)
		return 0;
	while (!found && (e = readdir(d))) {
		char path[64], link[64];
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		DIR *fds;
		struct dirent *fe;

		if (*end || pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%ld/fd", pid);
		if (!(fds = opendir(path)))
			continue;
		while (!found && (fe = readdir(fds))) {
			char fdpath[64 + 256 + 2];
			ssize_t l;
			unsigned long ino;

			if (fe->d_name[0] == '.')
				continue;
			snprintf(fdpath, sizeof(fdpath), "%s/%s", path, fe->d_name);
			l = readlink(fdpath, link, sizeof(link) - 1);
			if (l <= 0)
				continue;
			link[l] = '\0';
			if (sscanf(link, "socket:[%lu]", &ino) != 1)
				continue;
			for (size_t i = 0; i < n; i++)
				if (inodes[i] == ino)
					found = (pid_t)pid;
		}
		closedir(fds);
	}
	closedir(d);
	if (found) {
		char path[64];
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%ld/comm", (long)found);
		comm[0] = '\0';
		if ((f = fopen(path, "re"))) {
			if (fgets(comm, (int)commlen, f))
				comm[strcspn(comm, "\n")] = '\0';
			fclose(f);
		}
	}
	return found;
}

int bw_doctor_udp_port_owner(uint16_t port, pid_t *pid, char *comm, size_t commlen)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	unsigned long inodes[8];
	size_t n;
	int fd, rc = 0;

	*pid = 0;
	if (commlen)
		comm[0] = '\0';
	/* No SO_REUSEADDR: burrowd's own IKE sockets set it, and two sockets that both set it
	 * may share a UDP port. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		rc = -errno;
	close(fd);
	if (rc != 0 && rc != -EADDRINUSE && rc != -EACCES)
		return rc;
	n = udp_inodes(port, inodes, BW_ARRAY_SIZE(inodes));
	if (rc == 0 && n == 0)
		return 0;
	if (rc == -EACCES && n == 0)
		return 0;	/* unprivileged: /proc/net/udp is the only witness, and it is silent */
	if (n)
		*pid = inode_owner(inodes, n, comm, commlen);
	return 1;
}

static pid_t agent_pid;

void bw_doctor_set_agent_pid(pid_t pid)
{
	agent_pid = pid;
}

json_t *bw_doctor_check_port(const char *name, const char *what, uint16_t port)
{
	char comm[64], hint[256];
	pid_t pid;
	int rc;

	if (port == 0)
		return checkf(name, "ok", "", "%s = 0: a dynamic port, nothing to check", what);
	rc = bw_doctor_udp_port_owner(port, &pid, comm, sizeof(comm));
	if (rc < 0)
		return checkf(name, "warn", "run burrowd as root", "cannot test UDP port %u: %s", port, strerror(-rc));
	if (rc == 0)
		return checkf(name, "ok", "", "UDP port %u is free", port);
	if (pid == getpid() || (agent_pid > 0 && pid == agent_pid))
		return checkf(name, "ok", "", "UDP port %u is held by burrowd itself", port);
	snprintf(hint, sizeof(hint), "stop %s, or set %s to another port in burrow.conf",
		 pid ? comm : "the program that holds it (ss -ulpn shows it)", what);
	if (pid)
		return checkf(name, "fail", hint, "UDP port %u is held by %s (pid %ld)", port, comm, (long)pid);
	return checkf(name, "fail", hint, "UDP port %u is held by another program", port);
}

/* ---- The gateway --------------------------------------------------------------------------- */

int bw_doctor_resolve(const char *host, int timeout_ms, struct sockaddr_in *out, char *err, size_t errlen)
{
	struct req {
		struct gaicb cb;
		struct addrinfo hints;
		char name[256];
	} *r;
	struct gaicb *list[1];
	uint64_t start = bw_now_ms();
	int rc;

	memset(out, 0, sizeof(*out));
	if (inet_pton(AF_INET, host, &out->sin_addr) == 1) {
		out->sin_family = AF_INET;
		return 0;
	}
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	bw_strlcpy(r->name, host, sizeof(r->name));
	r->hints.ai_family = AF_INET;
	r->hints.ai_socktype = SOCK_DGRAM;
	r->cb.ar_name = r->name;
	r->cb.ar_request = &r->hints;
	list[0] = &r->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, NULL) != 0) {
		free(r);
		snprintf(err, errlen, "cannot start resolving %s", host);
		return -1;
	}
	while ((rc = gai_error(&r->cb)) == EAI_INPROGRESS) {
		int64_t left = (int64_t)timeout_ms - (int64_t)(bw_now_ms() - start);
		struct timespec ts;

		if (left <= 0)
			break;
		ts.tv_sec = left / 1000;
		ts.tv_nsec = (long)(left % 1000) * 1000000L;
		gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (rc == EAI_INPROGRESS) {
		/* The resolver thread still owns r unless the cancel succeeds: leak it then. */
		if (gai_cancel(&r->cb) == EAI_CANCELED)
			free(r);
		snprintf(err, errlen, "resolving %s took longer than %d ms", host, timeout_ms);
		return -1;
	}
	if (rc != 0 || !r->cb.ar_result) {
		snprintf(err, errlen, "%s does not resolve: %s", host, gai_strerror(rc));
		free(r);
		return -1;
	}
	memcpy(out, r->cb.ar_result->ai_addr, sizeof(*out));
	freeaddrinfo(r->cb.ar_result);
	free(r);
	return 0;
}

/* Our address and interface towards gw, as the routing table says (a connected UDP socket
 * sends nothing). 0, or -errno. */
static int route_to(const struct sockaddr_in *gw, struct sockaddr_in *local, char *ifname, size_t iflen)
{
	struct sockaddr_in to = *gw;
	socklen_t len = sizeof(*local);
	struct ifaddrs *ifs, *i;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return -errno;
	to.sin_port = htons(500);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) != 0 ||
	    getsockname(fd, (struct sockaddr *)local, &len) != 0)
		rc = -errno;
	close(fd);
	if (rc)
		return rc;
	bw_strlcpy(ifname, "?", iflen);
	if (getifaddrs(&ifs) == 0) {
		for (i = ifs; i; i = i->ifa_next)
			if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
			    ((struct sockaddr_in *)(void *)i->ifa_addr)->sin_addr.s_addr == local->sin_addr.s_addr) {
				bw_strlcpy(ifname, i->ifa_name, iflen);
				break;
			}
		freeifaddrs(ifs);
	}
	return 0;
}

static bool private_v4(const struct in_addr *a)
{
	uint32_t h = ntohl(a->s_addr);

	return (h >> 24) == 10 || (h >> 20) == (172u << 4 | 1) || (h >> 16) == (192u << 8 | 168) ||
	       (h >> 22) == (100u << 2 | 1);	/* 100.64.0.0/10, carrier-grade NAT */
}

/* ---- The phase-1 probe --------------------------------------------------------------------- */

/* Main Mode message 1 exactly as the engine would send it for cfg: the same SA builder and
 * vendor IDs, with NAT-T announced even when the connection turns it off, to test 4500. */
static int build_mm1(const struct bw_conn_config *cfg, uint8_t icookie[8], uint8_t *out, size_t cap, size_t *len)
{
	static const uint8_t zero[8];
	struct ike_p1_offer o;
	struct isakmp_builder b;
	struct isakmp_hdr h;

	ike_p1_offer_init(&o, cfg, NULL);
	o.natt = true;
	if (bw_random(icookie, 8) != 0)
		return -1;
	ike_p1_hdr(&h, icookie, zero, ISAKMP_EXCH_MAIN, 0, 0);
	if (isakmp_b_init_fixed(&b, out, cap, &h) != 0 || ike_p1_put_sa(&b, &o) != 0 || ike_p1_put_vids(&b, &o) != 0 ||
	    isakmp_b_finish(&b) != 0)
		return -1;
	*len = isakmp_b_len(&b);
	return 0;
}

int bw_doctor_build_release(const uint8_t icookie[8], const uint8_t rcookie[8], uint8_t *out, size_t cap,
			    size_t *len)
{
	struct isakmp_hdr h = { .version = ISAKMP_VERSION, .exchange = ISAKMP_EXCH_INFO };
	struct isakmp_notify n = { .doi = ISAKMP_DOI_IPSEC, .proto = ISAKMP_PROTO_ISAKMP, .spi_size = 16,
				   .type = ISAKMP_N_NO_PROPOSAL_CHOSEN };
	struct isakmp_builder b;

	memcpy(h.icookie, icookie, 8);
	memcpy(h.rcookie, rcookie, 8);
	do {
		if (bw_random(&h.msgid, sizeof(h.msgid)) != 0)
			return -1;
	} while (h.msgid == 0);
	memcpy(n.spi, icookie, 8);
	memcpy(n.spi + 8, rcookie, 8);
	if (isakmp_b_init_fixed(&b, out, cap, &h) != 0 || isakmp_b_notify(&b, &n) != 0 || isakmp_b_finish(&b) != 0)
		return -1;
	*len = isakmp_b_len(&b);
	return 0;
}

struct probe_side {
	int fd;
	bool natt;
	bool done;
	uint8_t icookie[8];
	uint8_t rcookie[8];		/* of the answer taken */
	uint8_t msg[4 + 2048];		/* non-ESP marker, then the message */
	size_t len;
	struct bw_doctor_probe *res;
};

static uint64_t attr_value(const struct isakmp_transform *t, uint16_t type)
{
	const struct isakmp_attr *a = isakmp_attr_find(t->attrs, t->n_attrs, type);

	return a && a->has_value ? a->value : 0;
}

static void vendor_add(struct bw_doctor_probe *r, const char *name)
{
	size_t used = strlen(r->vendors);

	snprintf(r->vendors + used, sizeof(r->vendors) - used, "%s%s", used ? ", " : "", name);
}

/* A gateway that answered message 1 with anything but an Informational holds a half-open
 * phase 1 for our cookie pair (strongSwan: 30 s, and at most 5 per address). An unencrypted
 * error notification for that pair makes strongSwan drop it at once; an unencrypted DELETE
 * it would refuse (DELETE must be encrypted). Sent twice, against the loss of one datagram:
 * the second finds the SA gone, or still being dropped, and is ignored. */
static void probe_release(struct probe_side *s, const uint8_t rcookie[8])
{
	static const uint8_t zero[8];
	uint8_t msg[4 + 128];
	size_t len, off = s->natt ? 4 : 0;

	if (memcmp(rcookie, zero, 8) == 0)
		return;		/* no responder cookie: the gateway kept nothing */
	memset(msg, 0, 4);
	if (bw_doctor_build_release(s->icookie, rcookie, msg + off, sizeof(msg) - off, &len) != 0)
		return;
	for (int i = 0; i < 2; i++)
		if (send(s->fd, msg, len + off, 0) == (ssize_t)(len + off))
			s->res->released = true;
}

/* Takes an answer when it carries our cookie; anything else on the socket is ignored. A
 * later answer, to a resent message 1 that opened another phase 1, is only released. */
static void probe_answer(struct probe_side *s, uint8_t *msg, size_t len, unsigned rtt_ms)
{
	static struct isakmp_sa sa;	/* 75 KiB: not on the stack */
	struct bw_doctor_probe *r = s->res;
	struct isakmp_payloads pls;
	struct isakmp_hdr h;

	if (s->natt) {
		if (len < 4 || memcmp(msg, "\0\0\0\0", 4) != 0)
			return;
		msg += 4;
		len -= 4;
	}
	if (isakmp_hdr_parse(msg, len, &h) != 0 || memcmp(h.icookie, s->icookie, 8) != 0)
		return;
	if (s->done) {
		if (h.exchange != ISAKMP_EXCH_INFO && memcmp(h.rcookie, s->rcookie, 8) != 0)
			probe_release(s, h.rcookie);
		return;
	}
	memset(r, 0, sizeof(*r));
	r->sent = true;
	r->answered = true;
	r->rtt_ms = rtt_ms;
	r->exchange = h.exchange;
	s->done = true;
	memcpy(s->rcookie, h.rcookie, 8);
	if (h.exchange != ISAKMP_EXCH_INFO)
		probe_release(s, h.rcookie);
	if (h.flags & ISAKMP_FLAG_ENC) {
		r->encrypted = true;
		return;
	}
	if (isakmp_payloads_parse(h.np, msg + ISAKMP_HDR_LEN, h.length - ISAKMP_HDR_LEN, &pls) != 0)
		return;
	for (size_t i = 0; i < pls.n; i++) {
		const struct isakmp_payload *p = &pls.p[i];
		struct isakmp_notify n;
		struct isakmp_blob vid;
		const struct bw_vendor *v;

		switch (p->type) {
		case ISAKMP_PL_SA:
			if (isakmp_parse_sa(p, &sa) == 0 && sa.n_proposals == 1 && sa.p[0].n_transforms == 1) {
				const struct isakmp_transform *t = &sa.p[0].t[0];

				r->chose = true;
				r->chosen.encr = (enum bw_p1_encr)attr_value(t, ISAKMP_P1_ENCR);
				r->chosen.key_bits = (uint16_t)attr_value(t, ISAKMP_P1_KEY_LENGTH);
				if (r->chosen.encr == BW_P1_ENCR_3DES)
					r->chosen.key_bits = 192;
				r->chosen.hash = (enum bw_hash)attr_value(t, ISAKMP_P1_HASH);
				r->chosen.dh = (enum bw_dh_group)attr_value(t, ISAKMP_P1_GROUP);
			}
			break;
		case ISAKMP_PL_N:
			if (!r->notify && isakmp_parse_notify(p, &n) == 0)
				r->notify = n.type;
			break;
		case ISAKMP_PL_VID:
			if (isakmp_parse_vid(p, &vid) != 0)
				break;
			v = bw_vendor_match(vid.data, vid.len);
			if (v) {
				vendor_add(r, v->name);
				if (v->id == BW_VID_NATT_RFC3947)
					r->peer_natt = true;
			} else {
				char hex[2 * 8 + 4];

				bw_hex(hex, vid.data, vid.len < 8 ? vid.len : 8);
				if (vid.len > 8)
					strcat(hex, "..");
				vendor_add(r, hex);
			}
			break;
		default:
			break;
		}
	}
}

static int probe_open(struct probe_side *s, const struct sockaddr_in *to, const struct bw_conn_config *cfg)
{
	size_t len;

	s->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (s->fd < 0) {
		s->res->error = errno;
		return -1;
	}
	/* Connected, so that an ICMP port unreachable comes back as ECONNREFUSED. */
	if (connect(s->fd, (const struct sockaddr *)to, sizeof(*to)) != 0) {
		s->res->error = errno;
		return -1;
	}
	memset(s->msg, 0, 4);
	if (build_mm1(cfg, s->icookie, s->msg + 4, sizeof(s->msg) - 4, &len) != 0) {
		s->res->error = EMSGSIZE;
		return -1;
	}
	s->len = len;
	return 0;
}

int bw_doctor_probe_run(const struct bw_conn_config *cfg, const struct sockaddr_in *ike,
			const struct sockaddr_in *natt, int timeout_ms, struct bw_doctor_probe *ike_res,
			struct bw_doctor_probe *natt_res, char *err, size_t errlen)
{
	struct probe_side sides[2];
	size_t n = natt ? 2 : 1;
	uint64_t start = bw_now_ms(), next_send = start;
	int rc = 0;

	memset(sides, 0, sizeof(sides));
	memset(ike_res, 0, sizeof(*ike_res));
	if (natt_res)
		memset(natt_res, 0, sizeof(*natt_res));
	sides[0].fd = sides[1].fd = -1;
	sides[0].res = ike_res;
	sides[1].res = natt_res;
	sides[1].natt = true;
	for (size_t i = 0; i < n; i++)
		if (probe_open(&sides[i], i ? natt : ike, cfg) != 0) {
			sides[i].done = true;
			if (i == 0) {
				snprintf(err, errlen, "cannot send the probe: %s", strerror(sides[0].res->error));
				rc = -1;
				goto out;
			}
		}
	for (;;) {
		uint64_t now = bw_now_ms();
		struct pollfd pfd[2];
		nfds_t np = 0;
		size_t pending = 0;
		int wait_ms;

		if (now - start >= (uint64_t)timeout_ms)
			break;
		if (now >= next_send) {
			/* Resent once a second like the engine's retransmission, for lost datagrams. */
			for (size_t i = 0; i < n; i++) {
				struct probe_side *s = &sides[i];

				if (s->done)
					continue;
				if (send(s->fd, s->natt ? s->msg : s->msg + 4, s->natt ? s->len + 4 : s->len, 0) < 0) {
					s->res->error = errno;
					if (errno == ECONNREFUSED)
						s->done = true;
				} else {
					s->res->sent = true;
				}
			}
			next_send += 1000;
		}
		/* An answered side stays polled while the other waits, for late answers to release. */
		for (size_t i = 0; i < n; i++)
			if (!sides[i].done)
				pending++;
		if (pending == 0)
			break;
		for (size_t i = 0; i < n; i++)
			if (!sides[i].done || sides[i].res->answered) {
				pfd[np].fd = sides[i].fd;
				pfd[np].events = POLLIN;
				np++;
			}
		wait_ms = (int)((next_send < start + (uint64_t)timeout_ms ? next_send : start + (uint64_t)timeout_ms) - now);
		if (poll(pfd, np, wait_ms < 0 ? 0 : wait_ms) <= 0)
			continue;
		for (size_t i = 0; i < n; i++) {
			struct probe_side *s = &sides[i];
			uint8_t buf[4096];
			ssize_t got;

			if (s->done && !s->res->answered)
				continue;
			while ((got = recv(s->fd, buf, sizeof(buf), 0)) >= 0)
				probe_answer(s, buf, (size_t)got, (unsigned)(bw_now_ms() - start));
			if (got < 0 && errno == ECONNREFUSED && !s->done) {
				s->res->error = ECONNREFUSED;
				s->done = true;
			}
		}
	}
out:
	for (size_t i = 0; i < 2; i++)
		if (sides[i].fd >= 0)
			close(sides[i].fd);
	return rc;
}

static void offered_list(const struct bw_conn_config *cfg, char *buf, size_t len)
{
	buf[0] = '\0';
	for (size_t i = 0; i < cfg->n_p1_proposals; i++) {
		char one[64];
		size_t used = strlen(buf);

		if (bw_p1_proposal_format(&cfg->p1_proposals[i], one, sizeof(one)) != 0)
			snprintf(one, sizeof(one), "?");
		snprintf(buf + used, len - used, "%s%s", i ? ", " : "", one);
	}
}

json_t *bw_doctor_probe_checks(const struct bw_conn_config *cfg, const char *gw,
			       const struct sockaddr_in *local, const struct bw_doctor_probe *ike,
			       const struct bw_doctor_probe *natt, bool udp_encap, int timeout_ms)
{
	json_t *arr = json_array();
	const struct bw_doctor_probe *ans = ike->answered ? ike : natt && natt->answered ? natt : NULL;
	char offered[512], chosen[64], nat_note[160] = "";

	offered_list(cfg, offered, sizeof(offered));
	if (ike->answered)
		json_array_append_new(arr, checkf("ike-500", "ok", "", "%s answered on UDP 500 in %u ms", gw, ike->rtt_ms));
	else if (ike->error == ECONNREFUSED)
		json_array_append_new(arr, checkf("ike-500", "fail",
			"check the gateway address and that its IKEv1 service runs",
			"%s refused UDP 500 (ICMP port unreachable): nothing listens for IKE there", gw));
	else if (!ike->sent)
		json_array_append_new(arr, checkf("ike-500", "fail", "check the route and the local firewall (nft list ruleset)",
			"no probe could be sent to %s: %s", gw, strerror(ike->error ? ike->error : EIO)));
	else
		json_array_append_new(arr, checkf("ike-500", "fail",
			"check the gateway address, that it runs IKEv1, and that no firewall on the way blocks UDP 500",
			"no answer from %s on UDP 500 within %d ms", gw, timeout_ms));

	if (ans) {
		if (ans->chose) {
			if (bw_p1_proposal_format(&ans->chosen, chosen, sizeof(chosen)) != 0)
				snprintf(chosen, sizeof(chosen), "encryption %d, hash %d, group %d", (int)ans->chosen.encr,
					 (int)ans->chosen.hash, (int)ans->chosen.dh);
			json_array_append_new(arr, checkf("phase1", "ok", "",
				"the gateway accepts %s%s%s%s", chosen, ans->vendors[0] ? "; its vendor IDs: " : "",
				ans->vendors, ans->vendors[0] ? "" : "; it sent no vendor IDs"));
		} else if (ans->notify == ISAKMP_N_NO_PROPOSAL_CHOSEN) {
			json_array_append_new(arr, checkf("phase1", "fail",
				"ask for the gateway's phase-1 settings, or pick its device profile (burrow devices), and set [phase1] proposals",
				"the gateway is reachable but accepts none of our phase-1 proposals (%s)", offered));
		} else if (ans->notify) {
			char hint[2 * BW_NAME_MAX + 64];

			snprintf(hint, sizeof(hint), "see burrow log %s --level debug after burrow start %s", cfg->name,
				 cfg->name);
			json_array_append_new(arr, checkf("phase1", "warn", hint,
				"the gateway answered with the notification %s", isakmp_notify_name(ans->notify)));
		} else {
			json_array_append_new(arr, checkf("phase1", "warn", "capture the exchange (tshark -f 'udp port 500') if starting fails",
				"the gateway answered with a %s message%s that is not a phase-1 choice",
				isakmp_exchange_name(ans->exchange), ans->encrypted ? " (encrypted)" : ""));
		}
	}

	if (!natt)
		return arr;
	if (local && private_v4(&local->sin_addr))
		snprintf(nat_note, sizeof(nat_note), "; our address %s is private, so a NAT is likely on the way",
			 inet_ntoa(local->sin_addr));
	if (natt->answered)
		json_array_append_new(arr, checkf("nat-t-4500", "ok", "", "%s answered IKE on UDP 4500 in %u ms%s%s", gw,
			natt->rtt_ms, ike->chose && !ike->peer_natt ? ", though it does not announce RFC 3947 NAT traversal" : "",
			nat_note));
	else if (!ike->answered)
		json_array_append_new(arr, checkf("nat-t-4500", "fail",
			"fix UDP 500 first; whatever blocks it likely blocks UDP 4500 too",
			"UDP 4500 of %s is %s too", gw, natt->error == ECONNREFUSED ? "refused" : "silent"));
	else if (natt->error == ECONNREFUSED)
		json_array_append_new(arr, checkf("nat-t-4500", udp_encap ? "fail" : "warn",
			"enable NAT traversal (RFC 3947) on the gateway, or ask for UDP 4500 to be allowed to it",
			"%s refused UDP 4500 (ICMP port unreachable): nothing takes IKE on 4500 there%s%s", gw,
			udp_encap ? ", and the userspace datapath needs ESP in UDP 4500" : "", nat_note));
	else if (ike->chose && !ike->peer_natt)
		json_array_append_new(arr, checkf("nat-t-4500", udp_encap ? "fail" : "warn",
			"enable NAT traversal (RFC 3947) on the gateway so that it takes UDP 4500",
			"%s answers on 500 but neither announces NAT traversal nor answers on UDP 4500%s%s", gw,
			udp_encap ? ", and the userspace datapath needs ESP in UDP 4500" : "", nat_note));
	else
		json_array_append_new(arr, checkf("nat-t-4500", udp_encap ? "fail" : "warn",
			"ask for UDP 4500 to be allowed to the gateway (firewalls often pass 500 only)",
			"%s answers on 500 but not on UDP 4500 within %d ms: the tunnel may come up but carry no traffic%s", gw,
			timeout_ms, nat_note));
	return arr;
}

/* ---- Putting it together ------------------------------------------------------------------- */

/* Our certificate's dates, key and CA file (ike_cert.c), with the passphrase of the secrets file
 * only: doctor never asks for one. */
static void cert_checks(const struct bw_conn *c, json_t *arr)
{
	struct bw_cert_check ck[BW_CERT_DOCTOR_CHECKS];
	struct bw_secrets sec;
	struct bw_cfg_error e;
	char path[PATH_MAX + BW_NAME_MAX + 32];
	const char *pass = NULL;
	size_t n;

	memset(&sec, 0, sizeof(sec));
	snprintf(path, sizeof(path), "%s/secrets/%s.secrets", c->agent->opts.config_dir, c->name);
	if (bw_secrets_load(path, &sec, &e) == 0) {
		if (strcmp(bw_cert_secret_key(&c->cfg), "pkcs12_password") == 0)
			pass = sec.has_pkcs12_password ? sec.pkcs12_password : NULL;
		else
			pass = sec.has_private_key_passphrase ? sec.private_key_passphrase : NULL;
	}
	n = bw_cert_doctor(&c->cfg, pass, time(NULL), ck);
	bw_secrets_wipe(&sec);
	for (size_t i = 0; i < n; i++)
		json_array_append_new(arr, bw_doctor_check(ck[i].name, ck[i].status, ck[i].detail, ck[i].hint));
}

static void conn_checks(const struct bw_conn *c, bool udp_encap, json_t *arr)
{
	const struct bw_conn_config *cfg = &c->cfg;
	struct sockaddr_in gw, local, natt;
	struct bw_doctor_probe r500, r4500;
	char err[512], ifname[64], addr[INET_ADDRSTRLEN], gwtext[320];
	int rc;

	if (!c->valid) {
		json_array_append_new(arr, checkf("config", "fail", "fix that line; burrow list shows every invalid connection",
			"%s is invalid: %s:%d: %s", c->name, c->cfg_err.file, c->cfg_err.line, c->cfg_err.msg));
		return;
	}
	json_array_append_new(arr, checkf("config", "ok", "", "%s: gateway %s, %s mode, %zu phase-1 proposal(s)",
		c->name, cfg->gateway, bw_exchange_name(cfg->exchange), cfg->n_p1_proposals));
	if (cfg->auth_method != BW_AUTH_PSK)
		cert_checks(c, arr);
	{
		char dns[300];
		bool ok = ike_dns_method(cfg, dns, sizeof(dns));

		json_array_append_new(arr, checkf("dns-method", ok ? "ok" : "warn", ok ? "" : "apt install dnsmasq-base",
						  "%s", dns));
	}
	if (bw_doctor_resolve(cfg->gateway, BW_DOCTOR_RESOLVE_MS, &gw, err, sizeof(err)) != 0) {
		char hint[sizeof(cfg->gateway) + 96];

		snprintf(hint, sizeof(hint), "check the name and this host's DNS (resolvectl query %s), or put the "
			 "address in gateway =", cfg->gateway);
		json_array_append_new(arr, checkf("gateway-dns", "fail", hint, "%s", err));
		return;
	}
	inet_ntop(AF_INET, &gw.sin_addr, addr, sizeof(addr));
	if (strcmp(addr, cfg->gateway) == 0)
		json_array_append_new(arr, checkf("gateway-dns", "ok", "", "the gateway is given as the address %s", addr));
	else
		json_array_append_new(arr, checkf("gateway-dns", "ok", "", "%s resolves to %s", cfg->gateway, addr));
	rc = route_to(&gw, &local, ifname, sizeof(ifname));
	if (rc) {
		json_array_append_new(arr, checkf("route", "fail",
			"check the network connection and the routing table (ip route get ADDRESS)",
			"no route to %s: %s", addr, strerror(-rc)));
		return;
	}
	json_array_append_new(arr, checkf("route", "ok", "", "%s is reached through %s from %s", addr, ifname,
					  inet_ntoa(local.sin_addr)));
	if (strcmp(addr, cfg->gateway) == 0)
		snprintf(gwtext, sizeof(gwtext), "%s", addr);
	else
		snprintf(gwtext, sizeof(gwtext), "%s (%s)", cfg->gateway, addr);
	gw.sin_port = htons(500);
	natt = gw;
	natt.sin_port = htons(4500);
	if (bw_doctor_probe_run(cfg, &gw, &natt, BW_DOCTOR_PROBE_MS, &r500, &r4500, err, sizeof(err)) != 0) {
		json_array_append_new(arr, checkf("ike-500", "fail", "check the local firewall", "%s", err));
		return;
	}
	json_t *probe = bw_doctor_probe_checks(cfg, gwtext, &local, &r500, &r4500, udp_encap, BW_DOCTOR_PROBE_MS);
	json_array_extend(arr, probe);
	json_decref(probe);
}

json_t *bw_doctor_run(struct bw_agent *a, const struct bw_conn *c)
{
	json_t *arr = json_array();
	const char *picked = NULL;
	bool userspace;

	json_array_append_new(arr, bw_doctor_check_backend(a->cfg.backend, &picked));
	userspace = !picked || strcmp(picked, "userspace") == 0;
	json_array_append_new(arr, bw_doctor_check_kernel_esp(a->cfg.backend));
	json_array_append_new(arr, bw_doctor_check_tun());
	json_array_append_new(arr, bw_doctor_check_port("port-ike", "ike_port", a->cfg.ike_port));
	json_array_append_new(arr, bw_doctor_check_port("port-natt", "natt_port", a->cfg.natt_port));
	json_array_append_new(arr, bw_doctor_check_daemons("/proc"));
	json_array_append_new(arr, bw_doctor_check_clock(time(NULL)));
	if (c)
		conn_checks(c, userspace, arr);
	return arr;
}

json_t *bw_doctor_request(struct bw_agent *a, const char *name, char *err, size_t errlen)
{
	const struct bw_conn *c = NULL;

	if (name && !(c = bw_agent_find(a, name))) {
		snprintf(err, errlen, "no connection named %s; burrow list shows them", name);
		return NULL;
	}
	return bw_doctor_run(a, c);
}

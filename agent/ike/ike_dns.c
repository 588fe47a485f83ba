/* DNS for a connection: per-link servers and domains through systemd-resolved (resolvectl);
 * without resolved, split DNS through a dnsmasq forwarder that burrowd runs, or (scope = global,
 * or no dnsmasq) /etc/resolv.conf replaced. /etc/resolv.conf is restored byte for byte, and a
 * forwarder stopped, also after a crash: the state directory keeps NAME.resolv.conf (the
 * original) and NAME.dnsmasq.pid (the forwarder) until they are undone. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "agent.h"
#include "ike/dns_fwd.h"
#include "ike/ikev1.h"
#include "log.h"
#include "proc.h"
#include "ike/ike_crypto.h"
#include "util.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define DNSMASQ_DEFAULT "/usr/sbin/dnsmasq"
#define FWD_PROBE_S 0.02		/* how often a starting forwarder is asked for version.bind */
#define FWD_START_S 3.0			/* how long it may take to answer */
#define FWD_WARNING "split DNS needs systemd-resolved or dnsmasq (apt install dnsmasq-base); " \
		    "using the gateway's DNS for all names"

/* Read once at burrowd's start: BURROW_DNSMASQ (a path, or "none") and BURROW_RESOLVED ("no"
 * acts as if systemd-resolved were not running), for tests and unusual installations. */
static struct {
	bool read;
	bool no_resolved;
	char dnsmasq[PATH_MAX];
} env;

void ike_dns_read_env(void)
{
	const char *d = getenv("BURROW_DNSMASQ"), *r = getenv("BURROW_RESOLVED");

	env.read = true;
	env.no_resolved = r && strcmp(r, "no") == 0;
	snprintf(env.dnsmasq, sizeof(env.dnsmasq), "%s", d && *d ? d : DNSMASQ_DEFAULT);
}

static const char *dnsmasq_path(void)
{
	if (!env.read)
		ike_dns_read_env();
	if (strcmp(env.dnsmasq, "none") == 0 || env.dnsmasq[0] != '/' || access(env.dnsmasq, X_OK) != 0)
		return NULL;
	return env.dnsmasq;
}

bool ike_dns_have_resolved(void)
{
	if (!env.read)
		ike_dns_read_env();
	return !env.no_resolved && access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0 &&
	       (access("/usr/bin/resolvectl", X_OK) == 0 || access("/bin/resolvectl", X_OK) == 0);
}

bool ike_dns_method(const struct bw_conn_config *cfg, char *out, size_t len)
{
	if (!cfg->accept_dns && !cfg->n_dns_servers) {
		snprintf(out, len, "dns = no and no [dns] servers: the tunnel leaves this host's DNS alone");
		return true;
	}
	if (ike_dns_have_resolved()) {
		snprintf(out, len, "systemd-resolved, %s: the tunnel's servers are set on its interface",
			 cfg->dns_scope == BW_DNS_SPLIT ? "split (the tunnel's domains only)" : "global (all names)");
		return true;
	}
	if (cfg->dns_scope == BW_DNS_GLOBAL) {
		snprintf(out, len, "%s replaced while the tunnel is up (scope = global), restored on stop", RESOLV_CONF);
		return true;
	}
	if (dnsmasq_path()) {
		snprintf(out, len, "split DNS through a dnsmasq forwarder (%s) that %s points at while the tunnel is up",
			 env.dnsmasq, RESOLV_CONF);
		return true;
	}
	snprintf(out, len, "%s", FWD_WARNING);
	return false;
}

/* Runs argv without a shell, from the fixed PATH, and waits; resolvectl answers in
 * milliseconds, 5 s is a hung one. */
static int run(char *const argv[])
{
	int rc = bw_child_run_sync(argv, NULL, 0, 5.0);

	return rc > 0 ? -EIO : rc;
}

static void state_path(const char *state_dir, const char *name, const char *suffix, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.%s", state_dir, name, suffix);
}

static int copy_file(const char *from, const char *to, mode_t mode, bool in_place)
{
	char buf[8192];
	int in = open(from, O_RDONLY | O_CLOEXEC), out;
	ssize_t n;
	int rc = 0;

	if (in < 0)
		return -errno;
	/* in_place: /etc/resolv.conf may be a bind mount (ip netns): truncate, never rename. */
	out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | (in_place ? 0 : O_EXCL), mode);
	if (out < 0) {
		rc = -errno;
		close(in);
		return rc;
	}
	while ((n = read(in, buf, sizeof(buf))) > 0)
		if (write(out, buf, (size_t)n) != n) {
			rc = -EIO;
			break;
		}
	if (n < 0)
		rc = -errno;
	if (fsync(out) != 0 && rc == 0)
		rc = -errno;
	close(in);
	close(out);
	return rc;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
	size_t len = strlen(text);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode), rc = 0;

	if (fd < 0)
		return -errno;
	if (fchmod(fd, mode) != 0 || write(fd, text, len) != (ssize_t)len || fsync(fd) != 0)
		rc = errno ? -errno : -EIO;
	close(fd);
	return rc;
}

/* Reads at most len - 1 bytes of path as text. */
static int read_text(const char *path, char *out, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t got = 0;
	ssize_t n;

	if (fd < 0)
		return -errno;
	while (got < len - 1 && (n = read(fd, out + got, len - 1 - got)) > 0)
		got += (size_t)n;
	close(fd);
	out[got] = '\0';
	return 0;
}

static void restore(const char *backup)
{
	int rc = copy_file(backup, RESOLV_CONF, 0644, true);

	if (rc == 0)
		unlink(backup);
	else
		bw_err("cannot restore %s from %s: %s; copy it back by hand", RESOLV_CONF, backup, strerror(-rc));
}

/* ---- The dnsmasq forwarder -------------------------------------------------------------- */

struct ike_dns_fwd {
	struct bw_ike_conn *ike;	/* while it starts; NULL once it answers */
	struct ev_loop *loop;
	char name[256];
	char backup[PATH_MAX + 80], conf[PATH_MAX + 80], record[PATH_MAX + 80];
	char listen[32];
	char resolv[4096];		/* /etc/resolv.conf once it answers */
	pid_t pid;			/* 0 once it exited */
	ev_timer probe;
	ev_tstamp deadline;
	int fd;
	uint16_t qid;
};

static void fwd_close_probe(struct ike_dns_fwd *f)
{
	ev_timer_stop(f->loop, &f->probe);
	if (f->fd >= 0)
		close(f->fd);
	f->fd = -1;
}

static void fwd_free(struct ike_dns_fwd *f)
{
	fwd_close_probe(f);
	bw_child_forget(f);
	if (f->pid > 0)
		kill(-f->pid, SIGTERM);	/* its process group (TCP helpers too); reaped by the loop */
	unlink(f->conf);
	unlink(f->record);
	free(f);
}

/* The last non-empty line of what dnsmasq printed: its reason to exit. */
static void last_line(const char *out, size_t len, char *line, size_t linelen)
{
	size_t end = len, start;

	while (end > 0 && (out[end - 1] == '\n' || out[end - 1] == '\r' || out[end - 1] == ' '))
		end--;
	start = end;
	while (start > 0 && out[start - 1] != '\n')
		start--;
	snprintf(line, linelen, "%.*s", (int)(end - start), out + start);
}

static void on_fwd_exit(void *ctx, uint64_t token, int status, const char *reason, const char *out, size_t len)
{
	struct ike_dns_fwd *f = ctx;
	struct bw_ike_conn *ike = f->ike;
	char line[200], err[400];

	(void)token;
	f->pid = 0;
	unlink(f->record);
	last_line(out, len, line, sizeof(line));
	if (ike) {
		snprintf(err, sizeof(err), "the DNS forwarder %.160s %s with status %d before it answered%s%.160s",
			 env.dnsmasq, reason, status, line[0] ? ": " : "", line);
		fwd_close_probe(f);
		ike_dns_started(ike, err);
		return;
	}
	bw_log(BW_LOG_ERROR, f->name, "the DNS forwarder %s %s with status %d%s%s; %s restored, so names go to "
	       "the previous servers only", env.dnsmasq, reason, status, line[0] ? ": " : "", line, RESOLV_CONF);
	if (access(f->backup, F_OK) == 0)
		restore(f->backup);
}

/* A CHAOS TXT query for version.bind, which dnsmasq answers itself. */
static void fwd_send_probe(struct ike_dns_fwd *f)
{
	static const uint8_t q[] = { 0, 0, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
				     7, 'v', 'e', 'r', 's', 'i', 'o', 'n', 4, 'b', 'i', 'n', 'd', 0,
				     0, 16, 0, 3 };
	uint8_t m[sizeof(q)];

	memcpy(m, q, sizeof(q));
	m[0] = (uint8_t)(f->qid >> 8);
	m[1] = (uint8_t)f->qid;
	if (send(f->fd, m, sizeof(m), MSG_DONTWAIT) < 0 && errno != ECONNREFUSED && errno != EAGAIN)
		bw_log(BW_LOG_DEBUG, f->name, "DNS forwarder probe: %s", strerror(errno));
}

static bool fwd_answered(struct ike_dns_fwd *f)
{
	uint8_t r[512];
	ssize_t n;

	while ((n = recv(f->fd, r, sizeof(r), MSG_DONTWAIT)) >= 0 || errno == ECONNREFUSED || errno == EINTR)
		if (n >= 12 && r[0] == (uint8_t)(f->qid >> 8) && r[1] == (uint8_t)f->qid && (r[2] & 0x80))
			return true;
	return false;
}

static int write_resolv(const char *backup, const char *text, char *err, size_t errlen)
{
	char tmp[PATH_MAX + 96];
	int rc;

	snprintf(tmp, sizeof(tmp), "%s.new", backup);
	if ((rc = write_file(tmp, text, 0600)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(-rc));
		unlink(tmp);
		return -1;
	}
	rc = copy_file(tmp, RESOLV_CONF, 0644, true);
	unlink(tmp);
	if (rc != 0) {
		snprintf(err, errlen, "cannot write %s: %s", RESOLV_CONF, strerror(-rc));
		return -1;
	}
	return 0;
}

static void on_fwd_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ike_dns_fwd *f = bw_container_of(w, struct ike_dns_fwd, probe);
	struct bw_ike_conn *ike = f->ike;
	char err[400];

	(void)revents;
	if (f->pid > 0 && fwd_answered(f)) {
		fwd_close_probe(f);
		f->ike = NULL;
		if (write_resolv(f->backup, f->resolv, err, sizeof(err)) != 0) {
			ike_dns_started(ike, err);
			return;
		}
		ike_log(ike, BW_LOG_INFO, "DNS: split through the forwarder dnsmasq on %s (pid %d); %s points at it "
			"(the original is kept in %s)", f->listen, (int)f->pid, RESOLV_CONF, f->backup);
		ike_dns_started(ike, NULL);
		return;
	}
	if (ev_now(loop) >= f->deadline) {
		snprintf(err, sizeof(err), "the DNS forwarder %.160s did not answer on %s port 53 within %.0f s; "
			 "see burrow log %.64s", env.dnsmasq, f->listen, FWD_START_S, f->name);
		fwd_close_probe(f);
		ike_dns_started(ike, err);
		return;
	}
	f->qid++;
	fwd_send_probe(f);
}

static int fwd_probe_open(struct ike_dns_fwd *f)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(53) };

	inet_pton(AF_INET, f->listen, &sin.sin_addr);
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (f->fd < 0 || connect(f->fd, (struct sockaddr *)&sin, sizeof(sin)) != 0)
		return -errno;
	return 0;
}

static int fwd_spawn(struct ike_dns_fwd *f, char *err, size_t errlen)
{
	char arg[PATH_MAX + 96], rec[64], why[300];
	char *argv[] = { env.dnsmasq, "--keep-in-foreground", arg, NULL };
	int rc;

	snprintf(arg, sizeof(arg), "--conf-file=%s", f->conf);
	if (bw_child_spawn(f->loop, argv, NULL, 0, on_fwd_exit, f, 0, why, sizeof(why)) != 0) {
		snprintf(err, errlen, "cannot start the DNS forwarder: %s", why);
		return -1;
	}
	f->pid = bw_child_pid(f);
	snprintf(rec, sizeof(rec), "dnsmasq %d\n", (int)f->pid);
	if ((rc = write_file(f->record, rec, 0600)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", f->record, strerror(-rc));
		return -1;
	}
	return 0;
}

/* Writes dnsmasq's configuration and /etc/resolv.conf's future text from the saved original. */
static int fwd_prepare(struct ike_dns_fwd *f, const struct bw_dns_fwd_spec *spec0, const char *const *search,
		       size_t n_search, char *err, size_t errlen)
{
	static char prev_text[65536];
	struct bw_resolv_prev prev;
	struct bw_dns_fwd_spec spec = *spec0;
	char conf[8192];
	int rc;

	if ((rc = read_text(f->backup, prev_text, sizeof(prev_text))) != 0) {
		snprintf(err, errlen, "cannot read %s: %s", f->backup, strerror(-rc));
		return -1;
	}
	bw_resolv_parse(prev_text, &prev);
	spec.listen = f->listen;
	spec.prev = &prev;
	if (bw_dns_fwd_conf(&spec, conf, sizeof(conf)) < 0 ||
	    bw_dns_fwd_resolv(&spec, search, n_search, f->resolv, sizeof(f->resolv)) < 0) {
		snprintf(err, errlen, "too many DNS domains for the forwarder's configuration");
		return -1;
	}
	if ((rc = write_file(f->conf, conf, 0600)) != 0) {
		snprintf(err, errlen, "cannot write %s: %s", f->conf, strerror(-rc));
		return -1;
	}
	if (prev.n_ns == 0)
		bw_log(BW_LOG_WARN, f->name, "%s named no other DNS server: only the tunnel's domains will resolve",
		       RESOLV_CONF);
	return 0;
}

/* Whether nothing holds UDP and TCP port 53 of addr: a probe's answer would come from it. */
static bool addr_free(const char *addr)
{
	static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(53) };
	bool free_ = true;

	inet_pton(AF_INET, addr, &sin.sin_addr);
	for (size_t i = 0; free_ && i < sizeof(types) / sizeof(types[0]); i++) {
		int fd = socket(AF_INET, types[i] | SOCK_CLOEXEC, 0);

		free_ = fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0;
		if (fd >= 0)
			close(fd);
	}
	return free_;
}

/* The connection's loopback address, or the next free one when another program holds it. */
static int fwd_pick_address(struct ike_dns_fwd *f, char *err, size_t errlen)
{
	char first[32];

	bw_dns_fwd_address(f->name, 0, first, sizeof(first));
	for (unsigned i = 0; i < 8; i++) {
		bw_dns_fwd_address(f->name, i, f->listen, sizeof(f->listen));
		if (addr_free(f->listen))
			return 0;
		bw_log(BW_LOG_INFO, f->name, "DNS: port 53 of %s is taken by another program; trying the next address",
		       f->listen);
	}
	snprintf(err, errlen, "cannot start the DNS forwarder: port 53 of %s and the 7 addresses after it are "
		 "taken by other programs", first);
	return -1;
}

static int fwd_start(struct bw_ike_conn *ike, const struct bw_dns_fwd_spec *spec, const char *const *search,
		     size_t n_search, char *err, size_t errlen)
{
	const char *sd = ike->agent->opts.state_dir, *name = ike->cfg.name;
	struct ike_dns_fwd *f = calloc(1, sizeof(*f));

	if (!f) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	f->ike = ike;
	f->loop = ike->agent->loop;
	f->fd = -1;
	ev_timer_init(&f->probe, on_fwd_probe, FWD_PROBE_S, FWD_PROBE_S);
	snprintf(f->name, sizeof(f->name), "%s", name);
	state_path(sd, name, "resolv.conf", f->backup, sizeof(f->backup));
	state_path(sd, name, "dnsmasq.conf", f->conf, sizeof(f->conf));
	state_path(sd, name, "dnsmasq.pid", f->record, sizeof(f->record));
	ike->dns.fwd = f;
	ike->dns.applied = true;	/* from here on, revert stops it and restores the original */
	if (fwd_pick_address(f, err, errlen) != 0 || fwd_prepare(f, spec, search, n_search, err, errlen) != 0 || fwd_spawn(f, err, errlen) != 0)
		return -1;
	if (fwd_probe_open(f) != 0) {
		snprintf(err, errlen, "cannot open a socket to probe the DNS forwarder: %s", strerror(errno));
		return -1;
	}
	f->deadline = ev_now(f->loop) + FWD_START_S;
	bw_random(&f->qid, sizeof(f->qid));
	fwd_send_probe(f);
	ev_timer_start(f->loop, &f->probe);
	return 1;
}

/* ---- Crash cleanup -------------------------------------------------------------------------- */

/* Whether pid is a forwarder that was started with conf: its command line says so. */
static bool is_our_forwarder(pid_t pid, const char *conf)
{
	char path[64], cmd[8192], want[PATH_MAX + 96];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/cmdline", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, cmd, sizeof(cmd) - 1);
	close(fd);
	if (n <= 0)
		return false;
	cmd[n] = '\0';
	snprintf(want, sizeof(want), "--conf-file=%s", conf);
	for (char *p = cmd; p < cmd + n; p += strlen(p) + 1)
		if (strcmp(p, want) == 0)
			return true;
	return false;
}

static void stop_stale_forwarder(const char *conn_name, const char *record, const char *conf)
{
	struct timespec pause = { 0, 20 * 1000 * 1000 };
	char text[64];
	int pid = 0;

	if (read_text(record, text, sizeof(text)) != 0)
		return;
	if (sscanf(text, "dnsmasq %d", &pid) == 1 && pid > 1 && is_our_forwarder(pid, conf)) {
		bw_log(BW_LOG_INFO, conn_name, "stopping the DNS forwarder (pid %d) left running by a previous run", pid);
		kill(pid, SIGTERM);
		for (int i = 0; i < 100 && is_our_forwarder(pid, conf); i++)
			nanosleep(&pause, NULL);
		if (is_our_forwarder(pid, conf))
			kill(pid, SIGKILL);
	}
	unlink(record);
}

void ike_dns_cleanup_stale(const char *conn_name, const char *state_dir)
{
	char backup[PATH_MAX + 80], record[PATH_MAX + 80], conf[PATH_MAX + 80];

	state_path(state_dir, conn_name, "resolv.conf", backup, sizeof(backup));
	state_path(state_dir, conn_name, "dnsmasq.pid", record, sizeof(record));
	state_path(state_dir, conn_name, "dnsmasq.conf", conf, sizeof(conf));
	if (access(record, F_OK) == 0)
		stop_stale_forwarder(conn_name, record, conf);
	unlink(conf);
	if (access(backup, F_OK) == 0) {
		bw_log(BW_LOG_INFO, conn_name, "restoring %s left changed by a previous run", RESOLV_CONF);
		restore(backup);
	}
}

/* ---- Applying and reverting ----------------------------------------------------------------- */

static int apply_resolved(struct bw_ike_conn *ike, const char *ifname, char *const *addrs, size_t n_servers,
			  const char *const *domains, size_t n_domains, char *err, size_t errlen)
{
	const struct bw_conn_config *cfg = &ike->cfg;
	char *argv[4 + BW_MAX_DOMAINS + IKE_MAX_SPLIT_DNS + 2];
	char routing[BW_MAX_DOMAINS + IKE_MAX_SPLIT_DNS][260];
	size_t k = 0;

	argv[k++] = "resolvectl";
	argv[k++] = "dns";
	argv[k++] = (char *)ifname;
	for (size_t i = 0; i < n_servers; i++)
		argv[k++] = addrs[i];
	argv[k] = NULL;
	if (run(argv) != 0) {
		snprintf(err, errlen, "systemd-resolved refused the tunnel's DNS servers; see journalctl -u systemd-resolved");
		return -1;
	}
	k = 0;
	argv[k++] = "resolvectl";
	argv[k++] = "domain";
	argv[k++] = (char *)ifname;
	for (size_t i = 0; i < n_domains; i++) {
		/* split: route these names to the tunnel's servers; global: search them too */
		snprintf(routing[i], sizeof(routing[i]), "%s%s", cfg->dns_scope == BW_DNS_SPLIT ? "~" : "", domains[i]);
		argv[k++] = routing[i];
	}
	if (cfg->dns_scope == BW_DNS_GLOBAL)
		argv[k++] = "~.";
	argv[k] = NULL;
	if (k > 3 && run(argv) != 0) {
		snprintf(err, errlen, "systemd-resolved refused the tunnel's DNS domains");
		return -1;
	}
	ike->dns.applied = true;
	ike->dns.via_resolved = true;
	ike_log(ike, BW_LOG_INFO, "DNS: %zu server(s) on %s through systemd-resolved (%s)", n_servers, ifname,
		cfg->dns_scope == BW_DNS_SPLIT ? "split" : "global");
	return 0;
}

static int apply_global(struct bw_ike_conn *ike, const char *backup, char *const *addrs, size_t n_servers,
			const char *const *domains, size_t n_domains, char *err, size_t errlen)
{
	char text[4096];
	size_t used;

	used = (size_t)snprintf(text, sizeof(text), "# written by burrowd for connection %s; restored when it stops\n",
				ike->cfg.name);
	for (size_t i = 0; i < n_servers; i++)
		used += (size_t)snprintf(text + used, sizeof(text) - used, "nameserver %s\n", addrs[i]);
	if (n_domains) {
		used += (size_t)snprintf(text + used, sizeof(text) - used, "search");
		for (size_t i = 0; i < n_domains && used < sizeof(text); i++)
			used += (size_t)snprintf(text + used, sizeof(text) - used, " %s", domains[i]);
		if (used < sizeof(text))
			snprintf(text + used, sizeof(text) - used, "\n");
	}
	ike->dns.applied = true;	/* from here on, revert restores the backup */
	if (write_resolv(backup, text, err, errlen) != 0)
		return -1;
	ike_log(ike, BW_LOG_INFO, "DNS: %s now names %zu server(s) of the tunnel (the original is kept in %s)",
		RESOLV_CONF, n_servers, backup);
	return 0;
}

int ike_dns_apply(struct bw_ike_conn *ike, char *err, size_t errlen)
{
	const struct bw_conn_config *cfg = &ike->cfg;
	const struct bw_cidr *servers;
	size_t n_servers, n_domains = 0;
	const char *domains[BW_MAX_DOMAINS + IKE_MAX_SPLIT_DNS + 1];
	char addrs[IKE_MAX_DNS > BW_MAX_DNS ? IKE_MAX_DNS : BW_MAX_DNS][64];
	char *addrp[IKE_MAX_DNS > BW_MAX_DNS ? IKE_MAX_DNS : BW_MAX_DNS];
	const char *ifname = ike->dp.be->ifname(ike->dp.conn);
	char backup[PATH_MAX + 80];
	int rc;

	if (cfg->accept_dns && ike->txn.mc.n_dns) {
		servers = ike->txn.mc.dns;
		n_servers = ike->txn.mc.n_dns;
		if (ike->txn.mc.domain[0])
			domains[n_domains++] = ike->txn.mc.domain;
		for (size_t i = 0; i < ike->txn.mc.n_split_dns; i++)
			domains[n_domains++] = ike->txn.mc.split_dns[i];
	} else if (cfg->n_dns_servers) {
		servers = cfg->dns_servers;
		n_servers = cfg->n_dns_servers;
		for (size_t i = 0; i < cfg->n_search_domains; i++)
			domains[n_domains++] = cfg->search_domains[i];
	} else {
		return 0;
	}
	for (size_t i = 0; i < n_servers; i++) {
		bw_cidr_format(&servers[i], addrs[i], sizeof(addrs[i]));
		addrp[i] = addrs[i];
	}
	if (ike_dns_have_resolved())
		return apply_resolved(ike, ifname, addrp, n_servers, domains, n_domains, err, errlen);

	state_path(ike->agent->opts.state_dir, cfg->name, "resolv.conf", backup, sizeof(backup));
	if (access(backup, F_OK) != 0 && (rc = copy_file(RESOLV_CONF, backup, 0600, false)) != 0) {
		snprintf(err, errlen, "cannot save %s before changing it: %s", RESOLV_CONF, strerror(-rc));
		return -1;
	}
	if (cfg->dns_scope == BW_DNS_SPLIT && dnsmasq_path()) {
		struct bw_dns_fwd_spec spec = { .conn_name = cfg->name, .domains = domains, .n_domains = n_domains,
						.servers = (const char *const *)addrp, .n_servers = n_servers };

		return fwd_start(ike, &spec, domains, n_domains, err, errlen);
	}
	if (cfg->dns_scope == BW_DNS_SPLIT) {
		ike_log(ike, BW_LOG_WARN, "%s", FWD_WARNING);
		snprintf(ike->dns.warning, sizeof(ike->dns.warning), "%s", FWD_WARNING);
	}
	return apply_global(ike, backup, addrp, n_servers, domains, n_domains, err, errlen);
}

void ike_dns_revert(struct bw_ike_conn *ike)
{
	char backup[PATH_MAX + 80];

	ike->dns.applied = false;
	ike->dns.warning[0] = '\0';
	if (ike->dns.via_resolved) {
		char *argv[] = { "resolvectl", "revert", (char *)ike->dp.be->ifname(ike->dp.conn), NULL };

		ike->dns.via_resolved = false;
		if (ike->dp.conn)
			run(argv);
		return;
	}
	if (ike->dns.fwd) {
		fwd_free(ike->dns.fwd);
		ike->dns.fwd = NULL;
		ike_log(ike, BW_LOG_INFO, "DNS: the forwarder is stopped");
	}
	state_path(ike->agent->opts.state_dir, ike->cfg.name, "resolv.conf", backup, sizeof(backup));
	if (access(backup, F_OK) == 0) {
		restore(backup);
		ike_log(ike, BW_LOG_INFO, "DNS: %s restored", RESOLV_CONF);
	}
}

/* DNS for a connection: per-link servers and domains through systemd-resolved (resolvectl),
 * or, without resolved, /etc/resolv.conf replaced and restored exactly, even after a crash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent.h"
#include "ike/ikev1.h"
#include "log.h"
#include "util.h"

#define RESOLV_CONF "/etc/resolv.conf"

bool ike_dns_have_resolved(void)
{
	return access("/run/systemd/resolve/io.systemd.Resolve", F_OK) == 0 &&
	       (access("/usr/bin/resolvectl", X_OK) == 0 || access("/bin/resolvectl", X_OK) == 0);
}

/* Runs argv without a shell and waits; resolvectl answers in milliseconds. */
static int run(char *const argv[])
{
	pid_t pid = fork();
	int st;

	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int devnull = open("/dev/null", O_RDWR);

		if (devnull >= 0) {
			dup2(devnull, STDIN_FILENO);
			dup2(devnull, STDOUT_FILENO);
		}
		execvp(argv[0], argv);
		_exit(127);
	}
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static void backup_path(const char *state_dir, const char *name, char *out, size_t len)
{
	snprintf(out, len, "%s/%s.resolv.conf", state_dir, name);
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

static void restore(const char *backup)
{
	if (copy_file(backup, RESOLV_CONF, 0644, true) == 0)
		unlink(backup);
	else
		bw_err("cannot restore %s from %s: %s; copy it back by hand", RESOLV_CONF, backup, strerror(errno));
}

void ike_dns_cleanup_stale(const char *conn_name, const char *state_dir)
{
	char backup[PATH_MAX + 80];

	backup_path(state_dir, conn_name, backup, sizeof(backup));
	if (access(backup, F_OK) == 0) {
		bw_log(BW_LOG_INFO, conn_name, "restoring %s left changed by a previous run", RESOLV_CONF);
		restore(backup);
	}
}

int ike_dns_apply(struct bw_ike_conn *ike, char *err, size_t errlen)
{
	const struct bw_conn_config *cfg = &ike->cfg;
	const struct bw_cidr *servers;
	size_t n_servers, n_domains = 0;
	const char *domains[BW_MAX_DOMAINS + IKE_MAX_SPLIT_DNS + 1];
	char addrs[IKE_MAX_DNS > BW_MAX_DNS ? IKE_MAX_DNS : BW_MAX_DNS][64];
	const char *ifname = ike->be->ifname(ike->be_conn);

	if (cfg->accept_dns && ike->mc.n_dns) {
		servers = ike->mc.dns;
		n_servers = ike->mc.n_dns;
		if (ike->mc.domain[0])
			domains[n_domains++] = ike->mc.domain;
		for (size_t i = 0; i < ike->mc.n_split_dns; i++)
			domains[n_domains++] = ike->mc.split_dns[i];
	} else if (cfg->n_dns_servers) {
		servers = cfg->dns_servers;
		n_servers = cfg->n_dns_servers;
		for (size_t i = 0; i < cfg->n_search_domains; i++)
			domains[n_domains++] = cfg->search_domains[i];
	} else {
		return 0;
	}
	for (size_t i = 0; i < n_servers; i++)
		bw_cidr_format(&servers[i], addrs[i], sizeof(addrs[i]));

	if (ike_dns_have_resolved()) {
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
			snprintf(routing[i], sizeof(routing[i]), "%s%s", cfg->dns_scope == BW_DNS_SPLIT ? "~" : "",
				 domains[i]);
			argv[k++] = routing[i];
		}
		if (cfg->dns_scope == BW_DNS_GLOBAL)
			argv[k++] = "~.";
		argv[k] = NULL;
		if (k > 3 && run(argv) != 0) {
			snprintf(err, errlen, "systemd-resolved refused the tunnel's DNS domains");
			return -1;
		}
		ike->dns_applied = true;
		ike_log(ike, BW_LOG_INFO, "DNS: %zu server(s) on %s through systemd-resolved (%s)", n_servers, ifname,
			cfg->dns_scope == BW_DNS_SPLIT ? "split" : "global");
		return 0;
	}

	{
		char backup[PATH_MAX + 80], tmp[PATH_MAX + 96];
		FILE *f;
		int rc;

		backup_path(ike->agent->opts.state_dir, cfg->name, backup, sizeof(backup));
		if (access(backup, F_OK) != 0 && (rc = copy_file(RESOLV_CONF, backup, 0600, false)) != 0) {
			snprintf(err, errlen, "cannot save %s before changing it: %s", RESOLV_CONF, strerror(-rc));
			return -1;
		}
		snprintf(tmp, sizeof(tmp), "%s.new", backup);
		f = fopen(tmp, "w");
		if (!f) {
			snprintf(err, errlen, "cannot write %s: %s", tmp, strerror(errno));
			return -1;
		}
		fprintf(f, "# written by burrowd for connection %s; restored when it stops\n", cfg->name);
		for (size_t i = 0; i < n_servers; i++)
			fprintf(f, "nameserver %s\n", addrs[i]);
		if (n_domains) {
			fprintf(f, "search");
			for (size_t i = 0; i < n_domains; i++)
				fprintf(f, " %s", domains[i]);
			fprintf(f, "\n");
		}
		fclose(f);
		ike->dns_applied = true;	/* from here on, revert restores the backup */
		rc = copy_file(tmp, RESOLV_CONF, 0644, true);
		unlink(tmp);
		if (rc != 0) {
			snprintf(err, errlen, "cannot write %s: %s", RESOLV_CONF, strerror(-rc));
			return -1;
		}
		ike_log(ike, BW_LOG_INFO, "DNS: %s now names %zu server(s) of the tunnel (the original is kept in %s)",
			RESOLV_CONF, n_servers, backup);
	}
	return 0;
}

void ike_dns_revert(struct bw_ike_conn *ike)
{
	char backup[PATH_MAX + 80];

	ike->dns_applied = false;
	if (ike_dns_have_resolved()) {
		char *argv[] = { "resolvectl", "revert", (char *)ike->be->ifname(ike->be_conn), NULL };

		if (ike->be_conn)
			run(argv);
		return;
	}
	backup_path(ike->agent->opts.state_dir, ike->cfg.name, backup, sizeof(backup));
	if (access(backup, F_OK) == 0) {
		restore(backup);
		ike_log(ike, BW_LOG_INFO, "DNS: %s restored", RESOLV_CONF);
	}
}

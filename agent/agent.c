/* The agent: loads configuration into connections, reloads it, and shuts everything down.
 * A broken connection file marks only that connection invalid; the others keep running. */
#include "agent.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl_server.h"
#include "ike/ike_conn.h"
#include "ike/ike_resolve.h"
#include "ike/ikev1.h"
#include "sa-backends/sa_backend.h"
#include "log.h"
#include "lua/policy_host.h"
#include "util.h"
#include "watch/files.h"
#include "watch/watch.h"

static void log_sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	struct bw_agent *a = ctx;
	struct bw_conn *c;

	if (!conn)
		return;
	c = bw_agent_find(a, conn);
	if (!c)
		return;
	bw_conn_log_append(c, level, msg);
	if (a->ctl)
		bw_ctl_server_log_line(a->ctl, c, level, msg);
}

struct bw_conn *bw_agent_find(struct bw_agent *a, const char *name)
{
	for (size_t i = 0; i < a->n_conns; i++)
		if (strcmp(a->conns[i]->name, name) == 0)
			return a->conns[i];
	return NULL;
}

int bw_agent_load_secrets(struct bw_agent *a, const char *name, struct bw_secrets *out,
			  struct bw_cfg_error *err)
{
	char path[PATH_MAX + BW_NAME_MAX + 32];

	snprintf(path, sizeof(path), "%s/secrets/%s.secrets", a->opts.config_dir, name);
	if (access(path, F_OK) != 0 && errno == ENOENT) {
		memset(out, 0, sizeof(*out));
		return 1;
	}
	return bw_secrets_load(path, out, err) == 0 ? 0 : -1;
}

static void device_error(void *ctx, const struct bw_cfg_error *err)
{
	(void)ctx;
	bw_warn("device profile %s:%d: %s", err->file, err->line, err->msg);
}

static int cmp_conn(const void *x, const void *y)
{
	const struct bw_conn *const *a = x, *const *b = y;

	return strcmp((*a)->name, (*b)->name);
}

/* Does a file name end in suffix, with a non-empty stem that fits a connection name? */
static int stem_of(const char *fname, const char *suffix, char *stem, size_t len)
{
	size_t n = strlen(fname), s = strlen(suffix);

	if (n <= s || strcmp(fname + n - s, suffix) != 0 || n - s >= len || fname[0] == '.')
		return -1;
	memcpy(stem, fname, n - s);
	stem[n - s] = '\0';
	return 0;
}

/* The connections' stopping barrier: the policy host's tunnel_stopping actions. */
static void await_policies(void *ctx, const char *conn, void (*done)(void *done_ctx), void *done_ctx)
{
	struct bw_agent *a = ctx;

	bw_policy_host_await_stopping(a->policies, conn, BW_POLICY_STOPPING_TIMEOUT_S, done, done_ctx);
}

static void load_one(struct bw_agent *a, const char *name, const char *path)
{
	struct bw_conn *c = bw_agent_find(a, name);
	struct bw_conn_config cfg;
	struct bw_cfg_error err;
	int rc;

	rc = bw_conn_config_load(path, &a->devices, &cfg, &err);
	if (!c) {
		struct bw_conn **n = realloc(a->conns, (a->n_conns + 1) * sizeof(*n));

		if (!n || !(c = bw_conn_new(a, name, path))) {
			bw_err("out of memory loading %s", path);
			if (n)
				a->conns = n;
			return;
		}
		a->conns = n;
		a->conns[a->n_conns++] = c;
		c->stopping_barrier.ctx = a;
		c->stopping_barrier.await = await_policies;
	}
	c->seen = true;
	if (rc != 0) {
		c->cfg_err = err;
		if (c->valid || c->state != BW_CONN_INVALID) {
			char ign[128];

			bw_conn_stop(c, "stopped", ign, sizeof(ign));
			bw_log(BW_LOG_ERROR, c->name, "%s:%d: %s", err.file, err.line, err.msg);
		}
		c->valid = false;
		if (c->state != BW_CONN_STOPPING)
			bw_conn_set_state(c, BW_CONN_INVALID, "configuration error");
		return;
	}
	if (c->valid && memcmp(&c->cfg, &cfg, sizeof(cfg)) == 0)
		return;
	if (c->valid && c->state != BW_CONN_DOWN && c->state != BW_CONN_INVALID)
		bw_log(BW_LOG_INFO, c->name, "configuration changed; it applies from the next start");
	c->cfg = cfg;
	c->valid = true;
	if (c->state == BW_CONN_INVALID)
		bw_conn_set_state(c, BW_CONN_DOWN, "configuration fixed");
}

static void load_connections(struct bw_agent *a)
{
	char dir[PATH_MAX + 16], path[PATH_MAX + 16 + 256 + 2], name[BW_NAME_MAX];
	struct dirent *de;
	DIR *d;

	for (size_t i = 0; i < a->n_conns; i++)
		a->conns[i]->seen = false;
	snprintf(dir, sizeof(dir), "%s/connections", a->opts.config_dir);
	d = opendir(dir);
	if (!d && errno != ENOENT)
		bw_warn("cannot read %s: %s", dir, strerror(errno));
	while (d && (de = readdir(d))) {
		if (stem_of(de->d_name, ".conf", name, sizeof(name)) != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		load_one(a, name, path);
	}
	if (d)
		closedir(d);
	/* Connections whose file went away: stop them, then forget them. */
	for (size_t i = 0; i < a->n_conns;) {
		struct bw_conn *c = a->conns[i];

		if (c->seen) {
			i++;
			continue;
		}
		if (c->state != BW_CONN_DOWN && c->state != BW_CONN_INVALID && c->state != BW_CONN_FAILED &&
		    c->state != BW_CONN_NEEDS_SECRET) {
			char ign[128];

			bw_log(BW_LOG_INFO, c->name, "configuration file removed; stopping");
			bw_conn_stop(c, "stopped", ign, sizeof(ign));
			if (c->state != BW_CONN_DOWN) {
				i++;	/* forgotten at a later reload, once down */
				continue;
			}
		}
		bw_info("connection %s removed", c->name);
		bw_conn_free(c);
		memmove(&a->conns[i], &a->conns[i + 1], (a->n_conns - i - 1) * sizeof(a->conns[0]));
		a->n_conns--;
	}
	if (a->n_conns)
		qsort(a->conns, a->n_conns, sizeof(a->conns[0]), cmp_conn);
}

static void load_agent_config(struct bw_agent *a)
{
	char path[PATH_MAX + 16];
	struct bw_cfg_error err;
	struct bw_agent_config cfg;

	snprintf(path, sizeof(path), "%s/burrow.conf", a->opts.config_dir);
	bw_agent_config_defaults(&cfg);
	if (access(path, F_OK) == 0 && bw_agent_config_load(path, &cfg, &err) != 0) {
		bw_err("%s:%d: %s; keeping the previous agent settings", err.file, err.line, err.msg);
		return;
	}
	a->cfg = cfg;
	if (a->opts.log_level < 0)
		bw_log_set_level((enum bw_log_level)cfg.log_level);
}

void bw_agent_reload(struct bw_agent *a, const char *why)
{
	bw_info("reloading configuration (%s)", why);
	load_agent_config(a);
	bw_devices_free(&a->devices);
	bw_devices_load_dir(a->opts.devices_dir, &a->devices, device_error, a);
	load_connections(a);
	bw_policy_host_reload(a->policies);
	bw_events_emitf(&a->events, "reload", NULL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
	struct bw_agent *a = w->data;

	(void)revents;
	if (w->signum == SIGHUP) {
		bw_agent_reload(a, "SIGHUP");
		return;
	}
	bw_info("signal %d: stopping", w->signum);
	a->stopping = true;
	ev_break(loop, EVBREAK_ALL);
}

/* Once a second: the speed figures of `burrow status`. */
static void on_stats(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_agent *a = w->data;

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < a->n_conns; i++) {
		struct bw_conn *c = a->conns[i];
		uint64_t in, out;

		bw_ike_conn_bytes(c, &in, &out);
		c->rate_in = in >= c->last_bytes_in ? (double)(in - c->last_bytes_in) * 8 : 0;
		c->rate_out = out >= c->last_bytes_out ? (double)(out - c->last_bytes_out) * 8 : 0;
		c->last_bytes_in = in;
		c->last_bytes_out = out;
		if (c->rate_in > c->max_rate_in)
			c->max_rate_in = c->rate_in;
		if (c->rate_out > c->max_rate_out)
			c->max_rate_out = c->rate_out;
	}
}

static void on_net_check(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct bw_agent *a = w->data;

	(void)loop;
	(void)revents;
	for (size_t i = 0; i < a->n_conns; i++)
		bw_ike_conn_network_changed(a->conns[i]);
}

/* Network events are checked against the tunnels from the loop, not inside the emit. */
static void on_event(void *ctx, json_t *ev)
{
	struct bw_agent *a = ctx;
	const char *name = json_string_value(json_object_get(ev, "name"));

	if (name && strcmp(name, "network") == 0 && !ev_is_active(&a->net_timer)) {
		ev_timer_set(&a->net_timer, 0.05, 0.0);
		ev_timer_start(a->loop, &a->net_timer);
	}
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (bw_strlcpy(buf, path, sizeof(buf)) != 0)
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) != 0 && errno != EEXIST)
		return -errno;
	return 0;
}

int bw_agent_init(struct bw_agent *a, struct ev_loop *loop, const struct bw_agent_opts *opts)
{
	int rc;

	memset(a, 0, sizeof(*a));
	a->loop = loop;
	a->opts = *opts;
	a->started = time(NULL);
	bw_events_init(&a->events);
	bw_agent_config_defaults(&a->cfg);
	bw_log_set_sink(log_sink, a);

	if ((rc = mkdir_p(a->opts.state_dir, 0700)) != 0) {
		bw_err("cannot create the state directory %s: %s", a->opts.state_dir, strerror(-rc));
		return rc;
	}
	load_agent_config(a);
	bw_devices_load_dir(a->opts.devices_dir, &a->devices, device_error, a);
	load_connections(a);
	ike_dns_read_env();
	/* A previous run that crashed may have left interfaces and routes behind. */
	for (size_t i = 0; i < a->n_conns; i++) {
		bw_sa_backends_cleanup_stale(a->conns[i]->name, a->opts.state_dir);
		ike_dns_cleanup_stale(a->conns[i]->name, a->opts.state_dir);
	}

	rc = bw_ctl_server_open(a, a->opts.socket_path, &a->ctl);
	if (rc != 0)
		return rc;
	rc = bw_file_watch_open(a, &a->watch);
	if (rc != 0)
		bw_warn("file changes will not be picked up automatically: %s; use burrow reload",
			strerror(-rc));

	ev_signal_init(&a->sig_term, on_signal, SIGTERM);
	ev_signal_init(&a->sig_int, on_signal, SIGINT);
	ev_signal_init(&a->sig_hup, on_signal, SIGHUP);
	a->sig_term.data = a->sig_int.data = a->sig_hup.data = a;
	ev_signal_start(loop, &a->sig_term);
	ev_signal_start(loop, &a->sig_int);
	ev_signal_start(loop, &a->sig_hup);
	ev_timer_init(&a->net_timer, on_net_check, 0.05, 0.0);
	a->net_timer.data = a;
	bw_events_subscribe(&a->events, on_event, a);
	ev_timer_init(&a->stats_timer, on_stats, 1.0, 1.0);
	a->stats_timer.data = a;
	ev_timer_start(loop, &a->stats_timer);

	{
		char pdir[PATH_MAX + 16], defaults[PATH_MAX + 32];

		/* The shipped defaults.lua sits beside the device profiles (share/burrow/). */
		snprintf(pdir, sizeof(pdir), "%s/policies", a->opts.config_dir);
		snprintf(defaults, sizeof(defaults), "%s/../policies/defaults.lua", a->opts.devices_dir);
		a->policies = bw_policy_host_new(a, pdir, defaults);
	}
	/* After the policy host: the location rules live in the policies. */
	a->sources = bw_watch_open(a, bw_policy_host_watch_sink(a->policies));
	bw_info("burrowd %s started: %zu connection(s), %zu device profile(s)", BURROW_VERSION,
		a->n_conns, a->devices.n);
	bw_events_emitf(&a->events, "start", NULL);
	return 0;
}

void bw_agent_shutdown(struct bw_agent *a)
{
	for (size_t i = 0; i < a->n_conns; i++) {
		char ign[128];

		bw_conn_stop(a->conns[i], "stopped", ign, sizeof(ign));
	}
	/* Stopping is synchronous (deletes are sent, the datapath undone); one more turn of the
	 * loop lets the engine free what it tore down. */
	ev_run(a->loop, EVRUN_NOWAIT);
	bw_watch_close(a->sources);
	a->sources = NULL;
	bw_policy_host_free(a->policies);
	a->policies = NULL;
	ike_sockets_close();
	ike_resolve_close();
	bw_file_watch_close(a->watch);
	bw_ctl_server_close(a->ctl);
	a->ctl = NULL;
	bw_log_set_sink(NULL, NULL);
	for (size_t i = 0; i < a->n_conns; i++)
		bw_conn_free(a->conns[i]);
	free(a->conns);
	a->conns = NULL;
	a->n_conns = 0;
	bw_devices_free(&a->devices);
	bw_events_free(&a->events);
	ev_signal_stop(a->loop, &a->sig_term);
	ev_signal_stop(a->loop, &a->sig_int);
	ev_signal_stop(a->loop, &a->sig_hup);
	ev_timer_stop(a->loop, &a->stats_timer);
	ev_timer_stop(a->loop, &a->net_timer);
	bw_info("burrowd stopped");
}

/* The control socket server: accepts clients, reads newline-delimited requests, runs the
 * handlers, queues replies, and keeps follow streams and "wait until up" requests open. A
 * waiting client observes its connections (bw_conn_observe) and is answered on the state
 * change that settles them, not on a timer. */
#include "ctl_server.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ctl_proto.h"
#include "diag/doctor.h"
#include "diag/report.h"
#include "lua/policy_host.h"
#include "proc.h"
#include "util.h"
#include "watch/watch.h"

#define WAIT_LIMIT_S 180.0
#define DIAG_LIMIT_S 60	/* a doctor or report worker is stopped after this */
#define DIAG_NICE 10	/* and runs at this nice level */

enum follow_kind { FOLLOW_NONE, FOLLOW_EVENTS, FOLLOW_LOG };
enum wait_kind { WAIT_NONE, WAIT_START, WAIT_STOP, WAIT_RESTART };

struct ctl_client {
	struct bw_ctl_server *srv;
	int fd;
	ev_io rio, wio;
	char *rbuf;
	size_t rlen, rcap;
	char *wbuf;
	size_t wlen, wcap;
	bool closing;		/* close once the write buffer drained */

	enum follow_kind follow;
	char follow_conn[BW_NAME_MAX];
	enum bw_log_level follow_level;

	enum wait_kind wait;
	json_t *wait_names;	/* array of connection names, each observed */
	ev_timer wait_limit;	/* one-shot: gives up after WAIT_LIMIT_S */
	ev_timer wait_kick;	/* one-shot, armed by a notification: restart starts what is down */
	bool deferred;		/* a doctor or report worker will answer (diag_start) */

	struct ctl_client *next;
};

struct bw_ctl_server {
	struct bw_agent *agent;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;
	ev_io io;
	gid_t burrow_gid;
	bool have_gid;
	struct ctl_client *clients;
};

static void client_free(struct ctl_client *cl);

static void queue(struct ctl_client *cl, char *line)
{
	size_t n;

	if (!line)
		return;
	n = strlen(line);
	/* A follower that does not read is cut off rather than growing without bound. */
	if (cl->wlen + n > 4u << 20) {
		free(line);
		cl->closing = true;
		cl->wlen = 0;
		return;
	}
	if (cl->wlen + n > cl->wcap) {
		size_t cap = (cl->wlen + n) * 2;
		char *b = realloc(cl->wbuf, cap);

		if (!b) {
			free(line);
			cl->closing = true;
			return;
		}
		cl->wbuf = b;
		cl->wcap = cap;
	}
	memcpy(cl->wbuf + cl->wlen, line, n);
	cl->wlen += n;
	free(line);
	ev_io_start(cl->srv->agent->loop, &cl->wio);
}

static void reply_ok(struct ctl_client *cl, json_t *result)
{
	queue(cl, bw_ctl_reply_ok(result));
}

static void reply_err(struct ctl_client *cl, const char *code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_err(struct ctl_client *cl, const char *code, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	queue(cl, bw_ctl_reply_error(code, msg));
}

/* Resolves names/group/all of a start/stop/restart request to a list of connections. */
static json_t *select_conns(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	struct bw_agent *a = cl->srv->agent;
	json_t *names = bw_ctl_arg(req, "names"), *sel = json_array(), *v;
	const char *group = bw_ctl_arg_str(req, "group");
	size_t i;

	if (bw_ctl_arg_bool(req, "all")) {
		/* An invalid connection never runs: --all leaves it out rather than fail on it. */
		for (i = 0; i < a->n_conns; i++)
			if (a->conns[i]->valid)
				json_array_append_new(sel, json_string(a->conns[i]->name));
		return sel;
	}
	if (group) {
		for (i = 0; i < a->n_conns; i++)
			if (a->conns[i]->valid && strcmp(a->conns[i]->cfg.group, group) == 0)
				json_array_append_new(sel, json_string(a->conns[i]->name));
		if (json_array_size(sel) == 0) {
			reply_err(cl, "unknown-group", "no connection is in group %s; burrow list shows the groups",
				  group);
			json_decref(sel);
			return NULL;
		}
	}
	json_array_foreach(names, i, v) {
		if (!bw_agent_find(a, json_string_value(v))) {
			reply_err(cl, "unknown-connection",
				  "no connection named %s; burrow list shows the configured connections",
				  json_string_value(v));
			json_decref(sel);
			return NULL;
		}
		json_array_append(sel, v);
	}
	if (json_array_size(sel) == 0) {
		reply_err(cl, "usage", "name a connection, a group or --all");
		json_decref(sel);
		return NULL;
	}
	return sel;
}

static bool settled(const struct bw_conn *c, enum wait_kind w)
{
	switch (c->state) {
	case BW_CONN_UP:
		return w == WAIT_START || w == WAIT_RESTART;
	case BW_CONN_FAILED:
	case BW_CONN_NEEDS_SECRET:
	case BW_CONN_INVALID:
		return true;
	case BW_CONN_DOWN:
		return w == WAIT_STOP;
	default:
		return false;
	}
}

static void on_conn_state(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone);

/* The client waits no more: its observers go, its timers stop. */
static void wait_end(struct ctl_client *cl)
{
	struct bw_agent *a = cl->srv->agent;
	json_t *v;
	size_t i;

	json_array_foreach(cl->wait_names, i, v) {
		struct bw_conn *c = bw_agent_find(a, json_string_value(v));

		if (c)
			bw_conn_unobserve(c, on_conn_state, cl);
	}
	json_decref(cl->wait_names);
	cl->wait_names = NULL;
	cl->wait = WAIT_NONE;
	ev_timer_stop(a->loop, &cl->wait_limit);
	ev_timer_stop(a->loop, &cl->wait_kick);
}

/* Replies to a waiting start/stop/restart: ok when every connection reached the goal. */
static void wait_finish(struct ctl_client *cl, bool timed_out)
{
	struct bw_agent *a = cl->srv->agent;
	json_t *res = json_array(), *v;
	bool all_ok = !timed_out, needs_secret = false;
	char first_err[1024] = "";
	size_t i;

	json_array_foreach(cl->wait_names, i, v) {
		struct bw_conn *c = bw_agent_find(a, json_string_value(v));
		json_t *o;

		if (!c)
			continue;
		o = bw_conn_to_json(c, true);
		json_array_append_new(res, o);
		if ((cl->wait == WAIT_STOP && c->state != BW_CONN_DOWN) ||
		    (cl->wait != WAIT_STOP && c->state != BW_CONN_UP)) {
			all_ok = false;
			if (!first_err[0]) {
				if (c->state == BW_CONN_NEEDS_SECRET) {
					snprintf(first_err, sizeof(first_err), "%s", c->fail_error);
					needs_secret = true;
				}
				else if (c->fail_error[0] && c->state == BW_CONN_FAILED)
					snprintf(first_err, sizeof(first_err), "%s failed: %s", c->name,
						 c->fail_error);
				else
					snprintf(first_err, sizeof(first_err), "%s is %s%s", c->name,
						 bw_conn_state_name(c->state),
						 timed_out ? " after waiting too long; see burrow log" : "");
			}
		}
	}
	if (all_ok)
		reply_ok(cl, res);
	else {
		json_decref(res);
		reply_err(cl, needs_secret ? "needs-secret" : "failed", "%s", first_err);
	}
	wait_end(cl);
}

/* Answers the client once every connection it waits for has settled. */
static void wait_check(struct ctl_client *cl)
{
	json_t *v;
	size_t i;

	if (cl->wait == WAIT_NONE)
		return;	/* answered already */
	json_array_foreach(cl->wait_names, i, v) {
		struct bw_conn *c = bw_agent_find(cl->srv->agent, json_string_value(v));

		if (c && !settled(c, cl->wait))
			return;
	}
	wait_finish(cl, false);
}

/* Starts each connection; on failure err holds the reason and *failed the connection. */
static void start_names(struct ctl_client *cl, json_t *names, char *err, size_t errlen, struct bw_conn **failed)
{
	json_t *v;
	size_t i;

	json_array_foreach(names, i, v) {
		struct bw_conn *c = bw_agent_find(cl->srv->agent, json_string_value(v));

		if (c && bw_conn_start(c, err, errlen) != 0 && !*failed)
			*failed = c;
	}
}

/* Restart: starts what is down, from the loop rather than inside the state change. */
static void on_wait_kick(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct ctl_client *cl = bw_container_of(w, struct ctl_client, wait_kick);
	json_t *v;
	size_t i;

	(void)loop;
	(void)revents;
	json_array_foreach(cl->wait_names, i, v) {
		struct bw_conn *c = bw_agent_find(cl->srv->agent, json_string_value(v));
		char err[512];

		if (c && c->state == BW_CONN_DOWN && !cl->srv->agent->stopping &&
		    bw_conn_start(c, err, sizeof(err)) != 0) {
			/* A start that fails into needs-secret was answered by its state change. */
			if (cl->wait != WAIT_NONE) {
				reply_err(cl, "failed", "%s", err);
				wait_end(cl);
			}
			return;
		}
		if (cl->wait == WAIT_NONE)
			return;
	}
	wait_check(cl);
}

static void kick(struct ctl_client *cl)
{
	if (!ev_is_active(&cl->wait_kick)) {
		ev_timer_set(&cl->wait_kick, 0.0, 0.0);
		ev_timer_start(cl->srv->agent->loop, &cl->wait_kick);
	}
}

static void on_wait_limit(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	wait_finish(bw_container_of(w, struct ctl_client, wait_limit), true);
}

/* A connection the client waits for changed state, or is about to be freed. */
static void on_conn_state(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	struct ctl_client *cl = ctx;
	json_t *v;
	size_t i;

	(void)from;
	if (gone) {
		bw_conn_unobserve(c, on_conn_state, cl);
		json_array_foreach(cl->wait_names, i, v)
			if (strcmp(json_string_value(v), c->name) == 0) {
				json_array_remove(cl->wait_names, i);
				break;
			}
	}
	if (cl->wait == WAIT_RESTART && !gone && c->state == BW_CONN_DOWN)
		kick(cl);
	else
		wait_check(cl);
}

static void begin_wait(struct ctl_client *cl, enum wait_kind kind, json_t *names)
{
	struct bw_agent *a = cl->srv->agent;
	json_t *v;
	size_t i;

	cl->wait = kind;
	cl->wait_names = names;
	json_array_foreach(names, i, v) {
		struct bw_conn *c = bw_agent_find(a, json_string_value(v));

		if (c && bw_conn_observe(c, on_conn_state, cl) != 0) {
			reply_err(cl, "internal", "out of memory while waiting for %s", c->name);
			wait_end(cl);
			return;
		}
	}
	ev_timer_init(&cl->wait_limit, on_wait_limit, WAIT_LIMIT_S, 0.0);
	ev_timer_start(a->loop, &cl->wait_limit);
	if (kind == WAIT_RESTART)
		kick(cl);
	else
		wait_check(cl);
}

static void handle_startstop(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	struct bw_agent *a = cl->srv->agent;
	json_t *names = select_conns(cl, req), *v;
	json_t *wait = bw_ctl_arg(req, "wait");
	bool do_wait = !wait || json_is_true(wait);
	struct bw_conn *failed = NULL;
	char err[512] = "";
	size_t i;

	if (!names)
		return;
	if (req->cmd == BW_CTL_START) {
		start_names(cl, names, err, sizeof(err), &failed);
	} else {
		json_array_foreach(names, i, v) {
			struct bw_conn *c = bw_agent_find(a, json_string_value(v));

			if (c)
				bw_conn_stop(c, "stopped", err, sizeof(err));
		}
	}
	if (failed) {
		reply_err(cl, failed->state == BW_CONN_NEEDS_SECRET ? "needs-secret" : "failed", "%s", err);
		json_decref(names);
		return;
	}
	if (!do_wait) {
		reply_ok(cl, names);
		return;
	}
	begin_wait(cl, req->cmd == BW_CTL_START ? WAIT_START :
		       req->cmd == BW_CTL_STOP ? WAIT_STOP : WAIT_RESTART, names);
}

static void handle_log(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	const char *name = bw_ctl_arg_str(req, "name");
	struct bw_conn *c = name ? bw_agent_find(cl->srv->agent, name) : NULL;
	const char *lvl = bw_ctl_arg_str(req, "level");
	int level = lvl ? bw_log_level_parse(lvl) : BW_LOG_INFO;
	json_t *lines = bw_ctl_arg(req, "lines");

	if (!c) {
		reply_err(cl, "unknown-connection", "no connection named %s; burrow list shows them",
			  name ? name : "(none)");
		return;
	}
	if (level < 0) {
		reply_err(cl, "usage", "unknown log level %s; use error, warn, info, debug or trace", lvl);
		return;
	}
	reply_ok(cl, bw_conn_log_json(c, (enum bw_log_level)level,
				      lines ? (size_t)json_integer_value(lines) : 0));
	if (bw_ctl_arg_bool(req, "follow")) {
		cl->follow = FOLLOW_LOG;
		cl->follow_level = (enum bw_log_level)level;
		bw_strlcpy(cl->follow_conn, c->name, sizeof(cl->follow_conn));
	}
}

static void handle_emit(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	json_t *ev = json_deep_copy(bw_ctl_arg(req, "event"));
	const char *name = json_string_value(json_object_get(ev, "name"));

	if (!ev || !name) {
		json_decref(ev);
		reply_err(cl, "usage", "an event needs a name, e.g. burrow emit ssid ssid=CafeFree");
		return;
	}
	if (!bw_event_name_known(name)) {
		reply_err(cl, "usage", "unknown event %s; see the events table in docs/policies.md", name);
		json_decref(ev);
		return;
	}
	json_object_set_new(ev, "injected", json_true());
	bw_events_emit(&cl->srv->agent->events, ev);
	reply_ok(cl, NULL);
}

static void handle_devices(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	const struct bw_devices *d = &cl->srv->agent->devices;
	const char *id = bw_ctl_arg_str(req, "id");
	json_t *arr;

	if (id) {
		const struct bw_device *dev = bw_devices_find(d, id);

		if (!dev) {
			reply_err(cl, "unknown-device", "no device profile %s; burrow devices lists them", id);
			return;
		}
		reply_ok(cl, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s%}", "id", dev->id, "name", dev->name,
				       "vendor", dev->vendor, "source", dev->source, "file", dev->file,
				       "text", dev->text ? dev->text : "", dev->text_len));
		return;
	}
	arr = json_array();
	for (size_t i = 0; i < d->n; i++)
		json_array_append_new(arr, json_pack("{s:s,s:s,s:s}", "id", d->items[i].id, "name",
						     d->items[i].name, "vendor", d->items[i].vendor));
	reply_ok(cl, arr);
}

/* A secret typed at `burrow start`: kept in memory for the next start only, never logged. */
static void handle_secret(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	const char *name = bw_ctl_arg_str(req, "name"), *key = bw_ctl_arg_str(req, "key");
	const char *value = bw_ctl_arg_str(req, "value");
	struct bw_conn *c = name ? bw_agent_find(cl->srv->agent, name) : NULL;
	size_t n = value ? strlen(value) : 0;

	if (!c || !key || !value) {
		reply_err(cl, "usage", "a secret needs a connection name, a key and a value");
		return;
	}
	if (n == 0 || n >= sizeof(c->prompted.psk)) {
		reply_err(cl, "usage", "the secret must be 1 to %zu characters long", sizeof(c->prompted.psk) - 1);
		return;
	}
	if (strcmp(key, "psk") == 0) {
		memcpy(c->prompted.psk, value, n + 1);
		c->prompted.psk_len = n;
		c->prompted.has_psk = true;
	} else if (strcmp(key, "xauth_password") == 0) {
		memcpy(c->prompted.xauth_password, value, n + 1);
		c->prompted.has_xauth_password = true;
	} else if (strcmp(key, "private_key_passphrase") == 0) {
		memcpy(c->prompted.private_key_passphrase, value, n + 1);
		c->prompted.has_private_key_passphrase = true;
	} else if (strcmp(key, "pkcs12_password") == 0) {
		memcpy(c->prompted.pkcs12_password, value, n + 1);
		c->prompted.has_pkcs12_password = true;
	} else {
		reply_err(cl, "usage", "unknown secret %s; burrow asks for psk, xauth_password, "
			  "private_key_passphrase or pkcs12_password", key);
		return;
	}
	if (c->state == BW_CONN_NEEDS_SECRET)
		bw_conn_set_state(c, BW_CONN_DOWN, "secret entered");
	bw_log(BW_LOG_INFO, c->name, "%s entered at the terminal (kept in memory for the next start only)", key);
	reply_ok(cl, NULL);
}

/* ---- doctor and report: deferred replies --------------------------------------------------
 * Both can take seconds (doctor's probe waits for the gateway, report runs commands and tar),
 * and the loop also carries the userspace datapath. So each runs in a forked copy of the
 * agent (proc.h, bw_child_fork): the copy sees the agent's state as it was at the fork, writes
 * the whole reply line into a pipe and leaves with _exit; the loop answers the client when the
 * copy has exited. A client that goes away meanwhile only drops the answer.
 * The copy has one thread, the one that forked: malloc and stdio are fork-safe in glibc; the
 * resolver's helper thread (getaddrinfo_a, ike_resolve.c) is not copied, and doctor's own
 * lookup starts a new one in the copy, bounded by BW_DOCTOR_RESOLVE_MS; if a lock it needs
 * was held at the fork, the worker's time limit still ends it. The copy never runs the loop,
 * never reads the IKE sockets or the TUN device it inherited, and logs to stderr or syslog
 * only (no connection log, no follower). */

struct diag_job {
	struct bw_agent *agent;
	enum bw_ctl_cmd cmd;
	const char *arg;	/* doctor's connection name or report's path; may be NULL */
	uid_t uid;
	gid_t gid;
	pid_t agent_pid;
};

/* In the worker: the reply line. Nothing here may reach the loop or the clients. */
static char *diag_work(void *arg)
{
	const struct diag_job *j = arg;
	char err[1024];
	json_t *res;

	bw_log_set_sink(NULL, NULL);
	/* The datapath in the agent comes first when the CPU is busy; tar and gzip inherit this. */
	if (setpriority(PRIO_PROCESS, 0, DIAG_NICE) != 0)
		bw_debug("control: the %s worker keeps its priority: %s", bw_ctl_cmd_name(j->cmd), strerror(errno));
	bw_doctor_set_agent_pid(j->agent_pid);
	if (j->cmd == BW_CTL_DOCTOR) {
		res = bw_doctor_request(j->agent, j->arg, err, sizeof(err));
		return res ? bw_ctl_reply_ok(res) : bw_ctl_reply_error("unknown-connection", err);
	}
	res = bw_report_request_as(j->agent, j->arg, j->uid, j->gid, err, sizeof(err));
	return res ? bw_ctl_reply_ok(res) : bw_ctl_reply_error("failed", err);
}

static void diag_done(void *ctx, uint64_t token, int status, const char *reason, const char *out, size_t len)
{
	struct ctl_client *cl = ctx;
	const char *what = bw_ctl_cmd_name((enum bw_ctl_cmd)token);
	char *line;

	cl->deferred = false;
	if (status == 0 && strcmp(reason, "exited") == 0 && len > 0 && memchr(out, '\n', len) == out + len - 1 &&
	    (line = strndup(out, len))) {
		queue(cl, line);
	} else if (strcmp(reason, "timeout") == 0) {
		reply_err(cl, "failed", "burrow %s did not finish within %d s and was stopped", what, DIAG_LIMIT_S);
	} else {
		reply_err(cl, "internal", "burrow %s ended without an answer (%s, status %d); see the agent's log",
			  what, reason, status);
	}
	bw_debug("control: %s answered", what);
}

static void diag_start(struct ctl_client *cl, const struct bw_ctl_request *req)
{
	struct diag_job job = { .agent = cl->srv->agent, .cmd = req->cmd, .uid = (uid_t)-1, .gid = (gid_t)-1,
				.agent_pid = getpid() };
	char err[256];

	if (req->cmd == BW_CTL_DOCTOR) {
		job.arg = bw_ctl_arg_str(req, "name");
	} else {
		struct ucred cr;
		socklen_t crlen = sizeof(cr);

		/* The file is created with the asker's rights, so that it is theirs. */
		if (getsockopt(cl->fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) != 0) {
			reply_err(cl, "internal", "cannot tell who asked for the report");
			return;
		}
		job.arg = bw_ctl_arg_str(req, "path");
		job.uid = cr.uid;
		job.gid = cr.gid;
	}
	/* job lives on this stack: the worker has its own copy of it from the fork. */
	if (bw_child_fork(job.agent->loop, diag_work, &job, DIAG_LIMIT_S, diag_done, cl, (uint64_t)req->cmd,
			  err, sizeof(err)) != 0) {
		reply_err(cl, "internal", "cannot start burrow %s: %s", bw_ctl_cmd_name(req->cmd), err);
		return;
	}
	cl->deferred = true;
}

static void dispatch(struct ctl_client *cl, struct bw_ctl_request *req)
{
	struct bw_agent *a = cl->srv->agent;
	const char *name;
	struct bw_conn *c;
	json_t *arr;

	switch (req->cmd) {
	case BW_CTL_LIST:
		arr = json_array();
		for (size_t i = 0; i < a->n_conns; i++)
			json_array_append_new(arr, bw_conn_to_json(a->conns[i], false));
		reply_ok(cl, arr);
		return;
	case BW_CTL_STATUS:
		name = bw_ctl_arg_str(req, "name");
		if (name) {
			if (!(c = bw_agent_find(a, name))) {
				reply_err(cl, "unknown-connection",
					  "no connection named %s; burrow list shows them", name);
				return;
			}
			reply_ok(cl, bw_conn_to_json(c, true));
			return;
		}
		arr = json_array();
		for (size_t i = 0; i < a->n_conns; i++)
			json_array_append_new(arr, bw_conn_to_json(a->conns[i], true));
		reply_ok(cl, arr);
		return;
	case BW_CTL_START:
	case BW_CTL_STOP:
	case BW_CTL_RESTART:
		handle_startstop(cl, req);
		return;
	case BW_CTL_LOG:
		handle_log(cl, req);
		return;
	case BW_CTL_EXPLAIN:
		name = bw_ctl_arg_str(req, "name");
		if (!name || !(c = bw_agent_find(a, name))) {
			reply_err(cl, "unknown-connection", "no connection named %s; burrow list shows them",
				  name ? name : "(none)");
			return;
		}
		if (!c->valid)
			reply_ok(cl, json_pack("{s:s,s:s,s:o}", "connection", c->name, "code", "invalid",
					       "explanation", json_sprintf("%s:%d: %s", c->cfg_err.file,
									   c->cfg_err.line, c->cfg_err.msg)));
		else if (!c->fail_code[0])
			reply_ok(cl, json_pack("{s:s,s:n}", "connection", c->name, "code"));
		else
			reply_ok(cl, json_pack("{s:s,s:s,s:s,s:s,s:I}", "connection", c->name, "code",
					       c->fail_code, "error", c->fail_error, "explanation",
					       c->fail_explanation, "time", (json_int_t)c->fail_time));
		return;
	case BW_CTL_EVENTS:
		reply_ok(cl, bw_events_recent(&a->events));
		if (bw_ctl_arg_bool(req, "follow"))
			cl->follow = FOLLOW_EVENTS;
		return;
	case BW_CTL_EMIT:
		handle_emit(cl, req);
		return;
	case BW_CTL_RELOAD: {
		const json_t *perr;

		bw_agent_reload(a, "burrow reload");
		arr = json_array();
		for (size_t i = 0; i < a->n_conns; i++)
			json_array_append_new(arr, bw_conn_to_json(a->conns[i], false));
		perr = bw_policy_host_load_errors(a->policies);
		reply_ok(cl, json_pack("{s:o,s:o}", "connections", arr, "policy_errors",
				       perr ? json_deep_copy(perr) : json_array()));
		return;
	}
	case BW_CTL_DEVICES:
		handle_devices(cl, req);
		return;
	case BW_CTL_VERSION_CMD:
		reply_ok(cl, json_pack("{s:s,s:i}", "version", BURROW_VERSION, "protocol", BW_CTL_VERSION));
		return;
	case BW_CTL_LOCATION: {
		const char *set = bw_ctl_arg_str(req, "set"), *loc;
		char err[256];

		if (!a->sources) {
			reply_err(cl, "not-available", "locations are off: the event sources did not start; see the log");
			return;
		}
		if ((set || bw_ctl_arg_bool(req, "auto")) &&
		    bw_watch_set_location(a->sources, set, err, sizeof(err)) != 0) {
			reply_err(cl, "usage", "%s", err);
			return;
		}
		loc = bw_watch_location(a->sources);
		reply_ok(cl, json_pack("{s:o,s:b,s:o}", "location", loc ? json_string(loc) : json_null(),
				       "manual", bw_watch_location_manual(a->sources), "facts",
				       bw_watch_facts(a->sources)));
		return;
	}
	case BW_CTL_SECRET:
		handle_secret(cl, req);
		return;
	case BW_CTL_DOCTOR:
	case BW_CTL_REPORT:
		diag_start(cl, req);
		return;
	case BW_CTL_N_CMDS:
		break;
	}
	reply_err(cl, "internal", "unhandled command");
}

static void process_lines(struct ctl_client *cl)
{
	char *nl;

	while (!cl->closing && cl->wait == WAIT_NONE && cl->follow == FOLLOW_NONE && !cl->deferred &&
	       (nl = memchr(cl->rbuf, '\n', cl->rlen))) {
		size_t len = (size_t)(nl - cl->rbuf);
		struct bw_ctl_request req;
		char err[256];

		if (bw_ctl_request_parse(cl->rbuf, len, &req, err, sizeof(err)) == 0) {
			bw_debug("control: %s", bw_ctl_cmd_name(req.cmd));
			dispatch(cl, &req);
			bw_ctl_request_clear(&req);
		} else {
			reply_err(cl, "bad-request", "%s", err);
		}
		memmove(cl->rbuf, nl + 1, cl->rlen - len - 1);
		cl->rlen -= len + 1;
	}
	if (cl->rlen > BW_CTL_MAX_LINE) {
		reply_err(cl, "bad-request", "request exceeds the limit of %d bytes", BW_CTL_MAX_LINE);
		cl->closing = true;
		cl->rlen = 0;
	}
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = bw_container_of(w, struct ctl_client, rio);
	ssize_t n;

	(void)loop;
	(void)revents;
	if (cl->rcap - cl->rlen < 4096) {
		size_t cap = cl->rcap ? cl->rcap * 2 : 8192;
		char *b;

		if (cap > BW_CTL_MAX_LINE * 2 + 8192)
			cap = BW_CTL_MAX_LINE * 2 + 8192;
		b = realloc(cl->rbuf, cap);
		if (!b) {
			client_free(cl);
			return;
		}
		cl->rbuf = b;
		cl->rcap = cap;
	}
	n = read(cl->fd, cl->rbuf + cl->rlen, cl->rcap - cl->rlen);
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		client_free(cl);
		return;
	}
	if (n < 0)
		return;
	cl->rlen += (size_t)n;
	process_lines(cl);
	if (cl->closing && cl->wlen == 0)
		client_free(cl);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
	struct ctl_client *cl = bw_container_of(w, struct ctl_client, wio);
	ssize_t n;

	(void)revents;
	n = write(cl->fd, cl->wbuf, cl->wlen);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		client_free(cl);
		return;
	}
	memmove(cl->wbuf, cl->wbuf + n, cl->wlen - (size_t)n);
	cl->wlen -= (size_t)n;
	if (cl->wlen == 0) {
		ev_io_stop(loop, &cl->wio);
		if (cl->closing)
			client_free(cl);
		else if (cl->wait == WAIT_NONE && cl->follow == FOLLOW_NONE && !cl->deferred)
			process_lines(cl);	/* pipelined requests waited for this reply */
	}
}

static bool peer_allowed(struct bw_ctl_server *s, int fd)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0)
		return false;
	if (cr.uid == 0 || cr.uid == geteuid())
		return true;
	if (s->have_gid) {
		struct passwd *pw = getpwuid(cr.uid);
		gid_t groups[64];
		int ng = 64;

		if (cr.gid == s->burrow_gid)
			return true;
		if (pw && getgrouplist(pw->pw_name, pw->pw_gid, groups, &ng) >= 0)
			for (int i = 0; i < ng; i++)
				if (groups[i] == s->burrow_gid)
					return true;
	}
	bw_warn("control: refused a client with uid %u: not root and not in group burrow", (unsigned)cr.uid);
	return false;
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
	struct bw_ctl_server *s = bw_container_of(w, struct bw_ctl_server, io);
	struct ctl_client *cl;
	int fd;

	(void)revents;
	fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return;
	if (!peer_allowed(s, fd)) {
		char *line = bw_ctl_reply_error("permission", "permission denied: run burrow as root or as a member of group burrow");

		if (line && write(fd, line, strlen(line)) < 0) {
			/* nothing more to do for a peer we refuse */
		}
		free(line);
		close(fd);
		return;
	}
	cl = calloc(1, sizeof(*cl));
	if (!cl) {
		close(fd);
		return;
	}
	cl->srv = s;
	cl->fd = fd;
	ev_io_init(&cl->rio, on_read, fd, EV_READ);
	ev_io_init(&cl->wio, on_write, fd, EV_WRITE);
	ev_timer_init(&cl->wait_limit, on_wait_limit, WAIT_LIMIT_S, 0.0);
	ev_timer_init(&cl->wait_kick, on_wait_kick, 0.0, 0.0);
	ev_io_start(loop, &cl->rio);
	cl->next = s->clients;
	s->clients = cl;
}

static void client_free(struct ctl_client *cl)
{
	struct bw_ctl_server *s = cl->srv;
	struct ctl_client **pp;

	for (pp = &s->clients; *pp; pp = &(*pp)->next)
		if (*pp == cl) {
			*pp = cl->next;
			break;
		}
	ev_io_stop(s->agent->loop, &cl->rio);
	ev_io_stop(s->agent->loop, &cl->wio);
	wait_end(cl);	/* a client that went away stops observing */
	if (cl->deferred)
		bw_child_forget(cl);	/* the worker runs on and is reaped; its answer is dropped */
	close(cl->fd);
	free(cl->rbuf);
	free(cl->wbuf);
	free(cl);
}

static void on_event(void *ctx, json_t *event)
{
	struct bw_ctl_server *s = ctx;

	for (struct ctl_client *cl = s->clients; cl; cl = cl->next)
		if (cl->follow == FOLLOW_EVENTS && !cl->closing)
			queue(cl, bw_ctl_reply_stream("event", json_incref(event)));
}

void bw_ctl_server_log_line(struct bw_ctl_server *s, const struct bw_conn *c,
			    enum bw_log_level level, const char *msg)
{
	for (struct ctl_client *cl = s->clients; cl; cl = cl->next)
		if (cl->follow == FOLLOW_LOG && !cl->closing && level <= cl->follow_level &&
		    strcmp(cl->follow_conn, c->name) == 0)
			queue(cl, bw_ctl_reply_stream("log", json_pack("{s:f,s:s,s:s}", "time",
								       ev_now(s->agent->loop), "level",
								       bw_log_level_name(level), "msg", msg)));
}

/* A socket file may be left over from a crash; one that still answers belongs to a live agent. */
static int claim_path(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	bw_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
	close(fd);
	if (rc == 0)
		return -EADDRINUSE;
	if (errno == ENOENT)
		return 0;
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	return 0;
}

int bw_ctl_server_open(struct bw_agent *a, const char *path, struct bw_ctl_server **out)
{
	struct bw_ctl_server *s = calloc(1, sizeof(*s));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct group *gr;
	int rc;

	if (!s)
		return -ENOMEM;
	s->agent = a;
	if (bw_strlcpy(s->path, path, sizeof(s->path)) != 0) {
		bw_err("the socket path %s is too long; choose a shorter --socket", path);
		free(s);
		return -ENAMETOOLONG;
	}
	rc = claim_path(path);
	if (rc == -EADDRINUSE) {
		bw_err("another burrowd is already listening on %s; stop it first", path);
		free(s);
		return rc;
	}
	s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0) {
		rc = -errno;
		free(s);
		return rc;
	}
	bw_strlcpy(sa.sun_path, path, sizeof(sa.sun_path));
	/* Create the socket with no access for others, then open it to the group. */
	mode_t old = umask(0177);
	rc = bind(s->fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0 || listen(s->fd, 16) != 0) {
		rc = -errno;
		bw_err("cannot listen on %s: %s; check that its directory exists and is writable",
		       path, strerror(-rc));
		close(s->fd);
		free(s);
		return rc;
	}
	gr = getgrnam("burrow");
	if (gr) {
		s->burrow_gid = gr->gr_gid;
		s->have_gid = true;
		if (chown(path, 0, gr->gr_gid) != 0)
			bw_warn("cannot give %s to group burrow: %s", path, strerror(errno));
	}
	chmod(path, 0660);
	ev_io_init(&s->io, on_accept, s->fd, EV_READ);
	ev_io_start(a->loop, &s->io);
	bw_events_subscribe(&a->events, on_event, s);
	*out = s;
	return 0;
}

void bw_ctl_server_close(struct bw_ctl_server *s)
{
	if (!s)
		return;
	bw_events_unsubscribe(&s->agent->events, on_event, s);
	while (s->clients)
		client_free(s->clients);
	ev_io_stop(s->agent->loop, &s->io);
	close(s->fd);
	unlink(s->path);
	free(s);
}

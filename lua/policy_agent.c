/* The policy host inside the real agent: connection actions through bw_conn_*, children
 * through policy_exec.c, the host woken by one libev timer, events from the event bus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "log.h"
#include "proc.h"
#include "policy_host.h"
#include "policy_priv.h"

struct restart_wait {
	char name[BW_NAME_MAX];
	char policy[64];
	double deadline;
};

struct agent_ctx {
	struct bw_agent *a;
	struct bw_policy_host *h;
	ev_timer wake;			/* runs the host: queued work and due timers */
	ev_timer restart_poll;		/* starts restarted connections once they are down */
	struct restart_wait *restarts;
	size_t n_restarts;
};

#define RESTART_WAIT_S 15.0

static double a_now(void *ctx)
{
	struct agent_ctx *x = ctx;

	return ev_now(x->a->loop);
}

static void a_arm(void *ctx, double at)
{
	struct agent_ctx *x = ctx;
	double delay = at - ev_now(x->a->loop);

	if (ev_is_active(&x->wake) && ev_timer_remaining(x->a->loop, &x->wake) <= (delay > 0 ? delay : 0))
		return;
	ev_timer_stop(x->a->loop, &x->wake);
	ev_timer_set(&x->wake, delay > 0 ? delay : 0, 0);
	ev_timer_start(x->a->loop, &x->wake);
}

static void on_wake(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent_ctx *x = w->data;

	(void)loop;
	(void)revents;
	bw_policy_host_run(x->h);
}

static struct bw_conn *find(struct agent_ctx *x, const char *name, char *err, size_t errlen)
{
	struct bw_conn *c = bw_agent_find(x->a, name);

	if (!c)
		snprintf(err, errlen, "no connection named %s; see burrow list", name);
	return c;
}

static int a_start(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct agent_ctx *x = ctx;
	struct bw_conn *c = find(x, name, err, errlen);

	if (!c)
		return -1;
	bw_log(BW_LOG_INFO, c->name, "policy %s: start", policy);
	return bw_conn_start(c, err, errlen);
}

static int a_stop(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct agent_ctx *x = ctx;
	struct bw_conn *c = find(x, name, err, errlen);

	if (!c)
		return -1;
	bw_log(BW_LOG_INFO, c->name, "policy %s: stop", policy);
	return bw_conn_stop(c, "stopped", err, errlen);
}

static void on_restart_poll(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct agent_ctx *x = w->data;
	double now = ev_now(loop);

	(void)revents;
	for (size_t i = 0; i < x->n_restarts;) {
		struct restart_wait *r = &x->restarts[i];
		struct bw_conn *c = bw_agent_find(x->a, r->name);
		char err[512];

		if (c && c->state == BW_CONN_STOPPING && now < r->deadline) {
			i++;
			continue;
		}
		if (c && bw_conn_start(c, err, sizeof(err)) != 0)
			bw_log(BW_LOG_WARN, c->name, "policy %s: restart: %s", r->policy, err);
		else if (!c)
			bw_warn("policy %s: restart %s: the connection went away", r->policy, r->name);
		x->restarts[i] = x->restarts[--x->n_restarts];
	}
	if (x->n_restarts == 0)
		ev_timer_stop(loop, w);
}

/* Restart: stop now, start once it is down (polled; stopping is bounded by the engine). */
static int a_restart(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct agent_ctx *x = ctx;
	struct bw_conn *c = find(x, name, err, errlen);
	struct restart_wait *n;

	if (!c)
		return -1;
	bw_log(BW_LOG_INFO, c->name, "policy %s: restart", policy);
	if (bw_conn_stop(c, "stopped", err, errlen) != 0)
		return -1;
	n = realloc(x->restarts, (x->n_restarts + 1) * sizeof(*n));
	if (!n) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	x->restarts = n;
	n = &x->restarts[x->n_restarts++];
	snprintf(n->name, sizeof(n->name), "%s", c->name);
	snprintf(n->policy, sizeof(n->policy), "%s", policy);
	n->deadline = ev_now(x->a->loop) + RESTART_WAIT_S;
	if (!ev_is_active(&x->restart_poll)) {
		ev_timer_set(&x->restart_poll, 0, 0.2);
		ev_timer_start(x->a->loop, &x->restart_poll);
	}
	return 0;
}

static json_t *a_connections(void *ctx)
{
	struct agent_ctx *x = ctx;
	json_t *arr = json_array();

	for (size_t i = 0; i < x->a->n_conns; i++)
		json_array_append_new(arr, bw_conn_to_json(x->a->conns[i], false));
	return arr;
}

static json_t *a_connection(void *ctx, const char *name)
{
	struct agent_ctx *x = ctx;
	struct bw_conn *c = bw_agent_find(x->a, name);

	return c ? bw_conn_to_json(c, false) : NULL;
}

static void child_done(void *ctx, uint64_t token, int status, const char *reason, const char *out,
		       size_t len)
{
	struct agent_ctx *x = ctx;

	bw_debug("policy child %llu: %s %d, %zu byte(s) of output", (unsigned long long)token, reason,
		 status, len);
	bw_policy_host_exec_done(x->h, token, status, reason, out, len);
}

static int a_exec(void *ctx, const struct bw_policy_exec_req *req, char *err, size_t errlen)
{
	struct agent_ctx *x = ctx;

	bw_log(BW_LOG_INFO, req->conn, "policy %s: %s", req->policy, req->what);
	return bw_child_spawn(x->a->loop, req->argv, req->env, req->timeout_s, child_done, x, req->token,
			      err, errlen);
}

static void a_notify(void *ctx, const char *policy, const char *title, const char *body)
{
	struct agent_ctx *x = ctx;
	char path[256], err[256];
	char *argv[] = { "notify-send", "--app-name=Burrow", (char *)title, (char *)body, NULL };

	bw_info("policy %s: notify %s: %s", policy, title, body);
	if (!getenv("DBUS_SESSION_BUS_ADDRESS") || bw_child_find("notify-send", path, sizeof(path)) != 0)
		return;
	if (bw_child_spawn(x->a->loop, argv, NULL, 10, NULL, NULL, 0, err, sizeof(err)) != 0)
		bw_debug("policy %s: notify-send: %s", policy, err);
}

static void a_log(void *ctx, enum bw_log_level level, const char *policy, const char *msg)
{
	(void)ctx;
	if (policy)
		bw_log(level, NULL, "policy %s: %s", policy, msg);
	else
		bw_log(level, NULL, "policies: %s", msg);
}

static void a_emit(void *ctx, const char *name, json_t *fields)
{
	struct agent_ctx *x = ctx;

	bw_events_emitf(&x->a->events, name, fields);
}

static int a_run_sync(void *ctx, char **argv, double timeout_s)
{
	(void)ctx;
	bw_info("policies: shutdown: %s %s %s", argv[0], argv[1] ? argv[1] : "", argv[1] && argv[2] ? argv[2] : "");
	return bw_child_run_sync(argv, NULL, 0, timeout_s);
}

/* A mount point in /proc/self/mountinfo (field 5, with \ooo escapes)? */
static bool a_is_mounted(void *ctx, const char *target)
{
	FILE *f = fopen("/proc/self/mountinfo", "r");
	char line[8192], mp[4096];
	bool found = false;

	(void)ctx;
	if (!f)
		return true;		/* cannot tell: try to unmount */
	while (!found && fgets(line, sizeof(line), f)) {
		const char *s = line;
		size_t n = 0;

		for (int field = 0; field < 4 && s; field++)
			if ((s = strchr(s, ' ')))
				s++;
		if (!s)
			continue;
		while (*s && *s != ' ' && n + 1 < sizeof(mp)) {
			if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] && s[3]) {
				mp[n++] = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) | (s[3] - '0'));
				s += 4;
			} else {
				mp[n++] = *s++;
			}
		}
		mp[n] = '\0';
		found = strcmp(mp, target) == 0;
	}
	fclose(f);
	return found;
}

static const struct bw_policy_ops agent_ops = {
	.now = a_now,
	.arm = a_arm,
	.start = a_start,
	.stop = a_stop,
	.restart = a_restart,
	.connections = a_connections,
	.connection = a_connection,
	.exec = a_exec,
	.notify = a_notify,
	.log = a_log,
	.emit = a_emit,
	.run_sync = a_run_sync,
	.is_mounted = a_is_mounted,
};

/* The bus calls this synchronously from whoever emitted: only queue here. */
static void on_event(void *ctx, json_t *event)
{
	struct agent_ctx *x = ctx;

	bw_policy_host_push_event(x->h, event);
}

struct bw_policy_host *bw_policy_host_new(struct bw_agent *a, const char *policies_dir,
					  const char *system_defaults)
{
	struct agent_ctx *x = calloc(1, sizeof(*x));
	json_t *recent, *e;
	size_t i;

	if (!x)
		return NULL;
	x->a = a;
	x->h = bw_policy_host_new_ops(&agent_ops, x);
	if (!x->h) {
		free(x);
		return NULL;
	}
	ev_timer_init(&x->wake, on_wake, 0, 0);
	x->wake.data = x;
	ev_timer_init(&x->restart_poll, on_restart_poll, 0, 0.2);
	x->restart_poll.data = x;
	bw_policy_host_set_dir(x->h, policies_dir, system_defaults);
	bw_policy_host_reload(x->h);
	if (a->opts.state_dir[0]) {
		char path[PATH_MAX + 16];

		snprintf(path, sizeof(path), "%s/mounts.json", a->opts.state_dir);
		bw_policy_host_mounts_file(x->h, path);
	}
	if (bw_events_subscribe(&a->events, on_event, x) != 0)
		bw_err("policies: cannot subscribe to the event bus (too many subscribers); policies will see no events");
	/* Created after the agent said "start": the policies still get to see it once. */
	recent = bw_events_recent(&a->events);
	json_array_foreach(recent, i, e) {
		const char *n = json_string_value(json_object_get(e, "name"));

		if (n && strcmp(n, "start") == 0)
			bw_policy_host_push_event(x->h, e);
	}
	json_decref(recent);
	return x->h;
}

struct await_once {
	void (*done)(void *ctx);
	void *ctx;
};

static void await_once_cb(int revents, void *arg)
{
	struct await_once o = *(struct await_once *)arg;

	(void)revents;
	free(arg);
	o.done(o.ctx);
}

void bw_policy_host_await_stopping(struct bw_policy_host *h, const char *conn, double timeout_s,
				   void (*done)(void *ctx), void *ctx)
{
	struct await_once *o;

	if (h) {
		bw_policy_host_await(h, conn, timeout_s, done, ctx);
		return;
	}
	/* No host: nothing to wait for, but still not from inside this call. The agent's loop
	 * is the default loop (policy children need it). */
	o = malloc(sizeof(*o));
	if (!o) {
		done(ctx);
		return;
	}
	o->done = done;
	o->ctx = ctx;
	ev_once(ev_default_loop(0), -1, 0, 0, await_once_cb, o);
}

void bw_policy_host_free(struct bw_policy_host *h)
{
	struct agent_ctx *x;

	if (!h)
		return;
	x = h->ctx;
	bw_events_unsubscribe(&x->a->events, on_event, x);
	bw_child_forget(x);
	ev_timer_stop(x->a->loop, &x->wake);
	ev_timer_stop(x->a->loop, &x->restart_poll);
	bw_policy_host_free_ops(h);
	free(x->restarts);
	free(x);
}

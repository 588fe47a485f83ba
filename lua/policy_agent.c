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
#include "util.h"

struct agent_ctx;

/* A restart waiting for its connection to leave stopping: told by the connection's observer
 * (which it stays until it is freed, so c stays valid), bounded by the timer, which also does
 * the start (from the loop, not inside the state change). */
struct restart_wait {
	struct agent_ctx *x;
	struct bw_conn *c;
	char policy[64];
	bool due;			/* the timer is set to start it now */
	ev_timer timer;
	struct restart_wait *next;
};

struct agent_ctx {
	struct bw_agent *a;
	struct bw_policy_host *h;
	ev_timer wake;			/* runs the host: queued work and due timers */
	struct restart_wait *restarts;
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

static void on_restart_state(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone);

static void restart_free(struct restart_wait *r)
{
	struct restart_wait **pp;

	for (pp = &r->x->restarts; *pp; pp = &(*pp)->next)
		if (*pp == r) {
			*pp = r->next;
			break;
		}
	bw_conn_unobserve(r->c, on_restart_state, r);
	ev_timer_stop(r->x->a->loop, &r->timer);
	free(r);
}

/* Down (or the wait ran out): start it again. */
static void on_restart_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct restart_wait *r = bw_container_of(w, struct restart_wait, timer);
	char err[512];

	(void)loop;
	(void)revents;
	if (!r->x->a->stopping && bw_conn_start(r->c, err, sizeof(err)) != 0)
		bw_log(BW_LOG_WARN, r->c->name, "policy %s: restart: %s", r->policy, err);
	restart_free(r);
}

static void restart_now(struct restart_wait *r)
{
	if (r->due)
		return;
	r->due = true;
	ev_timer_stop(r->x->a->loop, &r->timer);
	ev_timer_set(&r->timer, 0, 0);
	ev_timer_start(r->x->a->loop, &r->timer);
}

static void on_restart_state(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	struct restart_wait *r = ctx;

	(void)from;
	if (gone) {
		bw_warn("policy %s: restart %s: the connection went away", r->policy, c->name);
		restart_free(r);
		return;
	}
	if (c->state != BW_CONN_STOPPING)
		restart_now(r);
}

/* Restart: stop now, start once it is down (told by the connection; stopping is bounded by the
 * engine, and by RESTART_WAIT_S here). */
static int a_restart(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct agent_ctx *x = ctx;
	struct bw_conn *c = find(x, name, err, errlen);
	struct restart_wait *r;

	if (!c)
		return -1;
	bw_log(BW_LOG_INFO, c->name, "policy %s: restart", policy);
	if (bw_conn_stop(c, "stopped", err, errlen) != 0)
		return -1;
	r = calloc(1, sizeof(*r));
	if (!r) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	r->x = x;
	r->c = c;
	snprintf(r->policy, sizeof(r->policy), "%s", policy);
	ev_timer_init(&r->timer, on_restart_timer, RESTART_WAIT_S, 0);
	if (bw_conn_observe(c, on_restart_state, r) != 0) {
		snprintf(err, errlen, "out of memory");
		free(r);
		return -1;
	}
	r->next = x->restarts;
	x->restarts = r;
	if (c->state != BW_CONN_STOPPING)
		restart_now(r);
	else
		ev_timer_start(x->a->loop, &r->timer);
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
	while (x->restarts)
		restart_free(x->restarts);
	bw_policy_host_free_ops(h);
	free(x);
}

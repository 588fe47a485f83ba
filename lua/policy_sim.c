/* The simulated agent: connections that go up the moment they are started, children that
 * succeed at once, a clock that only moves when the trace says so. Everything a policy
 * does becomes one transcript line prefixed with the virtual time. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "policy_priv.h"
#include "policy_host.h"
#include "policy_sim.h"

#define SIM_TAIL_S 60.0		/* virtual time that passes after the last event */
#define SIM_LINE_MAX 65536

struct sim_conn {
	char name[BW_NAME_MAX];
	char group[BW_NAME_MAX];
	char autostart[16];
	char state[16];
	char fail[64];		/* start fails with this code when set */
};

struct bw_policy_sim {
	struct bw_policy_host *h;
	FILE *out;
	double now;
	struct sim_conn *conns;
	size_t n_conns;
	bool declared;		/* connections were declared: unknown names are errors */
	json_t *messages;
};

static void line(struct bw_policy_sim *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct bw_policy_sim *s, const char *fmt, ...)
{
	va_list ap;

	if (!s->out)
		return;
	fprintf(s->out, "%6.1f ", s->now);
	va_start(ap, fmt);
	vfprintf(s->out, fmt, ap);
	va_end(ap);
	fputc('\n', s->out);
}

static struct sim_conn *sim_find(struct bw_policy_sim *s, const char *name, bool create)
{
	struct sim_conn *n;

	for (size_t i = 0; i < s->n_conns; i++)
		if (strcmp(s->conns[i].name, name) == 0)
			return &s->conns[i];
	if (!create || strlen(name) >= BW_NAME_MAX)
		return NULL;
	n = realloc(s->conns, (s->n_conns + 1) * sizeof(*n));
	if (!n)
		return NULL;
	s->conns = n;
	n = &s->conns[s->n_conns++];
	memset(n, 0, sizeof(*n));
	snprintf(n->name, sizeof(n->name), "%s", name);
	snprintf(n->autostart, sizeof(n->autostart), "never");
	snprintf(n->state, sizeof(n->state), "down");
	return n;
}

static void set_state(struct bw_policy_sim *s, struct sim_conn *c, const char *state)
{
	if (strcmp(c->state, state) == 0)
		return;
	snprintf(c->state, sizeof(c->state), "%s", state);
	line(s, "state %s %s", c->name, state);
}

static void push(struct bw_policy_sim *s, json_t *ev)
{
	json_object_set_new(ev, "time", json_real(s->now));
	bw_policy_host_push_event(s->h, ev);
	json_decref(ev);
}

static struct sim_conn *lookup(struct bw_policy_sim *s, const char *name, char *err, size_t errlen)
{
	struct sim_conn *c = sim_find(s, name, !s->declared);

	if (!c)
		snprintf(err, errlen, "no connection named %s; see burrow list", name);
	return c;
}

static void go_up(struct bw_policy_sim *s, struct sim_conn *c)
{
	if (c->fail[0]) {
		set_state(s, c, "failed");
		push(s, json_pack("{s:s,s:s,s:s,s:s}", "name", "tunnel_failed", "connection", c->name,
				  "error", c->fail, "explanation", "simulated failure"));
		return;
	}
	set_state(s, c, "up");
	push(s, json_pack("{s:s,s:s}", "name", "tunnel_up", "connection", c->name));
}

static void go_down(struct bw_policy_sim *s, struct sim_conn *c)
{
	bool was_up = strcmp(c->state, "up") == 0;

	set_state(s, c, "down");
	if (!was_up)
		return;
	push(s, json_pack("{s:s,s:s,s:s}", "name", "tunnel_stopping", "connection", c->name, "reason", "stopped"));
	push(s, json_pack("{s:s,s:s,s:s}", "name", "tunnel_down", "connection", c->name, "reason", "stopped"));
}

static double s_now(void *ctx)
{
	return ((struct bw_policy_sim *)ctx)->now;
}

static void s_arm(void *ctx, double at)
{
	(void)ctx;
	(void)at;		/* the driver runs the host after every step */
}

static int s_start(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	struct sim_conn *c;

	(void)policy;
	line(s, "start %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	if (strcmp(c->state, "invalid") == 0) {
		snprintf(err, errlen, "connection %s is invalid; fix the file and run burrow reload", name);
		return -1;
	}
	if (strcmp(c->state, "up") != 0)
		go_up(s, c);
	return 0;
}

static int s_stop(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	struct sim_conn *c;

	(void)policy;
	line(s, "stop %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	if (strcmp(c->state, "invalid") != 0)
		go_down(s, c);
	return 0;
}

static int s_restart(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	struct sim_conn *c;

	(void)policy;
	line(s, "restart %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	if (strcmp(c->state, "invalid") == 0) {
		snprintf(err, errlen, "connection %s is invalid; fix the file and run burrow reload", name);
		return -1;
	}
	go_down(s, c);
	go_up(s, c);
	return 0;
}

static json_t *s_connections(void *ctx)
{
	struct bw_policy_sim *s = ctx;
	json_t *a = json_array();

	for (size_t i = 0; i < s->n_conns; i++)
		json_array_append_new(a, json_pack("{s:s,s:s,s:s,s:s}", "name", s->conns[i].name, "group",
						   s->conns[i].group, "state", s->conns[i].state, "autostart",
						   s->conns[i].autostart));
	return a;
}

/* Every child succeeds at once, with no output; its callback still runs later. */
static int s_exec(void *ctx, const struct bw_policy_exec_req *req, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;

	(void)err;
	(void)errlen;
	line(s, "%s", req->what);
	bw_policy_host_exec_done(s->h, req->token, 0, "exited", "", 0);
	return 0;
}

static void s_notify(void *ctx, const char *policy, const char *title, const char *body)
{
	(void)policy;
	line(ctx, "notify %s: %s", title, body);
}

static void s_log(void *ctx, enum bw_log_level level, const char *policy, const char *msg)
{
	struct bw_policy_sim *s = ctx;

	if (level >= BW_LOG_DEBUG)
		return;
	if (level == BW_LOG_ERROR)
		json_array_append_new(s->messages, json_string(msg));
	line(s, "log %s %s: %s", policy ? policy : "host", bw_log_level_name(level), msg);
}

static void s_emit(void *ctx, const char *name, json_t *fields)
{
	struct bw_policy_sim *s = ctx;
	json_t *e = fields ? fields : json_object();

	json_object_set_new(e, "name", json_string(name));
	push(s, e);
}

static void print_event(struct bw_policy_sim *s, const json_t *ev)
{
	char buf[2048];
	size_t n;
	const char *key;
	json_t *v;

	n = (size_t)snprintf(buf, sizeof(buf), "event %s", json_string_value(json_object_get(ev, "name")));
	json_object_foreach((json_t *)ev, key, v) {
		char *str;

		if (strcmp(key, "name") == 0 || strcmp(key, "time") == 0 || n >= sizeof(buf))
			continue;
		str = json_is_string(v) ? strdup(json_string_value(v)) : json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, " %s=%s", key, str ? str : "?");
		free(str);
	}
	line(s, "%s", buf);
}

/* The location rules are matched after every change of facts, as the agent will. */
static void relocate(struct bw_policy_sim *s)
{
	char loc[256];
	const char *cur = json_string_value(json_object_get(s->h->facts, "location"));
	int found = bw_policy_host_match_location(s->h, s->h->facts, loc, sizeof(loc));
	json_t *e;

	if (found ? cur && strcmp(cur, loc) == 0 : !cur)
		return;
	e = json_pack("{s:s}", "name", "location");
	if (found)
		json_object_set_new(e, "location", json_string(loc));
	if (cur)
		json_object_set_new(e, "previous", json_string(cur));
	json_object_set_new(e, "reason", json_string("rules"));
	push(s, e);
}

static void s_dispatching(void *ctx, const json_t *ev)
{
	struct bw_policy_sim *s = ctx;
	const char *name = json_string_value(json_object_get(ev, "name"));
	const char *conn = json_string_value(json_object_get(ev, "connection"));
	struct sim_conn *c;

	print_event(s, ev);
	/* Tunnel events from the trace move the simulated connection too. */
	if (conn && strncmp(name, "tunnel_", 7) == 0 && (c = sim_find(s, conn, !s->declared))) {
		if (strcmp(name, "tunnel_up") == 0)
			set_state(s, c, "up");
		else if (strcmp(name, "tunnel_down") == 0)
			set_state(s, c, "down");
		else if (strcmp(name, "tunnel_failed") == 0)
			set_state(s, c, "failed");
	}
	if (strcmp(name, "ssid") == 0 || strcmp(name, "network") == 0)
		relocate(s);
}

static void s_timer_firing(void *ctx, const char *policy)
{
	line(ctx, "timer %s", policy);
}

static const struct bw_policy_ops sim_ops = {
	.now = s_now,
	.arm = s_arm,
	.start = s_start,
	.stop = s_stop,
	.restart = s_restart,
	.connections = s_connections,
	.exec = s_exec,
	.notify = s_notify,
	.log = s_log,
	.emit = s_emit,
	.dispatching = s_dispatching,
	.timer_firing = s_timer_firing,
};

struct bw_policy_sim *bw_policy_sim_new(FILE *out)
{
	struct bw_policy_sim *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->out = out;
	s->messages = json_array();
	s->h = bw_policy_host_new_ops(&sim_ops, s);
	if (!s->h) {
		json_decref(s->messages);
		free(s);
		return NULL;
	}
	return s;
}

void bw_policy_sim_free(struct bw_policy_sim *s)
{
	if (!s)
		return;
	bw_policy_host_free_ops(s->h);
	json_decref(s->messages);
	free(s->conns);
	free(s);
}

static void copy_field(char *dst, size_t len, const json_t *o, const char *key, const char *dflt)
{
	const char *v = json_string_value(json_object_get(o, key));

	snprintf(dst, len, "%s", v ? v : dflt);
}

int bw_policy_sim_add_connection(struct bw_policy_sim *s, const json_t *conn)
{
	const char *name = json_string_value(json_object_get(conn, "name"));
	struct sim_conn *c;

	if (!name || !(c = sim_find(s, name, true)))
		return -1;
	s->declared = true;
	copy_field(c->group, sizeof(c->group), conn, "group", "");
	copy_field(c->autostart, sizeof(c->autostart), conn, "autostart", "never");
	copy_field(c->state, sizeof(c->state), conn, "state", "down");
	copy_field(c->fail, sizeof(c->fail), conn, "fail", "");
	return 0;
}

int bw_policy_sim_load_config_dir(struct bw_policy_sim *s, const char *dir, char *err, size_t errlen)
{
	char cdir[PATH_MAX], path[PATH_MAX + 300];
	struct bw_devices devs = { 0 };
	struct dirent *de;
	DIR *d;

	snprintf(cdir, sizeof(cdir), "%s/connections", dir);
	if (!(d = opendir(cdir))) {
		snprintf(err, errlen, "cannot read %s: %s", cdir, strerror(errno));
		return -1;
	}
	s->declared = true;
	while ((de = readdir(d))) {
		size_t n = strlen(de->d_name);
		struct bw_conn_config cfg;
		struct bw_cfg_error cerr;
		struct sim_conn *c;
		char name[BW_NAME_MAX];

		if (de->d_name[0] == '.' || n <= 5 || n - 5 >= sizeof(name) || strcmp(de->d_name + n - 5, ".conf") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 5), de->d_name);
		snprintf(path, sizeof(path), "%s/%s", cdir, de->d_name);
		if (!(c = sim_find(s, name, true)))
			continue;
		if (bw_conn_config_load(path, &devs, &cfg, &cerr) != 0) {
			snprintf(c->state, sizeof(c->state), "invalid");
			continue;
		}
		snprintf(c->group, sizeof(c->group), "%s", cfg.group);
		snprintf(c->autostart, sizeof(c->autostart), "%s", bw_autostart_name(cfg.autostart));
	}
	closedir(d);
	return 0;
}

int bw_policy_sim_load(struct bw_policy_sim *s, const char *path)
{
	int rc = bw_policy_host_load_file(s->h, path);

	bw_policy_host_run(s->h);
	return rc;
}

void bw_policy_sim_advance(struct bw_policy_sim *s, double t)
{
	double due;

	bw_policy_host_run(s->h);
	/* Bounded: a policy may keep re-arming a timer forever. */
	for (int i = 0; i < 100000 && (due = bw_policy_host_next_due(s->h)) <= t; i++) {
		if (due > s->now)
			s->now = due;
		bw_policy_host_run(s->h);
	}
	if (t > s->now)
		s->now = t;
	bw_policy_host_run(s->h);
}

void bw_policy_sim_event(struct bw_policy_sim *s, double t, const json_t *event)
{
	json_t *e = json_deep_copy(event);

	bw_policy_sim_advance(s, t);
	json_object_set_new(e, "time", json_real(s->now));
	bw_policy_host_push_event(s->h, e);
	json_decref(e);
	bw_policy_host_run(s->h);
}

int bw_policy_sim_replay(struct bw_policy_sim *s, FILE *trace, const char *trace_name, char *err,
			 size_t errlen)
{
	char *buf = malloc(SIM_LINE_MAX);
	double last = 0, until = NAN;
	int lineno = 0, rc = 0;

	if (!buf) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	while (fgets(buf, SIM_LINE_MAX, trace)) {
		json_error_t jerr;
		json_t *o, *t, *v;
		const char *p = buf + strspn(buf, " \t\r\n");

		lineno++;
		if (!*p || *p == '#')
			continue;
		o = json_loads(p, 0, &jerr);
		if (!json_is_object(o)) {
			snprintf(err, errlen, "%s:%d: not a JSON object (%s)", trace_name, lineno,
				 o ? "another JSON value" : jerr.text);
			json_decref(o);
			rc = -1;
			break;
		}
		if ((v = json_object_get(o, "connections"))) {
			size_t i;
			json_t *c;

			json_array_foreach(v, i, c) {
				if (bw_policy_sim_add_connection(s, c) != 0) {
					snprintf(err, errlen, "%s:%d: connection %zu needs a \"name\"", trace_name, lineno, i + 1);
					rc = -1;
				}
			}
			json_decref(o);
			if (rc)
				break;
			continue;
		}
		if ((v = json_object_get(o, "until"))) {
			until = json_number_value(v);
			json_decref(o);
			continue;
		}
		t = json_object_get(o, "time");
		if (!json_is_string(json_object_get(o, "name")) || (t && !json_is_number(t))) {
			snprintf(err, errlen, "%s:%d: an event needs \"name\" (string) and \"time\" (seconds)", trace_name, lineno);
			json_decref(o);
			rc = -1;
			break;
		}
		if (t && json_number_value(t) < last) {
			snprintf(err, errlen, "%s:%d: time %g goes back (the previous event was at %g)", trace_name,
				 lineno, json_number_value(t), last);
			json_decref(o);
			rc = -1;
			break;
		}
		if (t)
			last = json_number_value(t);
		bw_policy_sim_event(s, last, o);
		json_decref(o);
	}
	free(buf);
	if (rc == 0)
		bw_policy_sim_advance(s, isnan(until) ? last + SIM_TAIL_S : until);
	return rc;
}

unsigned bw_policy_sim_errors(const struct bw_policy_sim *s)
{
	return s->h->errors;
}

const json_t *bw_policy_sim_messages(const struct bw_policy_sim *s)
{
	return s->messages;
}

json_t *bw_policy_sim_lint(const struct bw_policy_sim *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->h->n_policies; i++)
		json_array_extend(a, s->h->policies[i]->lint);
	return a;
}

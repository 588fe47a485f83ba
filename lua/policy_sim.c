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
#include <time.h>

#include "config/config.h"
#include "policy_priv.h"
#include "policy_host.h"
#include "policy_sim.h"

#define SIM_TAIL_S 60.0		/* virtual time that passes after the last event */
#define SIM_LINE_MAX 65536

#define SIM_STOP_TIMEOUT_S BW_POLICY_STOPPING_TIMEOUT_S
#define SIM_EPOCH 1704067200.0	/* Monday 2024-01-01 00:00:00 UTC */

struct sim_conn {
	char name[BW_NAME_MAX];
	char group[BW_NAME_MAX];
	char autostart[16];
	char state[16];
	char fail[64];		/* start fails with this code when set */
	long fail_times;	/* that many more starts fail; -1: all of them */
	double delay;		/* connecting takes this long (virtual seconds) */
	bool restart;		/* start again once stopped */
};

/* Something the simulated agent finishes later in virtual time. */
struct sim_job {
	double due;
	uint64_t token;		/* a child: bw_policy_host_exec_done(token) */
	char conn[BW_NAME_MAX];	/* else: conn finished connecting */
	int status;
	char *what, *output;
};

/* How exec/mount/unmount actions whose line contains match end (trace "sim" lines). */
struct sim_rule {
	char *match, *output;
	int status;
	double duration;
};

struct bw_policy_sim {
	struct bw_policy_host *h;
	FILE *out;
	bool json;
	double now;
	double epoch;		/* the wall clock at virtual time 0 */
	struct sim_conn *conns;
	size_t n_conns;
	bool declared;		/* connections were declared: unknown names are errors */
	json_t *messages;
	json_t *from_trace;	/* events of the trace not dispatched yet (by identity) */
	struct sim_job *jobs;
	size_t n_jobs;
	struct sim_rule *rules;
	size_t n_rules;
};

/* One transcript line: text after the virtual time, or with --json the object o (consumed)
 * with "time" and "text" added. */
static void line(struct bw_policy_sim *s, json_t *o, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void line(struct bw_policy_sim *s, json_t *o, const char *fmt, ...)
{
	char text[4096];
	va_list ap;

	if (!s->out) {
		json_decref(o);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (s->json) {
		char *str;

		if (!o)
			o = json_object();
		json_object_set_new(o, "time", json_real(s->now));
		json_object_set_new(o, "text", json_string(text));
		str = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		if (str)
			fprintf(s->out, "%s\n", str);
		free(str);
		json_decref(o);
		return;
	}
	json_decref(o);
	fprintf(s->out, "%6.1f %s\n", s->now, text);
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
	line(s, json_pack("{s:s,s:s,s:s}", "type", "state", "connection", c->name, "state", state),
	     "state %s %s", c->name, state);
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
	if (c->fail[0] && c->fail_times != 0) {
		if (c->fail_times > 0)
			c->fail_times--;
		set_state(s, c, "failed");
		push(s, json_pack("{s:s,s:s,s:s,s:s,s:s}", "name", "tunnel_failed", "connection", c->name,
				  "error", c->fail, "code", c->fail, "explanation", "simulated failure"));
		if (c->fail_times == 0)
			c->fail[0] = '\0';
		return;
	}
	set_state(s, c, "up");
	push(s, json_pack("{s:s,s:s}", "name", "tunnel_up", "connection", c->name));
}

static struct sim_job *add_job(struct bw_policy_sim *s, double due)
{
	struct sim_job *n = realloc(s->jobs, (s->n_jobs + 1) * sizeof(*n));

	if (!n)
		return NULL;
	s->jobs = n;
	n = &s->jobs[s->n_jobs++];
	memset(n, 0, sizeof(*n));
	n->due = due;
	return n;
}

static void begin_start(struct bw_policy_sim *s, struct sim_conn *c)
{
	struct sim_job *j;

	if (strcmp(c->state, "up") == 0 || strcmp(c->state, "connecting") == 0 ||
	    strcmp(c->state, "stopping") == 0)
		return;
	if (c->delay <= 0 || !(j = add_job(s, s->now + c->delay))) {
		go_up(s, c);
		return;
	}
	set_state(s, c, "connecting");
	snprintf(j->conn, sizeof(j->conn), "%s", c->name);
}

struct stop_ctx {
	struct bw_policy_sim *s;
	char name[BW_NAME_MAX];
};

/* The host is done with tunnel_stopping (or gave up waiting): the SAs go now. */
static void stopped(void *arg)
{
	struct stop_ctx *x = arg;
	struct bw_policy_sim *s = x->s;
	struct sim_conn *c = sim_find(s, x->name, false);

	free(x);
	if (!c || strcmp(c->state, "stopping") != 0)
		return;
	set_state(s, c, "down");
	push(s, json_pack("{s:s,s:s,s:s}", "name", "tunnel_down", "connection", c->name, "reason", "stopped"));
	if (c->restart) {
		c->restart = false;
		begin_start(s, c);
	}
}

/* As the agent: an up tunnel goes through stopping, its tunnel_stopping actions are
 * awaited (bounded), then it is down; a connecting one is simply abandoned. */
static void go_down(struct bw_policy_sim *s, struct sim_conn *c)
{
	struct stop_ctx *x;

	if (strcmp(c->state, "connecting") == 0) {
		for (size_t i = 0; i < s->n_jobs; i++)
			if (!s->jobs[i].token && strcmp(s->jobs[i].conn, c->name) == 0)
				s->jobs[i].conn[0] = '\0';	/* cancelled */
		set_state(s, c, "down");
		return;
	}
	if (strcmp(c->state, "up") != 0) {
		if (strcmp(c->state, "stopping") != 0)
			set_state(s, c, "down");
		return;
	}
	set_state(s, c, "stopping");
	push(s, json_pack("{s:s,s:s,s:s}", "name", "tunnel_stopping", "connection", c->name, "reason", "stopped"));
	x = calloc(1, sizeof(*x));
	if (!x) {
		set_state(s, c, "down");
		return;
	}
	x->s = s;
	snprintf(x->name, sizeof(x->name), "%s", c->name);
	bw_policy_host_await(s->h, c->name, SIM_STOP_TIMEOUT_S, stopped, x);
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

	line(s, json_pack("{s:s,s:s,s:s}", "type", "start", "connection", name, "policy", policy), "start %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	if (strcmp(c->state, "invalid") == 0) {
		snprintf(err, errlen, "connection %s is invalid; fix the file and run burrow reload", name);
		return -1;
	}
	if (strcmp(c->state, "stopping") == 0) {
		snprintf(err, errlen, "connection %s is stopping; start it again once it is down", name);
		return -1;
	}
	begin_start(s, c);
	return 0;
}

static int s_stop(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	struct sim_conn *c;

	line(s, json_pack("{s:s,s:s,s:s}", "type", "stop", "connection", name, "policy", policy), "stop %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	c->restart = false;
	if (strcmp(c->state, "invalid") != 0)
		go_down(s, c);
	return 0;
}

static int s_restart(void *ctx, const char *policy, const char *name, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	struct sim_conn *c;

	line(s, json_pack("{s:s,s:s,s:s}", "type", "restart", "connection", name, "policy", policy), "restart %s", name);
	if (!(c = lookup(s, name, err, errlen)))
		return -1;
	if (strcmp(c->state, "invalid") == 0) {
		snprintf(err, errlen, "connection %s is invalid; fix the file and run burrow reload", name);
		return -1;
	}
	if (strcmp(c->state, "up") == 0 || strcmp(c->state, "stopping") == 0) {
		c->restart = true;	/* started again once down */
		go_down(s, c);
	} else {
		go_down(s, c);
		begin_start(s, c);
	}
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

/* Every child succeeds at once with no output (its callback still runs later), unless a
 * "sim" line of the trace gave actions like it another status, output or duration. */
static int s_exec(void *ctx, const struct bw_policy_exec_req *req, char *err, size_t errlen)
{
	struct bw_policy_sim *s = ctx;
	const struct sim_rule *r = NULL;
	json_t *o = json_object(), *argv = json_array();
	struct sim_job *j;

	(void)err;
	(void)errlen;
	for (size_t i = 0; req->argv[i]; i++)
		json_array_append_new(argv, json_string(req->argv[i]));
	json_object_set_new(o, "type", json_stringn(req->what, strcspn(req->what, " ")));
	json_object_set_new(o, "policy", json_string(req->policy));
	if (req->conn)
		json_object_set_new(o, "connection", json_string(req->conn));
	json_object_set_new(o, "argv", argv);
	line(s, o, "%s", req->what);
	for (size_t i = s->n_rules; i-- > 0 && !r;)
		if (strstr(req->what, s->rules[i].match))
			r = &s->rules[i];
	if (!r) {
		bw_policy_host_exec_done(s->h, req->token, 0, "exited", "", 0);
		return 0;
	}
	if (!(j = add_job(s, s->now + r->duration))) {
		bw_policy_host_exec_done(s->h, req->token, r->status, "exited", r->output, strlen(r->output));
		return 0;
	}
	j->token = req->token;
	j->status = r->status;
	j->what = strdup(req->what);
	j->output = strdup(r->output);
	return 0;
}

/* Finishes the jobs due by now, in order of due time. */
static void run_jobs(struct bw_policy_sim *s)
{
	for (;;) {
		struct sim_job j;
		size_t best = s->n_jobs;
		struct sim_conn *c;

		for (size_t i = 0; i < s->n_jobs; i++)
			if (s->jobs[i].due <= s->now && (best == s->n_jobs || s->jobs[i].due < s->jobs[best].due))
				best = i;
		if (best == s->n_jobs)
			return;
		j = s->jobs[best];
		memmove(&s->jobs[best], &s->jobs[best + 1], (s->n_jobs - best - 1) * sizeof(j));
		s->n_jobs--;
		if (j.token) {
			const char *out = j.output ? j.output : "";

			line(s, json_pack("{s:s,s:s,s:i,s:s}", "type", "done", "what", j.what ? j.what : "?", "status",
					  j.status, "output", out),
			     "done %s: status %d%s%s", j.what ? j.what : "?", j.status, *out ? ": " : "", out);
			bw_policy_host_exec_done(s->h, j.token, j.status, "exited", out, strlen(out));
		} else if (j.conn[0] && (c = sim_find(s, j.conn, false)) && strcmp(c->state, "connecting") == 0) {
			go_up(s, c);
		}
		free(j.what);
		free(j.output);
		bw_policy_host_run(s->h);
	}
}

static double jobs_next_due(const struct bw_policy_sim *s)
{
	double due = INFINITY;

	for (size_t i = 0; i < s->n_jobs; i++)
		if (s->jobs[i].due < due)
			due = s->jobs[i].due;
	return due;
}

static void s_notify(void *ctx, const char *policy, const char *title, const char *body)
{
	line(ctx, json_pack("{s:s,s:s,s:s,s:s}", "type", "notify", "policy", policy, "title", title, "body", body),
	     "notify %s: %s", title, body);
}

static void s_log(void *ctx, enum bw_log_level level, const char *policy, const char *msg)
{
	struct bw_policy_sim *s = ctx;

	if (level >= BW_LOG_DEBUG)
		return;
	if (level == BW_LOG_ERROR)
		json_array_append_new(s->messages, json_string(msg));
	line(s, json_pack("{s:s,s:s,s:s,s:s}", "type", "log", "policy", policy ? policy : "host", "level",
			  bw_log_level_name(level), "message", msg),
	     "log %s %s: %s", policy ? policy : "host", bw_log_level_name(level), msg);
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
	line(s, json_pack("{s:s,s:O}", "type", "event", "event", ev), "%s", buf);
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

	bool traced = false;

	print_event(s, ev);
	for (size_t i = 0; i < json_array_size(s->from_trace); i++) {
		if (json_array_get(s->from_trace, i) == ev) {
			json_array_remove(s->from_trace, i);
			traced = true;
			break;
		}
	}
	/* Tunnel events from the trace move the simulated connection too (those of the
	 * simulated agent itself follow its state). */
	if (traced && conn && strncmp(name, "tunnel_", 7) == 0 && (c = sim_find(s, conn, !s->declared))) {
		if (strcmp(name, "tunnel_up") == 0)
			set_state(s, c, "up");
		else if (strcmp(name, "tunnel_stopping") == 0)
			set_state(s, c, "stopping");
		else if (strcmp(name, "tunnel_down") == 0)
			set_state(s, c, "down");
		else if (strcmp(name, "tunnel_failed") == 0)
			set_state(s, c, "failed");
	}
	if (strcmp(name, "ssid") == 0 || strcmp(name, "network") == 0)
		relocate(s);
}

static double s_wall(void *ctx)
{
	struct bw_policy_sim *s = ctx;

	return s->epoch + s->now;
}

static void s_timer_firing(void *ctx, const char *policy)
{
	line(ctx, json_pack("{s:s,s:s}", "type", "timer", "policy", policy), "timer %s", policy);
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
	.wall = s_wall,
};

struct bw_policy_sim *bw_policy_sim_new(FILE *out)
{
	struct bw_policy_sim *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->out = out;
	s->epoch = SIM_EPOCH;
	s->messages = json_array();
	s->from_trace = json_array();
	s->h = bw_policy_host_new_ops(&sim_ops, s);
	if (!s->h) {
		json_decref(s->messages);
		json_decref(s->from_trace);
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
	json_decref(s->from_trace);
	free(s->conns);
	for (size_t i = 0; i < s->n_jobs; i++) {
		free(s->jobs[i].what);
		free(s->jobs[i].output);
	}
	free(s->jobs);
	for (size_t i = 0; i < s->n_rules; i++) {
		free(s->rules[i].match);
		free(s->rules[i].output);
	}
	free(s->rules);
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
	c->fail_times = json_is_integer(json_object_get(conn, "fail_times")) ?
			json_integer_value(json_object_get(conn, "fail_times")) : -1;
	c->delay = json_is_number(json_object_get(conn, "delay")) ? json_number_value(json_object_get(conn, "delay")) : 0;
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
	run_jobs(s);
	/* Bounded: a policy may keep re-arming a timer forever. */
	for (int i = 0; i < 100000; i++) {
		due = bw_policy_host_next_due(s->h);
		if (jobs_next_due(s) < due)
			due = jobs_next_due(s);
		if (due > t)
			break;
		if (due > s->now)
			s->now = due;
		run_jobs(s);
		bw_policy_host_run(s->h);
	}
	if (t > s->now)
		s->now = t;
	bw_policy_host_run(s->h);
	run_jobs(s);
}

void bw_policy_sim_set_json(struct bw_policy_sim *s, bool json)
{
	s->json = json;
}

json_t *bw_policy_sim_connection_names(const struct bw_policy_sim *s)
{
	json_t *a = json_array();

	for (size_t i = 0; i < s->n_conns; i++)
		json_array_append_new(a, json_string(s->conns[i].name));
	return a;
}

/* A "sim" line of the trace: changes how the simulated agent behaves from now on. */
static int sim_directive(struct bw_policy_sim *s, const json_t *o, char *err, size_t errlen)
{
	const char *fail = json_string_value(json_object_get(o, "fail"));
	const char *conn = json_string_value(json_object_get(o, "connection"));
	const char *action = json_string_value(json_object_get(o, "action"));
	const char *clock = json_string_value(json_object_get(o, "clock"));
	const json_t *v;
	struct sim_conn *c;

	const json_t *facts = json_object_get(o, "facts");
	const char *start = json_string_value(json_object_get(o, "start"));
	const char *stop = json_string_value(json_object_get(o, "stop"));

	if (!fail && !action && !clock && !start && !stop && !json_is_object(facts) &&
	    !(conn && json_object_get(o, "delay"))) {
		snprintf(err, errlen, "a \"sim\" line needs \"fail\", \"action\", \"clock\", \"facts\", \"start\", \"stop\", or \"connection\" with \"delay\"");
		return -1;
	}
	/* burrow start/stop typed by a user: through the same simulated agent as a policy's. */
	if (stop && s_stop(s, "user", stop, err, errlen) != 0)
		return -1;
	if (start && s_start(s, "user", start, err, errlen) != 0)
		return -1;
	if (json_is_object(facts)) {
		/* What the agent learns besides events (gateway MAC, DNS domain...): location rules
		 * are matched again, as the agent does. */
		json_object_update(s->h->facts, (json_t *)facts);
		relocate(s);
	}
	if (clock) {
		struct tm tm = { 0 };
		const char *end = strptime(clock, "%Y-%m-%dT%H:%M:%S", &tm);

		if (!end || (*end && strcmp(end, "Z") != 0)) {
			snprintf(err, errlen, "\"clock\" must look like 2024-03-04T07:55:00Z (UTC)");
			return -1;
		}
		s->epoch = (double)timegm(&tm) - s->now;
	}
	if (fail) {
		v = json_object_get(o, "error");
		if (!(c = sim_find(s, fail, !s->declared))) {
			snprintf(err, errlen, "\"fail\": no connection named %s", fail);
			return -1;
		}
		snprintf(c->fail, sizeof(c->fail), "%s", json_is_string(v) ? json_string_value(v) : v && json_is_null(v) ? "" : "no-answer");
		v = json_object_get(o, "times");
		c->fail_times = json_is_integer(v) ? json_integer_value(v) : -1;
	}
	if (conn && (v = json_object_get(o, "delay"))) {
		if (!json_is_number(v) || json_number_value(v) < 0 || !(c = sim_find(s, conn, !s->declared))) {
			snprintf(err, errlen, "\"delay\" needs a known connection and seconds >= 0");
			return -1;
		}
		c->delay = json_number_value(v);
	}
	if (action) {
		struct sim_rule *n = realloc(s->rules, (s->n_rules + 1) * sizeof(*n));
		const char *out = json_string_value(json_object_get(o, "output"));

		if (!n)
			return -1;
		s->rules = n;
		n = &s->rules[s->n_rules++];
		n->match = strdup(action);
		n->output = strdup(out ? out : "");
		n->status = (int)json_integer_value(json_object_get(o, "status"));
		n->duration = json_is_number(json_object_get(o, "duration")) ? json_number_value(json_object_get(o, "duration")) : 0;
		if (n->duration < 0)
			n->duration = 0;
	}
	return 0;
}

void bw_policy_sim_event(struct bw_policy_sim *s, double t, const json_t *event)
{
	json_t *e = json_deep_copy(event);

	bw_policy_sim_advance(s, t);
	json_object_set_new(e, "time", json_real(s->now));
	json_array_append(s->from_trace, e);
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
		if (strcmp(json_string_value(json_object_get(o, "name")), "sim") == 0) {
			char why[256];

			bw_policy_sim_advance(s, last);
			if (sim_directive(s, o, why, sizeof(why)) != 0) {
				snprintf(err, errlen, "%s:%d: %s", trace_name, lineno, why);
				json_decref(o);
				rc = -1;
				break;
			}
			json_decref(o);
			continue;
		}
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

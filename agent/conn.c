/* Connections: the state machine's single writer, the bounded per-connection log and the
 * JSON views that list/status/log print. */
#include "conn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "ike/ike_conn.h"
#include "killswitch.h"
#include "util.h"

static const char *const state_names[] = {
	[BW_CONN_DOWN] = "down",
	[BW_CONN_CONNECTING] = "connecting",
	[BW_CONN_UP] = "up",
	[BW_CONN_REKEYING] = "rekeying",
	[BW_CONN_STOPPING] = "stopping",
	[BW_CONN_FAILED] = "failed",
	[BW_CONN_INVALID] = "invalid",
	[BW_CONN_NEEDS_SECRET] = "needs-secret",
};

const char *bw_conn_state_name(enum bw_conn_state s)
{
	return (unsigned)s < BW_ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

static double now_real(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

struct bw_conn *bw_conn_new(struct bw_agent *agent, const char *name, const char *file)
{
	struct bw_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->agent = agent;
	bw_strlcpy(c->name, name, sizeof(c->name));
	bw_strlcpy(c->file, file, sizeof(c->file));
	c->state = BW_CONN_DOWN;
	c->state_since = time(NULL);
	return c;
}

static void observers_compact(struct bw_conn *c)
{
	size_t j = 0;

	for (size_t i = 0; i < c->n_observers; i++)
		if (c->observers[i].fn)
			c->observers[j++] = c->observers[i];
	c->n_observers = j;
}

/* Tells the observers present when the change happened; one removed meanwhile is skipped. */
static void observers_notify(struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	size_t n = c->n_observers;

	c->notifying++;
	for (size_t i = 0; i < n; i++) {
		struct bw_conn_observer o = c->observers[i];

		if (o.fn)
			o.fn(o.ctx, c, from, gone);
	}
	if (--c->notifying == 0)
		observers_compact(c);
}

int bw_conn_observe(struct bw_conn *c, bw_conn_observer_fn fn, void *ctx)
{
	struct bw_conn_observer *n = realloc(c->observers, (c->n_observers + 1) * sizeof(*n));

	if (!n)
		return -1;
	c->observers = n;
	n[c->n_observers++] = (struct bw_conn_observer){ .fn = fn, .ctx = ctx };
	return 0;
}

void bw_conn_unobserve(struct bw_conn *c, bw_conn_observer_fn fn, void *ctx)
{
	for (size_t i = 0; i < c->n_observers; i++)
		if (c->observers[i].fn == fn && c->observers[i].ctx == ctx) {
			c->observers[i].fn = NULL;
			break;
		}
	if (!c->notifying)
		observers_compact(c);
}

void bw_conn_free(struct bw_conn *c)
{
	if (!c)
		return;
	observers_notify(c, c->state, true);
	free(c->observers);
	for (size_t i = 0; i < c->log_count; i++)
		free(c->log[(c->log_head + i) % BW_CONN_LOG_LINES].msg);
	free(c->log);
	bw_secrets_wipe(&c->prompted);
	free(c);
}

void bw_conn_log_append(struct bw_conn *c, enum bw_log_level level, const char *msg)
{
	struct bw_conn_log_line *l;

	/* Most connections of a large configuration never log: no ring until they do. */
	if (!c->log && !(c->log = calloc(BW_CONN_LOG_LINES, sizeof(*c->log))))
		return;
	if (c->log_count == BW_CONN_LOG_LINES) {
		free(c->log[c->log_head].msg);
		c->log_head = (c->log_head + 1) % BW_CONN_LOG_LINES;
		c->log_count--;
	}
	l = &c->log[(c->log_head + c->log_count) % BW_CONN_LOG_LINES];
	l->time = now_real();
	l->level = level;
	l->msg = strdup(msg);
	if (l->msg)
		c->log_count++;
}

/* Which moves the state machine allows; anything else is a bug in the caller. */
static bool transition_ok(enum bw_conn_state from, enum bw_conn_state to)
{
	if (to == BW_CONN_INVALID)
		return true;	/* a reload may invalidate any connection */
	switch (from) {
	case BW_CONN_DOWN:
	case BW_CONN_FAILED:
	case BW_CONN_NEEDS_SECRET:
		return to == BW_CONN_CONNECTING || to == BW_CONN_DOWN || to == BW_CONN_NEEDS_SECRET ||
		       to == BW_CONN_FAILED;
	case BW_CONN_CONNECTING:
		return to != BW_CONN_REKEYING;
	case BW_CONN_UP:
		return to == BW_CONN_REKEYING || to == BW_CONN_STOPPING || to == BW_CONN_DOWN ||
		       to == BW_CONN_FAILED || to == BW_CONN_CONNECTING;
	case BW_CONN_REKEYING:
		return to == BW_CONN_UP || to == BW_CONN_STOPPING || to == BW_CONN_DOWN ||
		       to == BW_CONN_FAILED;
	case BW_CONN_STOPPING:
		return to == BW_CONN_DOWN || to == BW_CONN_FAILED;
	case BW_CONN_INVALID:
		return to == BW_CONN_DOWN;
	}
	return false;
}

void bw_conn_set_state(struct bw_conn *c, enum bw_conn_state to, const char *reason)
{
	enum bw_conn_state from = c->state;
	struct bw_events *ev = &c->agent->events;

	if (from == to)
		return;
	if (!transition_ok(from, to)) {
		bw_log(BW_LOG_ERROR, c->name, "internal error: refused state change %s -> %s",
		       bw_conn_state_name(from), bw_conn_state_name(to));
		return;
	}
	c->state = to;
	c->state_since = time(NULL);
	if (reason)
		bw_log(BW_LOG_INFO, c->name, "state %s -> %s (%s)", bw_conn_state_name(from),
		       bw_conn_state_name(to), reason);
	else
		bw_log(BW_LOG_INFO, c->name, "state %s -> %s", bw_conn_state_name(from), bw_conn_state_name(to));
	if (to == BW_CONN_UP && from != BW_CONN_REKEYING) {
		c->up_since = time(NULL);
		c->max_rate_in = c->max_rate_out = 0;
		bw_events_emitf(ev, "tunnel_up", bw_ike_conn_up_event(c));
	} else if (to == BW_CONN_STOPPING) {
		bw_events_emitf(ev, "tunnel_stopping",
				json_pack("{s:s,s:s}", "connection", c->name, "reason", reason ? reason : "stopped"));
	} else if (to == BW_CONN_DOWN && (from == BW_CONN_UP || from == BW_CONN_REKEYING ||
					  from == BW_CONN_STOPPING)) {
		c->up_since = 0;
		bw_events_emitf(ev, "tunnel_down",
				json_pack("{s:s,s:s}", "connection", c->name, "reason", reason ? reason : "stopped"));
	}
	observers_notify(c, from, false);
}

void bw_conn_fail_to(struct bw_conn *c, enum bw_conn_state to, const char *down_reason, const char *code,
		     const char *error, const char *explanation)
{
	bool was_up = c->state == BW_CONN_UP || c->state == BW_CONN_REKEYING;
	struct bw_events *ev = &c->agent->events;

	bw_strlcpy(c->fail_code, code, sizeof(c->fail_code));
	bw_strlcpy(c->fail_error, error, sizeof(c->fail_error));
	bw_strlcpy(c->fail_explanation, explanation ? explanation : error, sizeof(c->fail_explanation));
	c->fail_time = time(NULL);
	bw_log(BW_LOG_ERROR, c->name, "%s (failure %s)", error, code);
	/* bw_conn_set_state emits tunnel_down on the way to down, not to failed. */
	if (was_up && to != BW_CONN_DOWN)
		bw_events_emitf(ev, "tunnel_down", json_pack("{s:s,s:s}", "connection", c->name, "reason",
							     down_reason ? down_reason : "error"));
	bw_conn_set_state(c, to, to == BW_CONN_DOWN ? down_reason : code);
	if (was_up && strcmp(code, "deleted-by-peer") == 0)
		return;
	bw_events_emitf(ev, "tunnel_failed",
			json_pack("{s:s,s:s,s:s,s:s,s:s}", "connection", c->name, "error", c->fail_code, "code",
				  c->fail_code, "message", c->fail_error, "explanation", c->fail_explanation));
}

void bw_conn_fail(struct bw_conn *c, const char *code, const char *error, const char *explanation)
{
	bw_conn_fail_to(c, BW_CONN_FAILED, "error", code, error, explanation);
}

int bw_conn_start(struct bw_conn *c, char *err, size_t errlen)
{
	if (!c->valid) {
		snprintf(err, errlen, "connection %s is invalid (%s:%d: %s); fix the file and run burrow reload",
			 c->name, c->cfg_err.file, c->cfg_err.line, c->cfg_err.msg);
		bw_conn_fail_to(c, BW_CONN_INVALID, NULL, "invalid", err, err);
		return -1;
	}
	switch (c->state) {
	case BW_CONN_CONNECTING:
	case BW_CONN_UP:
	case BW_CONN_REKEYING:
		return 0;	/* already on its way: starting twice is not an error */
	case BW_CONN_STOPPING:
		snprintf(err, errlen, "connection %s is stopping; start it again once it is down", c->name);
		return -1;
	default:
		break;
	}
	return bw_ike_conn_start(c, err, errlen);
}

int bw_conn_stop(struct bw_conn *c, const char *reason, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	switch (c->state) {
	case BW_CONN_CONNECTING:
	case BW_CONN_UP:
	case BW_CONN_REKEYING:
		bw_ike_conn_stop(c, reason);
		break;
	case BW_CONN_FAILED:
	case BW_CONN_NEEDS_SECRET:
		bw_conn_set_state(c, BW_CONN_DOWN, reason);
		break;
	default:
		break;	/* down, stopping or invalid: nothing to do */
	}
	/* The kill switch outlives failures and reconnects; only a stop lifts it. */
	if (c->valid && c->cfg.kill_switch)
		bw_killswitch_off(c->name);
	return 0;
}

json_t *bw_conn_to_json(const struct bw_conn *c, bool detail)
{
	json_t *o = json_pack("{s:s,s:s,s:s}", "name", c->name, "state", bw_conn_state_name(c->state),
			      "file", c->file);

	if (c->valid) {
		json_object_set_new(o, "group", json_string(c->cfg.group));
		json_object_set_new(o, "gateway", json_string(c->cfg.gateway));
		json_object_set_new(o, "autostart", json_string(bw_autostart_name(c->cfg.autostart)));
		json_object_set_new(o, "topology", json_string(bw_topology_name(c->cfg.topology)));
		if (c->cfg.device[0])
			json_object_set_new(o, "device", json_string(c->cfg.device));
	} else {
		json_object_set_new(o, "group", json_string(""));
		json_object_set_new(o, "error", json_sprintf("%s:%d: %s", c->cfg_err.file,
							      c->cfg_err.line, c->cfg_err.msg));
	}
	if (!detail)
		return o;
	json_object_set_new(o, "state_since", json_integer(c->state_since));
	if (c->state == BW_CONN_NEEDS_SECRET && c->needs_secret[0])
		json_object_set_new(o, "needs_secret", json_string(c->needs_secret));
	if (c->up_since)
		json_object_set_new(o, "uptime_s", json_integer(time(NULL) - c->up_since));
	if (c->fail_code[0])
		json_object_set_new(o, "last_failure",
				    json_pack("{s:s,s:s,s:s,s:I}", "code", c->fail_code, "error", c->fail_error,
					      "explanation", c->fail_explanation, "time", (json_int_t)c->fail_time));
	json_object_set_new(o, "speed",
			    json_pack("{s:f,s:f,s:f,s:f}", "in_bps", c->rate_in, "out_bps", c->rate_out,
				      "max_in_bps", c->max_rate_in, "max_out_bps", c->max_rate_out));
	bw_ike_conn_status(c, o);
	return o;
}

json_t *bw_conn_log_json(const struct bw_conn *c, enum bw_log_level max_level, size_t lines)
{
	json_t *a = json_array();
	size_t first = 0, n = 0;

	/* Count matching lines backwards so that "lines" keeps the newest. */
	for (size_t i = c->log_count; i-- > 0;) {
		if (c->log[(c->log_head + i) % BW_CONN_LOG_LINES].level <= max_level) {
			n++;
			first = i;
			if (lines && n == lines)
				break;
		}
	}
	for (size_t i = first; n && i < c->log_count; i++) {
		const struct bw_conn_log_line *l = &c->log[(c->log_head + i) % BW_CONN_LOG_LINES];

		if (l->level <= max_level)
			json_array_append_new(a, json_pack("{s:f,s:s,s:s}", "time", l->time, "level",
							   bw_log_level_name(l->level), "msg", l->msg));
	}
	return a;
}

/* State-change observers: the list on a connection (told by bw_conn_set_state, safe against
 * removal and addition while it is being told, told once more when the connection is freed);
 * the control server answering a waiting start/stop on the state change itself, with its loop
 * asleep until then; a waiting client that goes away leaving no observer behind; a policy
 * restart started once the connection is down; the resolver waking the loop on completion. */
#include <arpa/inet.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent.h"
#include "ctl_proto.h"
#include "ctl_server.h"
#include "ike/ike_resolve.h"
#include "lua/policy_host.h"
#include "tap.h"

static char logbuf[1 << 16];
static size_t loglen;

static void sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	(void)ctx;
	(void)level;
	if (loglen + strlen(msg) + 64 < sizeof(logbuf))
		loglen += (size_t)snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s: %s\n",
					   conn ? conn : "-", msg);
}

/* ---- the observer list -------------------------------------------------- */

struct seen {
	int calls, gone;
	enum bw_conn_state from, to;
};

static struct seen sa, sb, sr, sn, sl;

static void obs_record(struct seen *s, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	s->calls++;
	s->gone += gone;
	s->from = from;
	s->to = c->state;
}

static void obs_a(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	(void)ctx;
	obs_record(&sa, c, from, gone);
}

static void obs_b(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	(void)ctx;
	obs_record(&sb, c, from, gone);
}

static void obs_l(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	(void)ctx;
	obs_record(&sl, c, from, gone);
}

/* Removes itself and obs_b while being told. */
static void obs_remover(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	(void)ctx;
	obs_record(&sr, c, from, gone);
	bw_conn_unobserve(c, obs_remover, NULL);
	bw_conn_unobserve(c, obs_b, NULL);
}

/* Adds obs_l while being told, once. */
static void obs_adder(void *ctx, struct bw_conn *c, enum bw_conn_state from, bool gone)
{
	(void)ctx;
	obs_record(&sn, c, from, gone);
	if (sn.calls == 1)
		bw_conn_observe(c, obs_l, NULL);
}

static void test_list(struct bw_agent *a)
{
	struct bw_conn *c = bw_conn_new(a, "office", "/nonexistent/office.conf");

	memset(&sa, 0, sizeof(sa));
	tap_ok(bw_conn_observe(c, obs_a, NULL) == 0 && bw_conn_observe(c, obs_b, NULL) == 0,
	       "two observers are registered");
	loglen = 0;
	logbuf[0] = '\0';
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	tap_ok(sa.calls == 1 && sa.from == BW_CONN_DOWN && sa.to == BW_CONN_CONNECTING && !sa.gone &&
	       sb.calls == 1 && sb.from == BW_CONN_DOWN, "a state change tells each observer once, with old and new state");
	tap_ok(strstr(logbuf, "office: state down -> connecting\n") != NULL, "and is logged as \"old -> new\"");
	bw_conn_set_state(c, BW_CONN_REKEYING, NULL);
	tap_ok(sa.calls == 1 && c->state == BW_CONN_CONNECTING, "a refused transition tells no observer");
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	tap_is_int(sa.calls, 1, "setting the same state again tells no observer");

	/* The list is now a, b; then remover, which takes itself and b out while being told. */
	bw_conn_unobserve(c, obs_b, NULL);
	bw_conn_observe(c, obs_remover, NULL);
	bw_conn_observe(c, obs_b, NULL);
	memset(&sb, 0, sizeof(sb));
	bw_conn_set_state(c, BW_CONN_UP, NULL);
	tap_ok(sr.calls == 1 && sa.calls == 2, "the observer that removes others is told");
	tap_is_int(sb.calls, 0, "an observer removed during the notification is not told afterwards");
	tap_is_int(c->n_observers, 1, "removed observers are gone from the list once the notification ends");
	bw_conn_set_state(c, BW_CONN_STOPPING, "stopped");
	tap_ok(sr.calls == 1 && sb.calls == 0 && sa.calls == 3, "and neither is told of the next change");

	bw_conn_observe(c, obs_adder, NULL);
	bw_conn_set_state(c, BW_CONN_DOWN, "stopped");
	tap_ok(sn.calls == 1 && sl.calls == 0, "an observer added during a notification is not told of that change");
	bw_conn_set_state(c, BW_CONN_NEEDS_SECRET, "psk");
	tap_ok(sl.calls == 1 && sl.from == BW_CONN_DOWN && sl.to == BW_CONN_NEEDS_SECRET, "but of the next one");

	bw_conn_free(c);
	tap_ok(sa.gone == 1 && sl.gone == 1 && sn.gone == 1, "freeing the connection tells each observer once, gone");
}

/* ---- the control server ------------------------------------------------- */

static void on_probe(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

/* Sleeps the loop for seconds and says how many times it woke (1: only for the probe). */
static unsigned idle_wakeups(struct ev_loop *loop, double seconds)
{
	unsigned before = ev_iteration(loop);
	ev_timer probe;

	ev_timer_init(&probe, on_probe, seconds, 0);
	ev_timer_start(loop, &probe);
	ev_run(loop, 0);
	ev_timer_stop(loop, &probe);
	return ev_iteration(loop) - before;
}

static int client_connect(const char *path)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		abort();
	return fd;
}

static void client_send(int fd, const char *cmd, const char *name)
{
	char *line = bw_ctl_request_build(cmd, json_pack("{s:[s],s:b}", "names", name, "wait", 1));

	if (write(fd, line, strlen(line)) != (ssize_t)strlen(line))
		abort();
	free(line);
}

static bool readable(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };

	return poll(&p, 1, 0) == 1;
}

/* Turns the loop until the server has taken the request (the connection has an observer). */
static bool until_observed(struct ev_loop *loop, struct bw_conn *c, size_t n)
{
	for (int i = 0; i < 1000 && c->n_observers != n; i++)
		ev_run(loop, EVRUN_NOWAIT);
	return c->n_observers == n;
}

/* Turns the loop until the reply line is readable, then reads it. */
static json_t *client_reply(struct ev_loop *loop, int fd)
{
	char buf[65536];
	ssize_t n;

	for (int i = 0; i < 1000 && !readable(fd); i++)
		ev_run(loop, EVRUN_NOWAIT);
	if (!readable(fd))
		return NULL;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return NULL;
	buf[n] = '\0';
	return json_loads(buf, JSON_DISABLE_EOF_CHECK, NULL);
}

static const char *jstr(json_t *o, const char *key)
{
	const char *v = json_string_value(json_object_get(o, key));

	return v ? v : "";
}

static const char *reply_state(json_t *r)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(r, "result"), 0), "state"));
}

static void test_server(struct bw_agent *a, const char *dir)
{
	struct bw_ctl_server *srv = NULL;
	char path[600];
	struct bw_conn *c;
	json_t *r;
	int fd;

	snprintf(path, sizeof(path), "%s/ctl.sock", dir);
	c = bw_conn_new(a, "office", "/nonexistent/office.conf");
	c->valid = true;
	a->conns = calloc(1, sizeof(*a->conns));
	a->conns[0] = c;
	a->n_conns = 1;
	if (bw_ctl_server_open(a, path, &srv) != 0)
		abort();

	/* start, waiting: the connection is on its way, so start only waits. */
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	fd = client_connect(path);
	client_send(fd, "start", "office");
	tap_ok(until_observed(a->loop, c, 1), "a waiting start observes its connection");
	tap_is_int(idle_wakeups(a->loop, 0.3), 1, "while it waits the agent's loop sleeps (no poll wakes it)");
	tap_ok(!readable(fd), "and the client has no answer yet");
	bw_conn_set_state(c, BW_CONN_UP, NULL);
	tap_is_int(c->n_observers, 0, "the change to up settles the wait inside the notification: the observer is gone");
	r = client_reply(a->loop, fd);
	tap_ok(r && json_is_true(json_object_get(r, "ok")) && reply_state(r) && strcmp(reply_state(r), "up") == 0,
	       "the client's answer is ok with the connection up, written on the next turn of the loop");
	json_decref(r);
	close(fd);

	/* stop, waiting, while the connection is stopping. */
	bw_conn_set_state(c, BW_CONN_STOPPING, "stopped");
	fd = client_connect(path);
	client_send(fd, "stop", "office");
	tap_ok(until_observed(a->loop, c, 1), "a waiting stop observes its connection");
	bw_conn_set_state(c, BW_CONN_DOWN, "stopped");
	r = client_reply(a->loop, fd);
	tap_ok(r && json_is_true(json_object_get(r, "ok")) && reply_state(r) && strcmp(reply_state(r), "down") == 0,
	       "stop is answered ok once the connection is down");
	json_decref(r);
	close(fd);

	/* start that fails: the answer carries the reason. */
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	fd = client_connect(path);
	client_send(fd, "start", "office");
	tap_ok(until_observed(a->loop, c, 1), "another waiting start observes its connection");
	bw_conn_fail(c, "no-answer", "the gateway 192.0.2.1 did not answer", NULL);
	r = client_reply(a->loop, fd);
	if (!tap_ok(r && json_is_false(json_object_get(r, "ok")) && strcmp(jstr(r, "code"), "failed") == 0 &&
		    strcmp(jstr(r, "error"), "office failed: the gateway 192.0.2.1 did not answer") == 0,
		    "a start that fails is answered with the failure and its reason") && r)
		tap_diag("reply: code %s, error %s", jstr(r, "code"), jstr(r, "error"));
	json_decref(r);
	close(fd);

	/* A waiting client that goes away leaves no observer behind. */
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	fd = client_connect(path);
	client_send(fd, "start", "office");
	tap_ok(until_observed(a->loop, c, 1), "a third waiting start observes its connection");
	close(fd);
	tap_ok(until_observed(a->loop, c, 0), "the client hangs up: its observer is removed");
	bw_conn_set_state(c, BW_CONN_UP, NULL);
	tap_ok(c->state == BW_CONN_UP, "a later change tells nobody (and touches no freed client)");

	bw_ctl_server_close(srv);
	bw_conn_free(c);
	free(a->conns);
	a->conns = NULL;
	a->n_conns = 0;
}

/* ---- a policy restart --------------------------------------------------- */

static bool run_until_log(struct ev_loop *loop, const char *needle, int turns)
{
	for (int i = 0; i < turns && !strstr(logbuf, needle); i++)
		ev_run(loop, EVRUN_NOWAIT);
	return strstr(logbuf, needle) != NULL;
}

static void put(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void test_policy_restart(struct bw_agent *a, const char *dir)
{
	char pdir[600], file[700];
	struct bw_policy_host *h;
	struct bw_conn *c;

	snprintf(pdir, sizeof(pdir), "%s/policies", dir);
	mkdir(pdir, 0700);
	snprintf(file, sizeof(file), "%s/10-restart.lua", pdir);
	put(file, "burrow.on('ssid', function() burrow.restart('office') end)\n");
	snprintf(file, sizeof(file), "%s/none.lua", dir);
	put(file, "\n");
	c = bw_conn_new(a, "office", "/nonexistent/office.conf");
	a->conns = calloc(1, sizeof(*a->conns));
	a->conns[0] = c;
	a->n_conns = 1;
	/* Invalid: the restart's start is refused with a message, which shows when it happened. */
	c->valid = false;
	snprintf(c->cfg_err.file, sizeof(c->cfg_err.file), "office.conf");
	c->cfg_err.line = 3;
	snprintf(c->cfg_err.msg, sizeof(c->cfg_err.msg), "test");
	bw_conn_set_state(c, BW_CONN_CONNECTING, NULL);
	bw_conn_set_state(c, BW_CONN_UP, NULL);
	bw_conn_set_state(c, BW_CONN_STOPPING, "stopped");

	h = bw_policy_host_new(a, pdir, file);
	loglen = 0;
	logbuf[0] = '\0';
	bw_events_emitf(&a->events, "ssid", json_pack("{s:s}", "ssid", "CafeFree"));
	tap_ok(run_until_log(a->loop, "policy 10-restart", 1000) && until_observed(a->loop, c, 1),
	       "a policy restart of a stopping connection observes it");
	tap_is_int(idle_wakeups(a->loop, 0.3), 1, "while it is stopping the loop sleeps (no restart poll)");
	tap_ok(!strstr(logbuf, "restart: connection office is invalid"), "and no start was tried yet");
	bw_conn_set_state(c, BW_CONN_DOWN, "stopped");
	tap_ok(run_until_log(a->loop, "restart: connection office is invalid", 10),
	       "once it is down the restart starts it (here refused: the connection is invalid)");
	tap_is_int(c->n_observers, 0, "and the restart observes it no more");
	bw_policy_host_free(h);
	bw_conn_free(c);
	free(a->conns);
	a->conns = NULL;
	a->n_conns = 0;
}

/* ---- the resolver ------------------------------------------------------- */

struct answer {
	int calls, rc;
	struct sockaddr_in addr;
};

static void on_answer(void *ctx, int rc, const struct sockaddr_in *addr)
{
	struct answer *an = ctx;

	an->calls++;
	an->rc = rc;
	an->addr = *addr;
}

static void on_give_up(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)w;
	(void)revents;
	ev_break(loop, EVBREAK_ALL);
}

static void test_resolver(struct ev_loop *loop)
{
	struct answer an = { 0 }, cancelled = { 0 };
	struct ike_resolve *r;
	char err[256], ip[32];
	ev_timer limit;
	unsigned before;

	r = ike_resolve_start(loop, "localhost", on_answer, &an, err, sizeof(err));
	tap_ok(r != NULL, "resolving localhost starts");
	ev_timer_init(&limit, on_give_up, 10.0, 0);
	ev_timer_start(loop, &limit);
	before = ev_iteration(loop);
	while (an.calls == 0 && ev_is_active(&limit))
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &limit);
	inet_ntop(AF_INET, &an.addr.sin_addr, ip, sizeof(ip));
	tap_ok(an.calls == 1 && an.rc == 0 && strcmp(ip, "127.0.0.1") == 0,
	       "the answer comes to the loop: localhost is 127.0.0.1 (got %s, rc %d)", ip, an.rc);
	tap_is_int(ev_iteration(loop) - before, 1, "the loop woke once, for the completion (no poll timer)");

	r = ike_resolve_start(loop, "localhost", on_answer, &cancelled, err, sizeof(err));
	ike_resolve_cancel(r);
	ev_timer_init(&limit, on_give_up, 0.3, 0);
	ev_timer_start(loop, &limit);
	while (ev_is_active(&limit))
		ev_run(loop, EVRUN_ONCE);
	tap_is_int(cancelled.calls, 0, "a cancelled lookup is never answered");
	ike_resolve_close();
}

int main(void)
{
	char tmp[] = "/tmp/burrow-observers-XXXXXX";
	struct bw_agent a;
	char cmd[100];

	if (!mkdtemp(tmp))
		return 1;
	memset(&a, 0, sizeof(a));
	a.loop = ev_default_loop(0);
	bw_events_init(&a.events);
	bw_log_init("test", 0, BW_LOG_ERROR);
	bw_log_set_sink(sink, NULL);

	test_list(&a);
	test_server(&a, tmp);
	test_policy_restart(&a, tmp);
	test_resolver(a.loop);

	bw_log_set_sink(NULL, NULL);
	bw_events_free(&a.events);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	return tap_done_testing();
}

/* The policy host against a real event bus and libev loop (no connections): events are
 * dispatched from the loop, not inside the emitter; exec really runs children with the
 * event's environment, a timeout and bounded output; reload drops timers; a failing
 * policy is disabled and says so on the bus. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "lua/policy_host.h"
#include "tap.h"

static char logbuf[1 << 20];
static size_t loglen;

static void sink(void *ctx, enum bw_log_level level, const char *conn, const char *msg)
{
	(void)ctx;
	(void)level;
	(void)conn;
	if (loglen + strlen(msg) + 2 < sizeof(logbuf))
		loglen += (size_t)snprintf(logbuf + loglen, sizeof(logbuf) - loglen, "%s\n", msg);
}

static void tick(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)w;
	(void)revents;
}

/* Runs the loop until the log holds needle or seconds pass. */
static int run_until(struct ev_loop *loop, const char *needle, double seconds)
{
	ev_timer t;
	double end = ev_time() + seconds;

	ev_timer_init(&t, tick, 0.02, 0.02);
	ev_timer_start(loop, &t);
	while (!(needle && strstr(logbuf, needle)) && ev_time() < end)
		ev_run(loop, EVRUN_ONCE);
	ev_timer_stop(loop, &t);
	return needle && strstr(logbuf, needle) != NULL;
}

static int count(const char *needle)
{
	int n = 0;

	for (const char *p = logbuf; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

static void put(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

int main(void)
{
	char tmp[] = "/tmp/burrow-policy-agent-XXXXXX", dir[600], defaults[600], cmd[700];
	struct bw_agent a;
	struct bw_policy_host *h;
	json_t *recent, *e;
	size_t i;
	int disabled_on_bus = 0, before;

	if (!mkdtemp(tmp))
		return 1;
	snprintf(dir, sizeof(dir), "%s/policies", tmp);
	if (mkdir(dir, 0700) != 0)
		return 1;
	memset(&a, 0, sizeof(a));
	a.loop = ev_default_loop(0);
	bw_events_init(&a.events);
	bw_log_init("test", 0, BW_LOG_ERROR);
	bw_log_set_sink(sink, NULL);

	snprintf(defaults, sizeof(defaults), "%s/shipped-defaults.lua", tmp);
	put(tmp, "shipped-defaults.lua", "burrow.on('start', function() burrow.log('info', 'defaults saw start') end)\n");
	put(dir, "10-exec.lua",
	    "burrow.on('ssid', function(ev)\n"
	    "  burrow.log('info', 'handler ran')\n"
	    "  burrow.exec{'/bin/sh', '-c', 'echo event=$BURROW_EVENT ssid=$BURROW_SSID; exit 3',\n"
	    "    on_exit = function(st, out, why) burrow.log('info', 'exit ' .. st .. ' ' .. why .. ' ' .. out) end}\n"
	    "  burrow.exec{'/bin/sh', '-c', 'sleep 30', timeout = 0.3,\n"
	    "    on_exit = function(st, out, why) burrow.log('info', 'slow ' .. st .. ' ' .. why) end}\n"
	    "  burrow.exec{'sh', '-c', 'yes | head -c 200000',\n"
	    "    on_exit = function(st, out) burrow.log('info', 'big ' .. st .. ' ' .. #out) end}\n"
	    "  local ok, err = burrow.exec{'no-such-program-here'}\n"
	    "  burrow.log('info', 'missing: ' .. tostring(ok) .. ' ' .. tostring(err))\n"
	    "end)\n"
	    "burrow.on('logout', function() local x = nil; return x.y end)\n");
	put(dir, "20-timer.lua", "local n = 0\nburrow.every(0.1, function() n = n + 1 burrow.log('info', 'tick') end)\n");

	/* The agent says "start" before the host exists (as bw_agent_init does). */
	bw_events_emitf(&a.events, "start", NULL);
	h = bw_policy_host_new(&a, dir, defaults);
	tap_ok(h != NULL, "the host is created against a real event bus");
	tap_ok(!strstr(logbuf, "defaults saw start"), "no handler runs inside bw_policy_host_new");
	tap_ok(run_until(a.loop, "defaults saw start", 2), "a start event emitted before the host existed is delivered once");

	bw_events_emitf(&a.events, "ssid", json_pack("{s:s}", "ssid", "CafeFree"));
	tap_ok(!strstr(logbuf, "handler ran"), "emitting an event does not run handlers inside the emitter");
	tap_ok(run_until(a.loop, "handler ran", 2), "the handler runs from the loop");
	tap_ok(run_until(a.loop, "exit 3 exited event=ssid ssid=CafeFree", 5),
	       "exec runs without a shell of its own, gets BURROW_EVENT/BURROW_SSID, reports exit status and output");
	tap_ok(run_until(a.loop, "slow 137 timeout", 5), "a child past its timeout is killed (status 137, reason timeout)");
	tap_ok(run_until(a.loop, "big 0 65536", 5), "output is captured up to 64 KiB, the rest drained");
	tap_ok(strstr(logbuf, "missing: nil cannot find the program no-such-program-here") != NULL,
	       "exec of a program that is not there returns nil and a reason at once");

	bw_events_emitf(&a.events, "logout", NULL);
	tap_ok(run_until(a.loop, "10-exec.lua:12: attempt to index a nil value", 2),
	       "a handler error reaches the agent log with file:line");

	run_until(a.loop, NULL, 0.35);
	tap_ok(count("tick") >= 2, "burrow.every fires on the loop");
	snprintf(cmd, sizeof(cmd), "%s/20-timer.lua", dir);
	unlink(cmd);
	bw_policy_host_reload(h);
	before = count("tick");
	run_until(a.loop, NULL, 0.5);
	tap_is_int(count("tick"), before, "after a reload the old policy's timer is gone");

	put(dir, "30-failing.lua", "burrow.every(0.1, function() error('always') end)\n");
	bw_policy_host_reload(h);
	tap_ok(run_until(a.loop, "disabled: 10 errors within 60 s", 3), "a policy that keeps failing is disabled");
	run_until(a.loop, NULL, 0.1);
	recent = bw_events_recent(&a.events);
	json_array_foreach(recent, i, e)
		if (strcmp(json_string_value(json_object_get(e, "name")), "policy_disabled") == 0 &&
		    strcmp(json_string_value(json_object_get(e, "policy")), "30-failing.lua") == 0)
			disabled_on_bus = 1;
	json_decref(recent);
	tap_ok(disabled_on_bus, "and a policy_disabled event names it on the bus");

	bw_policy_host_free(h);
	bw_events_free(&a.events);
	bw_log_set_sink(NULL, NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", tmp);
	if (tap_failed)
		tap_diag("log:\n%s", logbuf);
	return tap_done_testing();
}

/* Replays traces through policies/defaults.lua, the example policies and test policies in
 * the simulator and compares the transcripts line by line with what they must be. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/ptu.h"

#include "tap.h"

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

static const char *src_path(const char *rel)
{
	static char buf[8][1024];
	static int next;
	char *p = buf[next++ % 8];

	snprintf(p, 1024, "%s/%s", ptu_src(), rel);
	return p;
}

/* Replays tests/policy/TRACE with the given policies and compares with want. */
static void compare(const char *name, const char *const *files, const char *trace, const char *want)
{
	char *text = slurp(src_path(trace));
	struct ptu_run r;

	if (!text) {
		tap_ok(0, "%s (cannot read %s)", name, trace);
		return;
	}
	r = ptu_replay(files, text);
	if (!tap_is_str(r.out, want, "%s", name))
		tap_diag("transcript:\n%s", r.out);
	tap_ok(r.errors == 0 && r.replay_rc == 0, "%s: no policy raised", name);
	free(r.out);
	free(text);
}

static void test_defaults(void)
{
	const char *defaults[] = { src_path("policies/defaults.lua"), NULL };

	compare("defaults.lua: autostart=boot starts at start, login at each login, never stays down", defaults,
		"tests/policy/defaults-autostart.jsonl",
		"   0.0 event start\n"
		"   0.0 start office\n"
		"   0.0 state office up\n"
		"   0.0 event tunnel_up connection=office\n"
		"  10.0 event login user=alice tty=tty1\n"
		"  10.0 start home\n"
		"  10.0 state home up\n"
		"  10.0 event tunnel_up connection=home\n"
		"  20.0 event login user=bob tty=tty2\n"
		"  20.0 start home\n");
	compare("defaults.lua: DPD restarts after 5 s, a manual stop and a peer delete do not, a network loss waits for online",
		defaults, "tests/policy/defaults-restart.jsonl",
		"   0.0 event start\n"
		"   0.0 start office\n"
		"   0.0 state office up\n"
		"   0.0 event tunnel_up connection=office\n"
		"  60.0 event tunnel_down connection=office reason=dpd\n"
		"  60.0 state office down\n"
		"  65.0 timer defaults.lua\n"
		"  65.0 start office\n"
		"  65.0 state office up\n"
		"  65.0 event tunnel_up connection=office\n"
		" 100.0 event tunnel_down connection=office reason=stopped\n"
		" 100.0 state office down\n"
		" 110.0 event tunnel_up connection=home\n"
		" 110.0 state home up\n"
		" 120.0 event tunnel_down connection=home reason=deleted-by-peer\n"
		" 120.0 state home down\n"
		" 130.0 event tunnel_up connection=home\n"
		" 130.0 state home up\n"
		" 200.0 event network interface=eth0 change=link-down online=false\n"
		" 201.0 event tunnel_down connection=home reason=network\n"
		" 201.0 state home down\n"
		" 240.0 event network interface=eth0 change=route online=true\n"
		" 245.0 timer defaults.lua\n"
		" 245.0 start home\n"
		" 245.0 state home up\n"
		" 245.0 event tunnel_up connection=home\n");
	compare("defaults.lua: an unreachable gateway is retried with growing, jittered delays, then left alone once up",
		defaults, "tests/policy/defaults-backoff.jsonl",
		"   0.0 event start\n"
		"   0.0 start office\n"
		"   0.0 state office up\n"
		"   0.0 event tunnel_up connection=office\n"
		"  60.0 event tunnel_down connection=office reason=dpd\n"
		"  60.0 state office down\n"
		"  65.0 timer defaults.lua\n"
		"  65.0 start office\n"
		"  65.0 state office failed\n"
		"  65.0 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
		"  73.1 timer defaults.lua\n"
		"  73.1 start office\n"
		"  73.1 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
		"  90.1 timer defaults.lua\n"
		"  90.1 start office\n"
		"  90.1 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
		" 132.7 timer defaults.lua\n"
		" 132.7 start office\n"
		" 132.7 state office up\n"
		" 132.7 event tunnel_up connection=office\n");
}

static void test_manual_stop_by_policy(void)
{
	const char *files[] = {
		src_path("policies/defaults.lua"),
		ptu_write("stopper.lua", "burrow.on('ssid', function() burrow.stop('office') end)\n"),
		NULL,
	};
	struct ptu_run r = ptu_replay(files,
		"{\"connections\": [{\"name\": \"office\", \"autostart\": \"boot\"}]}\n"
		"{\"name\": \"start\", \"time\": 0}\n"
		"{\"name\": \"ssid\", \"time\": 10, \"ssid\": \"x\"}\n");

	tap_ok(ptu_has(r.out, "  10.0 stop office\n  10.0 state office stopping\n"
			      "  10.0 event tunnel_stopping connection=office reason=stopped\n"
			      "  10.0 state office down\n"
			      "  10.0 event tunnel_down connection=office reason=stopped\n"),
	       "a stop from a policy takes the simulated tunnel through stopping (tunnel_stopping) to down (tunnel_down)");
	tap_is_int(ptu_count(r.out, "start office"), 1, "defaults.lua does not restart a connection stopped on purpose");
	free(r.out);
}

static void test_timers(void)
{
	const char *files[] = { src_path("tests/policy/timers.lua"), NULL };

	compare("after fires once at its time, every repeats until cancelled, a cancelled after never fires", files,
		"tests/policy/timers.jsonl",
		"   0.0 event start\n"
		"  10.0 timer timers.lua\n"
		"  10.0 log timers.lua info: tick 1\n"
		"  20.0 timer timers.lua\n"
		"  20.0 log timers.lua info: tick 2\n"
		"  25.0 event ssid ssid=CafeFree\n"
		"  30.0 timer timers.lua\n"
		"  30.0 log timers.lua info: after 30\n"
		"  30.0 timer timers.lua\n"
		"  30.0 log timers.lua info: tick 3\n");
}

static void test_examples(void)
{
	{
		const char *files[] = { src_path("policies/examples/untrusted-wifi.lua"), NULL };

		compare("untrusted-wifi.lua: the full tunnel on an untrusted SSID, a spoofed BSSID or an unknown gateway MAC; down again at home", files,
			"tests/policy/untrusted-wifi.jsonl",
			"   0.0 event ssid interface=wlan0 ssid=HomeNet bssid=00:11:22:33:44:55\n"
			"  60.0 event ssid interface=wlan0 ssid=CafeFree bssid=aa:bb:cc:00:00:01\n"
			"  60.0 log untrusted-wifi.lua info: untrusted Wi-Fi CafeFree: bringing up everywhere\n"
			"  60.0 start everywhere\n"
			"  60.0 state everywhere up\n"
			"  60.0 event tunnel_up connection=everywhere\n"
			" 120.0 event ssid interface=wlan0 ssid=HomeNet bssid=66:66:66:66:66:66\n"
			" 120.0 log untrusted-wifi.lua warn: HomeNet from an unknown access point 66:66:66:66:66:66: treated as untrusted\n"
			" 180.0 event ssid interface=wlan0 ssid=HomeNet bssid=00:11:22:33:44:55\n"
			" 180.0 stop everywhere\n"
			" 180.0 state everywhere stopping\n"
			" 180.0 event tunnel_stopping connection=everywhere reason=stopped\n"
			" 180.0 state everywhere down\n"
			" 180.0 event tunnel_down connection=everywhere reason=stopped\n"
			" 240.0 event network interface=wlan0 change=route online=true\n"
			" 240.0 log untrusted-wifi.lua warn: HomeNet with an unknown gateway de:ad:be:ef:00:01: treated as untrusted\n"
			" 240.0 log untrusted-wifi.lua info: untrusted Wi-Fi HomeNet: bringing up everywhere\n"
			" 240.0 start everywhere\n"
			" 240.0 state everywhere up\n"
			" 240.0 event tunnel_up connection=everywhere\n");
	}
	{
		const char *files[] = { src_path("policies/examples/location.lua"), NULL };

		compare("location.lua: home-lab at Home, nothing in the Office, the full tunnel anywhere else", files,
			"tests/policy/location.jsonl",
			"   0.0 event ssid interface=wlan0 ssid=HomeNet bssid=00:11:22:33:44:55\n"
			"   0.0 event location location=Home reason=rules\n"
			"   0.0 stop everywhere\n"
			"   0.0 start home-lab\n"
			"   0.0 state home-lab up\n"
			"   0.0 event tunnel_up connection=home-lab\n"
			" 100.0 event ssid interface=wlan0 ssid=Corp bssid=00:aa:00:00:00:01\n"
			" 100.0 event location previous=Home reason=rules\n"
			" 100.0 stop home-lab\n"
			" 100.0 state home-lab stopping\n"
			" 100.0 start everywhere\n"
			" 100.0 state everywhere up\n"
			" 100.0 event tunnel_stopping connection=home-lab reason=stopped\n"
			" 100.0 event tunnel_up connection=everywhere\n"
			" 100.0 state home-lab down\n"
			" 100.0 event tunnel_down connection=home-lab reason=stopped\n"
			" 101.0 event location location=Office reason=rules\n"
			" 101.0 stop everywhere\n"
			" 101.0 state everywhere stopping\n"
			" 101.0 event tunnel_stopping connection=everywhere reason=stopped\n"
			" 101.0 state everywhere down\n"
			" 101.0 event tunnel_down connection=everywhere reason=stopped\n"
			" 101.0 event network interface=wlan0 change=route online=true\n"
			" 200.0 event location previous=Office reason=rules\n"
			" 200.0 start everywhere\n"
			" 200.0 state everywhere up\n"
			" 200.0 event tunnel_up connection=everywhere\n"
			" 200.0 event ssid interface=wlan0 ssid=CafeFree bssid=aa:bb:cc:00:00:01\n");
	}
	{
		const char *files[] = { src_path("policies/examples/mount-on-connect.lua"), NULL };

		compare("mount-on-connect.lua: mounted after tunnel_up, a slow unmount holds stopping, a failed mount is reported", files,
			"tests/policy/mount-on-connect.jsonl",
			"   0.0 event tunnel_up connection=office\n"
			"   0.0 state office up\n"
			"   0.0 mount alice@10.1.0.10:/srv/share /mnt/office (sshfs)\n"
			"  60.0 stop office\n"
			"  60.0 state office stopping\n"
			"  60.0 event tunnel_stopping connection=office reason=stopped\n"
			"  60.0 unmount /mnt/office\n"
			"  63.0 done unmount /mnt/office: status 0\n"
			"  63.0 state office down\n"
			"  63.0 event tunnel_down connection=office reason=stopped\n"
			"  70.0 start office\n"
			"  70.0 state office up\n"
			"  70.0 event tunnel_up connection=office\n"
			"  70.0 mount alice@10.1.0.10:/srv/share /mnt/office (sshfs)\n"
			"  72.0 done mount alice@10.1.0.10:/srv/share /mnt/office (sshfs): status 1: read: Connection reset by peer\n"
			"  72.0 log host warn: mount of /mnt/office failed (exited 1): read: Connection reset by peer\n"
			"  72.0 notify Office share: could not mount /mnt/office: read: Connection reset by peer\n");
	}
	{
		const char *files[] = { src_path("policies/defaults.lua"), src_path("policies/examples/always-on.lua"), NULL };

		compare("always-on.lua: back-off with jitter after failures, back after DPD, a stop by hand respected", files,
			"tests/policy/always-on.jsonl",
			"   0.0 event start\n"
			"   0.0 start office\n"
			"   0.0 state office connecting\n"
			"   2.0 state office failed\n"
			"   2.0 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
			"   2.0 log always-on.lua info: office failed (no-answer): next try in 5.0 s\n"
			"   7.0 timer always-on.lua\n"
			"   7.0 start office\n"
			"   7.0 state office connecting\n"
			"   9.0 state office failed\n"
			"   9.0 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
			"   9.0 log always-on.lua info: office failed (no-answer): next try in 10.2 s\n"
			"  19.3 timer always-on.lua\n"
			"  19.3 start office\n"
			"  19.3 state office connecting\n"
			"  21.3 state office failed\n"
			"  21.3 event tunnel_failed connection=office error=no-answer code=no-answer explanation=simulated failure\n"
			"  21.3 log always-on.lua info: office failed (no-answer): next try in 22.6 s\n"
			"  43.9 timer always-on.lua\n"
			"  43.9 start office\n"
			"  43.9 state office connecting\n"
			"  45.9 state office up\n"
			"  45.9 event tunnel_up connection=office\n"
			" 200.0 event tunnel_down connection=office reason=dpd\n"
			" 200.0 state office down\n"
			" 200.0 log always-on.lua info: office went down (dpd): next try in 5.5 s\n"
			" 205.0 timer defaults.lua\n"
			" 205.0 start office\n"
			" 205.0 state office connecting\n"
			" 205.5 timer always-on.lua\n"
			" 207.0 state office up\n"
			" 207.0 event tunnel_up connection=office\n"
			" 300.0 stop office\n"
			" 300.0 state office stopping\n"
			" 300.0 event tunnel_stopping connection=office reason=stopped\n"
			" 300.0 state office down\n"
			" 300.0 event tunnel_down connection=office reason=stopped\n");
	}
	{
		const char *files[] = { src_path("policies/examples/office-hours.lua"), NULL };

		compare("office-hours.lua: up at 08:00 and down at 18:00 on a virtual Monday, one timer per change", files,
			"tests/policy/office-hours.jsonl",
			"   0.0 event start\n"
			"1800.0 timer office-hours.lua\n"
			"1800.0 start office\n"
			"1800.0 state office up\n"
			"1800.0 event tunnel_up connection=office\n"
			"37800.0 timer office-hours.lua\n"
			"37800.0 stop office\n"
			"37800.0 state office stopping\n"
			"37800.0 event tunnel_stopping connection=office reason=stopped\n"
			"37800.0 state office down\n"
			"37800.0 event tunnel_down connection=office reason=stopped\n");
	}
}

/* The simulator's own knobs: failures that stop after N tries, connect delays, actions that
 * hang past the stopping bound, actions started from on_exit being awaited too. */
static void test_sim_knobs(void)
{
	const char *files[] = {
		ptu_write("knobs.lua",
			  "burrow.on('tunnel_stopping', function(ev)\n"
			  "  burrow.exec{'/bin/first', on_exit = function() burrow.exec{'/bin/second'} end}\n"
			  "  if ev.connection == 'lab' then burrow.exec{'/bin/hang'} end\n"
			  "end)\n"),
		NULL,
	};
	struct ptu_run r = ptu_replay(files,
		"{\"connections\": [{\"name\": \"office\", \"state\": \"up\"}, {\"name\": \"lab\", \"state\": \"up\"}]}\n"
		"{\"name\": \"sim\", \"time\": 0, \"action\": \"/bin/first\", \"duration\": 1}\n"
		"{\"name\": \"sim\", \"time\": 0, \"action\": \"/bin/second\", \"duration\": 2}\n"
		"{\"name\": \"sim\", \"time\": 0, \"action\": \"/bin/hang\", \"duration\": 100}\n"
		"{\"name\": \"sim\", \"time\": 5, \"stop\": \"office\"}\n"
		"{\"name\": \"sim\", \"time\": 20, \"stop\": \"lab\"}\n"
		"{\"name\": \"sim\", \"time\": 40, \"fail\": \"office\", \"error\": \"auth-failed\", \"times\": 1}\n"
		"{\"name\": \"sim\", \"time\": 40, \"connection\": \"office\", \"delay\": 4}\n"
		"{\"name\": \"sim\", \"time\": 41, \"start\": \"office\"}\n"
		"{\"name\": \"sim\", \"time\": 50, \"start\": \"office\"}\n"
		"{\"until\": 60}\n");

	tap_ok(ptu_has(r.out, "   5.0 state office stopping\n   5.0 event tunnel_stopping connection=office reason=stopped\n"
			      "   5.0 exec /bin/first\n   6.0 done exec /bin/first: status 0\n   6.0 exec /bin/second\n"
			      "   8.0 done exec /bin/second: status 0\n   8.0 state office down\n"),
	       "stopping waits for a tunnel_stopping action and for what its on_exit started");
	tap_ok(ptu_has(r.out, "  30.0 log host warn: lab: stopping goes on without the tunnel_stopping actions still running: exec /bin/hang\n"
			      "  30.0 state lab down\n"),
	       "an action that hangs is cut off after 10 s, and the log names it");
	tap_ok(ptu_has(r.out, "  41.0 state office connecting\n  45.0 state office failed\n"
			      "  45.0 event tunnel_failed connection=office error=auth-failed"),
	       "a sim fail line makes the next start fail with its error, after the connect delay");
	tap_ok(ptu_has(r.out, "  50.0 state office connecting\n  54.0 state office up\n"),
	       "with times = 1 the start after it succeeds");
	tap_is_int(r.errors, 0, "no policy raised");
	free(r.out);

	r = ptu_run1("", "{\"name\": \"sim\", \"time\": 0, \"bogus\": 1}\n");
	tap_is_int(r.replay_rc, -1, "a sim line that asks for nothing known is refused");
	free(r.out);
}

static void test_locations_and_actions(void)
{
	const char *files[] = {
		ptu_write("loc.lua",
			  "burrow.locations{ {name='Office', gateway_mac='00:AA:BB:CC:DD:EE'},\n"
			  "                  {name='Home', ssid={'HomeNet', 'HomeNet-5G'}} }\n"
			  "burrow.on('location', function(ev) burrow.log('info', 'at ' .. tostring(burrow.location())) end)\n"
			  "burrow.on('tunnel_up', function(ev)\n"
			  "  burrow.exec{'/bin/echo', ev.connection, timeout=5, on_exit=function(st, out, why) burrow.log('info', 'exit ' .. st .. ' ' .. why) end}\n"
			  "  burrow.notify('Up', ev.connection)\n"
			  "end)\n"
			  "burrow.on('ssid', function() burrow.restart('office') end)\n"),
		NULL,
	};
	struct ptu_run r = ptu_replay(files,
		"{\"connections\": [{\"name\": \"office\", \"state\": \"up\"}, {\"name\": \"broken\", \"fail\": \"no-proposal-chosen\"}]}\n"
		"{\"name\": \"ssid\", \"time\": 5, \"ssid\": \"HomeNet-5G\"}\n"
		"{\"name\": \"ssid\", \"time\": 9, \"ssid\": \"Elsewhere\"}\n");

	tap_ok(ptu_has(r.out, "   5.0 event location location=Home reason=rules\n   5.0 log loc.lua info: at Home\n"),
	       "a location rule with a list of SSIDs matches one of them and burrow.location() follows");
	tap_ok(ptu_has(r.out, "   9.0 event location previous=Home reason=rules\n   9.0 log loc.lua info: at nil\n"),
	       "leaving every rule emits a location event without a location");
	tap_ok(ptu_has(r.out, "   5.0 restart office\n   5.0 state office stopping\n") &&
	       ptu_has(r.out, "   5.0 state office down\n   5.0 state office up\n   5.0 event tunnel_down connection=office reason=stopped\n"
			      "   5.0 event tunnel_up connection=office\n"),
	       "restart takes the simulated connection through stopping, down and up again");
	tap_ok(ptu_has(r.out, "   5.0 exec /bin/echo office\n   5.0 notify Up: office\n"),
	       "exec and notify from a handler appear in the transcript");
	tap_ok(ptu_has(r.out, "   5.0 log loc.lua info: exit 0 exited\n"), "exec's on_exit runs afterwards with status and reason");
	tap_is_int(r.errors, 0, "no policy raised");
	free(r.out);

	files[0] = ptu_write("loc2.lua", "burrow.locations{ Home = { sid = 'x' } }\n");
	r = ptu_replay(files, "");
	tap_ok(ptu_has(r.out, "loc2.lua:1: burrow.locations: rule Home: unknown key 'sid'"),
	       "a location rule with an unknown key is refused with file:line");
	free(r.out);

	files[0] = ptu_write("fail.lua", "burrow.on('start', function() burrow.start('broken') burrow.start('nosuch') end)\n"
					 "burrow.on('tunnel_failed', function(ev) burrow.log('info', ev.connection .. ' failed: ' .. ev.error) end)\n");
	r = ptu_replay(files, "{\"connections\": [{\"name\": \"broken\", \"fail\": \"no-proposal-chosen\"}]}\n"
			      "{\"name\": \"start\", \"time\": 0}\n");
	tap_ok(ptu_has(r.out, "state broken failed") && ptu_has(r.out, "log fail.lua info: broken failed: no-proposal-chosen"),
	       "a connection declared to fail goes to failed and emits tunnel_failed");
	tap_ok(ptu_has(r.out, "log fail.lua warn: start nosuch: no connection named nosuch"),
	       "starting an undeclared connection is logged as an error of the call, not a crash");
	free(r.out);
}

static void test_json(void)
{
	char *text = NULL;
	size_t len, n = 0;
	FILE *out = open_memstream(&text, &len);
	struct bw_policy_sim *s = bw_policy_sim_new(out);
	const char *trace_text = "{\"connections\": [{\"name\": \"office\", \"autostart\": \"boot\"}]}\n{\"name\": \"start\", \"time\": 0}\n";
	FILE *trace = fmemopen((void *)trace_text, strlen(trace_text), "r");
	char err[256];
	int all_json = 1;

	bw_policy_sim_set_json(s, true);
	bw_policy_sim_load(s, src_path("policies/defaults.lua"));
	bw_policy_sim_replay(s, trace, "trace", err, sizeof(err));
	bw_policy_sim_free(s);
	fclose(trace);
	fclose(out);
	for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"), n++) {
		json_t *o = json_loads(line, 0, NULL);

		all_json &= json_is_object(o) && json_is_number(json_object_get(o, "time")) &&
			    json_is_string(json_object_get(o, "type")) && json_is_string(json_object_get(o, "text"));
		if (n == 1)
			tap_ok(o && strcmp(json_string_value(json_object_get(o, "type")), "start") == 0 &&
			       strcmp(json_string_value(json_object_get(o, "connection")), "office") == 0 &&
			       strcmp(json_string_value(json_object_get(o, "text")), "start office") == 0,
			       "--json: a start decision is {type: start, connection, policy, time, text}");
		json_decref(o);
	}
	tap_ok(all_json && n == 4, "--json: one JSON object with time, type and text per transcript line (%zu lines)", n);
	free(text);
}

static void test_bad_trace(void)
{
	struct ptu_run r = ptu_run1("", "{\"name\": \"start\", \"time\": 10}\n{\"name\": \"ssid\", \"time\": 5}\n");

	tap_is_int(r.replay_rc, -1, "a trace whose time goes back is refused");
	free(r.out);
	r = ptu_run1("", "not json\n");
	tap_is_int(r.replay_rc, -1, "a trace line that is not JSON is refused");
	free(r.out);
}

int main(void)
{
	test_defaults();
	test_manual_stop_by_policy();
	test_timers();
	test_examples();
	test_sim_knobs();
	test_locations_and_actions();
	test_json();
	test_bad_trace();
	ptu_cleanup();
	return tap_done_testing();
}

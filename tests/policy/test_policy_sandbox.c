/* The policy sandbox: what a policy cannot reach, and what happens to one that loops,
 * eats memory or keeps failing. Each policy runs in the simulator; the transcript shows
 * what the host did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/ptu.h"

#include "tap.h"

/* One policy that reports what it can see at load time. */
static const char probe[] =
	"local function t(x) return type(x) end\n"
	"burrow.log('info', 'io=' .. t(io) .. ' debug=' .. t(debug) .. ' package=' .. t(package))\n"
	"burrow.log('info', 'dofile=' .. t(dofile) .. ' loadfile=' .. t(loadfile) .. ' dump=' .. t(string.dump))\n"
	"burrow.log('info', 'os.execute=' .. t(os.execute) .. ' os.getenv=' .. t(os.getenv) .. ' os.remove=' .. t(os.remove))\n"
	"burrow.log('info', 'os.time=' .. t(os.time) .. ' os.date=' .. t(os.date) .. ' os.clock=' .. t(os.clock))\n"
	"burrow.log('info', 'coroutine=' .. t(coroutine) .. ' string=' .. t(string) .. ' utf8=' .. t(utf8))\n"
	"local ok, e = pcall(require, 'os')\n"
	"burrow.log('info', 'require os: ' .. tostring(ok) .. ' ' .. tostring(e))\n"
	"burrow.log('info', 'require burrow: ' .. tostring(require('burrow') == burrow))\n"
	"local f, why = load('\\27Lua\\84\\0\\25\\147\\13\\10\\26\\10')\n"
	"burrow.log('info', 'load bytecode: ' .. tostring(f) .. ' ' .. tostring(why))\n"
	"burrow.log('info', 'load text: ' .. tostring(load('return 6 * 7')()))\n"
	"ok, e = pcall(collectgarbage, 'stop')\n"
	"burrow.log('info', 'gc stop: ' .. tostring(ok) .. ' ' .. tostring(e) .. ' running=' .. tostring(collectgarbage('isrunning')))\n"
	"burrow.log('info', 'gc count: ' .. type(collectgarbage('count')))\n";

static void test_forbidden(void)
{
	struct ptu_run r = ptu_run1(probe, "");

	tap_ok(ptu_has(r.out, "io=nil debug=nil package=nil"), "io, debug and package are not there");
	tap_ok(ptu_has(r.out, "dofile=nil loadfile=nil dump=nil"), "dofile, loadfile and string.dump are not there");
	tap_ok(ptu_has(r.out, "os.execute=nil os.getenv=nil os.remove=nil"), "os has no execute, getenv or remove");
	tap_ok(ptu_has(r.out, "os.time=function os.date=function os.clock=function"), "os keeps time, date and clock");
	tap_ok(ptu_has(r.out, "coroutine=nil string=table utf8=table"), "only base, string, table, math, utf8 are opened");
	tap_ok(ptu_has(r.out, "require os: false require: 'os' is not available in a policy"), "require of anything but burrow fails");
	tap_ok(ptu_has(r.out, "require burrow: true"), "require 'burrow' gives the preloaded module");
	tap_ok(ptu_has(r.out, "load bytecode: nil attempt to load a binary chunk"), "load refuses bytecode");
	tap_ok(ptu_has(r.out, "load text: 42"), "load of text still works");
	tap_ok(ptu_has(r.out, "gc stop: false") && ptu_has(r.out, "not allowed in a policy running=true"),
	       "collectgarbage('stop') is refused and the collector keeps running");
	tap_ok(ptu_has(r.out, "gc count: number"), "collectgarbage('count') is allowed");
	tap_is_int(r.errors, 0, "the probe itself raised nothing");
	if (tap_failed)
		tap_diag("%s", r.out);
	free(r.out);
}

static void test_runaway(void)
{
	struct ptu_run r = ptu_run1(
		"burrow.on('ssid', function() while true do end end)\n"
		"burrow.on('ssid', function() burrow.log('info', 'next handler ran') end)\n"
		"burrow.on('network', function() while true do pcall(function() while true do end end) end end)\n"
		"burrow.on('login', function() burrow.log('info', 'still alive') end)\n",
		"{\"name\":\"ssid\",\"time\":1,\"ssid\":\"x\"}\n"
		"{\"name\":\"network\",\"time\":2,\"online\":true}\n"
		"{\"name\":\"login\",\"time\":3}\n");

	tap_ok(ptu_has(r.out, "handler for ssid failed: ") && ptu_has(r.out, "policy.lua:1: stopped: the instruction budget"),
	       "an endless loop is stopped by the instruction budget, with file:line");
	tap_ok(ptu_has(r.out, "next handler ran"), "the next handler of the same event still runs");
	tap_ok(ptu_has(r.out, "handler for network failed: ") && ptu_count(r.out, "instruction budget") == 2,
	       "a pcall inside the policy cannot swallow the budget error");
	tap_ok(ptu_has(r.out, "still alive"), "the policy handles later events");
	free(r.out);
}

static void test_memory(void)
{
	struct ptu_run r = ptu_run1(
		"local keep = {}\n"
		"burrow.on('ssid', function() for i = 1, 1e9 do keep[i] = string.rep('x', 4096) .. i end end)\n"
		"burrow.on('network', function() keep = {} collectgarbage() burrow.log('info', 'works again: ' .. #string.rep('y', 1e6)) end)\n"
		"burrow.on('login', function() local s = string.rep('z', 64 * 1024 * 1024) end)\n",
		"{\"name\":\"ssid\",\"time\":1}\n{\"name\":\"network\",\"time\":2}\n{\"name\":\"login\",\"time\":3}\n");

	tap_ok(ptu_has(r.out, "handler for ssid failed: not enough memory (the policy reached its memory cap of 32 MiB)"),
	       "a memory bomb is stopped by the per-policy cap");
	tap_ok(ptu_has(r.out, "works again: 1000000"), "after the bomb the policy can allocate again");
	tap_ok(ptu_has(r.out, "handler for login failed: not enough memory"), "one 64 MiB string is refused");
	free(r.out);
}

static void test_errors(void)
{
	const char *good = ptu_write("a-good.lua", "burrow.on('location', function() burrow.log('info', 'good ran') end)\n");
	const char *bad = ptu_write("b-bad.lua",
		"burrow.on('location', function(ev)\n"
		"  error('boom in ' .. ev.location)\n"
		"end)\n"
		"burrow.on('location', function() burrow.log('info', 'sibling ran') end)\n"
		"burrow.on('logout', function() burrow.start(42) end)\n"
		"burrow.on('login', function() burrow.after('soon', print) end)\n");
	const char *broken = ptu_write("c-broken.lua", "burrow.on('start', function()\n  x = = 1\nend)\n");
	const char *late = ptu_write("d-late.lua", "burrow.on('location', function() burrow.log('info', 'late ran') end)\n");
	const char *files[] = { good, bad, broken, late, NULL };
	struct ptu_run r = ptu_replay(files,
		"{\"name\":\"location\",\"time\":1,\"location\":\"Home\"}\n"
		"{\"name\":\"logout\",\"time\":2}\n{\"name\":\"login\",\"time\":3}\n");

	tap_ok(ptu_has(r.out, "handler for location failed: ") && ptu_has(r.out, "b-bad.lua:2: boom in Home"),
	       "a handler error is reported with file:line and message");
	tap_ok(ptu_has(r.out, "good ran") && ptu_has(r.out, "sibling ran") && ptu_has(r.out, "late ran"),
	       "the other handlers of that policy and of other policies still run");
	tap_ok(ptu_has(r.out, "log c-broken.lua error: not loaded: ") && ptu_has(r.out, "c-broken.lua:2:"),
	       "a policy that does not compile is reported with file:line");
	tap_ok(ptu_has(r.out, "b-bad.lua:5: burrow.start: argument 1 must be a connection name (string)"),
	       "a wrong argument type names the function and the argument");
	tap_ok(ptu_has(r.out, "b-bad.lua:6: burrow.after: argument 1 must be a delay in seconds (number)"),
	       "burrow.after checks its delay");
	tap_is_int(r.errors, 4, "four errors were counted (three handlers, one compile)");
	free(r.out);
}

static void test_error_budget(void)
{
	struct ptu_run r = ptu_run1(
		"burrow.every(1, function() error('tick') end)\n"
		"burrow.on('ssid', function() burrow.log('info', 'ssid seen') end)\n",
		"{\"name\":\"ssid\",\"time\":5}\n{\"name\":\"ssid\",\"time\":30}\n");

	tap_is_int(ptu_count(r.out, "timer callback failed"), 10, "the policy fails 10 times, then no more");
	tap_ok(ptu_has(r.out, "  10.0 log policy.lua error: disabled: 10 errors within 60 s, the last: ") &&
	       ptu_has(r.out, "policy.lua:1: tick"),
	       "the 10th error within 60 s disables the policy, with the reason logged");
	tap_ok(ptu_has(r.out, "  10.0 event policy_disabled policy=policy.lua reason="),
	       "a policy_disabled event is emitted");
	tap_is_int(ptu_count(r.out, "ssid seen"), 1, "a disabled policy's handlers no longer run");
	free(r.out);

	r = ptu_run1("burrow.every(10, function() error('slow') end)\n", "{\"until\":300}\n");
	tap_ok(!ptu_has(r.out, "disabled"), "errors spread out over more than 60 s do not disable a policy");
	tap_ok(ptu_count(r.out, "timer callback failed") >= 29, "and its timer keeps firing");
	free(r.out);
}

static void test_load_errors(void)
{
	struct ptu_run r = ptu_run1("burrow.on('start', function() burrow.log('info', 'kept') end)\nerror('refuse to load')\n",
				    "{\"name\":\"start\",\"time\":0}\n");

	tap_ok(ptu_has(r.out, "loading the policy failed: ") && ptu_has(r.out, "policy.lua:2: refuse to load"),
	       "a main chunk that raises is reported with file:line");
	tap_ok(ptu_has(r.out, "event start") && !ptu_has(r.out, "kept"), "and keeps none of its handlers");
	free(r.out);
	r = ptu_run1("print('hello', 1, nil)\n", "");
	tap_ok(ptu_has(r.out, "log policy.lua info: hello\t1\tnil"), "print() goes to the log");
	free(r.out);
}

int main(void)
{
	test_forbidden();
	test_runaway();
	test_memory();
	test_errors();
	test_error_budget();
	test_load_errors();
	ptu_cleanup();
	return tap_done_testing();
}

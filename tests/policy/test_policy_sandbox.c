/* The policy sandbox: what a policy cannot reach, and what happens to one that loops,
 * eats memory or keeps failing. Each policy runs in the simulator; the transcript shows
 * what the host did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "policy/ptu.h"

#include "tap.h"

/* One policy that reports what it can see at load time. Line numbers matter: the
 * refusals below are checked with the probe's file:line. */
static const char probe[] =
	"local function t(x) return type(x) end\n"					/* 1 */
	"local function try(what, f)\n"							/* 2 */
	"  local ok, e = pcall(f)\n"							/* 3 */
	"  burrow.log('info', what .. ': ' .. tostring(ok) .. ' ' .. tostring(e))\n"	/* 4 */
	"end\n"										/* 5 */
	"try('io.open', function() return io.open('/etc/passwd') end)\n"		/* 6 */
	"try('io()', function() return io() end)\n"					/* 7 */
	"try('os.execute', function() return os.execute('true') end)\n"		/* 8 */
	"try('os.getenv', function() return os.getenv('HOME') end)\n"			/* 9 */
	"try('os.remove', function() return os.remove('/tmp/x') end)\n"		/* 10 */
	"try('debug', function() return debug.getinfo(1) end)\n"			/* 11 */
	"try('package', function() package.path = './?.lua' end)\n"			/* 12 */
	"try('dofile', function() return dofile('/etc/passwd') end)\n"			/* 13 */
	"try('loadfile', function() return loadfile('/etc/passwd') end)\n"		/* 14 */
	"try('dump', function() return string.dump(t) end)\n"				/* 15 */
	"try('coroutine', function() return coroutine.create(t) end)\n"		/* 16 */
	"try('unprotect', function() return setmetatable(io, {}) end)\n"		/* 17 */
	"burrow.log('info', 'os.time=' .. t(os.time) .. ' os.date=' .. t(os.date) .. ' os.clock=' .. t(os.clock))\n"
	"burrow.log('info', 'string=' .. t(string) .. ' utf8=' .. t(utf8) .. ' math=' .. t(math) .. ' table=' .. t(table))\n"
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

	tap_ok(ptu_has(r.out, "io.open: false ") &&
	       ptu_has(r.out, ".lua:6: io is not available in policies; use burrow.exec"),
	       "io.open raises 'io is not available in policies; use burrow.exec' at the policy's line");
	tap_ok(ptu_has(r.out, ".lua:7: io is not available in policies"), "calling io raises the same sentence");
	tap_ok(ptu_has(r.out, ".lua:8: os.execute is not available in policies; os has only time, date and clock "
			      "(use burrow.exec to run a program)"),
	       "os.execute raises a sentence that names os.execute and points to burrow.exec");
	tap_ok(ptu_has(r.out, ".lua:9: os.getenv is not available in policies") &&
	       ptu_has(r.out, ".lua:10: os.remove is not available in policies"),
	       "os.getenv and os.remove raise the sentence with their own names");
	tap_ok(ptu_has(r.out, ".lua:11: debug is not available in policies"), "debug raises a sentence");
	tap_ok(ptu_has(r.out, ".lua:12: package is not available in policies; require knows only 'burrow'"),
	       "assigning into package raises a sentence");
	tap_ok(ptu_has(r.out, ".lua:13: dofile is not available in policies") &&
	       ptu_has(r.out, ".lua:14: loadfile is not available in policies"),
	       "dofile and loadfile raise a sentence instead of reading the file");
	tap_ok(ptu_has(r.out, ".lua:15: string.dump is not available in policies"), "string.dump raises a sentence");
	tap_ok(ptu_has(r.out, ".lua:16: coroutine is not available in policies"), "coroutine raises a sentence");
	tap_ok(ptu_has(r.out, "unprotect: false") && ptu_has(r.out, "cannot change a protected metatable"),
	       "a policy cannot take the refusal off io");
	tap_ok(!ptu_has(r.out, "attempt to index a nil value") && !ptu_has(r.out, "attempt to call a nil value"),
	       "no refusal shows up as a nil index or call");
	tap_ok(ptu_has(r.out, "os.time=function os.date=function os.clock=function"), "os keeps time, date and clock");
	tap_ok(ptu_has(r.out, "string=table utf8=table math=table table=table"), "string, utf8, math and table are there");
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

/* Uncaught, in a handler: the error the host logs carries the sentence with file:line. */
static void test_forbidden_in_handler(void)
{
	struct ptu_run r = ptu_run1("burrow.on('ssid', function(ev)\n"
				    "  os.execute('logger ' .. ev.ssid)\n"
				    "end)\n"
				    "burrow.on('ssid', function() io.open('/tmp/x', 'w') end)\n",
				    "{\"name\":\"ssid\",\"time\":1,\"ssid\":\"x\"}\n");

	tap_ok(ptu_has(r.out, ".lua:2: os.execute is not available in policies"),
	       "an uncaught os.execute in a handler is logged with the sentence and file:line");
	tap_ok(ptu_has(r.out, ".lua:4: io is not available in policies; use burrow.exec"),
	       "an uncaught io.open in a handler is logged with the sentence and file:line");
	tap_is_int(r.errors, 2, "each counts as one policy error");
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
	tap_ok(ptu_has(r.out, "event policy_error") && ptu_has(r.out, "line=2") &&
	       ptu_has(r.out, "message=refuse to load") && ptu_has(r.out, "/policy.lua"),
	       "a policy_error event carries the policy's file, line and message");
	if (tap_failed)
		tap_diag("%s", r.out);
	free(r.out);
	r = ptu_run1("burrow.on('start', function() end\nlocal x = = 1\n", "");
	tap_ok(ptu_has(r.out, "event policy_error") && ptu_has(r.out, "line=2"),
	       "a policy that does not compile emits policy_error with the line of the syntax error");
	free(r.out);
	r = ptu_run1("print('hello', 1, nil)\n", "");
	tap_ok(ptu_has(r.out, "log policy.lua info: hello\t1\tnil"), "print() goes to the log");
	free(r.out);
}

int main(void)
{
	test_forbidden();
	test_forbidden_in_handler();
	test_runaway();
	test_memory();
	test_errors();
	test_error_budget();
	test_load_errors();
	ptu_cleanup();
	return tap_done_testing();
}

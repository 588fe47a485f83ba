#!/bin/sh
# Policies in a real burrowd and through the real burrow binary: `burrow policy check/test`,
# the start event, `burrow emit` driving a policy's exec, a policy edited on disk being
# reloaded, handler errors with file:line, a failing policy disabled on the event stream.
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BURROW_BUILD:-$SRC/build}
[ -x "$BUILD/burrowd" ] || skip_all "burrowd is not built in $BUILD"
[ -x "$BUILD/burrow" ] || skip_all "burrow is not built in $BUILD"
if "$BUILD/burrow" policy check "$SRC/policies/defaults.lua" 2>&1 | grep -q 'not available yet'; then
	skip_all "burrow policy is not wired in yet (burrow.c must dispatch policy to bw_cli_policy, agent.c must create the policy host)"
fi

T=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkdir -p "$T/etc/connections" "$T/etc/secrets" "$T/etc/policies" "$T/state"
SOCK=$T/burrowd.sock
bw() { "$BUILD/burrow" --socket "$SOCK" "$@"; }

# --- burrow policy check / test, offline -------------------------------------------
out=$(bw policy check "$SRC/policies/defaults.lua" "$SRC"/policies/examples/*.lua); rc=$?
is "$rc" 0 "policy check accepts defaults.lua and every example"
like "$out" 'defaults.lua: ok' "and prints FILE: ok"

printf 'burrow.on("start", function()\n  x = = 1\nend)\n' > "$T/broken.lua"
out=$(bw policy check "$T/broken.lua" 2>&1); rc=$?
is "$rc" 1 "policy check of a file that does not compile exits 1"
like "$out" "broken.lua:2:" "and names file:line"

printf 'burrow.on("tunnel_upp", function() end)\n' > "$T/typo.lua"
out=$(bw policy check "$T/typo.lua" 2>&1); rc=$?
is "$rc" 1 "policy check refuses an unknown event name"
like "$out" "typo.lua:1: burrow.on: unknown event 'tunnel_upp'" "and says which one, where"

out=$(bw policy test "$SRC/policies/defaults.lua" --events "$SRC/tests/policy/defaults-restart.jsonl"); rc=$?
is "$rc" 0 "policy test replays a trace through defaults.lua"
like "$out" '^  65\.0 start office$' "the transcript shows the restart 5 s after DPD"

printf 'burrow.on("start", function() error("nope") end)\n' > "$T/raises.lua"
printf '{"name": "start", "time": 0}\n' > "$T/start.jsonl"
out=$(bw policy test "$T/raises.lua" --events "$T/start.jsonl" 2>&1); rc=$?
is "$rc" 1 "policy test exits 1 when a policy raised"
like "$out" 'raises.lua:1: nope' "with the error and its file:line in the transcript"
bw policy test "$T/raises.lua" >/dev/null 2>&1; rc=$?
is "$rc" 2 "policy test without --events is a usage error"

mkdir -p "$T/cfg/connections"
printf '[connection]\ngateway = 192.0.2.1\ntopology = host-to-network\nremote_networks = 10.1.0.0/24\nautostart = boot\ngroup = Work\n' > "$T/cfg/connections/office.conf"
cat > "$T/names.lua" <<'LUA'
local TUNNEL = "offfice"
burrow.on("start", function()
  burrow.start("office")
  burrow.restart(TUNNEL)
  burrow.on("tunnel_dwon", function() end)
end)
LUA
out=$(bw policy check "$T/names.lua" --config-dir "$T/cfg" 2>&1); rc=$?
is "$rc" 1 "policy check --config-dir refuses a connection name the config dir does not have"
like "$out" "names.lua:4: burrow.restart: no connection named 'offfice'" "and names the file:line, also through a constant"
like "$out" "names.lua:5: burrow.on: unknown event 'tunnel_dwon'" "an unknown event inside a handler is found too (the text is read)"
out=$(bw policy check "$T/names.lua" 2>&1)
if printf '%s\n' "$out" | grep -q offfice; then ok 1 "without --config-dir connection names are not checked"; else ok 0 "without --config-dir connection names are not checked"; fi

printf '{"name": "start", "time": 0}\n' > "$T/boot.jsonl"
out=$(bw policy test "$SRC/policies/defaults.lua" --config-dir "$T/cfg" --events "$T/boot.jsonl"); rc=$?
is "$rc" 0 "policy test --config-dir takes the connections from DIR/connections"
like "$out" '^   0\.0 start office$' "and their autostart key (defaults.lua starts office at boot)"

printf '{"connections": [{"name": "office", "autostart": "boot"}]}\n{"name": "sim", "time": 0, "fail": "office", "error": "no-answer"}\n{"name": "start", "time": 0}\n' > "$T/fail.jsonl"
out=$(bw policy test "$SRC/policies/defaults.lua" --events "$T/fail.jsonl"); rc=$?
like "$out" 'event tunnel_failed connection=office error=no-answer' "a sim line in the trace makes a start fail with its error"

out=$(bw policy test "$SRC/policies/defaults.lua" --config-dir "$T/cfg" --events "$T/boot.jsonl" --json); rc=$?
first=$(printf '%s\n' "$out" | head -n 1)
if printf '%s\n' "$first" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); exit($d->{type} eq "event" && defined $d->{time} ? 0 : 1)' 2>/dev/null; then
	ok 0 "policy test --json prints one JSON object per transcript line"
else
	# burrow.c takes --json out of argv before bw_cli_policy sees it (bw_cli_policy_set_json).
	echo "not ok $((TAP_N + 1)) - policy test --json prints one JSON object per transcript line # TODO burrow.c must call bw_cli_policy_set_json(json_out)"
	TAP_N=$((TAP_N + 1))
fi

# --- policies in the agent -----------------------------------------------------------
cat > "$T/etc/policies/50-probe.lua" <<LUA
burrow.on("start", function()
  burrow.exec{"/bin/sh", "-c", "echo started > $T/started"}
end)
burrow.on("ssid", function(ev)
  burrow.exec{"/bin/sh", "-c", "echo v1 \$BURROW_EVENT \$BURROW_SSID > $T/ssid"}
end)
burrow.on("location", function(ev) local t = nil; return t.field end)
LUA

"$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" --log-level debug 2>"$T/burrowd.log" &
PID=$!
wait_for 10 test -S "$SOCK"
ok $? "burrowd starts with a policies directory"

wait_for 5 test -s "$T/started"
ok $? "a policy sees the agent's start event and its exec runs"

bw emit ssid ssid=CafeFree >/dev/null
wait_for 5 grep -q 'v1 ssid CafeFree' "$T/ssid"
ok $? "burrow emit ssid drives the policy; the child gets BURROW_EVENT and BURROW_SSID"

bw emit location location=Office >/dev/null
wait_for 5 grep -q '50-probe.lua:7: attempt to index a nil value' "$T/burrowd.log"
ok $? "a handler error is logged with file:line"

sed -i 's/echo v1/echo v2/' "$T/etc/policies/50-probe.lua"
sleep 1
bw emit ssid ssid=Other >/dev/null
wait_for 5 grep -q 'v2 ssid Other' "$T/ssid"
ok $? "a policy edited on disk is reloaded without restarting the agent"

printf 'burrow.every(0.1, function() error("always") end)\n' > "$T/etc/policies/60-failing.lua"
wait_for 10 sh -c "'$BUILD/burrow' --socket '$SOCK' events | grep -q 'policy_disabled.*60-failing.lua'"
ok $? "a policy that keeps failing is disabled and burrow events shows policy_disabled"
grep -q '60-failing.lua: disabled: 10 errors within 60 s' "$T/burrowd.log"
ok $? "the agent log says why it was disabled"
bw list >/dev/null
ok $? "the agent still answers"

kill -TERM "$PID"
wait "$PID"; rc=$?
PID=
is "$rc" 0 "burrowd stops cleanly with policies loaded"

done_testing

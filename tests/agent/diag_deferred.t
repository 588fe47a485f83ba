#!/bin/sh
# burrow doctor answers as a deferred reply from a worker that burrowd forks: while the worker
# waits for a gateway that never answers, burrowd goes on answering other clients; a client
# that goes away before the answer leaves burrowd up and the worker is reaped all the same;
# the next doctor gets its full answer. burrowd runs in a network namespace of its own where
# the gateway's address leads into a veth pair whose other end has no address: every packet
# to it is dropped without an answer.
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BURROW_BUILD:-$SRC/build}
[ -x "$BUILD/burrowd" ] || skip_all "burrowd is not built in $BUILD"
[ -x "$BUILD/burrow" ] || skip_all "burrow is not built in $BUILD"
[ "$(id -u)" = 0 ] || skip_all "needs root (a network namespace for burrowd)"
command -v unshare >/dev/null 2>&1 || skip_all "unshare is not installed"

T=$(mktemp -d)
PID=
CLI=
cleanup() {
	[ -n "$CLI" ] && kill "$CLI" 2>/dev/null
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkdir -p "$T/etc/connections" "$T/etc/secrets" "$T/etc/policies" "$T/state"
SOCK=$T/burrowd.sock
bw() { "$BUILD/burrow" --socket "$SOCK" "$@"; }

printf '[agent]\nike_port = 0\nnatt_port = 0\n' > "$T/etc/burrow.conf"
cat > "$T/etc/connections/silent.conf" <<'CONF'
[connection]
gateway = 10.77.0.2
remote_networks = 10.1.0.0/24
CONF
printf '[secrets]\npsk = silent-gateway-psk\n' > "$T/etc/secrets/silent.secrets"
chmod 600 "$T/etc/secrets/silent.secrets"

# unshare and sh exec: burrowd keeps the pid of this background job.
unshare -n sh -c 'ip link set lo up && ip link add v0 type veth peer name v1 &&
	ip addr add 10.77.0.1/24 dev v0 && ip link set v0 up && ip link set v1 up &&
	ip neigh add 10.77.0.2 lladdr 02:00:00:00:77:02 dev v0 nud permanent && exec "$@"' sh \
	"$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" --log-level debug 2>"$T/burrowd.log" &
PID=$!
wait_for 10 test -S "$SOCK"
ok $? "burrowd starts in a network namespace of its own"

# burrowd's children, zombies included.
children() { cat /proc/[0-9]*/stat 2>/dev/null | awk -v p="$PID" '$4 == p { print $1 }'; }
has_child() { [ -n "$(children)" ]; }
no_child() { [ -z "$(children)" ]; }

bw doctor silent >"$T/first.out" 2>&1 &
CLI=$!
wait_for 5 has_child
ok $? "burrow doctor runs in a worker that burrowd forked"
kill "$CLI"
wait "$CLI" 2>/dev/null
CLI=
out=$(bw list); rc=$?
is "$rc" 0 "a client that went away before the answer leaves burrowd up"
like "$out" '^silent ' "burrowd answers burrow list"
has_child
ok $? "while the worker still waits for the gateway (the loop is not blocked by it)"
wait_for 15 no_child
ok $? "the worker is reaped once done, although its answer had nobody to go to"
[ -z "$(children)" ] || ps -o pid,stat,args --ppid "$PID" | diag

out=$(bw doctor silent 2>&1); rc=$?
like "$out" '^OK   config: silent' "the next doctor silent gets its full answer"
like "$out" '^FAIL ike-500: ' "which says the gateway does not answer on UDP 500"
is "$rc" 1 "and doctor exits 1"
like "$(bw doctor nosuch 2>&1)" 'no connection named nosuch' "an unknown connection is still named in the error"

kill "$PID"
wait "$PID" 2>/dev/null
PID=
grep -q 'burrowd stopped' "$T/burrowd.log"
ok $? "burrowd shuts down cleanly"
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$T/burrowd.log"; then
	ok 1 "burrowd ran without sanitizer reports"
	grep -E -A20 'Sanitizer|runtime error' "$T/burrowd.log" | diag
else
	ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

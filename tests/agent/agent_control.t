#!/bin/sh
# Drives a real burrowd through the real burrow binary: list/status/log/reload/emit/events,
# configuration edits picked up by inotify, bad input refused, clean shutdown.
set -u
. "$(dirname "$0")/../tap.sh"
SRC=${BURROW_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
BUILD=${BURROW_BUILD:-$SRC/build}
[ -x "$BUILD/burrowd" ] || skip_all "burrowd is not built in $BUILD"

T=$(mktemp -d)
PID=
cleanup() {
	[ -n "$PID" ] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
mkdir -p "$T/etc/connections" "$T/etc/secrets" "$T/state"
printf '[agent]\nbackend = userspace\n' > "$T/etc/burrow.conf"
SOCK=$T/burrowd.sock
bw() { "$BUILD/burrow" --socket "$SOCK" "$@"; }

cat > "$T/etc/connections/office.conf" <<'CONF'
[connection]
group = Work
gateway = 192.0.2.1
remote_networks = 10.1.0.0/24
CONF
cat > "$T/etc/connections/broken.conf" <<'CONF'
[connection]
gateway = 192.0.2.1
remote_networks = 10.1.0.0/24
colour = blue
CONF

"$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" --log-level debug 2>"$T/burrowd.log" &
PID=$!
wait_for 10 test -S "$SOCK"
ok $? "burrowd starts and creates its control socket"
is "$(stat -c %a "$SOCK")" "660" "the control socket has mode 0660"

out=$(bw list); rc=$?
is "$rc" 0 "burrow list succeeds"
like "$out" '^office +Work +down +192\.0\.2\.1' "list shows the valid connection down, in its group"
like "$out" 'broken .*invalid' "list shows the broken connection as invalid"
like "$out" "broken.conf:4: .*colour" "the invalid connection names file:line and the unknown key"

json=$(bw list --json)
echo "$json" | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); exit(ref $d eq "ARRAY" && @$d == 2 ? 0 : 1)'
ok $? "list --json is a JSON array with both connections"

out=$(bw status office); rc=$?
is "$rc" 0 "burrow status NAME succeeds"
like "$out" '^office: down' "status shows the state"

out=$(bw status nosuch 2>&1); rc=$?
is "$rc" 1 "status of an unknown connection exits 1"
like "$out" 'no connection named nosuch' "and says which name is unknown"

out=$(bw frobnicate 2>&1); rc=$?
is "$rc" 2 "an unknown command exits 2 (usage)"

out=$(bw start broken 2>&1); rc=$?
is "$rc" 1 "starting an invalid connection fails"
like "$out" 'broken is invalid .*broken.conf:4' "with the file:line of the problem"

bw emit ssid ssid=CafeFree >/dev/null
ok $? "burrow emit injects an event"
out=$(bw events)
like "$out" 'ssid .*ssid=CafeFree' "burrow events shows the injected event with its fields"
like "$out" ' start' "burrow events shows the agent's start event"
out=$(bw emit bogus 2>&1); rc=$?
is "$rc" 2 "emitting an unknown event is a usage error"

bw events --follow > "$T/follow.out" 2>&1 &
FPID=$!
sleep 0.3
bw emit location location=Office >/dev/null
wait_for 5 grep -q 'location=Office' "$T/follow.out"
ok $? "events --follow streams a new event as it happens"
kill "$FPID" 2>/dev/null; wait "$FPID" 2>/dev/null

# inotify: fix the broken file; the agent reloads without being asked.
cat > "$T/etc/connections/broken.conf" <<'CONF'
[connection]
gateway = 192.0.2.9
remote_networks = 10.2.0.0/24
CONF
wait_for 5 sh -c "'$BUILD/burrow' --socket '$SOCK' list | grep -Eq '^broken +- +down +192\.0\.2\.9'"
ok $? "a fixed file is picked up by inotify and the connection becomes down"

cat > "$T/etc/connections/home.conf" <<'CONF'
[connection]
gateway = 198.51.100.7
remote_networks = 10.7.0.0/16
CONF
wait_for 5 sh -c "'$BUILD/burrow' --socket '$SOCK' list | grep -q '^home '"
ok $? "a new connection file appears without a reload"

printf '[connection]\ngateway = 192.0.2.1\nremote_networks = 10.1.0.0/33\n' > "$T/etc/connections/home.conf"
wait_for 5 sh -c "'$BUILD/burrow' --socket '$SOCK' list | grep -q 'home.conf:3'"
ok $? "breaking a file marks only that connection invalid, with its line"
out=$(bw list)
like "$out" '^office +Work +down' "the other connections are untouched"

rm "$T/etc/connections/home.conf"
wait_for 5 sh -c "! '$BUILD/burrow' --socket '$SOCK' list | grep -q '^home '"
ok $? "a removed file removes its connection"

out=$(bw reload); rc=$?
is "$rc" 0 "burrow reload succeeds"
like "$out" 'reloaded: 2 connection' "reload reports the connections"
out=$(bw events)
like "$out" 'reload' "a reload emits the reload event"

out=$(bw devices)
n=$(printf '%s\n' "$out" | tail -n +2 | grep -c .)
[ "$n" -ge 25 ]
ok $? "burrow devices lists at least 25 device profiles (got $n)"
out=$(bw devices cisco-asa); rc=$?
is "$rc" 0 "burrow devices ID shows one profile"
like "$out" 'source: .+' "a device profile names its source"

out=$(bw start office 2>&1); rc=$?
is "$rc" 1 "starting a connection without its pre-shared key fails"
like "$out" 'needs a pre-shared key: put psk = \.\.\. in .*secrets/office\.secrets' "and says where the key goes"
like "$(bw list)" '^office +Work +needs-secret' "the connection is in state needs-secret, not retrying"
out=$(bw explain office)
like "$out" 'needs a pre-shared key' "burrow explain NAME repeats what is missing"
out=$(bw log office)
like "$out" 'info  state down -> needs-secret' "burrow log NAME prints the connection's own log"

printf '[secrets]\npsk = not-so-secret\n' > "$T/etc/secrets/office.secrets"
chmod 644 "$T/etc/secrets/office.secrets"
out=$(bw start office 2>&1); rc=$?
is "$rc" 1 "a secrets file readable by others is refused"
like "$out" 'chmod 600' "and the error says which chmod fixes it"
if printf '%s' "$out" | grep -q 'not-so-secret'; then ok 1 "the refusal does not print the secret"; else ok 0 "the refusal does not print the secret"; fi

printf '[connection]\ngateway = 192.0.2.1\ntopology = host-to-host\nmode = transport\nlocal_address = 10.9.0.2\n' > "$T/etc/connections/hosts.conf"
wait_for 5 sh -c "'$BUILD/burrow' --socket '$SOCK' list | grep -q '^hosts '"
out=$(bw start hosts 2>&1); rc=$?
is "$rc" 1 "transport mode with a local_address is refused at start"
like "$out" "transport mode protects this host's own address; remove local_address" "with a sentence saying what to change"
# restart: the stop settles at once (down), the start that follows is refused with its reason.
out=$(bw restart hosts 2>&1); rc=$?
is "$rc" 1 "restarting a connection whose start is refused exits 1"
like "$out" "transport mode protects this host's own address" "with the start's reason"
rm "$T/etc/connections/hosts.conf"

# stop waits for down: from needs-secret it is down at once; a second stop has nothing to do.
out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "stopping a connection that waits for its secret exits 0"
like "$(bw list)" '^office +Work +down' "and leaves it down"
out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "stopping a connection that is down exits 0"
out=$(bw stop --all 2>&1); rc=$?
is "$rc" 0 "stop --all exits 0 when every connection is down"
out=$(bw stop nosuch 2>&1); rc=$?
is "$rc" 1 "stopping an unknown connection exits 1"
like "$out" 'no connection named nosuch' "and names it"
rm -f "$T/etc/secrets/office.secrets"
out=$(bw restart office 2>&1); rc=$?
is "$rc" 1 "restarting a connection without its pre-shared key exits 1"
like "$out" '^burrow: office needs a pre-shared key' "with what is missing, said once"
is "$(printf '%s\n' "$out" | grep -c .)" 1 "and nothing else"

out=$(bw export office 2>&1); rc=$?
is "$rc" 1 "a command whose machinery comes later exits 1"
like "$out" 'not available yet' "and says it is not available yet"

# Malformed and oversized requests get an error reply; the agent survives them.
perl -MIO::Socket::UNIX -e '
	my $s = IO::Socket::UNIX->new(Peer => $ARGV[0]) or exit 3;
	print $s "this is not json\n"; my $r1 = <$s>;
	print $s "{\"v\":1,\"cmd\":\"status\",\"args\":{\"name\":[1]}}\n"; my $r2 = <$s>;
	print $s ("x" x 70000) . "\n"; my $r3 = <$s>;
	exit(($r1 =~ /"ok":false/ && $r2 =~ /must be a string/ && $r3 =~ /exceeds the limit/) ? 0 : 1);
' "$SOCK"
ok $? "malformed, mistyped and oversized requests each get an error reply"
bw list >/dev/null
ok $? "the agent still answers after bad requests"

out=$("$BUILD/burrowd" --foreground --config-dir "$T/etc" --state-dir "$T/state" --socket "$SOCK" \
	--devices-dir "$SRC/devices" 2>&1); rc=$?
is "$rc" 1 "a second agent on the same socket refuses to start"
like "$out" 'already listening' "and says why"

kill -TERM "$PID"
wait "$PID"; rc=$?
PID=
is "$rc" 0 "SIGTERM stops the agent cleanly (exit status 0, no leak under ASan)"
[ ! -e "$SOCK" ]
ok $? "the control socket is removed on exit"
grep -q 'burrowd stopped' "$T/burrowd.log"
ok $? "the agent logs its shutdown"

done_testing

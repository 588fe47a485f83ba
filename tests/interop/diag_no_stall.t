#!/bin/sh
# burrow report and burrow doctor do not stall the userspace tunnel: burrowd's loop also moves
# the ESP datapath (TUN <-> UDP), so both answer as deferred replies from a worker. A ping at
# 20 ms intervals through the tunnel runs while report runs twice and doctor four times (twice
# against the gateway, twice against a gateway that never answers, whose probe waits its full
# time); no gap between consecutive replies may exceed 100 ms and none may be lost, and every
# report and doctor still gives its answer.
set -u
. "$(dirname "$0")/lib.sh"
lab_require ping tar
lab_up

GW_REMOTE_TS=10.9.0.2/32 gw_start
write_conn office <<EOF
[connection]
gateway = $GW_ADDR
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $LAN_NET

[phase1]
proposals = aes256-sha256-modp2048

[phase2]
proposals = aes256-sha256
pfs = modp2048
EOF
write_secret office <<EOF
[secrets]
psk = burrow-lab-psk
EOF
# A gateway that never answers: the gateway namespace drops what is sent to it, without ICMP.
SILENT_GW=198.51.100.1
ip -n "$NS_GW" route add blackhole 198.51.100.0/24
sed "s/^gateway = .*/gateway = $SILENT_GW/; s/^local_address = .*/local_address = 10.9.0.3/; s|^remote_networks = .*|remote_networks = 10.77.0.0/24|" \
	"$LAB_DIR/cli/etc/connections/office.conf" | write_conn silent
printf '[secrets]\npsk = burrow-lab-psk\n' | write_secret silent
burrow_start
ok $? "burrowd starts in the client namespace"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "the userspace tunnel comes up"
[ "$rc" = 0 ] || diag "$out"
lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"

has() { printf '%s\n' "$1" | grep -Eq -- "$2"; }

# The ping runs until the diagnostics are done (60 s at most), then stops on SIGINT (which a
# background job of a script starts out ignoring, hence perl).
ip netns exec "$NS_CLI" perl -e '$SIG{INT} = "DEFAULT"; exec @ARGV or die' \
	ping -D -n -i 0.02 -w 60 "$LAN_HOST" >"$LAB_DIR/ping.out" 2>&1 &
ping_pid=$!
sleep 0.5

# step NAME CMD...: runs CMD, noting when it started and ended in LAB_DIR/steps.
step() { _s=$(lab_now); _n=$1; shift; "$@"; _rc=$?; echo "$_s $(lab_now) $_n" >>"$LAB_DIR/steps"; return $_rc; }
for round in 1 2; do
	out=$(step report bw report -o "$LAB_DIR/report-$round.tar.gz" 2>&1); rc=$?
	is "$rc" 0 "report $round exits 0 while the ping runs"
	[ "$rc" = 0 ] || diag "$out"
	tar -tzf "$LAB_DIR/report-$round.tar.gz" 2>/dev/null | grep -q '/doctor\.json$'
	ok $? "report $round is a tarball that holds doctor.json"

	out=$(step "doctor office" bw doctor office 2>&1); rc=$?
	is "$rc" 0 "doctor office $round exits 0 while the ping runs"
	if has "$out" '^OK   ike-500: ' && has "$out" '^OK   phase1: '; then
		ok 0 "doctor office $round finds the gateway answering and accepting our proposal"
	else
		ok 1 "doctor office $round finds the gateway answering and accepting our proposal"
		diag "$out"
	fi

	out=$(step "doctor silent" bw doctor silent 2>&1)
	if has "$out" '^FAIL ike-500: '; then
		ok 0 "doctor silent $round waits for the gateway that does not answer and says so"
	else
		ok 1 "doctor silent $round waits for the gateway that does not answer and says so"
		diag "$out"
	fi
done

sleep 0.5
kill -INT "$ping_pid" 2>/dev/null
wait "$ping_pid"

# "[1733459521.123456] 64 bytes from 10.1.0.10: icmp_seq=12 ttl=63 time=0.51 ms"
sed -n 's/^\[\([0-9.]*\)\] .* icmp_seq=\([0-9]*\) .*/\1 \2/p' "$LAB_DIR/ping.out" >"$LAB_DIR/replies"
n=$(wc -l <"$LAB_DIR/replies")
[ "$n" -ge 100 ]
ok $? "the ping got replies through the tunnel during the diagnostics ($n)"
last=$(awk 'END { print $2 + 0 }' "$LAB_DIR/replies")
is "$n" "$last" "no ping was lost: every request up to icmp_seq $last has its reply"
worst=$(awk 'NR > 1 { g = $1 - t; if (g > w) { w = g; at = $2 } } { t = $1 }
	END { printf "%d %d\n", w * 1000, at }' "$LAB_DIR/replies")
gap=${worst% *}
[ "$gap" -le 100 ]
ok $? "no gap between consecutive replies exceeds 100 ms (the longest is $gap ms, before icmp_seq ${worst#* })"
if [ "$gap" -gt 100 ]; then
	awk 'NR > 1 && $1 - t > 0.05 { printf "gap %d ms before icmp_seq %d at %s\n", ($1 - t) * 1000, $2, $1 }
		{ t = $1 }' "$LAB_DIR/replies" | diag
	diag "the diagnostics ran (start, end, what):"
	diag <"$LAB_DIR/steps"
fi

like "$(bw list)" '^office .* up ' "the tunnel is still up"
burrow_stop
grep -q 'burrowd stopped' "$LAB_DIR/burrowd.out"
ok $? "burrowd shuts down cleanly on SIGTERM"
if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
	ok 1 "burrowd ran without sanitizer reports"; grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | diag
else
	ok 0 "burrowd ran without sanitizer reports"
fi
done_testing

#!/bin/sh
# burrow doctor does not lock the user out: each run's phase-1 probe (Main Mode message 1 on
# UDP 500 and 4500) is answered, and the half-open IKE SA it opens on strongSwan is dropped at
# once, so ten runs in a row stay below charon's per-address half-open limit (block_threshold,
# 5), the gateway holds no half-open SA afterwards and burrow start works right away.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
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
burrow_start
ok $? "burrowd starts in the client namespace"

has() { printf '%s\n' "$1" | grep -Eq -- "$2"; }
i=1
while [ $i -le 10 ]; do
	out=$(bw doctor office 2>&1)
	if has "$out" '^OK   ike-500: ' && has "$out" '^OK   nat-t-4500: ' &&
		has "$out" '^OK   phase1: the gateway accepts aes256-sha256-modp2048'; then
		ok 0 "doctor run $i finds the gateway reachable on UDP 500 and 4500 and accepting our proposal"
	else
		ok 1 "doctor run $i finds the gateway reachable on UDP 500 and 4500 and accepting our proposal"
		printf '%s\n' "$out" | grep -E '^(OK  |WARN|FAIL) (ike-500|phase1|nat-t-4500): ' | diag
	fi
	i=$((i + 1))
done

# The probe's cleanup is asynchronous on the gateway's side: allow it a moment, far less
# than the 30 s a half-open SA would otherwise live.
lab_wait 3 sh -c "[ \$('$SWANCTL' --list-sas --uri 'unix://$LAB_DIR/gw/charon.vici' 2>/dev/null | grep -c ', IKEv1, ') = 0 ]"
ok $? "the gateway holds no IKE SA after ten doctor runs, half-open or other"
[ "$(gw_count ', IKEv1, ')" = 0 ] || gw_swanctl --list-sas 2>&1 | diag
n=$(grep -c 'is initiating a Main Mode IKE_SA' "$LAB_DIR/gw/charon.log")
[ "$n" -ge 20 ]
ok $? "every probe reached the gateway's Main Mode ($n initiations, 20 expected)"
n=$(grep -c 'received NO_PROPOSAL_CHOSEN error notify' "$LAB_DIR/gw/charon.log")
[ "$n" -ge 20 ]
ok $? "the gateway took doctor's release notification for each ($n seen)"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start succeeds right after the doctor runs"
[ "$rc" = 0 ] || diag "$out"
gw_established
ok $? "the strongSwan gateway has the IKE SA established"
grep -q 'half-open IKE_SA limit' "$LAB_DIR/gw/charon.log"
ok $((! $?)) "the gateway never turned away a message 1 of ours for its per-address half-open limit"
lab_ping "$NS_CLI" 3
ok $? "the LAN host answers ping through the tunnel"

out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
burrow_stop
done_testing

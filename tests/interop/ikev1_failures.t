#!/bin/sh
# Failures against a strongSwan gateway, each ending in a clear error from `burrow start`
# (exit 1), state failed, a specific `burrow explain` text and last_failure.code in
# `burrow status --json`, with no retry storm and no tunnel device left behind:
#   wrong PSK (auth-failed), no common phase-1 proposal (no-proposal-chosen), no common
#   phase-2 proposal (no-proposal-chosen-phase2), gateway not answering (no-answer),
#   remote identifier mismatch with verify_remote_id = yes (id-mismatch), remote networks
#   the gateway does not allow (ts-unacceptable).
# One lab, one charon (the default Main Mode PSK gateway), one burrowd with one connection
# per case. The gateway that does not answer is an extra address of the gateway's
# namespace whose IKE packets are counted and dropped; that slow case (retransmissions
# with back-off) runs in the background while the others run one after the other.
set -u
. "$(dirname "$0")/lib.sh"
lab_require perl
lab_up

SILENT_GW=192.0.2.99
BW_CLI="$BURROW_BUILD/burrow --socket $LAB_DIR/cli/burrowd.sock"

# IKE packets (UDP 500 and 4500, ESP excluded) that reached the gateway's real address
# IKE packets sent to the silent gateway
silent_packets() {
    lab_in "$NS_GW" nft list counter inet bwsilent to_silent | sed -n 's/.*packets \([0-9]*\).*/\1/p'
}
# field of `burrow status NAME --json`: json_field NAME state | json_field NAME last_failure.code
failed_events() { bw events 2>/dev/null | grep -c "tunnel_failed connection=$1\( \|$\)"; }
gw_sa_count() { gw_swanctl --list-sas 2>/dev/null | grep -c 'ESTABLISHED'; }

# conn NAME [phase1 proposals] [phase2 proposals] [remote networks] [extra lines]
conn() {
    _n=$1 _p1=${2:-aes256-sha256-modp2048} _p2=${3:-aes256-sha256} _rn=${4:-$LAN_NET}
    _gw=$GW_ADDR
    [ "$_n" != noanswer ] || _gw=$SILENT_GW
    write_conn "$_n" <<CONF
[connection]
gateway = $_gw
topology = host-to-network
local_address = 10.9.0.2
remote_networks = $_rn

[identifiers]
${5:-}

[phase1]
proposals = $_p1

[phase2]
proposals = $_p2
pfs = modp2048
CONF
    write_secret "$_n" <<CONF
[secrets]
psk = ${PSK:-burrow-lab-psk}
CONF
}

# after_failure NAME CODE EXPLAIN_REGEX START_RC START_OUTPUT COUNTER_FN
after_failure() {
    _n=$1 _code=$2 _re=$3 _rc=$4 _out=$5 _cnt=$6
    is "$_rc" 1 "$_n: burrow start exits 1"
    # one sentence on stderr that says what went wrong
    _lines=$(printf '%s\n' "$_out" | grep -c .)
    if [ -n "$_out" ] && [ "$_lines" = 1 ]; then ok 0 "$_n: burrow start prints a one-line error"
    else ok 1 "$_n: burrow start prints a one-line error"; diag "got: $_out"; fi
    is "$(list_state "$_n")" failed "$_n: burrow list shows the connection failed"
    is "$(json_field "$_n" last_failure.code)" "$_code" "$_n: burrow status --json has last_failure.code $_code"
    _exp=$(bw explain "$_n" 2>&1)
    diag "$_n: burrow start said: $_out" "$_n: burrow explain said: $_exp"
    like "$_exp" "$_re" "$_n: burrow explain says: /$_re/"
    _c0=$($_cnt)
    sleep 2
    _c1=$($_cnt)
    is "$_c1" "$_c0" "$_n: no IKE packet reaches the gateway in the 2 s after the failure (no retry storm)"
    is "$(list_state "$_n")" failed "$_n: the connection is still failed 2 s later (no automatic retry)"
    is "$(failed_events "$_n")" 1 "$_n: exactly one tunnel_failed event"
    ip -n "$NS_CLI" link show "bw-$_n" >/dev/null 2>&1
    ok $((! $?)) "$_n: no bw-$_n device left in the client namespace"
}

# ---- the gateway, and a silent one next to it
GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway starts (default: Main Mode PSK, aes256-sha256-modp2048)"
ip -n "$NS_GW" addr add "$SILENT_GW/24" dev gw-out
lab_in "$NS_GW" nft -f - <<NFT
table inet bwsilent {
    counter to_silent {}
    chain input {
        type filter hook input priority -10; policy accept;
        ip daddr $SILENT_GW udp dport { 500, 4500 } counter name to_silent drop
    }
}
NFT
ok $? "a silent gateway address $SILENT_GW drops every IKE packet"

# ---- the connections, one per case
conn noanswer
PSK=not-the-gateways-psk conn psk
conn p1 aes128-sha1-modp1024
conn p2 aes256-sha256-modp2048 aes128-sha1
conn idmis '' '' '' 'remote_id_type = fqdn
remote_id = vpn.example.com
verify_remote_id = yes'
conn ts '' '' 10.5.0.0/24
burrow_start
ok $? "burrowd starts with six connections"

# ---- gateway not answering (in the background: retransmissions back off for a while)
t0=$(date +%s)
lab_bg start-noanswer sh -c "ip netns exec '$NS_CLI' $BW_CLI start noanswer >'$LAB_DIR/noanswer.out' 2>&1; echo \$? >'$LAB_DIR/noanswer.rc.tmp'; date +%s >'$LAB_DIR/noanswer.end'; mv '$LAB_DIR/noanswer.rc.tmp' '$LAB_DIR/noanswer.rc'"

# ---- wrong PSK
t1=$(date +%s)
out=$(bw start psk 2>&1); rc=$?
dt=$(( $(date +%s) - t1 ))
after_failure psk auth-failed 'pre-shared key' "$rc" "$out" ike_packets
gw_log | grep -Eq 'decryption failed|PAYLOAD_MALFORMED|AUTHENTICATION_FAILED'
ok $? "psk: the gateway could not authenticate us either"
# strongSwan answers the undecryptable Main Mode 5 at once (encrypted N(PAYLOAD-MALFORMED));
# burrowd should act on that answer rather than retransmit into it until it gives up.
ok $(( dt <= 5 ? 0 : 1 )) "psk: burrow start fails within 5 s of the gateway's answer (took $dt s)"

# ---- no common phase-1 proposal
out=$(bw start p1 2>&1); rc=$?
after_failure p1 no-proposal-chosen 'accepted none of the phase-1 proposals.*aes128-sha1-modp1024' "$rc" "$out" ike_packets
gw_log | grep -q 'no proposal found'
ok $? "p1: the gateway found no acceptable phase-1 proposal"

# ---- no common phase-2 proposal
out=$(bw start p2 2>&1); rc=$?
after_failure p2 no-proposal-chosen-phase2 'accepted none of the phase-2 proposals.*aes128-sha1' "$rc" "$out" ike_packets
lab_wait 3 sh -c "[ \$('$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici 2>/dev/null | grep -c ESTABLISHED) = 0 ]"
ok $? "p2: burrowd deleted the phase-1 SA: the gateway holds no IKE SA"

# ---- remote identifier mismatch
out=$(bw start idmis 2>&1); rc=$?
after_failure idmis id-mismatch 'identity \(address 192\.0\.2\.1\) is not the one this connection expects \(fqdn vpn\.example\.com\)' "$rc" "$out" ike_packets
lab_wait 3 sh -c "[ \$('$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici 2>/dev/null | grep -c ESTABLISHED) = 0 ]"
ok $? "idmis: burrowd deleted the phase-1 SA: the gateway holds no IKE SA"

# ---- remote networks the gateway does not allow
out=$(bw start ts 2>&1); rc=$?
after_failure ts ts-unacceptable 'does not accept the networks we asked for' "$rc" "$out" ike_packets
gw_log | grep -q 'no matching CHILD_SA config found'
ok $? "ts: the gateway found no child config for 10.5.0.0/24"
lab_wait 3 sh -c "[ \$('$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici 2>/dev/null | grep -c ESTABLISHED) = 0 ]"
ok $? "ts: burrowd deleted the phase-1 SA: the gateway holds no IKE SA"

# ---- back to the silent gateway
lab_wait 50 test -s "$LAB_DIR/noanswer.rc"
ok $? "noanswer: burrow start returned"
dt=$(( $(cat "$LAB_DIR/noanswer.end" 2>/dev/null || date +%s) - t0 ))
ok $(( dt >= 5 && dt <= 40 ? 0 : 1 )) "noanswer: burrowd gave up after retransmitting for a bounded time ($dt s)"
out=$(cat "$LAB_DIR/noanswer.out" 2>/dev/null)
rc=$(cat "$LAB_DIR/noanswer.rc" 2>/dev/null)
sent=$(silent_packets)
ok $(( sent >= 2 && sent <= 10 ? 0 : 1 )) "noanswer: burrowd retransmitted a bounded number of times ($sent packets)"
after_failure noanswer no-answer 'did not answer at all' "$rc" "$out" silent_packets

# ---- nothing left behind
left=$(ip -n "$NS_CLI" -o link show | grep -c ': bw-')
is "$left" 0 "no bw-* device left in the client namespace"
[ "$left" = 0 ] || ip -n "$NS_CLI" -o link show | diag
is "$(ip -n "$NS_CLI" route show | grep -c 'dev bw-')" 0 "no route through a bw-* device left"
done_testing

#!/bin/sh
# The strongSwan gateway deletes the SAs (swanctl --terminate): burrowd acts on the gateway's
# Delete payloads, the connection goes down with reason deleted-by-peer, the tunnel device
# and its routes are removed, and burrowd does not fail or reconnect on its own.
set -u
. "$(dirname "$0")/lib.sh"
lab_require
lab_up

is_down() { bw list 2>/dev/null | grep -Eq '^office .* down( |$)'; }

GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "the strongSwan gateway starts"

write_conn office <<CONF
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
CONF
write_secret office <<CONF
[secrets]
psk = burrow-lab-psk
CONF
burrow_start
ok $? "burrowd starts in the client namespace"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start returns success once the tunnel is up"
[ "$rc" = 0 ] || { diag "$out"; bw explain office 2>&1 | diag; }
gw_established
ok $? "the strongSwan gateway has the IKE SA established"
lab_ping "$NS_CLI" 2
ok $? "the LAN host answers ping through the tunnel"

gw_swanctl --terminate --ike bw --timeout 5 >"$LAB_DIR/gw/terminate.out" 2>&1
ok $? "swanctl --terminate --ike bw succeeds on the gateway"
gw_log | grep -q 'sending DELETE for IKE_SA'
ok $? "the gateway sent a Delete for the IKE SA"

lab_wait 5 is_down
ok $? "burrow list shows the connection down"
like "$(bw events 2>&1)" 'tunnel_down connection=office reason=deleted-by-peer' \
    "burrow events has tunnel_down with reason=deleted-by-peer"
not sh -c "'$BURROW_BUILD/burrow' --socket '$LAB_DIR/cli/burrowd.sock' events 2>&1 | grep -q 'tunnel_failed connection=office'"
ok $? "no tunnel_failed event: a delete by the gateway is not a failure"
lab_wait 5 not ip -n "$NS_CLI" link show bw-office
ok $? "the bw-office device is gone"
not sh -c "ip -n '$NS_CLI' route show | grep -q bw-office"
ok $? "no route through bw-office is left"
like "$(bw log office 2>&1)" '[Dd]elete' "burrow's log records the gateway's delete"
like "$(bw log office 2>&1)" 'error +the gateway deleted the SA \(failure deleted-by-peer\)' \
    "the loss is logged at error level with its code, like every failure"
like "$(bw explain office 2>&1)" 'failure code: deleted-by-peer' "burrow explain gives the code deleted-by-peer"
like "$(bw status office --json 2>&1)" '"state": *"down"' "burrow status --json says down"

# nothing comes back by itself (defaults.lua restarts only after dpd or network changes)
sleep 2
is_down
ok $? "the connection stays down (no automatic reconnect after a delete by the gateway)"
gw_swanctl --list-sas 2>/dev/null | grep -q ESTABLISHED
ok $((! $?)) "the gateway holds no SA"
lab_ping "$NS_CLI" 1
ok $((! $?)) "the LAN host is not reachable any more"

out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start brings the connection up again afterwards"
[ "$rc" = 0 ] || diag "$out"
lab_ping "$NS_CLI" 2
ok $? "traffic flows again through the new tunnel"
out=$(bw stop office 2>&1); rc=$?
is "$rc" 0 "burrow stop succeeds"
done_testing

#!/bin/sh
# Inside the VM: a phase-2 lifetime of 30 s rekeyed twice under a continuous ping, with
# backend = xfrm against strongSwan using kernel-netlink. The engine rekeys at 80-90% of the
# lifetime, make-before-break: the new pair goes into the kernel under the same reqid (the
# policies stay as they are), the old outbound SA goes at once, the old inbound one after a
# grace period. Afterwards the kernel holds exactly the newest pair; stop leaves nothing.
set -u
. "$BURROW_SRC/tests/interop/lib.sh"
LAB_CHARON_PLUGINS=$(echo "$LAB_CHARON_PLUGINS" | sed 's/ kernel-libipsec//')
lab_require perl
lab_up

lab_in "$NS_GW" nft -f - <<NFT
flush chain inet bwlab forward
table inet bwlab {
    chain forward {
        iifname "gw-out" ip daddr $LAN_NET meta ipsec exists counter name tunnel_to_lan accept
        iifname "gw-out" ip daddr $LAN_NET counter name clear_to_lan drop
    }
}
NFT

GW_ENCAP=no GW_REMOTE_TS=10.9.0.2/32 gw_start
ok $? "strongSwan gateway (kernel-netlink) for the rekey run starts"
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
lifetime = 30s
CONF
write_secret office <<SEC
[secrets]
psk = burrow-lab-psk
SEC
printf '[agent]\nbackend = xfrm\nlog_level = debug\n' >"$LAB_DIR/cli/etc/burrow.conf"

clean_run() {
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out"; then
        ok 1 "burrowd ran without sanitizer reports ($1)"
        grep -E -A20 'Sanitizer|runtime error' "$LAB_DIR/burrowd.out" | head -n 40 | diag
    else
        ok 0 "burrowd ran without sanitizer reports ($1)"
    fi
}
like() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; diag "got: $1"; fi; }
json() { bw status office --json | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); print $d->{$ARGV[0]} // ""' "$1"; }
# The client's ESP SAs as "0xSPI" lines, sorted.
spis() { ip -n "$NS_CLI" -o xfrm state | sed -n 's/.*proto esp spi \(0x[0-9a-f]*\).*/\1/p' | sort; }
n_pols() { ip -n "$NS_CLI" -o xfrm policy | grep -vc 'socket \(in\|out\) '; }
n_all() { echo $(( $(ip -n "$NS_CLI" -o xfrm state | wc -l) + $(n_pols) )); }
# "in out" SPIs of the last "IPsec SA up" line of burrowd's log, as 0x-prefixed hex.
logged_pair() {
    sed -n 's/.*IPsec SA up for .*SPIs in \([0-9a-f]*\) out \([0-9a-f]*\),.*/0x\1 0x\2/p' \
        "$LAB_DIR/burrowd.out" | tail -n 1
}
# ip prints SPIs as 0x%08x (leading zeros kept): the log's SPIs in the same form.
canon() { for _s in "$@"; do printf '0x%08x\n' "$_s"; done | sort; }

burrow_start
ok $? "burrowd starts with backend = xfrm"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start office: the tunnel with a 30 s phase-2 lifetime is up"
[ "$rc" = 0 ] || diag "$out"
first=$(spis)
is "$(printf '%s\n' "$first" | grep -c .)" 2 "two ESP SAs in the kernel before the rekeys"
pols0=$(ip -n "$NS_CLI" -o xfrm policy | grep -v 'socket \(in\|out\) ' | sort)
# The kernel's hard lifetime is the negotiated one plus 60 s: the IKE side rekeys long before.
like "$(ip -n "$NS_CLI" -s xfrm state)" 'expire add: soft 81\(sec\), hard 90\(sec\)' "the kernel SAs expire after 30 + 60 s (soft at 81 s)"

# ~65 s of pings every 0.2 s: two rekeys fall into it (at 24-27 s and 48-54 s after up).
t0=$(date +%s)
pout=$(lab_in "$NS_CLI" ping -n -q -i 0.2 -c 325 -W 1 "$LAN_HOST" 2>&1)
t1=$(date +%s)
sent=$(printf '%s\n' "$pout" | sed -n 's/^\([0-9]*\) packets transmitted.*/\1/p')
recv=$(printf '%s\n' "$pout" | sed -n 's/.* \([0-9]*\) \(packets \)\{0,1\}received.*/\1/p')
diag "ping: ${sent:-?} sent, ${recv:-?} received in $((t1 - t0)) s"
check "the continuous ping ran (${sent:-0} packets sent)" test "${sent:-0}" -ge 300
check "at most one packet was lost across the rekeys ($((${sent:-0} - ${recv:-0})) lost)" \
    test "${recv:-0}" -ge $((${sent:-0} - 1)) -a "${sent:-0}" -gt 0
n=$(grep -c 'rekeyed: the new SAs carry the traffic' "$LAB_DIR/burrowd.out")
is "$n" 2 "burrowd's log shows two rekeys during the run"
is "$(grep -c 'IPsec SA up for' "$LAB_DIR/burrowd.out")" 3 "three Quick Modes: the first one and two rekeys"
if grep -Eq 'refused|cannot delete SA|SA [0-9a-f]+ expired|soft lifetime|expired \(hard\)|was deleted by someone else' "$LAB_DIR/burrowd.out"; then
    ok 1 "the kernel backend took every rekey without an error or an expiry"
    grep -E 'refused|cannot delete SA|SA [0-9a-f]+ expired|soft lifetime|expired \(hard\)|was deleted by someone else' "$LAB_DIR/burrowd.out" | head -n 10 | diag
else
    ok 0 "the kernel backend took every rekey without an error or an expiry"
fi

# The old inbound SA lingers IKE_OLD_SA_GRACE_S (5 s) after each rekey.
lab_wait 10 sh -c "[ \$(ip -n $NS_CLI -o xfrm state | grep -c 'proto esp') = 2 ]"
now=$(spis)
is "$(printf '%s\n' "$now" | grep -c .)" 2 "ip xfrm state holds one pair of SAs after the rekeys"
pair=$(logged_pair)
# shellcheck disable=SC2086
is "$(printf '%s\n' "$now" | tr '\n' ' ')" "$(canon $pair | tr '\n' ' ')" \
    "it is the current pair, the one the last Quick Mode negotiated ($pair)"
stale=0
for s in $first; do printf '%s\n' "$now" | grep -qx "$s" && stale=$((stale + 1)); done
is "$stale" 0 "the SAs the tunnel started with are gone from the kernel"
is "$(ip -n "$NS_CLI" -o xfrm policy | grep -v 'socket \(in\|out\) ' | sort)" "$pols0" \
    "the policies are the ones of the start: a rekey changes no policy"
is "$(lab_counter clear_to_lan)" 0 "nothing reached the LAN in clear"
like "$(bw list)" '^office .* up ' "the connection is up after the rekeys"
is "$(gw_swanctl --list-sas | grep -c 'INSTALLED')" 1 "the gateway holds one IPsec SA: the replaced ones were deleted"
bi=$(json bytes_in)
check "burrow status counts the replaced SAs' bytes too ($bi bytes in for ${recv:-0} replies)" \
    test "${bi:-0}" -ge $((${recv:-1} * 84))
lab_ping "$NS_CLI" 3
ok $? "ping through the rekeyed tunnel"

out=$(bw stop office 2>&1)
ok $? "burrow stop office"
is "$(n_all)" 0 "after burrow stop: nothing of Burrow's in ip xfrm state/policy"
is "$(find "$LAB_DIR/cli/state" -name '*.xfrm' | wc -l)" 0 "no state record is left"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the gateway holds no SA of ours"
burrow_stop
clean_run "two rekeys with backend = xfrm"
done_testing

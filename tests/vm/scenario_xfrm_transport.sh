#!/bin/sh
# Inside the VM: host-to-host in transport mode (issue 5, interop scenario 6). strongSwan's
# kernel-libipsec carries tunnel mode only, so this runs here, where both sides have real
# XFRM: the gateway's child has mode = transport with its and the client's own addresses as
# selectors (dynamic/dynamic), no UDP encapsulation; burrowd has backend = xfrm and
# topology = host-to-host, mode = transport, no local_address. A ping from the client to the
# gateway's own address must arrive decrypted by the gateway's kernel (nftables: meta ipsec
# exists) and move both client SAs' byte counters; IKE, whose addresses the 192.0.2.2 <->
# 192.0.2.1 policies also cover, must stay outside ESP (the IKE sockets' bypass policies),
# at the start (Quick Mode's last message goes out after the SAs are installed), across a
# phase-2 rekey and for the deletes at stop. Stop leaves nothing of Burrow's in XFRM.
# Then the same with backend = userspace: ESP in UDP from bw-office, a routing rule for
# everything without burrowd's IKE mark, pings and a TCP download from the gateway itself,
# and after stop the rules as they were.
set -u
. "$BURROW_SRC/tests/interop/lib.sh"
LAB_CHARON_PLUGINS=$(echo "$LAB_CHARON_PLUGINS" | sed 's/ kernel-libipsec//')
lab_require perl
lab_up

# What reaches the gateway itself from the client: pings and IKE, each told apart by whether
# the gateway's kernel decrypted it (a security path) or it came in clear; and raw ESP.
lab_in "$NS_GW" nft -f - <<NFT
flush chain inet bwlab input
table inet bwlab {
    counter esp_in {}
    counter ping_esp {}
    counter ping_clear {}
    counter ike_clear {}
    counter ike_tunneled {}
    chain input {
        iifname "gw-out" ip protocol esp counter name esp_in
        iifname "gw-out" icmp type echo-request meta ipsec exists counter name ping_esp
        iifname "gw-out" icmp type echo-request meta ipsec missing counter name ping_clear
        iifname "gw-out" udp dport 500 meta ipsec missing counter name ike_clear
        iifname "gw-out" udp dport 500 meta ipsec exists counter name ike_tunneled
    }
}
NFT

# lib.sh's generated gateway has no child mode: write the whole swanctl.conf.
cat >"$LAB_DIR/gw-transport.conf" <<CONF
connections {
    bw {
        version = 1
        proposals = aes256-sha256-modp2048
        local_addrs = $GW_ADDR
        encap = no
        local {
            auth = psk
            id = $GW_ADDR
        }
        remote {
            auth = psk
            id = %any
        }
        children {
            bw {
                mode = transport
                local_ts = dynamic
                remote_ts = dynamic
                esp_proposals = aes256-sha256-modp2048
            }
        }
    }
}
secrets {
    ike-bw {
        secret = "burrow-lab-psk"
    }
}
CONF
gw_start "$LAB_DIR/gw-transport.conf"
ok $? "strongSwan gateway (kernel-netlink) with a transport-mode child starts"
write_conn office <<CONF
[connection]
gateway = $GW_ADDR
topology = host-to-host
mode = transport

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
like() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; printf 'got: %s\n' "$1" | diag; fi; }
json() { bw status office --json | perl -MJSON::PP -e 'my $d = decode_json(join "", <STDIN>); print $d->{$ARGV[0]} // ""' "$1"; }
n_states() { ip -n "$NS_CLI" -o xfrm state | grep -c 'proto esp'; }
# SAs and policies, but not the per-socket bypass policies of burrowd's IKE sockets.
n_all() { echo $(( $(ip -n "$NS_CLI" -o xfrm state | wc -l) + $(ip -n "$NS_CLI" -o xfrm policy | grep -vc 'socket \(in\|out\) ') )); }
# "SRC>DST BYTES" for each of the client's ESP SAs, from ip -s xfrm state.
sa_bytes() {
    ip -n "$NS_CLI" -s xfrm state | awk '
        /^src / { sa = $2 ">" $4 }
        /lifetime current:/ { cur = 1; next }
        cur { sub(/\(bytes\).*/, ""); gsub(/[ \t]/, ""); print sa " " $0; cur = 0 }'
}
bytes_of() { sa_bytes | awk -v k="$1" '$1 == k { print $2 }'; }
spis() { ip -n "$NS_CLI" -o xfrm state | sed -n 's/.*proto esp spi \(0x[0-9a-f]*\).*/\1/p' | sort; }
# ip prints SPIs as 0x%08x.
canon() { for _s in "$@"; do printf '0x%08x\n' "$_s"; done | sort; }
# The client's IPv4 addresses and routes (all tables): transport mode adds none of them.
net4() { ip -n "$NS_CLI" -4 -o addr show | awk '{ print $2, $4 }'; ip -n "$NS_CLI" -4 route show table all; }

net0=$(net4)
ip netns exec "$NS_CLI" ping -n -q -c 1 -W 1 "$GW_ADDR" >/dev/null 2>&1
clear0=$(lab_counter ping_clear)
check "before the tunnel the gateway counts a ping in clear ($clear0)" test "${clear0:-0}" -ge 1

burrow_start
ok $? "burrowd starts with backend = xfrm"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start office: host-to-host in transport mode is up"
[ "$rc" = 0 ] || diag "$out"
is "$(n_states)" 2 "two ESP SAs in the client's kernel"
st=$(ip -n "$NS_CLI" xfrm state)
is "$(printf '%s\n' "$st" | grep -c 'mode transport')" 2 "both SAs are in transport mode"
like "$st" "src $CLI_ADDR dst $GW_ADDR" "outbound SA $CLI_ADDR -> $GW_ADDR"
like "$st" "src $GW_ADDR dst $CLI_ADDR" "inbound SA $GW_ADDR -> $CLI_ADDR"
if printf '%s\n' "$st" | grep -q encap; then ok 1 "plain ESP, no UDP encapsulation"; else ok 0 "plain ESP, no UDP encapsulation"; fi
pols=$(ip -n "$NS_CLI" -o xfrm policy | grep -v 'socket \(in\|out\) ')
like "$pols" "src $CLI_ADDR/32 dst $GW_ADDR/32 .*dir out.*mode transport" "policy out $CLI_ADDR/32 -> $GW_ADDR/32, transport template"
like "$pols" "src $GW_ADDR/32 dst $CLI_ADDR/32 .*dir in.*mode transport" "policy in $GW_ADDR/32 -> $CLI_ADDR/32, transport template"
is "$(ip -n "$NS_CLI" -o xfrm policy | grep -c 'socket \(in\|out\) ')" 4 "burrowd's two IKE sockets hold their bypass policies"
is "$(net4)" "$net0" "no IPv4 address and no route was added"
gw_established
ok $? "the gateway has the IKE SA established and the IPsec SA installed"
like "$(gw_swanctl --list-sas)" 'INSTALLED, TRANSPORT,' "the gateway installed a transport-mode SA, plain ESP"
stat=$(bw status office)
like "$stat" "SA: +$CLI_ADDR(/32)? === $GW_ADDR(/32)? aes256-sha256" "burrow status shows the SA $CLI_ADDR === $GW_ADDR"
# shellcheck disable=SC2046
is "$(canon $(printf '%s\n' "$stat" | sed -n 's/.* in \([0-9a-f]*\) out \([0-9a-f]*\).*/0x\1 0x\2/p') | tr '\n' ' ')" \
    "$(spis | tr '\n' ' ')" "its SPIs are the kernel's"
is "$(json state)" up "burrow status --json: state up"
is "$(json backend)" xfrm "burrow status names the xfrm backend"

out_b0=$(bytes_of "$CLI_ADDR>$GW_ADDR") in_b0=$(bytes_of "$GW_ADDR>$CLI_ADDR")
esp0=$(lab_counter esp_in) pe0=$(lab_counter ping_esp) pc0=$(lab_counter ping_clear)
ip netns exec "$NS_CLI" ping -n -q -c 3 -i 0.2 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $? "the gateway's own address answers ping"
esp1=$(lab_counter esp_in) pe1=$(lab_counter ping_esp) pc1=$(lab_counter ping_clear)
is "$pc1" "$pc0" "no ping reached the gateway in clear"
check "the pings reached the gateway decrypted by its kernel ($pe0 -> $pe1)" test "${pe1:-0}" -ge $((${pe0:-0} + 3))
check "they arrived as ESP ($esp0 -> $esp1 packets)" test "${esp1:-0}" -ge $((${esp0:-0} + 3))
out_b1=$(bytes_of "$CLI_ADDR>$GW_ADDR") in_b1=$(bytes_of "$GW_ADDR>$CLI_ADDR")
# Transport mode: an SA counts what follows the IP header, 64 bytes of ICMP per ping.
check "the outbound SA counted the requests (${out_b0:-?} -> ${out_b1:-?} bytes)" test "${out_b1:-0}" -ge $((${out_b0:-0} + 3 * 64))
check "the inbound SA counted the replies (${in_b0:-?} -> ${in_b1:-?} bytes)" test "${in_b1:-0}" -ge $((${in_b0:-0} + 3 * 64))
bi=$(json bytes_in) bo=$(json bytes_out)
check "burrow status shows the kernel's byte counters ($bi in, $bo out)" test "${bi:-0}" -gt 0 -a "${bo:-0}" -gt 0
check "IKE reached the gateway in clear ($(lab_counter ike_clear) packets)" test "$(lab_counter ike_clear)" -gt 0

# The phase-2 lifetime of 30 s brings a rekey at 24-27 s: a Quick Mode between the two hosts
# the transport policies select.
lab_wait 40 grep -q 'rekeyed: the new SAs carry the traffic' "$LAB_DIR/burrowd.out"
ok $? "phase 2 rekeyed in transport mode (Quick Mode outside the SAs)"
lab_wait 10 sh -c "[ \$(ip -n $NS_CLI -o xfrm state | grep -c 'proto esp') = 2 ]"
is "$(ip -n "$NS_CLI" xfrm state | grep -c 'mode transport')" 2 "after the rekey: one pair, in transport mode"
pe0=$(lab_counter ping_esp) pc0=$(lab_counter ping_clear)
ip netns exec "$NS_CLI" ping -n -q -c 3 -i 0.2 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $? "ping through the rekeyed SAs"
is "$(lab_counter ping_clear)" "$pc0" "still no ping in clear"
check "still decrypted by the gateway ($pe0 -> $(lab_counter ping_esp))" test "$(lab_counter ping_esp)" -ge $((${pe0:-0} + 3))
is "$(gw_swanctl --list-sas | grep -c 'INSTALLED, TRANSPORT')" 1 "the gateway holds one transport SA after the rekey"

ike0=$(lab_counter ike_clear)
out=$(bw stop office 2>&1)
ok $? "burrow stop office"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the deletes reached the gateway: it holds no SA of ours"
check "the deletes went in clear ($ike0 -> $(lab_counter ike_clear) packets)" test "$(lab_counter ike_clear)" -gt "$ike0"
is "$(lab_counter ike_tunneled)" 0 "no IKE packet ever went into ESP"
is "$(n_all)" 0 "after burrow stop: nothing of Burrow's in ip xfrm state/policy"
is "$(find "$LAB_DIR/cli/state" -name '*.xfrm' | wc -l)" 0 "no state record is left"
is "$(net4)" "$net0" "after burrow stop: addresses and routes as before"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "after burrow stop: bw-office is gone"
pc0=$(lab_counter ping_clear)
ip netns exec "$NS_CLI" ping -n -q -c 1 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $? "after burrow stop the gateway answers in clear again"
burrow_stop
clean_run "host-to-host in transport mode"

# The same host-to-host transport SA on the userspace datapath: ESP in UDP (Burrow fakes NAT-D,
# so the gateway's kernel takes UDP-encapsulated transport ESP); the gateway's address is routed
# into bw-office by a rule for every packet without burrowd's IKE mark, so the pings go through
# the SA while IKE and ESP in UDP themselves stay outside.
printf '[agent]\nbackend = userspace\nlog_level = debug\n' >"$LAB_DIR/cli/etc/burrow.conf"
rules0=$(ip -n "$NS_CLI" -4 rule show)
burrow_start
ok $? "burrowd starts with backend = userspace"
out=$(bw start office 2>&1); rc=$?
is "$rc" 0 "burrow start office: transport mode on the userspace datapath is up"
[ "$rc" = 0 ] || { diag "$out"; tail -n 30 "$LAB_DIR/burrowd.out" | diag; }
like "$(gw_swanctl --list-sas)" 'INSTALLED, TRANSPORT-in-UDP' \
    "the gateway installed a transport-mode SA with UDP encapsulation"
is "$(ip -n "$NS_CLI" -o xfrm state | wc -l)" 0 "nothing in the client's XFRM: the userspace datapath carries it"
like "$(ip -n "$NS_CLI" -4 rule show)" 'not from all fwmark 0x62770000 lookup' "a rule routes unmarked traffic to the connection's table"
like "$(ip -n "$NS_CLI" -o route get "$GW_ADDR")" 'dev bw-office' "the gateway's address goes into bw-office"
like "$(ip -n "$NS_CLI" -o route get "$GW_ADDR" mark 0x62770000)" 'dev cli0' "IKE-marked packets go the normal way"
pe0=$(lab_counter ping_esp) pc0=$(lab_counter ping_clear) ike0=$(lab_counter ike_tunneled)
ip netns exec "$NS_CLI" ping -n -q -c 3 -i 0.2 -W 1 "$GW_ADDR" >/dev/null 2>&1
ok $? "the gateway's own address answers ping through the userspace SA"
is "$(lab_counter ping_clear)" "$pc0" "no ping reached the gateway in clear"
check "the pings reached the gateway decrypted by its kernel ($pe0 -> $(lab_counter ping_esp))" \
    test "$(lab_counter ping_esp)" -ge $((${pe0:-0} + 3))
# TCP: a transfer from the gateway's own web server (rebuilt headers, checksums computed anew).
lab_in "$NS_GW" sh -c "echo transport-ok >$LAB_DIR/gw-index.html"
lab_bg gwhttp ip netns exec "$NS_GW" busybox httpd -f -p 8088 -h "$LAB_DIR" 2>/dev/null || true
sleep 0.5
body=$(ip netns exec "$NS_CLI" curl -s --max-time 5 "http://$GW_ADDR:8088/gw-index.html")
is "$body" "transport-ok" "a TCP download from the gateway itself works in transport mode"
lab_kill gwhttp 2>/dev/null || true
json_bi=$(json bytes_in) json_bo=$(json bytes_out)
check "burrow status counts traffic both ways ($json_bi in, $json_bo out)" test "${json_bi:-0}" -gt 0 -a "${json_bo:-0}" -gt 0
is "$(lab_counter ike_tunneled)" "${ike0:-0}" "no IKE packet went into ESP"
out=$(bw stop office 2>&1)
ok $? "burrow stop office"
lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici | grep -q ESTABLISHED"
ok $? "the deletes reached the gateway"
is "$(ip -n "$NS_CLI" -4 rule show)" "$rules0" "after burrow stop: the routing rules are as before"
like "$(ip -n "$NS_CLI" -o route get "$GW_ADDR")" 'dev cli0' "and the gateway is reached directly again"
ip -n "$NS_CLI" link show bw-office >/dev/null 2>&1
ok $((! $?)) "after burrow stop: bw-office is gone"
burrow_stop
clean_run "transport mode on the userspace datapath"
done_testing

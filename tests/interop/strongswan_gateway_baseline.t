#!/bin/sh
# strongSwan client -> strongSwan gateway, IKEv1 Main Mode PSK + Mode Config +
# Quick Mode (PFS modp2048), ESP in UDP 4500 through kernel-libipsec.
# Proves the interop harness (lib.sh) itself: the lab, the gateway, the checks
# that tell traffic went through the tunnel, and that nothing is left behind.
# Runs twice: client directly on the gateway's outside net, then behind a NAT.
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/interop/lib.sh
. "$HERE/lib.sh"

lab_require ping curl busybox

PINGS=5
plan 26

gw_ike_count() {
    gw_swanctl --list-sas 2>/dev/null | grep -c ESTABLISHED || true
}

# cleartext_dropped COUNTER_BEFORE: a ping fails and the gateway's
# clear_to_lan counter (outside -> LAN, dropped) went up
cleartext_dropped() {
    if lab_in "$NS_CLI" ping -n -q -c 1 -W 0.5 "$LAN_HOST" >/dev/null 2>&1; then return 1; fi
    [ "$(lab_counter clear_to_lan)" -gt "$1" ]
}

# sas_show_peer LIST_SAS_OUTPUT ADDR: the remote is ADDR[4500], ESP in UDP
sas_show_peer() {
    printf '%s\n' "$1" | grep -q "@ $2\[4500\]" &&
        printf '%s\n' "$1" | grep -q "TUNNEL-in-UDP"
}

client_has_pool_vip() {
    ip -n "$NS_CLI" -4 addr show | grep -q 'inet 10\.3\.0\.[0-9]*/32'
}

lab_netns_left() { ip netns list | grep -q -- "-$1"; }

gw_no_sas() { [ "$(gw_ike_count)" = 0 ]; }

scenario() {
    tag=$1; shift
    lab_up "$@"
    lab_http_start

    # gateway: IKEv1 Main Mode PSK, pool 10.3.0.0/24 (Mode Config), encap = yes
    GW_IKE_PROPOSALS=aes256-sha256-modp2048 \
    GW_ESP_PROPOSALS=aes256-sha256-modp2048 \
    GW_POOL=10.3.0.0/24 GW_XAUTH=no GW_ENCAP=yes GW_PSK="lab-psk-$LAB_ID" \
        gw_start
    CLI_PSK="lab-psk-$LAB_ID" cli_strongswan_start

    clr=$(lab_counter clear_to_lan)
    check "$tag: cleartext ping from the client is dropped by the gateway before the tunnel is up" \
        cleartext_dropped "$clr"

    t0=$(lab_now)
    check "$tag: strongSwan client initiates IKEv1 Main Mode + Quick Mode" cli_strongswan_initiate
    t1=$(lab_now)
    diag "$tag: IKE + CHILD SA up in $(awk "BEGIN{printf \"%.3f\", $t1 - $t0}") s"

    check "$tag: gateway lists an ESTABLISHED IKEv1 SA with an INSTALLED CHILD SA" gw_established
    sas=$(gw_swanctl --list-sas 2>/dev/null || true)
    if [ "$LAB_NAT" = yes ]; then peer=192.0.2.3; else peer=$CLI_ADDR; fi
    check "$tag: gateway sees the client at $peer port 4500, tunnel in UDP" \
        sas_show_peer "$sas" "$peer"
    check "$tag: client got a virtual IP from the pool 10.3.0.0/24 via Mode Config" \
        client_has_pool_vip

    esp0=$(lab_counter natt_esp_in); tun0=$(lab_counter tunnel_to_lan); clr0=$(lab_counter clear_to_lan)
    check "$tag: client pings the LAN host $LAN_HOST through the tunnel" lab_ping "$NS_CLI" $PINGS
    body=$(lab_fetch "$NS_CLI" "$LAB_HTTP_PATH" 2>&1 || true)
    is "$body" "$LAB_HTTP_BODY" "$tag: HTTP GET of a known file on the LAN host through the tunnel"
    esp1=$(lab_counter natt_esp_in); tun1=$(lab_counter tunnel_to_lan); clr1=$(lab_counter clear_to_lan)
    check "$tag: gateway received >= $PINGS ESP-in-UDP/4500 packets (got $((esp1 - esp0)))" \
        test $((esp1 - esp0)) -ge $PINGS
    check "$tag: LAN traffic left the tunnel interface, none came in clear (tunnel +$((tun1 - tun0)), clear +$((clr1 - clr0)))" \
        test $((tun1 - tun0)) -ge $PINGS -a $((clr1 - clr0)) -eq 0

    cli_strongswan_terminate || true
    check "$tag: terminate from the client removes the gateway's IKE SA" \
        lab_wait 5 gw_no_sas
    clr=$(lab_counter clear_to_lan)
    check "$tag: after terminate the LAN is unreachable again (cleartext dropped at the gateway)" \
        cleartext_dropped "$clr"

    pids=""
    for p in charon-gw charon-cli httpd; do pids="$pids $(cat "$LAB_DIR/pids/$p.pid")"; done
    id=$LAB_ID dir=$LAB_DIR
    lab_teardown
    check "$tag: teardown leaves no namespace of lab $id" \
        not lab_netns_left "$id"
    left=""
    for p in $pids; do if _pid_alive "$p"; then left="$left $p"; fi; done
    if [ "${KEEP_LAB:-0}" = 1 ]; then dir_gone=0; else dir_gone=$([ ! -e "$dir" ]; echo $?); fi
    check "$tag: teardown stops charon (gateway and client) and httpd, removes LAB_DIR${left:+ (left:$left)}" \
        test -z "$left" -a "$dir_gone" = 0
}

start=$(lab_now)
scenario direct
scenario nat --nat
diag "total $(awk "BEGIN{printf \"%.1f\", $(lab_now) - $start}") s"
done_testing

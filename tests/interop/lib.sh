# tests/interop/lib.sh -- shared code for Burrow's interop tests (TAP, POSIX sh).
#
# Source it from a test:   . "$(dirname "$0")/lib.sh"
# A test builds a lab of network namespaces (lab_up), starts strongSwan's charon
# as the gateway (gw_start), a client (strongSwan: cli_strongswan_start, or
# Burrow: burrow_start), checks things with the TAP helpers and leaves; lab_down
# runs from the EXIT trap that lab_up installs and removes everything.
# See tests/interop/README.md for the address plan and how to debug.
#
# The shell is expected to run with `set -eu`; every helper copes with that.

: "${BURROW_BUILD:=./build}"
case $BURROW_BUILD in /*) ;; *) BURROW_BUILD=$PWD/${BURROW_BUILD#./} ;; esac
: "${CHARON:=/usr/lib/ipsec/charon}"
: "${SWANCTL:=swanctl}"

# Plugins charon loads (INTEROP.md): kernel-libipsec for SAs (no kernel ESP
# here), kernel-netlink for addresses and routes. No load_modular.
LAB_CHARON_PLUGINS="random nonce openssl aes sha1 sha2 md5 hmac gmp pem pkcs1 x509 pubkey kernel-libipsec kernel-netlink socket-default vici xauth-generic attr unity"

# ---------------------------------------------------------------- TAP ------

_tap_n=0
_tap_fail=0
_tap_planned=

plan() { _tap_planned=$1; echo "1..$1"; }

# ok STATUS NAME...   -- STATUS 0 passes, anything else fails
ok() {
    _st=$1; shift
    _tap_n=$((_tap_n + 1))
    if [ "$_st" = 0 ]; then
        echo "ok $_tap_n - $*"
    else
        echo "not ok $_tap_n - $*"
        _tap_fail=$((_tap_fail + 1))
    fi
    return 0
}

# check NAME CMD ARGS...   -- runs CMD, ok if it exits 0 (safe under set -e)
check() {
    _name=$1; shift
    if "$@"; then ok 0 "$_name"; else ok 1 "$_name"; fi
}

# is GOT WANT NAME...
is() {
    _got=$1 _want=$2; shift 2
    if [ "$_got" = "$_want" ]; then
        ok 0 "$@"
    else
        ok 1 "$@"
        diag "     got: '$_got'" "expected: '$_want'"
    fi
}

# diag LINE...  or  CMD | diag   -- TAP comments, on stderr: prove shows them (CI logs
# included) where it hides the comments on stdout
diag() {
    if [ $# -gt 0 ]; then
        for _l in "$@"; do printf '# %s\n' "$_l"; done >&2
    else
        sed 's/^/# /' >&2
    fi
}

# not CMD ARGS...  -- succeeds when CMD fails (for check)
not() { if "$@"; then return 1; else return 0; fi; }

skip() { _tap_n=$((_tap_n + 1)); echo "ok $_tap_n # skip $*"; }

skip_all() { echo "1..0 # SKIP $*"; exit 0; }

bail_out() { echo "Bail out! $*"; exit 255; }

done_testing() {
    [ -n "$_tap_planned" ] || echo "1..$_tap_n"
    [ "$_tap_fail" = 0 ]
}

# lab_require: skip the whole test unless the lab can run here.
lab_require() {
    [ "$(id -u)" = 0 ] || skip_all "needs root (network namespaces)"
    [ -x "$CHARON" ] || skip_all "strongSwan charon not found at $CHARON"
    for _c in "$SWANCTL" ip nft unshare; do
        command -v "$_c" >/dev/null 2>&1 || skip_all "$_c not installed"
    done
    for _p in "$@"; do
        command -v "$_p" >/dev/null 2>&1 || skip_all "$_p not installed"
    done
    return 0
}

# ---------------------------------------------------------------- helpers --

_lab_rand() { od -An -N3 -tx1 /dev/urandom | tr -d ' \n'; }
lab_now() { date +%s.%N; }

# lab_wait SECONDS CMD ARGS...  -- polls CMD every 0.1 s until it succeeds
lab_wait() {
    _deadline=$(( $(date +%s) + $1 )); shift
    while :; do
        if "$@" >/dev/null 2>&1; then return 0; fi
        [ "$(date +%s)" -lt "$_deadline" ] || return 1
        sleep 0.1
    done
}

# lab_bg NAME CMD ARGS...  -- starts CMD in the background, output to
# LAB_DIR/NAME.out, PID in LAB_DIR/pids/NAME.pid; lab_down stops it.
lab_bg() {
    _bgname=$1; shift
    "$@" >"$LAB_DIR/$_bgname.out" 2>&1 &
    echo $! >"$LAB_DIR/pids/$_bgname.pid"
}

_pid_alive() {
    [ -e "/proc/$1" ] || return 1
    _state=$(sed -n 's/^State:[[:space:]]*\([A-Z]\).*/\1/p' "/proc/$1/status" 2>/dev/null)
    [ "$_state" != Z ] && [ -n "$_state" ]
}

# lab_kill NAME  -- stops the process started as NAME (TERM, then KILL after 5 s)
lab_kill() {
    _pf=$LAB_DIR/pids/$1.pid
    [ -f "$_pf" ] || return 0
    _pid=$(cat "$_pf")
    if _pid_alive "$_pid"; then
        kill -TERM "$_pid" 2>/dev/null || true
        _i=0
        while _pid_alive "$_pid" && [ $_i -lt 50 ]; do sleep 0.1; _i=$((_i + 1)); done
        if _pid_alive "$_pid"; then kill -KILL "$_pid" 2>/dev/null || true; sleep 0.1; fi
    fi
    wait "$_pid" 2>/dev/null || true
    rm -f "$_pf"
}

lab_in() { _ns=$1; shift; ip netns exec "$_ns" "$@"; }

# ---------------------------------------------------------------- the lab --
#
#  without --nat:
#   NS_CLI cli0 192.0.2.2/24 ---- gw-out 192.0.2.1/24 NS_GW gw-in 10.1.0.1/24 ---- lan0 10.1.0.10/24 NS_LAN
#  with --nat:
#   NS_CLI cli0 10.99.0.2/24 ---- nat-in 10.99.0.1/24 NS_NAT nat-out 192.0.2.3/24 ---- gw-out 192.0.2.1/24 NS_GW ...
#
# The gateway forwards only what comes out of the tunnel (ipsec0) into the LAN:
# cleartext from outside to 10.1.0.0/24 is counted and dropped (table inet bwlab).

lab_up() {
    _nat=no
    [ "${1:-}" = --nat ] && _nat=yes
    LAB_ID=$(_lab_rand)
    _lab_fail0=$_tap_fail
    LAB_DIR=$(mktemp -d "${TMPDIR:-/tmp}/bw-lab-$LAB_ID.XXXXXX")
    mkdir -p "$LAB_DIR/pids" "$LAB_DIR/gw" "$LAB_DIR/swcli" "$LAB_DIR/lan/www" \
        "$LAB_DIR/cli/etc/connections" "$LAB_DIR/cli/etc/secrets" \
        "$LAB_DIR/cli/etc/policies" "$LAB_DIR/cli/state"
    NS_CLI=bw-cli-$LAB_ID
    NS_GW=bw-gw-$LAB_ID
    NS_LAN=bw-lan-$LAB_ID
    NS_NAT=
    [ $_nat = yes ] && NS_NAT=bw-nat-$LAB_ID
    LAB_NAT=$_nat
    GW_ADDR=192.0.2.1
    LAN_HOST=10.1.0.10
    LAN_NET=10.1.0.0/24
    IF_CLI=cli0 IF_GW_OUT=gw-out IF_GW_IN=gw-in IF_LAN=lan0
    export LAB_ID LAB_DIR NS_CLI NS_GW NS_LAN NS_NAT LAB_NAT GW_ADDR LAN_HOST LAN_NET \
        IF_CLI IF_GW_OUT IF_GW_IN IF_LAN
    echo "$NS_CLI $NS_GW $NS_LAN $NS_NAT" >"$LAB_DIR/namespaces"

    trap 'lab_down' EXIT
    trap 'exit 129' HUP
    trap 'exit 130' INT
    trap 'exit 143' TERM

    for _ns in $NS_CLI $NS_GW $NS_LAN $NS_NAT; do
        ip netns add "$_ns"
        ip -n "$_ns" link set lo up
    done

    # gateway <-> LAN
    ip link add name gw-in netns "$NS_GW" type veth peer name lan0 netns "$NS_LAN"
    ip -n "$NS_GW" addr add 10.1.0.1/24 dev gw-in
    ip -n "$NS_LAN" addr add 10.1.0.10/24 dev lan0
    ip -n "$NS_GW" link set gw-in up
    ip -n "$NS_LAN" link set lan0 up
    ip -n "$NS_LAN" route add default via 10.1.0.1

    if [ $_nat = yes ]; then
        CLI_ADDR=10.99.0.2
        ip link add name cli0 netns "$NS_CLI" type veth peer name nat-in netns "$NS_NAT"
        ip link add name nat-out netns "$NS_NAT" type veth peer name gw-out netns "$NS_GW"
        ip -n "$NS_CLI" addr add 10.99.0.2/24 dev cli0
        ip -n "$NS_NAT" addr add 10.99.0.1/24 dev nat-in
        ip -n "$NS_NAT" addr add 192.0.2.3/24 dev nat-out
        ip -n "$NS_GW" addr add 192.0.2.1/24 dev gw-out
        for _l in "$NS_CLI cli0" "$NS_NAT nat-in" "$NS_NAT nat-out" "$NS_GW gw-out"; do
            # shellcheck disable=SC2086
            set -- $_l; ip -n "$1" link set "$2" up
        done
        ip -n "$NS_CLI" route add default via 10.99.0.1
        ip -n "$NS_NAT" route add default via 192.0.2.1
        lab_in "$NS_NAT" sysctl -qw net.ipv4.ip_forward=1
        lab_in "$NS_NAT" nft -f - <<EOF
table ip bwnat {
    chain postrouting {
        type nat hook postrouting priority srcnat; policy accept;
        oifname "nat-out" masquerade
    }
}
EOF
    else
        CLI_ADDR=192.0.2.2
        ip link add name cli0 netns "$NS_CLI" type veth peer name gw-out netns "$NS_GW"
        ip -n "$NS_CLI" addr add 192.0.2.2/24 dev cli0
        ip -n "$NS_GW" addr add 192.0.2.1/24 dev gw-out
        ip -n "$NS_CLI" link set cli0 up
        ip -n "$NS_GW" link set gw-out up
        # the gateway is the client's way to everything (as an ISP router would be)
        ip -n "$NS_CLI" route add default via 192.0.2.1
    fi
    export CLI_ADDR
    lab_in "$NS_GW" sysctl -qw net.ipv4.ip_forward=1

    # Gateway firewall + counters. ESP-in-UDP = UDP 4500 whose first 4 payload
    # bytes (the SPI) are not zero (IKE there starts with the 0 non-ESP marker).
    lab_in "$NS_GW" nft -f - <<EOF
table inet bwlab {
    counter natt_esp_in {}
    counter natt_ike_in {}
    counter ike_in {}
    counter clear_to_lan {}
    counter tunnel_to_lan {}
    chain input {
        type filter hook input priority 0; policy accept;
        iifname "gw-out" udp dport 4500 udp length > 12 @th,64,32 != 0 counter name natt_esp_in
        iifname "gw-out" udp dport 4500 udp length > 12 @th,64,32 == 0 counter name natt_ike_in
        iifname "gw-out" udp dport 500 counter name ike_in
    }
    chain forward {
        type filter hook forward priority 0; policy accept;
        iifname "gw-out" ip daddr $LAN_NET counter name clear_to_lan drop
        iifname != "gw-out" oifname "gw-in" ip daddr $LAN_NET counter name tunnel_to_lan
    }
}
EOF
    diag "lab $LAB_ID up (nat=$_nat), files in $LAB_DIR"
}

# lab_counter NAME  -- packets of a named counter in the gateway's table inet bwlab
lab_counter() {
    lab_in "$NS_GW" nft list counter inet bwlab "$1" |
        sed -n 's/.*packets \([0-9]*\).*/\1/p'
}

# like GOT REGEX NAME  -- ok when GOT matches the extended regular expression
like() { if printf '%s\n' "$1" | grep -Eq -- "$2"; then ok 0 "$3"; else ok 1 "$3"; diag "got: $1"; fi; }

# json_field NAME KEY.PATH  -- one field of `burrow status NAME --json` (empty when absent)
json_field() {
    bw status "$1" --json 2>/dev/null | perl -MJSON::PP -e '
        my $d = eval { decode_json(join "", <STDIN>) } or exit 1;
        for my $k (split /\./, $ARGV[0]) { $d = ref $d eq "HASH" ? $d->{$k} : undef }
        print defined $d ? $d : "";' "$2"
}

# list_state NAME  -- the connection's state as `burrow list` shows it
list_state() { bw list 2>/dev/null | awk -v n="$1" '$1 == n { for (i = 2; i <= NF; i++) if ($i ~ /^(down|connecting|up|rekeying|stopping|failed|invalid|needs-secret)$/) { print $i; exit } }'; }

# ike_packets  -- IKE packets the gateway has received so far, on 500 and 4500
ike_packets() { echo $(( $(lab_counter ike_in) + $(lab_counter natt_ike_in) )); }

# gw_none  -- waits up to 5 s until the gateway holds no established SA
gw_none() { lab_wait 5 sh -c "! '$SWANCTL' --list-sas --uri unix://$LAB_DIR/gw/charon.vici 2>/dev/null | grep -q ESTABLISHED"; }

# lab_http_start: busybox httpd on LAN_HOST:80 serving LAB_DIR/lan/www;
# LAB_HTTP_PATH is a file in it whose content is LAB_HTTP_BODY.
lab_http_start() {
    LAB_HTTP_PATH=/burrow-lab.txt
    LAB_HTTP_BODY="burrow interop lab $LAB_ID"
    export LAB_HTTP_PATH LAB_HTTP_BODY
    printf '%s\n' "$LAB_HTTP_BODY" >"$LAB_DIR/lan/www$LAB_HTTP_PATH"
    lab_bg httpd ip netns exec "$NS_LAN" busybox httpd -f -p "$LAN_HOST:80" -h "$LAB_DIR/lan/www"
    lab_wait 5 lab_in "$NS_LAN" busybox wget -q -O /dev/null "http://$LAN_HOST$LAB_HTTP_PATH"
}

# lab_fetch NS URL_PATH  -- prints the body fetched from the LAN host (5 s max)
lab_fetch() {
    lab_in "$1" curl -sS --max-time 5 "http://$LAN_HOST$2"
}

# lab_ping NS [COUNT]  -- pings the LAN host from NS, succeeds if all replies come
lab_ping() {
    lab_in "$1" ping -n -q -c "${2:-3}" -i 0.2 -W 1 "$LAN_HOST" >/dev/null 2>&1
}

# ------------------------------------------------------------- strongSwan ---

# _sw_write_strongswan_conf DIR EXTRA_CHARON_LINES
_sw_write_strongswan_conf() {
    cat >"$1/strongswan.conf" <<EOF
# generated by tests/interop/lib.sh for lab $LAB_ID
charon {
    load = $LAB_CHARON_PLUGINS
    i_dont_care_about_security_and_use_aggressive_mode_psk = yes
    retransmit_tries = 3
    retransmit_timeout = 1.0
    retransmit_base = 1.4
$2
    filelog {
        lab {
            path = $1/charon.log
            time_format = %H:%M:%S
            ike_name = yes
            append = yes
            flush_line = yes
            default = 1
            ike = 2
            cfg = 2
            knl = 1
        }
    }
    syslog {
        daemon {
            default = -1
        }
    }
    plugins {
        vici {
            socket = unix://$1/charon.vici
        }
    }
}
EOF
}

# _sw_start ROLE NS DIR  -- charon in NS, own mount namespace and /run (INTEROP.md)
_sw_start() {
    : >"$3/charon.log"
    lab_bg "charon-$1" env STRONGSWAN_CONF="$3/strongswan.conf" ip netns exec "$2" \
        unshare -m sh -c "mount -t tmpfs none /run && exec $CHARON"
    _sw_pid=$(cat "$LAB_DIR/pids/charon-$1.pid")
    _deadline=$(( $(date +%s) + 10 ))
    while ! "$SWANCTL" --stats --uri "unix://$3/charon.vici" >/dev/null 2>&1; do
        if ! _pid_alive "$_sw_pid" || [ "$(date +%s)" -ge "$_deadline" ]; then
            diag "charon ($1) did not come up:"
            tail -n 20 "$LAB_DIR/charon-$1.out" "$3/charon.log" 2>&1 | diag
            return 1
        fi
        sleep 0.1
    done
    "$SWANCTL" --load-all --file "$3/swanctl.conf" --uri "unix://$3/charon.vici" \
        >"$3/load.out" 2>&1 || {
        diag "swanctl --load-all ($1) failed:"; diag <"$3/load.out"; return 1; }
}

_sw_stop() {
    lab_kill "charon-$1"
}

_sw_bool() { case $1 in yes|1|true) echo yes ;; *) echo no ;; esac; }

# Gateway (responder). Defaults give IKEv1 Main Mode PSK, Mode Config pool.
_gw_write_swanctl_conf() {
    _pool=${GW_POOL-}
    [ -n "${GW_POOL+set}" ] || { [ -n "${GW_REMOTE_TS:-}" ] || _pool=10.3.0.0/24; }
    cat <<EOF
# generated by tests/interop/lib.sh for lab $LAB_ID (gateway)
connections {
    bw {
        version = 1
        aggressive = $(_sw_bool "${GW_AGGRESSIVE:-no}")
        proposals = ${GW_IKE_PROPOSALS:-aes256-sha256-modp2048}
        local_addrs = $GW_ADDR
        encap = $(_sw_bool "${GW_ENCAP:-yes}")
EOF
    [ -z "$_pool" ] || echo "        pools = bwpool"
    [ -z "${GW_DPD_DELAY:-}" ] || echo "        dpd_delay = $GW_DPD_DELAY"
    [ -z "${GW_REKEY_TIME:-}" ] || echo "        rekey_time = $GW_REKEY_TIME"
    [ -z "${GW_REAUTH_TIME:-}" ] || echo "        reauth_time = $GW_REAUTH_TIME"
    cat <<EOF
        local {
            auth = psk
            id = ${GW_LOCAL_ID:-$GW_ADDR}
        }
        remote {
            auth = psk
            id = ${GW_REMOTE_ID:-%any}
        }
EOF
    if [ "$(_sw_bool "${GW_XAUTH:-no}")" = yes ]; then
        cat <<EOF
        remote-xauth {
            auth = xauth
        }
EOF
    fi
    cat <<EOF
        children {
            bw {
                local_ts = ${GW_LOCAL_TS:-$LAN_NET}
                remote_ts = ${GW_REMOTE_TS:-dynamic}
                esp_proposals = ${GW_ESP_PROPOSALS:-aes256-sha256-modp2048}
EOF
    [ -z "${GW_CHILD_REKEY_TIME:-}" ] || echo "                rekey_time = $GW_CHILD_REKEY_TIME"
    [ -z "${GW_DPD_ACTION:-}" ] || echo "                dpd_action = $GW_DPD_ACTION"
    cat <<EOF
            }
        }
    }
}
EOF
    if [ -n "$_pool" ]; then
        cat <<EOF
pools {
    bwpool {
        addrs = $_pool
EOF
        [ -z "${GW_DNS-10.1.0.53}" ] || echo "        dns = ${GW_DNS-10.1.0.53}"
        # GW_UNITY: raw pool lines, one key per line, e.g.
        #   split_include = 10.1.0.0/24
        #   28672 = Welcome banner       (Unity attribute by number)
        [ -z "${GW_UNITY:-}" ] || printf '%s\n' "$GW_UNITY" | sed 's/^[[:space:]]*/        /'
        cat <<EOF
    }
}
EOF
    fi
    cat <<EOF
secrets {
    ike-bw {
        secret = "${GW_PSK:-burrow-lab-psk}"
    }
EOF
    if [ "$(_sw_bool "${GW_XAUTH:-no}")" = yes ]; then
        cat <<EOF
    xauth-bw {
        id = ${GW_XAUTH_USER:-alice}
        secret = "${GW_XAUTH_PASS:-alice-secret}"
    }
EOF
    fi
    echo "}"
}

# gw_start [SWANCTL_CONF]  -- strongSwan gateway in NS_GW. Without an argument
# swanctl.conf is generated from the GW_* variables (see README.md); with one,
# that file is used as it is (connection names are then yours).
gw_start() {
    _d=$LAB_DIR/gw
    _extra=
    [ -z "${GW_UNITY:-}" ] || _extra="    cisco_unity = yes"
    [ -z "${GW_STRONGSWAN_EXTRA:-}" ] || _extra="$_extra
$GW_STRONGSWAN_EXTRA"
    _sw_write_strongswan_conf "$_d" "$_extra"
    if [ $# -gt 0 ] && [ -n "$1" ]; then
        cp "$1" "$_d/swanctl.conf"
    else
        _gw_write_swanctl_conf >"$_d/swanctl.conf"
    fi
    _sw_start gw "$NS_GW" "$_d"
}

gw_swanctl() { "$SWANCTL" "$@" --uri "unix://$LAB_DIR/gw/charon.vici"; }
# gw_count PATTERN  -- how many lines of the gateway's --list-sas match PATTERN
gw_count() { gw_swanctl --list-sas 2>/dev/null | grep -c "$1"; }
# gw_settles PATTERN N  -- waits up to 10 s for exactly N matching lines: a renewal that is
# under way when a test looks holds old and new SAs side by side for a moment
gw_settles() { lab_wait 10 sh -c "[ \$('$SWANCTL' --list-sas --uri 'unix://$LAB_DIR/gw/charon.vici' 2>/dev/null | grep -c '$1') = $2 ]"; }
gw_log() { cat "$LAB_DIR/gw/charon.log"; }
gw_stop() { _sw_stop gw; }

# gw_established [IKE_NAME]  -- an IKE SA (default: bw) is ESTABLISHED with a CHILD SA INSTALLED
gw_established() {
    _out=$(gw_swanctl --list-sas --ike "${1:-bw}" 2>/dev/null) || return 1
    printf '%s\n' "$_out" | grep -q ESTABLISHED &&
        printf '%s\n' "$_out" | grep -q INSTALLED
}

# Client (initiator): strongSwan in NS_CLI, for baselines and benchmarks.
# CLI_* variables mirror GW_*; CLI_VIPS defaults to 0.0.0.0 (Mode Config)
# unless CLI_LOCAL_ADDRESS (a static virtual address put on lo) is set.
_cli_write_swanctl_conf() {
    _vips=${CLI_VIPS-}
    [ -n "${CLI_VIPS+set}" ] || { [ -n "${CLI_LOCAL_ADDRESS:-}" ] || _vips=0.0.0.0; }
    cat <<EOF
# generated by tests/interop/lib.sh for lab $LAB_ID (strongSwan client)
connections {
    bw {
        version = 1
        aggressive = $(_sw_bool "${CLI_AGGRESSIVE:-${GW_AGGRESSIVE:-no}}")
        proposals = ${CLI_IKE_PROPOSALS:-${GW_IKE_PROPOSALS:-aes256-sha256-modp2048}}
        remote_addrs = $GW_ADDR
        encap = $(_sw_bool "${CLI_ENCAP:-yes}")
EOF
    [ -z "$_vips" ] || echo "        vips = $_vips"
    [ -z "${CLI_DPD_DELAY:-}" ] || echo "        dpd_delay = $CLI_DPD_DELAY"
    echo "        local {"
    echo "            auth = psk"
    [ -z "${CLI_LOCAL_ID:-}" ] || echo "            id = $CLI_LOCAL_ID"
    echo "        }"
    if [ "$(_sw_bool "${CLI_XAUTH:-${GW_XAUTH:-no}}")" = yes ]; then
        cat <<EOF
        local-xauth {
            auth = xauth
            xauth_id = ${CLI_XAUTH_USER:-${GW_XAUTH_USER:-alice}}
        }
EOF
    fi
    cat <<EOF
        remote {
            auth = psk
            id = ${CLI_REMOTE_ID:-${GW_LOCAL_ID:-$GW_ADDR}}
        }
        children {
            bw {
                remote_ts = ${CLI_REMOTE_TS:-$LAN_NET}
                local_ts = ${CLI_LOCAL_ADDRESS:-dynamic}
                esp_proposals = ${CLI_ESP_PROPOSALS:-${GW_ESP_PROPOSALS:-aes256-sha256-modp2048}}
            }
        }
    }
}
secrets {
    ike-bw {
        secret = "${CLI_PSK:-${GW_PSK:-burrow-lab-psk}}"
    }
EOF
    if [ "$(_sw_bool "${CLI_XAUTH:-${GW_XAUTH:-no}}")" = yes ]; then
        cat <<EOF
    xauth-bw {
        id = ${CLI_XAUTH_USER:-${GW_XAUTH_USER:-alice}}
        secret = "${CLI_XAUTH_PASS:-${GW_XAUTH_PASS:-alice-secret}}"
    }
EOF
    fi
    echo "}"
}

# cli_strongswan_start [SWANCTL_CONF]
cli_strongswan_start() {
    _d=$LAB_DIR/swcli
    if [ -n "${CLI_LOCAL_ADDRESS:-}" ]; then
        ip -n "$NS_CLI" addr replace "${CLI_LOCAL_ADDRESS%/*}/32" dev lo
    fi
    _sw_write_strongswan_conf "$_d" "${CLI_STRONGSWAN_EXTRA:-}"
    if [ $# -gt 0 ] && [ -n "$1" ]; then
        cp "$1" "$_d/swanctl.conf"
    else
        _cli_write_swanctl_conf >"$_d/swanctl.conf"
    fi
    _sw_start cli "$NS_CLI" "$_d"
}

cli_swanctl() { "$SWANCTL" "$@" --uri "unix://$LAB_DIR/swcli/charon.vici"; }

# cli_strongswan_initiate [CHILD]  -- returns when the CHILD SA is up (or failed)
cli_strongswan_initiate() {
    cli_swanctl --initiate --child "${1:-bw}" --timeout "${CLI_INITIATE_TIMEOUT:-20}" \
        >>"$LAB_DIR/swcli/initiate.out" 2>&1
}

cli_strongswan_terminate() {
    cli_swanctl --terminate --ike "${1:-bw}" --timeout 5 >>"$LAB_DIR/swcli/initiate.out" 2>&1
}

cli_strongswan_log() { cat "$LAB_DIR/swcli/charon.log"; }
cli_strongswan_stop() { _sw_stop cli; }

# ------------------------------------------------------------- Burrow -------

# burrow_start  -- burrowd in NS_CLI with everything under LAB_DIR/cli
burrow_start() {
    _c=$LAB_DIR/cli
    [ -x "$BURROW_BUILD/burrowd" ] || { diag "no $BURROW_BUILD/burrowd (set BURROW_BUILD)"; return 1; }
    [ -f "$_c/etc/burrow.conf" ] || cat >"$_c/etc/burrow.conf" <<EOF
[agent]
backend = ${BURROW_BACKEND:-userspace}
log_level = debug
EOF
    rm -f "$_c/burrowd.sock"
    lab_bg burrowd ip netns exec "$NS_CLI" "$BURROW_BUILD/burrowd" --foreground \
        --config-dir "$_c/etc" --state-dir "$_c/state" --socket "$_c/burrowd.sock" \
        --devices-dir "${BURROW_SRC:-$PWD}/devices" --log-level debug
    ln -sf ../burrowd.out "$_c/burrowd.log" 2>/dev/null || true
    _bpid=$(cat "$LAB_DIR/pids/burrowd.pid")
    _deadline=$(( $(date +%s) + 10 ))
    while [ ! -S "$_c/burrowd.sock" ]; do
        if ! _pid_alive "$_bpid" || [ "$(date +%s)" -ge "$_deadline" ]; then
            diag "burrowd did not come up:"; tail -n 20 "$LAB_DIR/burrowd.out" | diag
            return 1
        fi
        sleep 0.1
    done
}

burrow_stop() { lab_kill burrowd; }

bw() { ip netns exec "$NS_CLI" "$BURROW_BUILD/burrow" --socket "$LAB_DIR/cli/burrowd.sock" "$@"; }

# write_conn NAME <<EOF ... EOF      -- LAB_DIR/cli/etc/connections/NAME.conf
write_conn() { cat >"$LAB_DIR/cli/etc/connections/$1.conf"; }

# write_secret NAME <<EOF ... EOF    -- LAB_DIR/cli/etc/secrets/NAME.secrets, mode 0600
write_secret() {
    _f=$LAB_DIR/cli/etc/secrets/$1.secrets
    (umask 077; cat >"$_f")
    chmod 0600 "$_f"
}

# ------------------------------------------------------------- teardown -----

_lab_dump_logs() {
    for _f in "$LAB_DIR/gw/charon.log" "$LAB_DIR/swcli/charon.log" "$LAB_DIR/burrowd.out" \
              "$LAB_DIR/charon-gw.out" "$LAB_DIR/charon-cli.out"; do
        [ -s "$_f" ] || continue
        diag "---- last lines of ${_f#"$LAB_DIR"/} ----"
        tail -n "${LAB_LOG_LINES:-40}" "$_f" | diag
    done
}

# lab_teardown: stops everything the lab started, deletes its namespaces and
# (unless KEEP_LAB=1) LAB_DIR; returns. Dumps the logs' tails as TAP diag lines
# when a check failed since lab_up or when called with a non-zero argument.
lab_teardown() {
    _trc=${1:-0}
    trap - EXIT HUP INT TERM
    [ -n "${LAB_DIR:-}" ] && [ -d "$LAB_DIR" ] || return 0
    if [ "$_trc" != 0 ] || [ "$_tap_fail" != "${_lab_fail0:-0}" ]; then
        _lab_dump_logs
    fi
    # politely first, burrowd and clients before the gateway
    for _p in burrowd charon-cli charon-gw; do lab_kill "$_p"; done
    # A sanitizer build of burrowd reports at exit: such a report fails the test file.
    if grep -Eq 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out" 2>/dev/null; then
        diag "burrowd reported a sanitizer error:"
        grep -E -A25 'AddressSanitizer|LeakSanitizer|runtime error' "$LAB_DIR/burrowd.out" | head -60 | diag
        _tap_fail=$((_tap_fail + 1))
    fi
    for _pf in "$LAB_DIR"/pids/*.pid; do
        [ -f "$_pf" ] || continue
        _n=${_pf##*/}; lab_kill "${_n%.pid}"
    done
    # anything else still running inside this lab's namespaces
    for _ns in $(cat "$LAB_DIR/namespaces" 2>/dev/null); do
        for _pid in $(ip netns pids "$_ns" 2>/dev/null); do kill -KILL "$_pid" 2>/dev/null || true; done
    done
    for _ns in $(cat "$LAB_DIR/namespaces" 2>/dev/null); do
        ip netns del "$_ns" 2>/dev/null || true
    done
    if [ "${KEEP_LAB:-0}" = 1 ]; then
        diag "KEEP_LAB=1: lab files kept in $LAB_DIR (namespaces removed)"
    else
        rm -rf "$LAB_DIR"
    fi
    return 0
}

# lab_down: the EXIT/INT/TERM trap lab_up installs; tears down and exits with
# the script's status (1 if a check failed).
lab_down() {
    _rc=$?
    lab_teardown "$_rc"
    if [ "$_rc" = 0 ] && [ "$_tap_fail" != 0 ]; then _rc=1; fi
    exit "$_rc"
}

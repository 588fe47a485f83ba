# tests/vm/vm.sh -- boots Debian's kernel under qemu with this machine's own userspace
# (read-only over 9p) and runs one script inside; sourced by the tests in tests/vm/.
#
# The machines Burrow is built on have no ESP in their kernel (see INTEROP.md); Debian's
# kernel has it, so the xfrm backend is proven in a VM that runs the host's binaries:
#
#   vm_find                 sets VM_KERNEL_DEB and VM_BUSYBOX_DEB, or says why not (VM_MISSING)
#   vm_prepare              extracts the kernel, a module subset and busybox into
#                           $BURROW_VM_DIR/KVER/ and builds initrd.gz (once; redone when the
#                           .deb or tests/vm/init changes)
#   vm_accel                chooses the accelerator (VM_ACCEL=kvm|tcg) and says why
#                           (VM_ACCEL_WHY): BURROW_VM_ACCEL if set, else KVM only when a
#                           short probe boot with it reaches the guest's init, else TCG
#   vm_run SCRIPT ARGS...   boots, runs `sh SCRIPT ARGS` chrooted into the host's root,
#                           prints the serial console, returns qemu's exit code; a guest
#                           that prints nothing (console or heartbeat) for
#                           BURROW_VM_SILENCE seconds is stopped with a line saying so
#
# The packages come from Debian's archive: tests/vm/fetch puts linux-image-6.1.0-*-amd64
# and busybox-static (.deb files, not installed) into $BURROW_VM_DIR.

: "${BURROW_VM_DIR:=/var/cache/burrow-vm}"
: "${BURROW_VM_TIMEOUT:=600}"
: "${BURROW_VM_MEM:=1024}"
: "${BURROW_VM_SILENCE:=90}"
: "${BURROW_VM_PROBE_TIMEOUT:=25}"
: "${BURROW_VM_KVM_DEV:=/dev/kvm}"
: "${BURROW_VM_QEMU:=qemu-system-x86_64}"
: "${VM_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"

# Modules the guest may need: 9p to reach the host, ESP and XFRM, veth/dummy/tun for the
# lab, nftables for its counters, the crypto they pull in. No drivers for real hardware.
VM_MODULE_DIRS="net/9p net/ipv4 net/ipv6 net/netfilter net/xfrm net/key net/core net/packet
 crypto lib arch fs/9p fs/netfs fs/fscache drivers/virtio
 drivers/net/dummy.ko drivers/net/veth.ko drivers/net/tun.ko"

vm_find() {
    VM_MISSING=
    command -v "$BURROW_VM_QEMU" >/dev/null 2>&1 || { VM_MISSING="$BURROW_VM_QEMU not installed (package qemu-system-x86)"; return 1; }
    command -v depmod >/dev/null 2>&1 || { VM_MISSING="depmod not installed (package kmod)"; return 1; }
    VM_KERNEL_DEB=$(ls "$BURROW_VM_DIR"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$VM_KERNEL_DEB" ] || { VM_MISSING="no linux-image-*-amd64 .deb in $BURROW_VM_DIR (run tests/vm/fetch)"; return 1; }
    VM_BUSYBOX_DEB=$(ls "$BURROW_VM_DIR"/busybox-static_*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$VM_BUSYBOX_DEB" ] || { VM_MISSING="no busybox-static .deb in $BURROW_VM_DIR (run tests/vm/fetch)"; return 1; }
    return 0
}

vm_prepare() {
    _kdeb=$(basename "$VM_KERNEL_DEB")
    KVER=$(printf '%s\n' "$_kdeb" | sed 's/^linux-image-\([^_]*\)_.*/\1/')
    VM_DIR=$BURROW_VM_DIR/$KVER
    _stamp="$_kdeb $(basename "$VM_BUSYBOX_DEB") $(cksum <"$VM_SRC/tests/vm/init")"
    if [ -f "$VM_DIR/initrd.gz" ] && [ "$(cat "$VM_DIR/stamp" 2>/dev/null)" = "$_stamp" ]; then
        return 0
    fi
    rm -rf "$VM_DIR"
    mkdir -p "$VM_DIR/deb" "$VM_DIR/bb" "$VM_DIR/root/bin" "$VM_DIR/root/lib/modules/$KVER/kernel"
    dpkg-deb -x "$VM_KERNEL_DEB" "$VM_DIR/deb" || return 1
    dpkg-deb -x "$VM_BUSYBOX_DEB" "$VM_DIR/bb" || return 1
    cp "$VM_DIR/deb/boot/vmlinuz-$KVER" "$VM_DIR/vmlinuz"
    _km=$VM_DIR/deb/lib/modules/$KVER
    for _d in $VM_MODULE_DIRS; do
        [ -e "$_km/kernel/$_d" ] || continue
        mkdir -p "$VM_DIR/root/lib/modules/$KVER/kernel/$(dirname "$_d")"
        cp -a "$_km/kernel/$_d" "$VM_DIR/root/lib/modules/$KVER/kernel/$_d"
    done
    cp "$_km"/modules.builtin* "$_km/modules.order" "$VM_DIR/root/lib/modules/$KVER/"
    depmod -b "$VM_DIR/root" "$KVER" || return 1
    cp "$VM_DIR/bb/bin/busybox" "$VM_DIR/root/bin/busybox"
    cp "$VM_SRC/tests/vm/init" "$VM_DIR/root/init" || return 1
    chmod 755 "$VM_DIR/root/init" "$VM_DIR/root/bin/busybox"
    # busybox-static's own cpio: nothing more is needed on the host
    (cd "$VM_DIR/root" && find . | ./bin/busybox cpio -o -H newc 2>/dev/null | gzip -1) \
        >"$VM_DIR/initrd.gz" || return 1
    rm -rf "$VM_DIR/deb" "$VM_DIR/bb" "$VM_DIR/root"
    echo "$_stamp" >"$VM_DIR/stamp"
}

# _vm_qemu ACCEL APPEND...  -- the qemu command line shared by the probe and the real run:
# the serial console on stdout, the guest's heartbeat on a second serial port ($_vm_hb).
# Run it in the background: it execs qemu, so that $! is qemu's own pid.
_vm_qemu() {
    _acc=$1; shift
    exec "$BURROW_VM_QEMU" -accel "$_acc" -m "$BURROW_VM_MEM" -smp 2 \
        -nographic -no-reboot -nic none -monitor none -serial stdio -serial "file:$_vm_hb" \
        -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.gz" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 $*" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
        </dev/null
}

# _vm_watch PID OUT LIMIT  -- waits for qemu (PID), stopping it when OUT and the heartbeat
# file stay the same size for BURROW_VM_SILENCE seconds or when LIMIT seconds have passed.
# Sets _vm_stopped to why it was stopped (empty when qemu ended by itself), returns qemu's status.
_vm_watch() {
    _pid=$1 _out=$2 _limit=$3
    _vm_stopped= _size=-1 _idle=0 _t=0
    while kill -0 "$_pid" 2>/dev/null; do
        sleep 1
        _t=$((_t + 1))
        _s=$(($(wc -c <"$_out") + $(wc -c <"$_vm_hb")))
        if [ "$_s" != "$_size" ]; then _size=$_s _idle=0; else _idle=$((_idle + 1)); fi
        if [ "$_idle" -ge "$BURROW_VM_SILENCE" ]; then
            _vm_stopped="the VM printed nothing, not even its heartbeat, for $BURROW_VM_SILENCE s"
        elif [ "$_t" -ge "$_limit" ]; then
            _vm_stopped="the VM was still running after $_limit s"
        fi
        if [ -n "$_vm_stopped" ]; then
            kill "$_pid" 2>/dev/null
            sleep 2
            kill -9 "$_pid" 2>/dev/null
            break
        fi
    done
    wait "$_pid"
}

# vm_accel  -- sets VM_ACCEL and VM_ACCEL_WHY. Needs vm_prepare first (the probe boots the
# prepared kernel). A /dev/kvm that qemu opens may still be unable to run a guest (nested
# virtualisation: the console stops after "Booting from ROM...", or qemu aborts on an MSR),
# so KVM is used only when a probe boot with it reaches the guest's init.
vm_accel() {
    case ${BURROW_VM_ACCEL:-} in
    kvm|tcg) VM_ACCEL=$BURROW_VM_ACCEL VM_ACCEL_WHY="BURROW_VM_ACCEL=$BURROW_VM_ACCEL"; return 0 ;;
    '') ;;
    *) VM_ACCEL= VM_ACCEL_WHY="BURROW_VM_ACCEL must be kvm or tcg, not '$BURROW_VM_ACCEL'"; return 1 ;;
    esac
    VM_ACCEL=tcg
    if [ ! -e "$BURROW_VM_KVM_DEV" ]; then
        VM_ACCEL_WHY="no $BURROW_VM_KVM_DEV"; return 0
    fi
    if [ ! -r "$BURROW_VM_KVM_DEV" ] || [ ! -w "$BURROW_VM_KVM_DEV" ]; then
        VM_ACCEL_WHY="$BURROW_VM_KVM_DEV is not readable and writable"; return 0
    fi
    _probe=$(mktemp "${TMPDIR:-/tmp}/bw-vm-probe.XXXXXX")
    _vm_hb=$_probe.hb
    : >"$_vm_hb"
    _vm_qemu kvm bw.probe=1 >"$_probe" 2>&1 &
    _BURROW_VM_SILENCE=$BURROW_VM_SILENCE BURROW_VM_SILENCE=$BURROW_VM_PROBE_TIMEOUT
    _vm_watch $! "$_probe" "$BURROW_VM_PROBE_TIMEOUT"
    _rc=$?
    BURROW_VM_SILENCE=$_BURROW_VM_SILENCE
    if grep -q '^BW-VM-PROBE-OK' "$_probe"; then
        VM_ACCEL=kvm VM_ACCEL_WHY="a probe boot with KVM reached the guest's init"
    else
        _last=$(tr -d '\r' <"$_probe" | grep -v '^[[:space:]]*$' | tail -n 1)
        if [ -n "$_vm_stopped" ]; then
            VM_ACCEL_WHY="$BURROW_VM_KVM_DEV exists, but a probe boot with KVM did not reach the guest's init within $BURROW_VM_PROBE_TIMEOUT s (last console line: ${_last:-none})"
        else
            VM_ACCEL_WHY="$BURROW_VM_KVM_DEV exists, but qemu with KVM exited with $_rc before the guest's init (${_last:-no output})"
        fi
    fi
    rm -f "$_probe" "$_vm_hb"
    return 0
}

# vm_run SCRIPT ARGS...  -- SCRIPT and ARGS are paths on the host (the guest sees the same
# paths); at most 6 arguments, without spaces. Needs vm_prepare and vm_accel.
vm_run() {
    _script=$1; shift
    _args=$(printf '%s,' "$@")
    _con=$(mktemp "${TMPDIR:-/tmp}/bw-vm-run.XXXXXX")
    _vm_hb=$_con.hb
    : >"$_vm_hb"
    _vm_qemu "$VM_ACCEL" "bw.script=$_script" "bw.args=${_args%,}" >"$_con" 2>&1 &
    _vm_watch $! "$_con" "$BURROW_VM_TIMEOUT"
    _rc=$?
    tr -d '\r' <"$_con"
    [ -z "$_vm_stopped" ] || echo "bw-vm: stopped qemu ($VM_ACCEL): $_vm_stopped"
    rm -f "$_con" "$_vm_hb"
    return "$_rc"
}

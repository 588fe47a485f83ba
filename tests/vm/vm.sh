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
#   vm_run SCRIPT ARGS...   boots, runs `sh SCRIPT ARGS` chrooted into the host's root,
#                           prints the serial console, returns the script's exit code
#
# The packages come from Debian's archive: tests/vm/fetch puts linux-image-6.1.0-*-amd64
# and busybox-static (.deb files, not installed) into $BURROW_VM_DIR.

: "${BURROW_VM_DIR:=/var/cache/burrow-vm}"
: "${BURROW_VM_TIMEOUT:=600}"
: "${BURROW_VM_MEM:=1024}"
: "${VM_SRC:=$(cd "$(dirname "$0")/../.." && pwd)}"

# Modules the guest may need: 9p to reach the host, ESP and XFRM, veth/dummy/tun for the
# lab, nftables for its counters, the crypto they pull in. No drivers for real hardware.
VM_MODULE_DIRS="net/9p net/ipv4 net/ipv6 net/netfilter net/xfrm net/key net/core net/packet
 crypto lib arch fs/9p fs/netfs fs/fscache drivers/virtio
 drivers/net/dummy.ko drivers/net/veth.ko drivers/net/tun.ko"

vm_find() {
    VM_MISSING=
    command -v qemu-system-x86_64 >/dev/null 2>&1 || { VM_MISSING="qemu-system-x86_64 not installed (package qemu-system-x86)"; return 1; }
    command -v depmod >/dev/null 2>&1 || { VM_MISSING="depmod not installed (package kmod)"; return 1; }
    VM_KERNEL_DEB=$(ls "$BURROW_VM_DIR"/linux-image-[0-9]*-amd64_*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$VM_KERNEL_DEB" ] || { VM_MISSING="no linux-image-*-amd64 .deb in $BURROW_VM_DIR (run tests/vm/fetch)"; return 1; }
    VM_BUSYBOX_DEB=$(ls "$BURROW_VM_DIR"/busybox-static_*.deb 2>/dev/null | sort -V | tail -n 1)
    [ -n "$VM_BUSYBOX_DEB" ] || { VM_MISSING="no busybox-static .deb in $BURROW_VM_DIR (run tests/vm/fetch)"; return 1; }
    [ -r /dev/kvm ] && VM_ACCEL=kvm || VM_ACCEL=tcg
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

# vm_run SCRIPT ARGS...  -- SCRIPT and ARGS are paths on the host (the guest sees the same
# paths); at most 6 arguments, without spaces.
vm_run() {
    _script=$1; shift
    _args=$(printf '%s,' "$@")
    timeout -k 10 "$BURROW_VM_TIMEOUT" qemu-system-x86_64 -accel "$VM_ACCEL" -m "$BURROW_VM_MEM" -smp 2 \
        -nographic -no-reboot -nic none -monitor none -serial stdio \
        -kernel "$VM_DIR/vmlinuz" -initrd "$VM_DIR/initrd.gz" \
        -append "console=ttyS0 quiet loglevel=3 panic=-1 bw.script=$_script bw.args=${_args%,}" \
        -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,readonly=on,multidevs=remap \
        </dev/null 2>&1 | tr -d '\r'
}

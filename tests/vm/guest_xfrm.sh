#!/bin/sh
# Runs inside the VM of tests/vm/xfrm_kernel.t, chrooted into the host's root: the kernel
# backend's own test against a kernel with ESP, then the interop scenarios. Prints TAP lines
# (the host numbers them) and diagnostics.
# Usage: guest_xfrm.sh SRC BUILD
set -u
src=$1 build=$2
cd "$src" || exit 1
echo "# guest kernel $(uname -r), $(nproc) CPUs"
"$build/tests/test_xfrm_kernel" 2>&1 |
    sed -e '/^1\.\./d' \
        -e 's/^\(\(not \)\{0,1\}ok\) [0-9]* - /\1 0 - kernel backend: /' \
        -e '/^\(not \)\{0,1\}ok /!s/^\([^#]\)/# \1/'
BURROW_BUILD=$build BURROW_SRC=$src sh "$src/tests/vm/scenario_xfrm.sh"
# Phase 2 rekeyed twice under a continuous ping (~75 s, most of it the ping).
BURROW_BUILD=$build BURROW_SRC=$src sh "$src/tests/vm/scenario_xfrm_rekey.sh"
# host-to-host in transport mode (issue 5, scenario 6; ~40 s, most of it waiting for a rekey).
BURROW_BUILD=$build BURROW_SRC=$src sh "$src/tests/vm/scenario_xfrm_transport.sh"
# NAT-T and host-to-everywhere: the IKE sockets prepared by the backend (bypass policies,
# UDP_ENCAP_ESPINUDP) and the gateway route exception.
BURROW_BUILD=$build BURROW_SRC=$src sh "$src/tests/vm/scenario_xfrm_natt.sh"

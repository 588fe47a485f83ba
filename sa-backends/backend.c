/* Picks the SA backend for `backend = auto|userspace|xfrm`: the one place that decides,
 * so that every caller gets the same answer and the same one-sentence reason. */
#include "sa-backends/sa_backend.h"

#include <stdio.h>
#include <unistd.h>

const struct bw_sa_backend_ops *bw_sa_backend_pick(enum bw_backend want, char *err, size_t errlen)
{
	switch (want) {
	case BW_BACKEND_AUTO:
		/* The kernel (xfrm) backend is its own piece of work and not in this build, so
		 * auto means userspace, which only needs TUN and works on every kernel. */
	case BW_BACKEND_USERSPACE:
		if (access("/dev/net/tun", R_OK | W_OK) < 0) {
			snprintf(err, errlen, "the userspace backend needs /dev/net/tun; "
				 "load the tun module (modprobe tun) and run burrowd as root");
			return NULL;
		}
		return &bw_sa_backend_userspace;
	case BW_BACKEND_XFRM:
		snprintf(err, errlen, "the xfrm backend is not available in this build; "
			 "set backend = userspace");
		return NULL;
	}
	snprintf(err, errlen, "unknown backend %d; set backend = auto, userspace or xfrm", (int)want);
	return NULL;
}

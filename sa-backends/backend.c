/* Picks the SA backend for `backend = auto|userspace|xfrm`: the one place that decides,
 * so that every caller gets the same answer and the same one-sentence reason. */
#include "sa-backends/sa_backend.h"

#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "log.h"
#include "sa-backends/xfrm/xfrm.h"

const struct bw_sa_backend_ops *const bw_sa_backends[] = {
	&bw_sa_backend_userspace,
	&bw_sa_backend_xfrm,
	NULL,
};

void bw_sa_backends_cleanup_stale(const char *conn_name, const char *state_dir)
{
	for (size_t i = 0; bw_sa_backends[i]; i++)
		bw_sa_backends[i]->cleanup_stale(conn_name, state_dir);
}

static const struct bw_sa_backend_ops *userspace_or_why(char *err, size_t errlen)
{
	if (access("/dev/net/tun", R_OK | W_OK) < 0) {
		snprintf(err, errlen, "the userspace backend needs /dev/net/tun; "
			 "load the tun module (modprobe tun) and run burrowd as root");
		return NULL;
	}
	return &bw_sa_backend_userspace;
}

const struct bw_sa_backend_ops *bw_sa_backend_pick(enum bw_backend want, char *err, size_t errlen)
{
	static bool told;	/* the probe runs once per process, and is logged once */
	char why[256];
	int rc;

	switch (want) {
	case BW_BACKEND_AUTO:
		/* The kernel's datapath when it can hold an ESP SA (with UDP encapsulation), else
		 * userspace, which only needs TUN and works on every kernel. */
		rc = bw_xfrm_probe(why, sizeof(why));
		if (!told)
			bw_info("backend = auto: %s, because %s", rc == 0 ? "xfrm (kernel)" : "userspace", why);
		told = true;
		return rc == 0 ? &bw_sa_backend_xfrm : userspace_or_why(err, errlen);
	case BW_BACKEND_USERSPACE:
		return userspace_or_why(err, errlen);
	case BW_BACKEND_XFRM:
		rc = bw_xfrm_probe(why, sizeof(why));
		if (rc < 0) {
			snprintf(err, errlen, "backend = xfrm cannot work here: %s; set backend = userspace in "
				 "burrow.conf", why);
			return NULL;
		}
		return &bw_sa_backend_xfrm;
	}
	snprintf(err, errlen, "unknown backend %d; set backend = auto, userspace or xfrm", (int)want);
	return NULL;
}

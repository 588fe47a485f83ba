/* Internal to the kernel backend: the state record (state_dir/NAME.xfrm) of everything one
 * connection installed — SAs, policies, its dummy device, addresses, routes — so that stop,
 * SIGTERM and the next start after a crash undo exactly that and nothing of anyone else's. */
#ifndef BURROW_XFRM_RECORD_H
#define BURROW_XFRM_RECORD_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "sa-backends/sa_backend.h"
#include "sa-backends/common/sysnet.h"

#define XF_MAX_SAS 64		/* both directions, old and new during rekeys */
#define XF_MAX_POLICIES 96	/* in, out, fwd for each of 32 selector pairs */

struct xf_rec_sa {
	enum bw_sa_dir dir;
	uint32_t spi;
	struct bw_cidr dst;		/* host prefix */
	uint32_t reqid;
};

struct xf_rec_policy {
	int dir;			/* XFRM_POLICY_IN / OUT / FWD */
	struct bw_cidr src, dst;	/* the selector */
	uint32_t reqid;
};

struct xf_record {
	char ifname[IFNAMSIZ];		/* the dummy device that holds address and routes */
	struct xf_rec_sa sas[XF_MAX_SAS];
	size_t n_sas;
	struct xf_rec_policy pols[XF_MAX_POLICIES];
	size_t n_pols;
	struct bw_cidr addrs[SN_MAX_ADDRS];
	size_t n_addrs;
	struct sn_route routes[SN_MAX_ROUTES];
	size_t n_routes;
};

int xf_record_path(const char *state_dir, const char *conn_name, char *buf, size_t len);
/* Atomic: temporary file, fsync, rename. */
int xf_record_write(const char *path, const char *conn_name, const struct xf_record *r);
/* -ENOENT when there is none; lines it cannot read are logged and skipped. */
int xf_record_read(const char *path, struct xf_record *r);

const char *xf_dir_name(int xfrm_dir);

#endif

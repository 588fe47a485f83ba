/* The kernel backend's state record: one line per thing installed, written before the thing
 * is installed, so that a crash leaves at worst a line for something absent (tolerated). */
#include "sa-backends/xfrm/xfrm_record.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "util.h"

const char *xf_dir_name(int d)
{
	return d == XFRM_POLICY_IN ? "in" : d == XFRM_POLICY_OUT ? "out" : d == XFRM_POLICY_FWD ? "fwd" : "?";
}

int xf_record_path(const char *state_dir, const char *conn_name, char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s/%s.xfrm", state_dir, conn_name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

static struct sn_rec_net rec_net_of(struct xf_record *r)
{
	return (struct sn_rec_net){ .ifname = r->ifname, .addrs = r->addrs, .n_addrs = &r->n_addrs,
				    .routes = r->routes, .n_routes = &r->n_routes };
}

int xf_record_write(const char *path, const char *conn_name, const struct xf_record *r)
{
	char tmp[PATH_MAX], a[64], b[64];
	struct sn_rec_net rec_net = rec_net_of((struct xf_record *)r);
	int err;
	FILE *f = sn_record_create(path, tmp, sizeof(tmp), &err);

	if (!f)
		return err;
	fprintf(f, "# What Burrow's xfrm backend installed for connection %s.\n"
		   "# Removed when the connection closes; undone at the next start after a crash.\n",
		conn_name);
	err = sn_record_put_net(f, &rec_net);
	for (size_t i = 0; i < r->n_sas && !err; i++) {
		const struct xf_rec_sa *s = &r->sas[i];
		if (sn_cidr_format(&s->dst, a, sizeof(a)) < 0)
			err = -EINVAL;
		else
			fprintf(f, "sa %s 0x%08x dst %s reqid 0x%08x\n", s->dir == BW_SA_IN ? "in" : "out",
				s->spi, a, s->reqid);
	}
	for (size_t i = 0; i < r->n_pols && !err; i++) {
		const struct xf_rec_policy *p = &r->pols[i];
		if (sn_cidr_format(&p->src, a, sizeof(a)) < 0 || sn_cidr_format(&p->dst, b, sizeof(b)) < 0)
			err = -EINVAL;
		else
			fprintf(f, "policy %s %s %s reqid 0x%08x\n", xf_dir_name(p->dir), a, b, p->reqid);
	}
	return sn_record_finish(f, tmp, path, err);
}

static int parse_u32(const char *s, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || *end || v > UINT32_MAX)
		return -EINVAL;
	*out = (uint32_t)v;
	return 0;
}

/* "sa in|out SPI dst ADDR reqid R" */
static int parse_sa(char **save, struct xf_rec_sa *s)
{
	char *dir = strtok_r(NULL, " \t", save), *spi = strtok_r(NULL, " \t", save);
	char *k1 = strtok_r(NULL, " \t", save), *dst = strtok_r(NULL, " \t", save);
	char *k2 = strtok_r(NULL, " \t", save), *reqid = strtok_r(NULL, " \t", save);

	memset(s, 0, sizeof(*s));
	if (!dir || !k1 || !k2 || strcmp(k1, "dst") != 0 || strcmp(k2, "reqid") != 0 ||
	    strtok_r(NULL, " \t", save))
		return -EINVAL;
	if (strcmp(dir, "in") == 0)
		s->dir = BW_SA_IN;
	else if (strcmp(dir, "out") == 0)
		s->dir = BW_SA_OUT;
	else
		return -EINVAL;
	if (parse_u32(spi, &s->spi) < 0 || s->spi == 0 || !dst || sn_cidr_parse(dst, &s->dst) < 0 ||
	    parse_u32(reqid, &s->reqid) < 0)
		return -EINVAL;
	return 0;
}

/* "policy in|out|fwd SRC DST reqid R" */
static int parse_policy(char **save, struct xf_rec_policy *p)
{
	char *dir = strtok_r(NULL, " \t", save), *src = strtok_r(NULL, " \t", save);
	char *dst = strtok_r(NULL, " \t", save), *k = strtok_r(NULL, " \t", save);
	char *reqid = strtok_r(NULL, " \t", save);

	memset(p, 0, sizeof(*p));
	if (!dir || !src || !dst || !k || strcmp(k, "reqid") != 0 || strtok_r(NULL, " \t", save))
		return -EINVAL;
	if (strcmp(dir, "in") == 0)
		p->dir = XFRM_POLICY_IN;
	else if (strcmp(dir, "out") == 0)
		p->dir = XFRM_POLICY_OUT;
	else if (strcmp(dir, "fwd") == 0)
		p->dir = XFRM_POLICY_FWD;
	else
		return -EINVAL;
	if (sn_cidr_parse(src, &p->src) < 0 || sn_cidr_parse(dst, &p->dst) < 0 ||
	    p->src.family != p->dst.family || parse_u32(reqid, &p->reqid) < 0)
		return -EINVAL;
	return 0;
}

static int record_line(void *ctx, const char *key, char **save)
{
	struct xf_record *r = ctx;
	struct sn_rec_net n = rec_net_of(r);
	int rc = sn_record_net_line(key, save, &n);

	if (rc != 0)
		return rc;
	if (strcmp(key, "sa") == 0) {
		if (r->n_sas == XF_MAX_SAS || parse_sa(save, &r->sas[r->n_sas]) < 0)
			return -EINVAL;
		r->n_sas++;
		return 1;
	}
	if (strcmp(key, "policy") == 0) {
		if (r->n_pols == XF_MAX_POLICIES || parse_policy(save, &r->pols[r->n_pols]) < 0)
			return -EINVAL;
		r->n_pols++;
		return 1;
	}
	return -EINVAL;
}

int xf_record_read(const char *path, struct xf_record *r)
{
	memset(r, 0, sizeof(*r));
	return sn_record_read_lines(path, "xfrm", record_line, r);
}

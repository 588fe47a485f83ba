/* The kernel backend's state record (NAME.xfrm): what is written reads back the same, and a
 * damaged line is skipped without losing the others. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/rtnetlink.h>
#include <linux/xfrm.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sa-backends/xfrm/xfrm_record.h"
#include "tap.h"

static struct bw_cidr cidr(const char *s)
{
	struct bw_cidr c = { 0 };

	sn_cidr_parse(s, &c);
	return c;
}

int main(void)
{
	char dir[] = "/tmp/bw-xfrm-rec.XXXXXX", path[256];
	struct xf_record r = { 0 }, back;
	FILE *f;

	if (!mkdtemp(dir)) {
		printf("1..0 # SKIP cannot create a temporary directory\n");
		return 0;
	}
	tap_is_int(xf_record_path(dir, "office", path, sizeof(path)), 0, "record path fits");
	tap_ok(strstr(path, "/office.xfrm") != NULL, "the record is NAME.xfrm in the state directory");
	tap_is_int(xf_record_read(path, &back), -ENOENT, "no record yet: -ENOENT");

	strcpy(r.ifname, "bw-office");
	r.sas[0] = (struct xf_rec_sa){ BW_SA_IN, 0xc1000001, cidr("192.0.2.2/32"), 0xb7abcd01 };
	r.sas[1] = (struct xf_rec_sa){ BW_SA_OUT, 0x00000102, cidr("2001:db8::1/128"), 0xb7abcd01 };
	r.n_sas = 2;
	r.pols[0] = (struct xf_rec_policy){ XFRM_POLICY_OUT, cidr("10.9.0.2/32"), cidr("10.1.0.0/24"), 0xb7abcd01 };
	r.pols[1] = (struct xf_rec_policy){ XFRM_POLICY_IN, cidr("10.1.0.0/24"), cidr("10.9.0.2/32"), 0xb7abcd01 };
	r.pols[2] = (struct xf_rec_policy){ XFRM_POLICY_FWD, cidr("10.1.0.0/24"), cidr("10.9.0.2/32"), 0xb7abcd01 };
	r.n_pols = 3;
	r.addrs[0] = cidr("10.9.0.2/32");
	r.n_addrs = 1;
	r.routes[0] = (struct sn_route){ .dst = cidr("10.1.0.0/24"), .has_src = true, .src = cidr("10.9.0.2/32"),
					 .ifname = "bw-office", .table = RT_TABLE_MAIN };
	r.routes[1] = (struct sn_route){ .dst = cidr("192.0.2.1/32"), .has_via = true, .via = cidr("192.0.2.254/32"),
					 .ifname = "eth0", .table = 220, .exception = true };
	r.n_routes = 2;
	tap_is_int(xf_record_write(path, "office", &r), 0, "the record is written");
	tap_is_int(access(path, R_OK), 0, "and is there");
	{
		char tmp[300];
		snprintf(tmp, sizeof(tmp), "%s.tmp", path);
		tap_ok(access(tmp, F_OK) < 0, "no temporary file is left");
	}
	tap_is_int(xf_record_read(path, &back), 0, "the record reads back");
	tap_is_str(back.ifname, "bw-office", "device name");
	tap_ok(back.n_sas == 2 && back.sas[0].dir == BW_SA_IN && back.sas[0].spi == 0xc1000001 &&
	       back.sas[0].reqid == 0xb7abcd01 && sn_cidr_equal(&back.sas[0].dst, &r.sas[0].dst) &&
	       back.sas[1].dir == BW_SA_OUT && back.sas[1].spi == 0x102 &&
	       sn_cidr_equal(&back.sas[1].dst, &r.sas[1].dst),
	       "SAs: direction, SPI, destination (IPv4 and IPv6), reqid");
	tap_ok(back.n_pols == 3 && back.pols[0].dir == XFRM_POLICY_OUT && back.pols[2].dir == XFRM_POLICY_FWD &&
	       sn_cidr_equal(&back.pols[1].src, &r.pols[1].src) && sn_cidr_equal(&back.pols[1].dst, &r.pols[1].dst) &&
	       back.pols[1].reqid == 0xb7abcd01,
	       "policies: direction, selector, reqid, in order");
	tap_ok(back.n_addrs == 1 && sn_cidr_equal(&back.addrs[0], &r.addrs[0]), "address");
	tap_ok(back.n_routes == 2 && !back.routes[0].exception && back.routes[0].has_src &&
	       back.routes[1].exception && back.routes[1].has_via && back.routes[1].table == 220 &&
	       strcmp(back.routes[1].ifname, "eth0") == 0,
	       "routes and the gateway exception with its next hop and table");

	f = fopen(path, "a");
	if (f) {
		fputs("sa sideways 0x1 dst 1.2.3.4/32 reqid 1\n", f);
		fputs("sa in 0x0 dst 1.2.3.4/32 reqid 1\n", f);
		fputs("policy out 10.0.0.0/8 fd00::/8 reqid 1\n", f);
		fputs("frobnicate yes\n", f);
		fputs("sa out 0x00000200 dst 192.0.2.1/32 reqid 0xb7abcd02\n", f);
		fclose(f);
	}
	tap_is_int(xf_record_read(path, &back), 0, "a record with damaged lines still reads");
	tap_ok(back.n_sas == 3 && back.sas[2].spi == 0x200 && back.n_pols == 3,
	       "bad direction, SPI 0, mixed families and unknown keys are skipped; the good line after them is kept");

	unlink(path);
	rmdir(dir);
	return tap_done_testing();
}

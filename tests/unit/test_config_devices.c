/* Tests for device profiles: loading a directory, refusing keys that belong to the
 * connection, and merging a profile under a connection whose own keys win. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"
#include "config/config.h"

static char dir[] = "/tmp/burrow-devices-XXXXXX";
static struct bw_cfg_error errs[8];
static int n_errs;

static void collect(void *ctx, const struct bw_cfg_error *e)
{
	(void)ctx;
	if (n_errs < 8)
		errs[n_errs] = *e;
	n_errs++;
}

static void write_file(const char *name, const char *text)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static const struct bw_cfg_error *find_err(const char *file_suffix)
{
	for (int i = 0; i < n_errs && i < 8; i++) {
		size_t n = strlen(errs[i].file), s = strlen(file_suffix);

		if (n >= s && strcmp(errs[i].file + n - s, file_suffix) == 0)
			return &errs[i];
	}
	return NULL;
}

static const char asa[] =
	"; Cisco ASA with IKEv1 remote access\n"
	"[device]\n"
	"name = \"Cisco ASA 5500-X\"\n"
	"vendor = Cisco\n"
	"model = ASA 5500-X\n"
	"source = Cisco ASA configuration guide, IPsec IKEv1\n"
	"\n"
	"[auth]\n"
	"method = psk\n"
	"xauth = yes\n"
	"\n"
	"[provisioning]\n"
	"mode_config = pull\n"
	"\n"
	"[phase1]\n"
	"exchange = aggressive\n"
	"proposals = aes256-sha1-modp1024, 3des-sha1-modp1024\n"
	"lifetime = 1d\n"
	"dpd = 10s\n"
	"nat_traversal = force\n"
	"\n"
	"[phase2]\n"
	"proposals = aes256-sha1\n"
	"pfs = none\n"
	"lifetime = 8h\n";

static void test_load_dir(struct bw_devices *devs)
{
	const struct bw_cfg_error *e;
	const struct bw_device *d;
	struct bw_devices none = { 0 };

	write_file("cisco-asa.conf", asa);
	write_file("strongswan.conf", "[phase1]\nproposals = aes256-sha256-modp2048\n");
	write_file("bad-gateway.conf", "[device]\nname = Bad\n[connection]\ngateway = vpn.example.com\n");
	write_file("bad-value.conf", "[device]\nname = Bad\n\n[phase1]\nlifetime = forever\n");
	write_file("bad-cert.conf", "[auth]\ncertificate = /etc/c.pem\n");
	write_file("bad-section.conf", "[gateway]\nname = x\n");
	write_file("README.txt", "not a profile\n");
	write_file(".hidden.conf", "[connection]\ngateway = x\n");

	tap_is_int(bw_devices_load_dir(dir, devs, collect, NULL), 0, "a device directory loads");
	tap_is_int(devs->n, 2, "the two good profiles are kept, the broken ones and other files skipped");
	tap_ok(devs->n == 2 && strcmp(devs->items[0].id, "cisco-asa") == 0 &&
		       strcmp(devs->items[1].id, "strongswan") == 0,
	       "profiles are sorted by id");
	tap_is_int(n_errs, 4, "each broken profile is reported once");

	e = find_err("/bad-gateway.conf");
	tap_ok(e && e->line == 4 &&
		       strcmp(e->msg, "device profiles may not set 'gateway'; it belongs in the connection") == 0,
	       "a device setting gateway is refused at its line with the exact sentence");
	e = find_err("/bad-value.conf");
	tap_ok(e && e->line == 5 && strstr(e->msg, "lifetime must be a duration"),
	       "a bad value in a device profile is refused at its line");
	e = find_err("/bad-cert.conf");
	tap_ok(e && e->line == 2 && strstr(e->msg, "device profiles may not set 'certificate'"),
	       "a device setting certificate is refused");
	e = find_err("/bad-section.conf");
	tap_ok(e && e->line == 1 && strstr(e->msg, "unknown section [gateway]"),
	       "an unknown section in a device profile is refused");

	d = bw_devices_find(devs, "cisco-asa");
	tap_ok(d != NULL, "cisco-asa is found");
	if (d) {
		tap_ok(strcmp(d->name, "Cisco ASA 5500-X") == 0 && strcmp(d->vendor, "Cisco") == 0 &&
			       strcmp(d->model, "ASA 5500-X") == 0 &&
			       strstr(d->source, "configuration guide") != NULL,
		       "the [device] name, vendor, model and source are read");
		tap_ok(d->text && d->text_len == strlen(asa) && memcmp(d->text, asa, d->text_len) == 0,
		       "the profile's text is kept");
		tap_ok(strstr(d->file, "/cisco-asa.conf") != NULL, "the profile's file is kept");
	}
	d = bw_devices_find(devs, "strongswan");
	tap_ok(d && strcmp(d->name, "strongswan") == 0, "a profile without a name is named by its id");
	tap_ok(bw_devices_find(devs, "juniper") == NULL, "an unknown id is not found");
	tap_ok(bw_devices_find(NULL, "cisco-asa") == NULL, "find on no device set is NULL");

	tap_ok(bw_devices_load_dir("/nonexistent/burrow-devices", &none, collect, NULL) == 0 &&
		       none.n == 0,
	       "a missing directory means zero devices");
}

static void test_merge(const struct bw_devices *devs)
{
	struct bw_conn_config c;
	struct bw_cfg_error e;
	const char *t;
	char buf[64];

	t = "[connection]\ndevice = cisco-asa\ngateway = asa.example.com\n";
	tap_is_int(bw_conn_config_parse("office", "office.conf", t, strlen(t), devs, &c, &e), 0,
		   "a connection naming a device parses");
	tap_ok(c.exchange == BW_EXCHANGE_AGGRESSIVE && c.p1_lifetime_s == 86400 && c.dpd_s == 10 &&
		       c.nat_traversal == BW_NATT_FORCE,
	       "the device's phase 1 values are used");
	bw_p1_proposal_format(&c.p1_proposals[1], buf, sizeof(buf));
	tap_ok(c.n_p1_proposals == 2 && strcmp(buf, "3des-sha1-modp1024") == 0,
	       "the device's phase 1 proposals are used");
	tap_ok(c.n_p2_proposals == 1 && c.pfs == BW_DH_NONE && c.p2_lifetime_s == 8 * 3600,
	       "the device's phase 2 values are used");
	tap_ok(c.xauth && c.mode_config == BW_MODECFG_PULL,
	       "the device's xauth and mode_config are used (so no remote_networks are needed)");
	tap_ok(strcmp(c.device, "cisco-asa") == 0, "the connection records its device");

	t = "[connection]\ndevice = cisco-asa\ngateway = asa.example.com\n"
	    "[phase1]\nexchange = main\nlifetime = 2h\n[phase2]\npfs = ecp256\n"
	    "[provisioning]\nmode_config = no\n[connection]\nremote_networks = 10.1.0.0/24\n";
	tap_is_int(bw_conn_config_parse("office", "office.conf", t, strlen(t), devs, &c, &e), 0,
		   "a connection may set keys its device sets: not a duplicate");
	tap_ok(c.exchange == BW_EXCHANGE_MAIN && c.p1_lifetime_s == 7200 && c.pfs == BW_DH_ECP256 &&
		       c.mode_config == BW_MODECFG_NO,
	       "the connection's own values win over the device's");
	tap_ok(c.dpd_s == 10 && c.nat_traversal == BW_NATT_FORCE && c.xauth,
	       "device values the connection does not set stay");

	t = "[connection]\ndevice = cisco-asa\ngateway = asa.example.com\n[phase1]\nexchange =\n";
	tap_ok(bw_conn_config_parse("office", "office.conf", t, strlen(t), devs, &c, &e) == 0 &&
		       c.exchange == BW_EXCHANGE_AGGRESSIVE,
	       "an empty value in the connection leaves the device's value");

	t = "[connection]\ngateway = asa.example.com\n\ndevice = juniper-srx\n";
	tap_ok(bw_conn_config_parse("office", "office.conf", t, strlen(t), devs, &c, &e) == -1 &&
		       e.line == 4 && strcmp(e.file, "office.conf") == 0 &&
		       strstr(e.msg, "unknown device 'juniper-srx'; run 'burrow devices' to list them"),
	       "an unknown device is refused at the device line, naming burrow devices");

	t = "[connection]\ndevice = cisco-asa\ngateway = asa.example.com\nlocal_address = 10.9.0.2\n";
	tap_ok(bw_conn_config_parse("office", "office.conf", t, strlen(t), devs, &c, &e) == -1 &&
		       e.line == 4 && strcmp(e.file, "office.conf") == 0 &&
		       strstr(e.msg, "local_address cannot be combined with mode_config"),
	       "a rule broken by device plus connection points at the connection's key");
}

static void test_in_memory(void)
{
	/* Profiles made by hand (as the fuzz target does) are checked again at merge time. */
	static char bad_text[] = "[device]\nname = x\n[auth]\nmethod = rsa\n";
	static char worse_text[] = "[connection]\ngateway = evil.example.com\n";
	struct bw_device items[2] = {
		{ .id = "rsa-box", .file = "/devices/rsa-box.conf", .text = bad_text,
		  .text_len = sizeof(bad_text) - 1 },
		{ .id = "sneaky", .file = "/devices/sneaky.conf", .text = worse_text,
		  .text_len = sizeof(worse_text) - 1 },
	};
	struct bw_devices devs = { items, 2 };
	struct bw_conn_config c;
	struct bw_cfg_error e;
	const char *t;

	t = "[connection]\ndevice = rsa-box\ngateway = gw\nremote_networks = 10.1.0.0/24\n";
	tap_ok(bw_conn_config_parse("x", "x.conf", t, strlen(t), &devs, &c, &e) == -1 &&
		       strcmp(e.file, "/devices/rsa-box.conf") == 0 && e.line == 4 &&
		       strstr(e.msg, "method = rsa needs both certificate and private_key"),
	       "a rule broken by a device's value points at the device file and line");
	t = "[connection]\ndevice = sneaky\nremote_networks = 10.1.0.0/24\n";
	tap_ok(bw_conn_config_parse("x", "x.conf", t, strlen(t), &devs, &c, &e) == -1 &&
		       strcmp(e.file, "/devices/sneaky.conf") == 0 && e.line == 2 &&
		       strstr(e.msg, "device profiles may not set 'gateway'"),
	       "a forbidden key in a device is refused at merge time too");
}

int main(void)
{
	struct bw_devices devs = { 0 };
	char cmd[128];

	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	test_load_dir(&devs);
	test_merge(&devs);
	test_in_memory();
	bw_devices_free(&devs);
	tap_ok(devs.n == 0 && devs.items == NULL, "bw_devices_free empties the set");
	bw_devices_free(NULL);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		tap_diag("could not remove %s", dir);
	return tap_done_testing();
}

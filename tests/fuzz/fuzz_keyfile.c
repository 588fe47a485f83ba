/* libFuzzer target for every keyfile parser of agent/config: connections (with a small
 * in-memory device set), device profiles, secrets and burrow.conf, on the same bytes. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"
#include "config/keyfile.h"

static char asa_text[] =
	"[device]\nname = Cisco ASA\nvendor = Cisco\n"
	"[auth]\nxauth = yes\n[provisioning]\nmode_config = pull\n"
	"[phase1]\nexchange = aggressive\nproposals = aes256-sha1-modp1024\ndpd = 10s\n"
	"[phase2]\nproposals = aes256-sha1\npfs = none\n";
static char broken_text[] = "[connection]\ngateway = x\n";

/* Sorted by id, as bw_devices_find expects. */
static struct bw_device items[] = {
	{ .id = "cisco-asa", .file = "devices/cisco-asa.conf", .text = asa_text,
	  .text_len = sizeof(asa_text) - 1 },
	{ .id = "x", .file = "devices/x.conf", .text = broken_text,
	  .text_len = sizeof(broken_text) - 1 },
};
static const struct bw_devices devs = { items, sizeof(items) / sizeof(items[0]) };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct bw_conn_config conn;
	struct bw_secrets sec;
	struct bw_agent_config agent;
	struct bw_device dev;
	struct bw_cfg_error err;
	const char *buf = (const char *)data;

	/* The parsers take a length and must not read past it, NUL or no NUL. */
	if (bw_conn_config_parse("fuzz", "fuzz.conf", buf, size, &devs, &conn, &err) == 0) {
		char out[128];

		for (size_t i = 0; i < conn.n_p1_proposals; i++)
			bw_p1_proposal_format(&conn.p1_proposals[i], out, sizeof(out));
		for (size_t i = 0; i < conn.n_p2_proposals; i++)
			bw_p2_proposal_format(&conn.p2_proposals[i], out, sizeof(out));
		for (size_t i = 0; i < conn.n_remote_networks; i++)
			bw_cidr_format(&conn.remote_networks[i], out, sizeof(out));
	}
	memset(&dev, 0, sizeof(dev));
	bw_device_check("devices/fuzz.conf", buf, size, &dev, &err);
	if (bw_secrets_parse("fuzz.secrets", buf, size, &sec, &err) == 0)
		bw_secrets_wipe(&sec);
	bw_agent_config_parse("burrow.conf", buf, size, &agent, &err);
	return 0;
}

/* Tests for the configuration value parsers: durations, addresses and networks, DH groups,
 * proposals in strongSwan notation, enum names, and burrow.conf. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "config/config.h"
#include "log.h"

static void test_durations(void)
{
	static const struct {
		const char *s;
		uint32_t want;
	} good[] = {
		{ "30", 30 }, { "30s", 30 }, { "5m", 300 }, { "8h", 28800 }, { "1d", 86400 },
		{ "0", 0 }, { "0s", 0 }, { "4294967295", 4294967295u }, { "49710d", 4294944000u },
	};
	static const char *const bad[] = {
		"", "s", "5x", "5mm", "-1", "+5", "1.5h", " 5", "5 ", "5S", "4294967296",
		"49711d", "99999999999999999999", "71582789m",
	};

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint32_t v = 7;
		int rc = bw_duration_parse(good[i].s, &v);

		tap_ok(rc == 0 && v == good[i].want, "duration '%s' is %u seconds", good[i].s,
		       good[i].want);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint32_t v = 7;
		int rc = bw_duration_parse(bad[i], &v);

		tap_ok(rc == -1 && v == 7, "duration '%s' is refused and out is untouched", bad[i]);
	}
}

static void test_cidrs(void)
{
	struct bw_cidr c;
	char buf[64], err[200];
	static const uint8_t v6[16] = { 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };

	tap_ok(bw_cidr_parse("10.1.0.0/24", &c) == 0 && c.family == AF_INET && c.prefix == 24 &&
		       memcmp(c.addr, "\x0a\x01\x00\x00", 4) == 0,
	       "10.1.0.0/24 parses as an IPv4 /24");
	tap_ok(bw_cidr_parse("10.1.0.5", &c) == 0 && c.prefix == 32 &&
		       memcmp(c.addr, "\x0a\x01\x00\x05", 4) == 0,
	       "a bare IPv4 address is a /32");
	tap_ok(bw_cidr_parse("fd00::/64", &c) == 0 && c.family == AF_INET6 && c.prefix == 64 &&
		       memcmp(c.addr, v6, 16) == 0,
	       "fd00::/64 parses as an IPv6 /64");
	tap_ok(bw_cidr_parse("fd00::1", &c) == 0 && c.prefix == 128, "a bare IPv6 address is a /128");
	tap_ok(bw_cidr_parse("0.0.0.0/0", &c) == 0 && c.prefix == 0, "0.0.0.0/0 is accepted");
	tap_ok(bw_cidr_parse("::/0", &c) == 0 && c.prefix == 0 && c.family == AF_INET6,
	       "::/0 is accepted");

	memset(&c, 0x5a, sizeof(c));
	tap_is_int(bw_cidr_parse_err("10.1.0.5/24", &c, err, sizeof(err)), -2,
		   "10.1.0.5/24 is refused for its host bits");
	tap_ok(strstr(err, "use the network address 10.1.0.0/24") != NULL,
	       "the host-bits error names the network to use");
	tap_ok(c.prefix == 0x5a, "a refused network leaves out untouched");
	bw_cidr_parse_err("fd00::1/64", &c, err, sizeof(err));
	tap_ok(strstr(err, "use the network address fd00::/64") != NULL,
	       "the IPv6 host-bits error names fd00::/64");
	bw_cidr_parse_err("10.1.2.129/25", &c, err, sizeof(err));
	tap_ok(strstr(err, "10.1.2.128/25") != NULL, "host bits are computed inside a byte (/25)");

	static const char *const bad[] = {
		"", "10.1.0.0/33", "10.1.0/24", "fd00::/129", "10.1.0.0/", "10.1.0.0/ 24",
		"10.1.0.0/024", "10.1.0.0/+8", "hello", "10.1.0.0/24/8", "fe80::1%eth0",
		"1.2.3.4.5", "10.1.0.0/2x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tap_is_int(bw_cidr_parse(bad[i], &c), -1, "'%s' is not an address or network", bad[i]);

	bw_cidr_parse("10.1.0.0/24", &c);
	tap_ok(bw_cidr_format(&c, buf, sizeof(buf)) == 0 && strcmp(buf, "10.1.0.0/24") == 0,
	       "10.1.0.0/24 prints back the same");
	bw_cidr_parse("10.9.0.2", &c);
	tap_ok(bw_cidr_format(&c, buf, sizeof(buf)) == 0 && strcmp(buf, "10.9.0.2") == 0,
	       "an address prints without a prefix");
	bw_cidr_parse("fd00:0:0:0::/48", &c);
	tap_ok(bw_cidr_format(&c, buf, sizeof(buf)) == 0 && strcmp(buf, "fd00::/48") == 0,
	       "IPv6 prints in canonical form");
	tap_is_int(bw_cidr_format(&c, buf, 5), -1, "formatting into a short buffer fails");
}

static void test_dh(void)
{
	static const struct {
		const char *s;
		enum bw_dh_group g;
	} groups[] = {
		{ "none", BW_DH_NONE }, { "modp1024", BW_DH_MODP1024 }, { "modp1536", BW_DH_MODP1536 },
		{ "modp2048", BW_DH_MODP2048 }, { "modp3072", BW_DH_MODP3072 },
		{ "modp4096", BW_DH_MODP4096 }, { "modp6144", BW_DH_MODP6144 },
		{ "modp8192", BW_DH_MODP8192 }, { "ecp256", BW_DH_ECP256 }, { "ecp384", BW_DH_ECP384 },
		{ "ecp521", BW_DH_ECP521 },
	};
	enum bw_dh_group g;

	for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++) {
		g = (enum bw_dh_group)99;
		tap_ok(bw_dh_group_parse(groups[i].s, &g) == 0 && g == groups[i].g,
		       "DH group %s is group %d", groups[i].s, groups[i].g);
		tap_is_str(bw_dh_group_name(groups[i].g), groups[i].s, "group %d is named %s",
			   groups[i].g, groups[i].s);
	}
	g = BW_DH_ECP256;
	tap_ok(bw_dh_group_parse("modp768", &g) == -2 && g == BW_DH_ECP256,
	       "modp768 is refused as insecure");
	tap_is_int(bw_dh_group_parse("modp2047", &g), -1, "an unknown group is refused");
	tap_is_int(bw_dh_group_parse("MODP2048", &g), -1, "group names are lower case");
}

static void p1_good(const char *s, enum bw_p1_encr e, unsigned bits, enum bw_hash h,
		    enum bw_dh_group dh)
{
	struct bw_p1_proposal p;
	char err[200] = "";
	int rc = bw_p1_proposal_parse(s, &p, err, sizeof(err));

	if (!tap_ok(rc == 0 && p.encr == e && p.key_bits == bits && p.hash == h && p.dh == dh,
		    "phase 1 proposal %s parses", s))
		tap_diag("  rc %d: %s", rc, err);
}

static void p1_bad(const char *s, const char *want)
{
	struct bw_p1_proposal p;
	char err[200] = "";

	memset(&p, 0x33, sizeof(p));
	tap_ok(bw_p1_proposal_parse(s, &p, err, sizeof(err)) == -1 && strstr(err, want) &&
		       p.key_bits == 0x3333,
	       "phase 1 proposal '%s' is refused: %s", s, want);
	if (!strstr(err, want))
		tap_diag("  got: %s", err);
}

static void p2_good(const char *s, enum bw_esp_encr e, unsigned bits, enum bw_esp_auth a,
		    enum bw_dh_group dh)
{
	struct bw_p2_proposal p;
	char err[200] = "";
	int rc = bw_p2_proposal_parse(s, &p, err, sizeof(err));

	if (!tap_ok(rc == 0 && p.encr == e && p.key_bits == bits && p.auth == a && p.dh == dh,
		    "phase 2 proposal %s parses", s))
		tap_diag("  rc %d: %s", rc, err);
}

static void p2_bad(const char *s, const char *want)
{
	struct bw_p2_proposal p;
	char err[200] = "";

	memset(&p, 0x33, sizeof(p));
	tap_ok(bw_p2_proposal_parse(s, &p, err, sizeof(err)) == -1 && strstr(err, want) &&
		       p.key_bits == 0x3333,
	       "phase 2 proposal '%s' is refused: %s", s, want);
	if (!strstr(err, want))
		tap_diag("  got: %s", err);
}

static void test_proposals(void)
{
	struct bw_p1_proposal p1;
	struct bw_p2_proposal p2;
	char buf[64];

	p1_good("aes256-sha256-modp2048", BW_P1_ENCR_AES_CBC, 256, BW_HASH_SHA256, BW_DH_MODP2048);
	p1_good("aes128-sha1-modp1024", BW_P1_ENCR_AES_CBC, 128, BW_HASH_SHA1, BW_DH_MODP1024);
	p1_good("3des-md5-modp1024", BW_P1_ENCR_3DES, 192, BW_HASH_MD5, BW_DH_MODP1024);
	p1_good("aes128-sha1-ecp256", BW_P1_ENCR_AES_CBC, 128, BW_HASH_SHA1, BW_DH_ECP256);
	p1_good("aes192-sha384-ecp384", BW_P1_ENCR_AES_CBC, 192, BW_HASH_SHA384, BW_DH_ECP384);
	p1_good("aes-sha-modp1536", BW_P1_ENCR_AES_CBC, 128, BW_HASH_SHA1, BW_DH_MODP1536);
	p1_good("aes256-sha2_256-modp4096", BW_P1_ENCR_AES_CBC, 256, BW_HASH_SHA256, BW_DH_MODP4096);
	p1_good("aes256-sha2_512-ecp521", BW_P1_ENCR_AES_CBC, 256, BW_HASH_SHA512, BW_DH_ECP521);
	p1_good("aes256-sha2_384-modp8192", BW_P1_ENCR_AES_CBC, 256, BW_HASH_SHA384, BW_DH_MODP8192);

	p1_bad("aes256-sha256-modp768", "group 1 (modp768) is insecure; use modp2048 or stronger");
	p1_bad("aes256-sha256", "needs an encryption algorithm, a hash and a DH group");
	p1_bad("aes256-modp2048", "needs an encryption algorithm, a hash and a DH group");
	p1_bad("aes128gcm16-modp2048", "aes128gcm16 cannot be used in phase 1 (IKEv1 has no AEAD)");
	p1_bad("aes256-blake-modp2048", "unknown algorithm 'blake'");
	p1_bad("aes256--modp2048", "has an empty part");
	p1_bad("aes256-sha256-modp2048-", "has an empty part");
	p1_bad("aes256-aes128-sha1-modp2048", "names two algorithms of one kind");
	p1_bad("aes256-sha1-sha1-modp2048-x", "has too many parts");
	p1_bad("aes256-sha256-none", "unknown algorithm 'none'");
	p1_bad("", "has an empty part");

	p2_good("aes256-sha256", BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA256, BW_DH_NONE);
	p2_good("aes128gcm16", BW_ESP_AES_GCM16, 128, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes256gcm16", BW_ESP_AES_GCM16, 256, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes128gcm8", BW_ESP_AES_GCM8, 128, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes192gcm12", BW_ESP_AES_GCM12, 192, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes128gcm128", BW_ESP_AES_GCM16, 128, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes256gcm96", BW_ESP_AES_GCM12, 256, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("aes256gcm64", BW_ESP_AES_GCM8, 256, BW_ESP_AUTH_NONE, BW_DH_NONE);
	p2_good("3des-sha1", BW_ESP_3DES, 192, BW_ESP_AUTH_HMAC_SHA1, BW_DH_NONE);
	p2_good("aes128-sha1-modp2048", BW_ESP_AES_CBC, 128, BW_ESP_AUTH_HMAC_SHA1, BW_DH_MODP2048);
	p2_good("aes256gcm16-ecp384", BW_ESP_AES_GCM16, 256, BW_ESP_AUTH_NONE, BW_DH_ECP384);
	p2_good("aes-sha", BW_ESP_AES_CBC, 128, BW_ESP_AUTH_HMAC_SHA1, BW_DH_NONE);
	p2_good("aes256-sha2_512", BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA512, BW_DH_NONE);
	p2_good("aes192-md5", BW_ESP_AES_CBC, 192, BW_ESP_AUTH_HMAC_MD5, BW_DH_NONE);
	p2_good("aes256-sha384", BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA384, BW_DH_NONE);

	p2_bad("aes128gcm16-sha256", "combines GCM");
	p2_bad("aes256", "has no integrity algorithm");
	p2_bad("sha256", "has no encryption algorithm");
	p2_bad("aesgcm16", "unknown algorithm 'aesgcm16'");
	p2_bad("aes128gcm", "unknown algorithm 'aes128gcm'");
	p2_bad("aes128gcm32", "unknown algorithm 'aes128gcm32'");
	p2_bad("aes512-sha1", "unknown algorithm 'aes512'");
	p2_bad("aes128-sha1-modp768", "group 1 (modp768) is insecure");
	p2_bad("aes128-sha1-modp2048-ecp256", "names two algorithms of one kind");

	bw_p1_proposal_parse("aes-sha-modp2048", &p1, NULL, 0);
	tap_ok(bw_p1_proposal_format(&p1, buf, sizeof(buf)) == 0 &&
		       strcmp(buf, "aes128-sha1-modp2048") == 0,
	       "aliases print in canonical form (aes-sha-modp2048 -> aes128-sha1-modp2048)");
	bw_p1_proposal_parse("3des-md5-modp1024", &p1, NULL, 0);
	tap_ok(bw_p1_proposal_format(&p1, buf, sizeof(buf)) == 0 &&
		       strcmp(buf, "3des-md5-modp1024") == 0,
	       "3des-md5-modp1024 prints back the same");
	bw_p2_proposal_parse("aes256gcm128-modp2048", &p2, NULL, 0);
	tap_ok(bw_p2_proposal_format(&p2, buf, sizeof(buf)) == 0 &&
		       strcmp(buf, "aes256gcm16-modp2048") == 0,
	       "the gcm128 alias prints as gcm16 with its PFS group");
	bw_p2_proposal_parse("3des-sha1", &p2, NULL, 0);
	tap_ok(bw_p2_proposal_format(&p2, buf, sizeof(buf)) == 0 && strcmp(buf, "3des-sha1") == 0,
	       "3des-sha1 prints back the same");
	tap_is_int(bw_p2_proposal_format(&p2, buf, 4), -1, "formatting into a short buffer fails");
}

static void test_names(void)
{
	tap_is_str(bw_topology_name(BW_TOPO_HOST_TO_EVERYWHERE), "host-to-everywhere",
		   "topology names follow DESIGN.md");
	tap_is_str(bw_topology_name(BW_TOPO_NETWORK_TO_NETWORK), "network-to-network",
		   "network-to-network is named");
	tap_is_str(bw_autostart_name(BW_AUTOSTART_LOGIN), "login", "autostart login is named");
	tap_is_str(bw_backend_name(BW_BACKEND_XFRM), "xfrm", "backend xfrm is named");
	tap_is_str(bw_id_type_name(BW_ID_USER_FQDN), "user-fqdn", "id type user-fqdn is named");
	tap_is_str(bw_natt_name(BW_NATT_FORCE), "force", "nat_traversal force is named");
	tap_is_str(bw_topology_name((enum bw_topology)42), "unknown", "an out-of-range enum is 'unknown'");
}

static int agent_parse(const char *text, struct bw_agent_config *c, struct bw_cfg_error *e)
{
	return bw_agent_config_parse("burrow.conf", text, strlen(text), c, e);
}

static void test_agent_config(void)
{
	struct bw_agent_config c;
	struct bw_cfg_error e;
	char dir[] = "/tmp/burrow-agent-XXXXXX", path[64];
	FILE *f;

	memset(&c, 0x77, sizeof(c));
	tap_is_int(agent_parse("", &c, &e), 0, "an empty burrow.conf is valid");
	tap_ok(c.backend == BW_BACKEND_AUTO && c.ike_port == 500 && c.natt_port == 4500 &&
		       c.log_level == BW_LOG_INFO,
	       "burrow.conf defaults: backend auto, ports 500/4500, log_level info");
	tap_is_int(agent_parse("[agent]\nbackend = auto            ; auto | userspace | xfrm\n"
			       "ike_port = 500            ; 0 = dynamic\n"
			       "natt_port = 4500          ; 0 = dynamic\n"
			       "log_level = info          ; error | warn | info | debug | trace\n",
			       &c, &e),
		   0, "DESIGN.md's burrow.conf example parses with its inline comments");
	tap_is_int(agent_parse("[agent]\nbackend = userspace\nike_port = 0\nnatt_port = 0\n"
			       "log_level = trace\n", &c, &e), 0, "every agent key can be set");
	tap_ok(c.backend == BW_BACKEND_USERSPACE && c.ike_port == 0 && c.natt_port == 0 &&
		       c.log_level == BW_LOG_TRACE,
	       "backend userspace, dynamic ports and log_level trace are taken");
	agent_parse("[agent]\nbackend = xfrm\nike_port = 1500\nnatt_port = 65535\n", &c, &e);
	tap_ok(c.backend == BW_BACKEND_XFRM && c.ike_port == 1500 && c.natt_port == 65535,
	       "backend xfrm and explicit ports are taken");

	memset(&c, 0x77, sizeof(c));
	tap_is_int(agent_parse("[agent]\nbackend = kernel\n", &c, &e), -1, "an unknown backend is an error");
	tap_ok(e.line == 2 && strstr(e.msg, "backend must be auto, userspace or xfrm") &&
		       strcmp(e.file, "burrow.conf") == 0,
	       "the backend error is at burrow.conf:2 and lists the choices");
	tap_ok(c.ike_port == 0x7777, "a bad burrow.conf leaves the config untouched");
	agent_parse("[agent]\nike_port = 65536\n", &c, &e);
	tap_ok(e.line == 2 && strstr(e.msg, "ike_port must be a port number"), "ike_port 65536 is refused");
	agent_parse("[agent]\n\nnatt_port = -1\n", &c, &e);
	tap_ok(e.line == 3 && strstr(e.msg, "natt_port must be a port number"), "natt_port -1 is refused at line 3");
	agent_parse("[agent]\nlog_level = verbose\n", &c, &e);
	tap_ok(e.line == 2 && strstr(e.msg, "log_level must be error, warn, info, debug or trace"),
	       "an unknown log_level is refused");
	agent_parse("[agent]\nike_port = 4500\n", &c, &e);
	tap_ok(e.line == 2 && strstr(e.msg, "give them different ports"),
	       "ike_port equal to natt_port is refused");
	agent_parse("[agent]\nport = 1\n", &c, &e);
	tap_ok(e.line == 2 && strstr(e.msg, "unknown key 'port' in [agent]; see docs/configuration.md"),
	       "an unknown agent key is refused with its name");
	agent_parse("[daemon]\n", &c, &e);
	tap_ok(e.line == 1 && strstr(e.msg, "unknown section [daemon]"), "an unknown section is refused");

	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/burrow.conf", dir);
	memset(&c, 0x77, sizeof(c));
	tap_ok(bw_agent_config_load(path, &c, &e) == 0 && c.ike_port == 500,
	       "a missing burrow.conf gives the defaults");
	f = fopen(path, "w");
	fputs("[agent]\nlog_level = debug\n", f);
	fclose(f);
	tap_ok(bw_agent_config_load(path, &c, &e) == 0 && c.log_level == BW_LOG_DEBUG,
	       "burrow.conf is loaded from a file");
	unlink(path);
	rmdir(dir);
}

int main(void)
{
	test_durations();
	test_cidrs();
	test_dh();
	test_proposals();
	test_names();
	test_agent_config();
	return tap_done_testing();
}

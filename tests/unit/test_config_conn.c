/* Tests for connections/NAME.conf: defaults, every key, every error with its file:line,
 * the whole-file rules, keyfile syntax corner cases, and that errors leave out untouched. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tap.h"
#include "config/config.h"

static struct bw_conn_config cfg;

/* tap_is_str checks for NULL, which gcc flags for arrays; pass them through a call. */
static const char *str(const char *s)
{
	return s;
}
static struct bw_cfg_error err;

#define BASE "[connection]\ngateway = vpn.example.com\nremote_networks = 10.1.0.0/24\n"
/* BASE is three lines: what a test appends starts at line 4. */

static int parse_len(const char *text, size_t len)
{
	memset(&err, 0, sizeof(err));
	return bw_conn_config_parse("work", "/etc/burrow/connections/work.conf", text, len, NULL,
				    &cfg, &err);
}

static int parse(const char *text)
{
	return parse_len(text, strlen(text));
}

/* Expects text to be refused at line with a message containing want. */
static void bad(const char *text, int line, const char *want, const char *what)
{
	int rc;

	memset(&cfg, 0xa5, sizeof(cfg));
	rc = parse(text);
	if (!tap_ok(rc == -1 && err.line == line && strstr(err.msg, want) &&
			    strcmp(err.file, "/etc/burrow/connections/work.conf") == 0,
		    "%s (work.conf:%d)", what, line))
		tap_diag("  rc %d, got %s:%d: %s", rc, err.file, err.line, err.msg);
}

static void good(const char *text, const char *what)
{
	if (!tap_is_int(parse(text), 0, "%s", what))
		tap_diag("  %s:%d: %s", err.file, err.line, err.msg);
}

static void test_defaults(void)
{
	char buf[64];

	good(BASE, "a connection with only gateway and remote_networks is valid");
	tap_is_str(cfg.name, "work", "the name is the one given");
	tap_is_str(cfg.file, "/etc/burrow/connections/work.conf", "the file is recorded");
	tap_is_str(cfg.gateway, "vpn.example.com", "gateway is taken");
	tap_ok(cfg.topology == BW_TOPO_HOST_TO_NETWORK, "default topology is host-to-network");
	tap_ok(cfg.mode == BW_MODE_TUNNEL, "default mode is tunnel");
	tap_ok(cfg.autostart == BW_AUTOSTART_NEVER, "default autostart is never");
	tap_ok(!cfg.kill_switch, "default kill_switch is no");
	tap_ok(!cfg.has_local_address, "local_address is unset by default");
	tap_ok(cfg.auth_method == BW_AUTH_PSK, "default auth method is psk");
	tap_ok(!cfg.xauth, "default xauth is no");
	tap_ok(cfg.local_id_type == BW_ID_ADDRESS && cfg.remote_id_type == BW_ID_ADDRESS,
	       "default id types are address");
	tap_ok(cfg.verify_remote_id, "default verify_remote_id is yes");
	tap_ok(cfg.mode_config == BW_MODECFG_NO, "default mode_config is no");
	tap_ok(!cfg.accept_dns, "default dns is no");
	tap_ok(cfg.dns_scope == BW_DNS_SPLIT, "default dns scope is split");
	tap_ok(cfg.exchange == BW_EXCHANGE_MAIN, "default exchange is main");
	tap_is_int(cfg.n_p1_proposals, 2, "two default phase 1 proposals");
	bw_p1_proposal_format(&cfg.p1_proposals[0], buf, sizeof(buf));
	tap_is_str(str(buf), "aes256-sha256-modp2048", "first default phase 1 proposal");
	bw_p1_proposal_format(&cfg.p1_proposals[1], buf, sizeof(buf));
	tap_is_str(str(buf), "aes128-sha1-modp2048", "second default phase 1 proposal");
	tap_is_int(cfg.p1_lifetime_s, 8 * 3600, "default phase 1 lifetime is 8h");
	tap_is_int(cfg.dpd_s, 30, "default dpd is 30s");
	tap_ok(cfg.nat_traversal == BW_NATT_AUTO, "default nat_traversal is auto");
	tap_is_int(cfg.n_p2_proposals, 2, "two default phase 2 proposals");
	bw_p2_proposal_format(&cfg.p2_proposals[0], buf, sizeof(buf));
	tap_is_str(str(buf), "aes256-sha256", "first default phase 2 proposal");
	bw_p2_proposal_format(&cfg.p2_proposals[1], buf, sizeof(buf));
	tap_is_str(str(buf), "aes128-sha1", "second default phase 2 proposal");
	tap_ok(cfg.pfs == BW_DH_MODP2048, "default pfs is modp2048");
	tap_is_int(cfg.p2_lifetime_s, 3600, "default phase 2 lifetime is 1h");
}

/* DESIGN.md's example, inline comments included (without its device line). */
static const char design_example[] =
	"[connection]\n"
	"group = Work\n"
	"gateway = vpn.example.com   ; name or address\n"
	"topology = host-to-network  ; host-to-host | host-to-network | host-to-everywhere | network-to-network\n"
	"mode = tunnel               ; tunnel | transport (host-to-host only)\n"
	"local_address =             ; virtual IP; optional; not with mode_config\n"
	"remote_networks = 10.1.0.0/24, 10.2.0.0/16\n"
	"local_networks =            ; network-to-network only\n"
	"autostart = never           ; never | login | boot   (acted on by policies/defaults.lua)\n"
	"kill_switch = no            ; host-to-everywhere: drop traffic outside the tunnel while it is down\n"
	"\n"
	"[auth]\n"
	"method = psk                ; psk | rsa | ecdsa\n"
	"certificate =               ; PEM paths for rsa/ecdsa\n"
	"private_key =\n"
	"ca =\n"
	"xauth = no                  ; no | yes\n"
	"xauth_user = alice\n"
	"\n"
	"[identifiers]\n"
	"local_id_type = address     ; address | fqdn | user-fqdn | asn1dn | key-id\n"
	"local_id =\n"
	"remote_id_type = address\n"
	"remote_id =\n"
	"verify_remote_id = yes\n"
	"\n"
	"[provisioning]\n"
	"mode_config = no            ; no | pull | push\n"
	"dns = no                    ; accept DNS servers and domains from the gateway\n"
	"\n"
	"[dns]\n"
	"servers = 10.1.0.53\n"
	"search_domains = corp.example\n"
	"scope = split               ; split | global\n"
	"\n"
	"[phase1]\n"
	"exchange = main             ; main | aggressive\n"
	"proposals = aes256-sha256-modp2048, aes128-sha1-modp1024\n"
	"lifetime = 8h\n"
	"dpd = 30s                   ; 0 = off\n"
	"nat_traversal = auto        ; auto | force | off\n"
	"\n"
	"[phase2]\n"
	"proposals = aes256-sha256, aes128gcm16\n"
	"pfs = modp2048              ; a DH group, or none\n"
	"lifetime = 1h\n";

static void test_design_example(void)
{
	char buf[64];

	good(design_example, "DESIGN.md's connection example parses, inline comments and all");
	tap_is_str(cfg.group, "Work", "group is Work");
	tap_is_str(cfg.gateway, "vpn.example.com", "the inline comment is not part of gateway");
	tap_is_int(cfg.n_remote_networks, 2, "two remote networks");
	bw_cidr_format(&cfg.remote_networks[1], buf, sizeof(buf));
	tap_is_str(str(buf), "10.2.0.0/16", "the second remote network is 10.2.0.0/16");
	tap_is_str(cfg.xauth_user, "alice", "xauth_user is alice");
	tap_is_int(cfg.n_dns_servers, 1, "one DNS server");
	tap_is_str(cfg.search_domains[0], "corp.example", "search domain corp.example");
	bw_p1_proposal_format(&cfg.p1_proposals[1], buf, sizeof(buf));
	tap_is_str(str(buf), "aes128-sha1-modp1024", "phase 1 proposals are the file's");
	bw_p2_proposal_format(&cfg.p2_proposals[1], buf, sizeof(buf));
	tap_is_str(str(buf), "aes128gcm16", "phase 2 proposals are the file's");
}

static void test_every_key(void)
{
	char buf[64];

	good("[connection]\n"
	     "group = Home Office\n"
	     "gateway = 192.0.2.10\n"
	     "topology = host-to-host\n"
	     "mode = transport\n"
	     "autostart = boot\n"
	     "[auth]\n"
	     "method = rsa\n"
	     "certificate = /etc/burrow/certs/me.pem\n"
	     "private_key = /etc/burrow/private/me.key\n"
	     "ca = /etc/burrow/certs/ca.pem\n"
	     "xauth = yes\n"
	     "xauth_user = bob\n"
	     "[identifiers]\n"
	     "local_id_type = fqdn\n"
	     "local_id = laptop.example.com\n"
	     "remote_id_type = asn1dn\n"
	     "remote_id = \"C=CH, O=Example, CN=vpn\"\n"
	     "verify_remote_id = false\n"
	     "[dns]\n"
	     "servers = 10.1.0.53, fd00::53\n"
	     "search_domains = corp.example, lab.corp.example\n"
	     "scope = global\n"
	     "[phase1]\n"
	     "exchange = aggressive\n"
	     "proposals = aes128-sha256-ecp256\n"
	     "lifetime = 3h\n"
	     "dpd = 0\n"
	     "nat_traversal = force\n"
	     "[phase2]\n"
	     "proposals = aes256gcm16-modp3072, 3des-sha1\n"
	     "pfs = none\n"
	     "lifetime = 20m\n",
	     "a host-to-host connection setting most keys is valid");
	tap_is_str(cfg.group, "Home Office", "group may contain spaces");
	tap_is_str(cfg.gateway, "192.0.2.10", "gateway may be an address");
	tap_ok(cfg.topology == BW_TOPO_HOST_TO_HOST, "topology host-to-host is taken");
	tap_ok(cfg.mode == BW_MODE_TRANSPORT, "mode transport is taken");
	tap_ok(cfg.autostart == BW_AUTOSTART_BOOT, "autostart boot is taken");
	tap_ok(cfg.auth_method == BW_AUTH_RSA, "method rsa is taken");
	tap_is_str(cfg.certificate, "/etc/burrow/certs/me.pem", "certificate is taken");
	tap_is_str(cfg.private_key, "/etc/burrow/private/me.key", "private_key is taken");
	tap_is_str(cfg.ca, "/etc/burrow/certs/ca.pem", "ca is taken");
	tap_ok(cfg.xauth, "xauth yes is taken");
	tap_is_str(cfg.xauth_user, "bob", "xauth_user is taken");
	tap_ok(cfg.local_id_type == BW_ID_FQDN, "local_id_type fqdn is taken");
	tap_is_str(cfg.local_id, "laptop.example.com", "local_id is taken");
	tap_ok(cfg.remote_id_type == BW_ID_ASN1DN, "remote_id_type asn1dn is taken");
	tap_is_str(cfg.remote_id, "C=CH, O=Example, CN=vpn", "quotes around remote_id are removed");
	tap_ok(!cfg.verify_remote_id, "verify_remote_id = false is taken");
	tap_is_int(cfg.n_dns_servers, 2, "two DNS servers");
	bw_cidr_format(&cfg.dns_servers[1], buf, sizeof(buf));
	tap_is_str(str(buf), "fd00::53", "an IPv6 DNS server is taken");
	tap_is_str(cfg.search_domains[1], "lab.corp.example", "the second search domain is taken");
	tap_ok(cfg.dns_scope == BW_DNS_GLOBAL, "scope global is taken");
	tap_ok(cfg.exchange == BW_EXCHANGE_AGGRESSIVE, "exchange aggressive is taken");
	tap_ok(cfg.n_p1_proposals == 1 && cfg.p1_proposals[0].dh == BW_DH_ECP256,
	       "phase 1 proposals replace the defaults");
	tap_is_int(cfg.p1_lifetime_s, 3 * 3600, "phase 1 lifetime 3h");
	tap_is_int(cfg.dpd_s, 0, "dpd = 0 turns DPD off");
	tap_ok(cfg.nat_traversal == BW_NATT_FORCE, "nat_traversal force is taken");
	tap_ok(cfg.n_p2_proposals == 2 && cfg.p2_proposals[0].encr == BW_ESP_AES_GCM16 &&
		       cfg.p2_proposals[0].dh == BW_DH_MODP3072,
	       "phase 2 proposals keep their own PFS group");
	tap_ok(cfg.pfs == BW_DH_NONE, "pfs none is taken");
	tap_is_int(cfg.p2_lifetime_s, 20 * 60, "phase 2 lifetime 20m");

}

static void test_every_key2(void)
{
	char buf[64];

	good("[connection]\ngateway = vpn.example.com\ntopology = host-to-everywhere\n"
	     "kill_switch = yes\nautostart = login\n"
	     "[auth]\nmethod = ecdsa\ncertificate = /c.pem\nprivate_key = /k.pem\n"
	     "[identifiers]\nlocal_id_type = user-fqdn\nlocal_id = alice@example.com\n"
	     "remote_id_type = key-id\nremote_id = 0a1b2c\n"
	     "[provisioning]\nmode_config = pull\ndns = true\n",
	     "a host-to-everywhere connection with a kill switch is valid");
	tap_ok(cfg.topology == BW_TOPO_HOST_TO_EVERYWHERE && cfg.kill_switch,
	       "kill_switch yes with host-to-everywhere is taken");
	tap_ok(cfg.autostart == BW_AUTOSTART_LOGIN, "autostart login is taken");
	tap_ok(cfg.auth_method == BW_AUTH_ECDSA, "method ecdsa is taken");
	tap_ok(cfg.local_id_type == BW_ID_USER_FQDN && cfg.remote_id_type == BW_ID_KEY_ID,
	       "user-fqdn and key-id types are taken");
	tap_ok(cfg.mode_config == BW_MODECFG_PULL && cfg.accept_dns,
	       "mode_config pull and dns = true are taken");

	good("[connection]\ngateway = 2001:db8::1\ntopology = network-to-network\n"
	     "remote_networks = 10.1.0.0/24, fd01::/48\nlocal_networks = 192.168.1.0/24\n"
	     "local_address = 192.168.1.1\n",
	     "a network-to-network connection is valid");
	tap_ok(cfg.n_local_networks == 1 && cfg.local_networks[0].prefix == 24,
	       "local_networks is taken");
	tap_ok(cfg.has_local_address && cfg.local_address.prefix == 32, "local_address is taken");
	bw_cidr_format(&cfg.remote_networks[1], buf, sizeof(buf));
	tap_is_str(str(buf), "fd01::/48", "IPv6 remote networks are taken");
	tap_is_str(cfg.gateway, "2001:db8::1", "an IPv6 gateway is taken");

	good("[connection]\ngateway = vpn.example.com\n[provisioning]\nmode_config = push\n",
	     "host-to-network with mode_config push needs no remote_networks");
	tap_ok(cfg.mode_config == BW_MODECFG_PUSH && cfg.n_remote_networks == 0,
	       "mode_config push is taken");
}

static void test_value_errors(void)
{
	bad(BASE "group = 0123456789012345678901234567890123456789012345678901234567890123\n", 4,
	    "group is longer than 63 characters", "a group of 64 characters is refused");
	bad(BASE "topology = star\n", 4,
	    "topology must be host-to-host, host-to-network, host-to-everywhere or network-to-network, not 'star'",
	    "an unknown topology is refused with the choices");
	bad(BASE "mode = tunel\n", 4, "mode must be tunnel or transport", "a misspelt mode is refused");
	bad(BASE "autostart = always\n", 4, "autostart must be never, login or boot",
	    "an unknown autostart is refused");
	bad(BASE "kill_switch = on\n", 4, "kill_switch must be yes or no, not 'on'",
	    "a boolean other than yes/no/true/false is refused");
	bad(BASE "topology = Host-To-Host\n", 4, "topology must be", "enum values are case-sensitive");
	bad("[connection]\ngateway = vpn..example.com\n", 2,
	    "gateway 'vpn..example.com' is neither an address nor a host name",
	    "a gateway with an empty label is refused");
	bad("[connection]\ngateway = 10.1.2.300\n", 2, "is neither an address nor a host name",
	    "a mistyped IPv4 gateway is not taken for a name");
	bad("[connection]\ngateway = 10.1.2.0/24\n", 2, "is neither an address nor a host name",
	    "a network as gateway is refused");
	bad(BASE "local_address = 10.9.0.0/24\n", 4, "local_address takes addresses",
	    "local_address must be a single address");
	bad(BASE "local_address = 10.9.0.1, 10.9.0.2\n", 4, "'local_address' has more than 1 entries",
	    "local_address takes one address only");
	bad("[connection]\ngateway = gw\nremote_networks = 10.1.0.5/24\n", 3,
	    "10.1.0.5/24 has host bits set; use the network address 10.1.0.0/24",
	    "a remote network with host bits names the network to use");
	bad("[connection]\ngateway = gw\nremote_networks = 10.1.0.0/24,,10.2.0.0/16\n", 3,
	    "has an empty entry", "an empty list entry is refused");
	bad("[connection]\ngateway = gw\nremote_networks = 10.1.0.0/24, corp\n", 3,
	    "'corp' is not an address or network", "a name in remote_networks is refused");
	bad("[connection]\ngateway = gw\nremote_networks = 1.0.0.0/8,2.0.0.0/8,3.0.0.0/8,4.0.0.0/8,"
	    "5.0.0.0/8,6.0.0.0/8,7.0.0.0/8,8.0.0.0/8,9.0.0.0/8,10.0.0.0/8,11.0.0.0/8,12.0.0.0/8,"
	    "13.0.0.0/8,14.0.0.0/8,15.0.0.0/8,16.0.0.0/8,17.0.0.0/8\n",
	    3, "more than 16 entries", "more than 16 remote networks are refused");
	bad(BASE "[auth]\nmethod = password\n", 5, "method must be psk, rsa or ecdsa",
	    "an unknown auth method is refused");
	bad(BASE "[auth]\ncertificate = certs/me.pem\n", 5, "certificate must be an absolute path",
	    "a relative certificate path is refused");
	bad(BASE "[auth]\nprivate_key = me.key\n", 5, "private_key must be an absolute path",
	    "a relative private_key path is refused");
	bad(BASE "[auth]\nca = ca.pem\n", 5, "ca must be an absolute path", "a relative ca path is refused");
	{
		/* Lines stop at 198 characters, so a path field of BW_CFG_PATH_MAX never cuts one. */
		char text[1024], path[186];

		memset(path, 'd', sizeof(path) - 1);
		path[0] = '/';
		path[sizeof(path) - 1] = '\0';
		snprintf(text, sizeof(text), BASE "[auth]\nca = %s\n", path);
		tap_ok(parse(text) == 0 && strcmp(cfg.ca, path) == 0, "a %zu-character path fills its line and is taken whole",
		       strlen(path));
	}
	bad(BASE "[auth]\nxauth = maybe\n", 5, "xauth must be yes or no", "a bad xauth is refused");
	bad(BASE "[identifiers]\nlocal_id_type = email\n", 5,
	    "local_id_type must be address, fqdn, user-fqdn, asn1dn or key-id",
	    "an unknown local_id_type is refused");
	bad(BASE "[identifiers]\nremote_id_type = dn\n", 5, "remote_id_type must be",
	    "an unknown remote_id_type is refused");
	bad(BASE "[identifiers]\nverify_remote_id = 1\n", 5, "verify_remote_id must be yes or no",
	    "a bad verify_remote_id is refused");
	bad(BASE "[provisioning]\nmode_config = yes\n", 5, "mode_config must be no, pull or push",
	    "mode_config = yes is refused");
	bad(BASE "[provisioning]\ndns = split\n", 5, "dns must be yes or no", "a bad dns is refused");
	bad(BASE "[dns]\nservers = 10.1.0.0/24\n", 5, "servers takes addresses",
	    "a network as DNS server is refused");
	bad(BASE "[dns]\nservers = 1.1.1.1, 1.0.0.1, 8.8.8.8, 8.8.4.4, 9.9.9.9\n", 5,
	    "more than 4 entries", "more than 4 DNS servers are refused");
	bad(BASE "[dns]\nsearch_domains = corp example\n", 5,
	    "search domain 'corp example' is not a domain name", "a search domain with a space is refused");
	bad(BASE "[dns]\nscope = local\n", 5, "scope must be split or global", "an unknown scope is refused");
	bad(BASE "[phase1]\nexchange = quick\n", 5, "exchange must be main or aggressive",
	    "an unknown exchange is refused");
	bad(BASE "[phase1]\nproposals = aes256-sha256-modp768\n", 5,
	    "group 1 (modp768) is insecure; use modp2048 or stronger",
	    "modp768 in a phase 1 proposal is refused");
	bad(BASE "[phase1]\nproposals = aes256-sha256-modp2048, aes128-sha1\n", 5,
	    "phase 1 proposal 'aes128-sha1' needs", "a phase 1 proposal without a group is refused");
	bad(BASE "[phase1]\nproposals = a-b-c,a-b-c,a-b-c,a-b-c,a-b-c,a-b-c,a-b-c,a-b-c,a-b-c\n", 5,
	    "more than 8 entries", "more than 8 proposals are refused");
	bad(BASE "[phase1]\nlifetime = 0\n", 5, "lifetime cannot be 0", "a zero phase 1 lifetime is refused");
	bad(BASE "[phase1]\nlifetime = 8 hours\n", 5, "lifetime must be a duration such as 30s",
	    "a lifetime in words is refused");
	bad(BASE "[phase1]\nlifetime = 50000d\n", 5, "lifetime must be a duration",
	    "an overflowing lifetime is refused");
	bad(BASE "[phase1]\ndpd = -1\n", 5, "dpd must be a duration", "a negative dpd is refused");
	bad(BASE "[phase1]\nnat_traversal = yes\n", 5, "nat_traversal must be auto, force or off",
	    "nat_traversal = yes is refused");
	bad(BASE "[phase2]\nproposals = aes128gcm16-sha1\n", 5, "combines GCM",
	    "GCM with an integrity algorithm is refused");
	bad(BASE "[phase2]\npfs = modp768\n", 5, "group 1 (modp768) is insecure; use modp2048 or stronger",
	    "pfs = modp768 is refused");
	bad(BASE "[phase2]\npfs = yes\n", 5, "pfs must be a DH group", "pfs = yes is refused");
	bad(BASE "[phase2]\nlifetime = 0s\n", 5, "lifetime cannot be 0", "a zero phase 2 lifetime is refused");
	bad(BASE "[connection]\ndevice = cisco-asa\n", 5,
	    "unknown device 'cisco-asa'; run 'burrow devices' to list them",
	    "device without any loaded profiles is an unknown device");
}

static void test_rules(void)
{
	bad("[connection]\ntopology = host-to-host\n", 0, "no gateway is set",
	    "gateway is required (line 0: the whole file)");
	bad("[connection]\ngateway = gw\nremote_networks = 10.1.0.0/24\nmode = transport\n", 4,
	    "mode = transport needs topology = host-to-host", "transport mode needs host-to-host");
	bad("[connection]\ngateway = gw\ntopology = network-to-network\nremote_networks = 10.1.0.0/24\n",
	    3, "network-to-network needs local_networks", "network-to-network needs local_networks");
	bad(BASE "local_networks = 192.168.0.0/24\n", 4,
	    "local_networks is only for topology = network-to-network",
	    "local_networks is refused outside network-to-network");
	bad("[connection]\ngateway = gw\n", 0,
	    "host-to-network needs remote_networks, or mode_config = pull or push",
	    "host-to-network needs remote_networks without mode_config");
	bad("[connection]\ngateway = gw\ntopology = host-to-network\n", 3,
	    "host-to-network needs remote_networks", "the remote_networks error points at topology");
	bad("[connection]\ngateway = gw\ntopology = network-to-network\nlocal_networks = 10.2.0.0/24\n",
	    3, "network-to-network needs remote_networks", "network-to-network needs remote_networks");
	bad("[connection]\ngateway = gw\ntopology = host-to-everywhere\nremote_networks = 10.1.0.0/24\n",
	    4, "remote_networks does not apply to topology = host-to-everywhere",
	    "remote_networks is refused with host-to-everywhere");
	bad("[connection]\ngateway = gw\nlocal_address = 10.9.0.2\n[provisioning]\nmode_config = pull\n",
	    3, "local_address cannot be combined with mode_config", "local_address is refused with mode_config");
	bad(BASE "kill_switch = yes\n", 4, "kill_switch needs topology = host-to-everywhere",
	    "kill_switch is refused outside host-to-everywhere");
	bad(BASE "[provisioning]\ndns = yes\n", 5, "dns = yes takes DNS servers from Mode Config",
	    "dns = yes needs mode_config");
	bad(BASE "[auth]\nmethod = rsa\ncertificate = /c.pem\n", 5,
	    "method = rsa needs both certificate and private_key", "rsa needs a private key");
	bad(BASE "[auth]\nmethod = ecdsa\nprivate_key = /k.pem\n", 5,
	    "method = ecdsa needs both certificate and private_key", "ecdsa needs a certificate");
	good(BASE "[auth]\nmethod = rsa\ncertificate = /alice.p12\n", "a .p12 certificate needs no private_key");
	good(BASE "[auth]\nmethod = ecdsa\ncertificate = /alice.PFX\n", "nor does a .pfx one");
	bad(BASE "[identifiers]\nlocal_id_type = fqdn\n", 5, "local_id_type = fqdn needs local_id",
	    "a non-address id type needs an id");
	bad(BASE "[identifiers]\nremote_id = vpn.example.com\n", 5,
	    "remote_id must be an address such as 192.0.2.1 when its type is address",
	    "an address-type id must be an address");
	bad(BASE "[identifiers]\nlocal_id_type = user-fqdn\nlocal_id = alice\n", 6,
	    "local_id must look like user@example.com", "a user-fqdn id needs an @");
	bad(BASE "[identifiers]\nremote_id_type = fqdn\nremote_id = not a name\n", 6,
	    "remote_id must be a host name", "an fqdn id must be a host name");
}

static void test_syntax(void)
{
	char longline[400], nul[] = BASE "group = a\0b\n";

	bad(BASE "[phase1]\nfoo = 1\n", 5, "unknown key 'foo' in [phase1]; see docs/configuration.md",
	    "an unknown key is refused with its section");
	bad(BASE "[phase1]\ngateway = gw2\n", 5, "unknown key 'gateway' in [phase1]",
	    "a key in the wrong section is unknown");
	bad(BASE "\n[tunnel]\nmode = tunnel\n", 5, "unknown section [tunnel]; see docs/configuration.md",
	    "an unknown section is refused");
	bad(BASE "[empty]\n", 4, "unknown section [empty]", "an unknown empty section is refused too");
	bad(BASE "[device]\nname = x\n", 4, "unknown section [device]",
	    "[device] belongs to device profiles only");
	bad("gateway = gw\n[connection]\n", 1, "key 'gateway' comes before any [section] header",
	    "a key before any section is refused");
	bad(BASE "gateway = other\n", 4, "'gateway' is set twice in [connection] (first on line 2)",
	    "a key given twice is refused and names the first line");
	bad(BASE "[phase1]\nlifetime = 1h\n[phase1]\nlifetime = 2h\n", 7, "'lifetime' is set twice",
	    "a key given twice across repeated sections is refused");
	bad(BASE "this is not a key\n", 4, "neither a [section] header nor 'key = value'",
	    "a line without '=' is a syntax error at its line");
	bad(BASE "[phase1\n", 4, "neither a [section] header", "an unclosed section header is a syntax error");
	bad(BASE "[auth]\nxauth_user = a\x01z\n", 5, "contains a control character",
	    "a control character in a value is refused");
	bad(BASE "[auth]\nxauth_user = \xff\xfe\n", 5, "not valid UTF-8", "invalid UTF-8 is refused");
	bad(BASE "[auth]\nxauth_user = \xc0\xaf\n", 5, "not valid UTF-8", "an overlong UTF-8 sequence is refused");

	memset(&cfg, 0xa5, sizeof(cfg));
	tap_ok(parse_len(nul, sizeof(nul) - 1) == -1 && err.line == 4 && strstr(err.msg, "NUL byte"),
	       "an embedded NUL byte is refused at its line, even though strlen stops there");

	snprintf(longline, sizeof(longline), BASE "group = %0300d\n", 0);
	bad(longline, 4, "longer than", "a line longer than inih's buffer is refused, not cut");

	good("\xef\xbb\xbf" BASE, "a UTF-8 byte order mark is accepted");
	good("[connection]\r\ngateway = gw\r\nremote_networks = 10.1.0.0/24\r\n",
	     "CRLF line ends are accepted");
	tap_is_str(cfg.gateway, "gw", "CR is not part of the value");
	good("# comment\n; comment\n\n" BASE "  ; indented comment\n", "comments and blank lines are skipped");
	good("[connection]\ngateway = gw ; the gateway\nremote_networks = 10.1.0.0/24 ; office\n",
	     "inline ';' comments after values are removed");
	tap_is_str(cfg.gateway, "gw", "the inline comment is not part of the value");
	good("[connection]\n  gateway = gw\n[phase1]\n  lifetime = 2h\n[connection]\n"
	     "remote_networks = 10.1.0.0/24\n",
	     "an indented first key of a section is an ordinary key");
	tap_is_int(cfg.p1_lifetime_s, 7200, "the indented key's value is taken");
	good("[connection]\ngateway : gw\nremote_networks : 10.1.0.0/24\n", "'key: value' is accepted");
	good(BASE "[auth]\nxauth_user = \"  spaced  \"\n", "double quotes keep surrounding spaces");
	tap_is_str(cfg.xauth_user, "  spaced  ", "the quoted value keeps its spaces, not its quotes");

	/* Lists continue on indented lines; anything else indented after a key is a mistake. */
	good("[connection]\ngateway = gw\nremote_networks = 10.1.0.0/24,\n    10.2.0.0/16\n"
	     "    10.3.0.0/16 ; third\n",
	     "a list continues on indented lines");
	tap_is_int(cfg.n_remote_networks, 3, "all three continued networks are taken");
	bad("[connection]\ngateway = gw\n    remote_networks = 10.1.0.0/24\n", 3,
	    "the line is indented, so it continues 'gateway' from above; remove the indentation",
	    "an indented key after a key is refused with a hint");
	bad("[connection]\ngateway = gw\n  extra\nremote_networks = 10.1.0.0/24\n", 3,
	    "continues 'gateway'", "a non-list key cannot continue on the next line");

	/* Empty values are the same as no value. */
	good(BASE "local_address =\n[auth]\nxauth_user =\n[phase1]\nproposals =\nlifetime =\n",
	     "empty values are accepted");
	tap_ok(!cfg.has_local_address && cfg.n_p1_proposals == 2 && cfg.p1_lifetime_s == 8 * 3600,
	       "empty values leave the defaults in place");
	bad(BASE "local_address =\nlocal_address = 10.9.0.2\n", 5, "'local_address' is set twice",
	    "an empty value still counts for duplicates");
	bad("", 0, "no gateway is set", "an empty file is refused for its missing gateway");
}

static void test_untouched(void)
{
	struct bw_conn_config before;

	memset(&cfg, 0x5c, sizeof(cfg));
	before = cfg;
	parse(BASE "[phase1]\nlifetime = 2h\nproposals = aes256-sha256-modp2048\ndpd = bad\n");
	tap_ok(memcmp(&before, &cfg, sizeof(cfg)) == 0,
	       "a file with a bad last key leaves out exactly as it was");
	tap_ok(err.line == 7, "and reports the bad key's line");
	parse(BASE "[phase1]\ndpd = 10s\n[connection]\nkill_switch = yes\n");
	tap_ok(memcmp(&before, &cfg, sizeof(cfg)) == 0,
	       "a file that fails a whole-file rule leaves out exactly as it was");
	tap_ok(bw_conn_config_parse("bad name", "x.conf", BASE, strlen(BASE), NULL, &cfg, &err) == -1 &&
		       strstr(err.msg, "the connection name may only use") &&
		       memcmp(&before, &cfg, sizeof(cfg)) == 0,
	       "a connection name with a space is refused and out is untouched");
	/* First error in file order wins, even when a later line's key comes first in the table. */
	parse("[connection]\ngateway = gw\n[phase2]\nlifetime = x\n[connection]\ngroup = "
	      "0123456789012345678901234567890123456789012345678901234567890123456789\n");
	tap_is_int(err.line, 4, "of two bad values the earlier line is reported");
}

static void test_load(void)
{
	char dir[] = "/tmp/burrow-conn-XXXXXX", path[64];
	FILE *f;

	if (!mkdtemp(dir)) {
		tap_ok(0, "mkdtemp");
		return;
	}
	snprintf(path, sizeof(path), "%s/office.conf", dir);
	f = fopen(path, "w");
	fputs(BASE "autostart = login\n", f);
	fclose(f);
	tap_ok(bw_conn_config_load(path, NULL, &cfg, &err) == 0 && strcmp(cfg.name, "office") == 0 &&
		       cfg.autostart == BW_AUTOSTART_LOGIN && strcmp(cfg.file, path) == 0,
	       "a connection loads from NAME.conf and takes NAME from the file stem");
	f = fopen(path, "w");
	fputs(BASE "autostart = sometimes\n", f);
	fclose(f);
	tap_ok(bw_conn_config_load(path, NULL, &cfg, &err) == -1 && strcmp(err.file, path) == 0 &&
		       err.line == 4,
	       "a load error names the file's path and line");
	unlink(path);
	tap_ok(bw_conn_config_load(path, NULL, &cfg, &err) == -1 && strstr(err.msg, "cannot open"),
	       "a missing file is reported");
	rmdir(dir);
}

/* With certificates, an unset local identity is the certificate's subject (asn1dn), and an
 * asn1dn remote_id may stay empty (the CA vouches for the gateway's subject). */
static void test_cert_ids(void)
{
	tap_is_int(parse(BASE "[auth]\nmethod = rsa\ncertificate = /c.pem\nprivate_key = /k.pem\nca = /ca.pem\n"), 0,
		   "method = rsa with certificate, key and ca parses");
	tap_ok(cfg.local_id_type == BW_ID_ASN1DN && !cfg.local_id[0],
	       "with certificates the local identity defaults to asn1dn (the certificate's subject)");
	tap_is_int(parse(BASE "[auth]\nmethod = rsa\ncertificate = /c.pem\nprivate_key = /k.pem\nca = /ca.pem\n"
			 "crl = /etc/burrow/a.crl, /etc/burrow/b.pem\n"), 0, "crl takes a list of files");
	tap_ok(cfg.n_crls == 2 && strcmp(cfg.crls[0], "/etc/burrow/a.crl") == 0 &&
	       strcmp(cfg.crls[1], "/etc/burrow/b.pem") == 0, "both crl files are kept in order");
	bad(BASE "[auth]\ncrl = /a.crl, b.crl\n", 5, "crl must be an absolute path", "a relative crl file is refused");
	tap_is_int(parse(BASE "[auth]\nmethod = ecdsa\ncertificate = /c.pem\nprivate_key = /k.pem\n"
			 "[identifiers]\nlocal_id_type = address\nremote_id_type = asn1dn\n"), 0,
		   "an explicit local_id_type and an empty asn1dn remote_id are accepted with certificates");
	tap_ok(cfg.local_id_type == BW_ID_ADDRESS, "an explicit local_id_type = address is kept");
	tap_is_int(parse(BASE "[identifiers]\nlocal_id_type = address\n"), 0, "a psk connection parses");
	tap_ok(cfg.local_id_type == BW_ID_ADDRESS, "with a psk the local identity stays the address");
	bad(BASE "[identifiers]\nremote_id_type = asn1dn\n", 5, "remote_id_type = asn1dn needs remote_id",
	    "with a psk an asn1dn id still needs its DN");
}

int main(void)
{
	test_defaults();
	test_cert_ids();
	test_design_example();
	test_every_key();
	test_every_key2();
	test_value_errors();
	test_rules();
	test_syntax();
	test_untouched();
	test_load();
	return tap_done_testing();
}

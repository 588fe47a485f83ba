/* Configuration of the agent, of connections and of their secrets: types and loaders.
 * Keyfiles are parsed with libinih; every error names file:line and says what to do. */
#ifndef BURROW_CONFIG_H
#define BURROW_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "algs.h"

#define BW_NAME_MAX 64		/* connection, group and device names */
#define BW_MAX_NETS 16		/* remote_networks, local_networks */
#define BW_MAX_PROPOSALS 8	/* per phase */
#define BW_MAX_DNS 4		/* dns servers */
#define BW_MAX_DOMAINS 8	/* dns search domains */
#define BW_ID_MAX 256
/* Paths named inside a connection file; every connection holds its own copy, so not PATH_MAX. */
#define BW_CFG_PATH_MAX 512
#define BW_MAX_CRLS 8		/* crl = files */

struct bw_cfg_error {
	char file[PATH_MAX];
	int line;		/* 0 when the error is about the whole file */
	char msg[256];		/* one sentence that says what to do */
};

/* An IPv4 or IPv6 network; an address is a network with the full prefix. */
struct bw_cidr {
	sa_family_t family;	/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* network byte order; IPv4 in the first 4 bytes */
	uint8_t prefix;
};

enum bw_backend { BW_BACKEND_AUTO, BW_BACKEND_USERSPACE, BW_BACKEND_XFRM };
enum bw_topology {
	BW_TOPO_HOST_TO_HOST,
	BW_TOPO_HOST_TO_NETWORK,
	BW_TOPO_HOST_TO_EVERYWHERE,
	BW_TOPO_NETWORK_TO_NETWORK,
};
enum bw_ipsec_mode { BW_MODE_TUNNEL, BW_MODE_TRANSPORT };
enum bw_autostart { BW_AUTOSTART_NEVER, BW_AUTOSTART_LOGIN, BW_AUTOSTART_BOOT };
enum bw_auth_method { BW_AUTH_PSK, BW_AUTH_RSA, BW_AUTH_ECDSA };
enum bw_id_type {
	BW_ID_ADDRESS,
	BW_ID_FQDN,
	BW_ID_USER_FQDN,
	BW_ID_ASN1DN,
	BW_ID_KEY_ID,
};
enum bw_modecfg { BW_MODECFG_NO, BW_MODECFG_PULL, BW_MODECFG_PUSH };
enum bw_dns_scope { BW_DNS_SPLIT, BW_DNS_GLOBAL };
enum bw_exchange { BW_EXCHANGE_MAIN, BW_EXCHANGE_AGGRESSIVE };
enum bw_natt { BW_NATT_AUTO, BW_NATT_FORCE, BW_NATT_OFF };

/* burrow.conf */
struct bw_agent_config {
	enum bw_backend backend;
	uint16_t ike_port;	/* 0 = dynamic */
	uint16_t natt_port;	/* 0 = dynamic */
	int log_level;		/* enum bw_log_level */
};

/* connections/NAME.conf after the device profile was merged in. */
struct bw_conn_config {
	char name[BW_NAME_MAX];
	char file[PATH_MAX];

	/* [connection] */
	char group[BW_NAME_MAX];
	char device[BW_NAME_MAX];
	char gateway[256];
	enum bw_topology topology;
	enum bw_ipsec_mode mode;
	bool has_local_address;
	struct bw_cidr local_address;
	struct bw_cidr remote_networks[BW_MAX_NETS];
	size_t n_remote_networks;
	struct bw_cidr local_networks[BW_MAX_NETS];
	size_t n_local_networks;
	enum bw_autostart autostart;
	bool kill_switch;

	/* [auth] */
	enum bw_auth_method auth_method;
	char certificate[BW_CFG_PATH_MAX];
	char private_key[BW_CFG_PATH_MAX];
	char ca[BW_CFG_PATH_MAX];
	char crls[BW_MAX_CRLS][BW_CFG_PATH_MAX];	/* CRL files (PEM or DER) checked against the gateway's chain */
	size_t n_crls;
	bool xauth;
	char xauth_user[128];

	/* [identifiers]; empty local_id/remote_id mean "the address" */
	enum bw_id_type local_id_type;
	char local_id[BW_ID_MAX];
	enum bw_id_type remote_id_type;
	char remote_id[BW_ID_MAX];
	bool verify_remote_id;

	/* [provisioning] */
	enum bw_modecfg mode_config;
	bool accept_dns;

	/* [dns] */
	struct bw_cidr dns_servers[BW_MAX_DNS];
	size_t n_dns_servers;
	char search_domains[BW_MAX_DOMAINS][256];
	size_t n_search_domains;
	enum bw_dns_scope dns_scope;

	/* [phase1] */
	enum bw_exchange exchange;
	struct bw_p1_proposal p1_proposals[BW_MAX_PROPOSALS];
	size_t n_p1_proposals;
	uint32_t p1_lifetime_s;
	uint32_t dpd_s;		/* 0 = off */
	enum bw_natt nat_traversal;

	/* [phase2] */
	struct bw_p2_proposal p2_proposals[BW_MAX_PROPOSALS];
	size_t n_p2_proposals;
	enum bw_dh_group pfs;
	uint32_t p2_lifetime_s;
};

/* secrets/NAME.secrets. Wipe with bw_secrets_wipe() when done. Each value is
 * NUL-terminated; psk may hold any bytes when given as 0x-hex, so use psk_len. */
struct bw_secrets {
	bool has_psk;
	char psk[256];
	size_t psk_len;
	bool has_xauth_password;
	char xauth_password[256];
	bool has_private_key_passphrase;
	char private_key_passphrase[256];
	bool has_pkcs12_password;
	char pkcs12_password[256];
};

/* A device profile (devices/ID.conf): a partial connection with a few keys. */
struct bw_device {
	char id[BW_NAME_MAX];		/* file stem, e.g. "cisco-asa" */
	char name[128];			/* [device] name = "Cisco ASA 5500-X" */
	char vendor[64];		/* [device] vendor */
	char model[128];		/* [device] model */
	char source[512];		/* [device] source = document the values come from */
	char file[PATH_MAX];
	char *text;			/* the file's contents, merged under a connection */
	size_t text_len;
};

struct bw_devices {
	struct bw_device *items;	/* sorted by id */
	size_t n;
};

/* Defaults that apply when neither the device nor the connection sets a key. */
void bw_agent_config_defaults(struct bw_agent_config *cfg);
/* Both fill cfg from the defaults plus the file, and write it only on success. A missing
 * burrow.conf is not an error: load then gives the defaults. */
int bw_agent_config_load(const char *path, struct bw_agent_config *cfg, struct bw_cfg_error *err);
int bw_agent_config_parse(const char *file, const char *buf, size_t len,
			  struct bw_agent_config *cfg, struct bw_cfg_error *err);

/* Loads every *.conf of dir; broken profiles are reported through err_cb and skipped.
 * A missing dir is not an error (zero devices). Returns 0 or -errno. */
int bw_devices_load_dir(const char *dir, struct bw_devices *out,
			void (*err_cb)(void *ctx, const struct bw_cfg_error *err), void *ctx);
const struct bw_device *bw_devices_find(const struct bw_devices *devs, const char *id);
void bw_devices_free(struct bw_devices *devs);

/* Parses one connection from a buffer (the fuzz target's entry) or a file; NAME is the
 * file stem. devs may be NULL (then `device =` is an error). Returns 0, or -1 with err set;
 * out is only written on success. */
int bw_conn_config_parse(const char *name, const char *file, const char *buf, size_t len,
			 const struct bw_devices *devs, struct bw_conn_config *out,
			 struct bw_cfg_error *err);
int bw_conn_config_load(const char *path, const struct bw_devices *devs,
			struct bw_conn_config *out, struct bw_cfg_error *err);

/* Loads secrets; refuses files not owned by root (or the agent's uid) or readable by
 * group/others, with an error naming the chmod/chown that fixes it. */
int bw_secrets_load(const char *path, struct bw_secrets *out, struct bw_cfg_error *err);
int bw_secrets_parse(const char *file, const char *buf, size_t len, struct bw_secrets *out,
		     struct bw_cfg_error *err);
void bw_secrets_wipe(struct bw_secrets *s);

/* Value parsers, each 0 on success and -1 on error (with a reason in err/errlen); out is
 * only written on success. Durations may be 0 here; callers decide whether 0 is allowed. */
int bw_duration_parse(const char *s, uint32_t *out_s);	/* "90", "30s", "5m", "8h", "1d" */
/* "10.1.0.0/24", "10.1.0.5" (a /32), "fd00::/64". -2 when host bits are set ("10.1.0.5/24"). */
int bw_cidr_parse(const char *s, struct bw_cidr *out);
/* The same, with a sentence for the user, e.g. "... use the network address 10.1.0.0/24". */
int bw_cidr_parse_err(const char *s, struct bw_cidr *out, char *err, size_t errlen);
/* "10.1.0.0/24"; a full-length prefix prints as the bare address. -1 if buf is too small. */
int bw_cidr_format(const struct bw_cidr *c, char *buf, size_t len);
int bw_p1_proposal_parse(const char *s, struct bw_p1_proposal *out, char *err, size_t errlen);
int bw_p2_proposal_parse(const char *s, struct bw_p2_proposal *out, char *err, size_t errlen);
int bw_p1_proposal_format(const struct bw_p1_proposal *p, char *buf, size_t len);
int bw_p2_proposal_format(const struct bw_p2_proposal *p, char *buf, size_t len);
/* "modp2048", "ecp256", "none"; -1 unknown, -2 for modp768, which Burrow refuses. */
int bw_dh_group_parse(const char *s, enum bw_dh_group *out);
const char *bw_dh_group_name(enum bw_dh_group g);

/* Enum names as in DESIGN.md, for status output and JSON. */
const char *bw_topology_name(enum bw_topology t);
const char *bw_autostart_name(enum bw_autostart a);
const char *bw_backend_name(enum bw_backend b);
const char *bw_ipsec_mode_name(enum bw_ipsec_mode m);
const char *bw_auth_method_name(enum bw_auth_method m);
const char *bw_id_type_name(enum bw_id_type t);
const char *bw_modecfg_name(enum bw_modecfg m);
const char *bw_dns_scope_name(enum bw_dns_scope s);
const char *bw_exchange_name(enum bw_exchange e);
const char *bw_natt_name(enum bw_natt n);

#endif

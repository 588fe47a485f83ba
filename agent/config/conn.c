/* connections/NAME.conf: every key, its checks, the device profile merged underneath,
 * and the whole-file rules, which are checked once after both files were applied. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

#define F_CONN 0x100u	/* may appear in connections/NAME.conf */
#define F_DEV 0x200u	/* may also appear in a device profile */
#define F_INFO 0x400u	/* [device], only in a device profile */

enum ck {
	CK_GROUP, CK_DEVICE, CK_GATEWAY, CK_TOPOLOGY, CK_MODE, CK_LOCAL_ADDRESS,
	CK_REMOTE_NETWORKS, CK_LOCAL_NETWORKS, CK_AUTOSTART, CK_KILL_SWITCH,
	CK_METHOD, CK_CERTIFICATE, CK_PRIVATE_KEY, CK_CA, CK_CRL, CK_XAUTH, CK_XAUTH_USER,
	CK_LOCAL_ID_TYPE, CK_LOCAL_ID, CK_REMOTE_ID_TYPE, CK_REMOTE_ID, CK_VERIFY_REMOTE_ID,
	CK_MODE_CONFIG, CK_DNS,
	CK_SERVERS, CK_SEARCH_DOMAINS, CK_SCOPE,
	CK_EXCHANGE, CK_P1_PROPOSALS, CK_P1_LIFETIME, CK_DPD, CK_NATT,
	CK_P2_PROPOSALS, CK_PFS, CK_P2_LIFETIME,
	CK_DEV_NAME, CK_DEV_VENDOR, CK_DEV_MODEL, CK_DEV_SOURCE,
	CK_COUNT
};

static const struct bw_kf_key conn_keys[CK_COUNT] = {
	[CK_GROUP] = { "connection", "group", F_CONN },
	[CK_DEVICE] = { "connection", "device", F_CONN },
	[CK_GATEWAY] = { "connection", "gateway", F_CONN },
	[CK_TOPOLOGY] = { "connection", "topology", F_CONN },
	[CK_MODE] = { "connection", "mode", F_CONN },
	[CK_LOCAL_ADDRESS] = { "connection", "local_address", F_CONN },
	[CK_REMOTE_NETWORKS] = { "connection", "remote_networks", F_CONN | BW_KF_LIST },
	[CK_LOCAL_NETWORKS] = { "connection", "local_networks", F_CONN | BW_KF_LIST },
	[CK_AUTOSTART] = { "connection", "autostart", F_CONN },
	[CK_KILL_SWITCH] = { "connection", "kill_switch", F_CONN },
	[CK_METHOD] = { "auth", "method", F_CONN | F_DEV },
	[CK_CERTIFICATE] = { "auth", "certificate", F_CONN },
	[CK_PRIVATE_KEY] = { "auth", "private_key", F_CONN },
	[CK_CA] = { "auth", "ca", F_CONN },
	[CK_CRL] = { "auth", "crl", F_CONN | BW_KF_LIST },
	[CK_XAUTH] = { "auth", "xauth", F_CONN | F_DEV },
	[CK_XAUTH_USER] = { "auth", "xauth_user", F_CONN },
	[CK_LOCAL_ID_TYPE] = { "identifiers", "local_id_type", F_CONN },
	[CK_LOCAL_ID] = { "identifiers", "local_id", F_CONN },
	[CK_REMOTE_ID_TYPE] = { "identifiers", "remote_id_type", F_CONN },
	[CK_REMOTE_ID] = { "identifiers", "remote_id", F_CONN },
	[CK_VERIFY_REMOTE_ID] = { "identifiers", "verify_remote_id", F_CONN },
	[CK_MODE_CONFIG] = { "provisioning", "mode_config", F_CONN | F_DEV },
	[CK_DNS] = { "provisioning", "dns", F_CONN },
	[CK_SERVERS] = { "dns", "servers", F_CONN | BW_KF_LIST },
	[CK_SEARCH_DOMAINS] = { "dns", "search_domains", F_CONN | BW_KF_LIST },
	[CK_SCOPE] = { "dns", "scope", F_CONN },
	[CK_EXCHANGE] = { "phase1", "exchange", F_CONN | F_DEV },
	[CK_P1_PROPOSALS] = { "phase1", "proposals", F_CONN | F_DEV | BW_KF_LIST },
	[CK_P1_LIFETIME] = { "phase1", "lifetime", F_CONN | F_DEV },
	[CK_DPD] = { "phase1", "dpd", F_CONN | F_DEV },
	[CK_NATT] = { "phase1", "nat_traversal", F_CONN | F_DEV },
	[CK_P2_PROPOSALS] = { "phase2", "proposals", F_CONN | F_DEV | BW_KF_LIST },
	[CK_PFS] = { "phase2", "pfs", F_CONN | F_DEV },
	[CK_P2_LIFETIME] = { "phase2", "lifetime", F_CONN | F_DEV },
	[CK_DEV_NAME] = { "device", "name", F_INFO },
	[CK_DEV_VENDOR] = { "device", "vendor", F_INFO },
	[CK_DEV_MODEL] = { "device", "model", F_INFO },
	[CK_DEV_SOURCE] = { "device", "source", F_INFO },
};

static const struct bw_kf_schema conn_schema = {
	.keys = conn_keys, .n_keys = CK_COUNT, .known = F_CONN, .allowed = F_CONN,
};

static const struct bw_kf_schema device_schema = {
	.keys = conn_keys, .n_keys = CK_COUNT,
	.known = F_CONN | F_DEV | F_INFO, .allowed = F_DEV | F_INFO,
	.deny_prefix = "device profiles may not set",
	.deny_suffix = "; it belongs in the connection",
};

/* Where a key's value came from, for whole-file errors that point at it. */
struct origin {
	const char *file;
	int line;
};

struct build {
	struct bw_conn_config c;
	struct origin org[CK_COUNT];
	struct bw_device *dev;	/* set while checking a device profile */
};

static void conn_defaults(struct bw_conn_config *c)
{
	memset(c, 0, sizeof(*c));
	c->topology = BW_TOPO_HOST_TO_NETWORK;
	c->mode = BW_MODE_TUNNEL;
	c->autostart = BW_AUTOSTART_NEVER;
	c->kill_switch = false;
	c->auth_method = BW_AUTH_PSK;
	c->xauth = false;
	c->local_id_type = BW_ID_ADDRESS;
	c->remote_id_type = BW_ID_ADDRESS;
	c->verify_remote_id = true;
	c->mode_config = BW_MODECFG_NO;
	c->accept_dns = false;
	c->dns_scope = BW_DNS_SPLIT;
	c->exchange = BW_EXCHANGE_MAIN;
	c->p1_proposals[0] = (struct bw_p1_proposal){ BW_P1_ENCR_AES_CBC, 256, BW_HASH_SHA256,
						      BW_DH_MODP2048 };
	c->p1_proposals[1] = (struct bw_p1_proposal){ BW_P1_ENCR_AES_CBC, 128, BW_HASH_SHA1,
						      BW_DH_MODP2048 };
	c->n_p1_proposals = 2;
	c->p1_lifetime_s = 8 * 3600;
	c->dpd_s = 30;
	c->nat_traversal = BW_NATT_AUTO;
	c->p2_proposals[0] = (struct bw_p2_proposal){ BW_ESP_AES_CBC, 256, BW_ESP_AUTH_HMAC_SHA256,
						      BW_DH_NONE };
	c->p2_proposals[1] = (struct bw_p2_proposal){ BW_ESP_AES_CBC, 128, BW_ESP_AUTH_HMAC_SHA1,
						      BW_DH_NONE };
	c->n_p2_proposals = 2;
	c->pfs = BW_DH_MODP2048;
	c->p2_lifetime_s = 3600;
}

#define FAIL(...)                                                   \
	do {                                                        \
		bw_cfg_error_set(err, file, line, __VA_ARGS__);     \
		return -1;                                          \
	} while (0)

static int set_enum(const char *const *names, const char *key, const char *v, int *out,
		    const char *file, int line, struct bw_cfg_error *err)
{
	char list[160] = "";
	size_t n = 0, used = 0;
	int i = bw_cfg_enum_parse(names, v);

	if (i >= 0) {
		*out = i;
		return 0;
	}
	while (names[n])
		n++;
	for (size_t j = 0; j < n; j++) {
		int w = snprintf(list + used, sizeof(list) - used, "%s%s",
				 j == 0 ? "" : j + 1 == n ? " or " : ", ", names[j]);

		if (w < 0 || (size_t)w >= sizeof(list) - used)
			break;
		used += (size_t)w;
	}
	FAIL("%s must be %s, not '%.40s'", key, list, v);
}

static int set_bool(const char *key, const char *v, bool *out, const char *file, int line,
		    struct bw_cfg_error *err)
{
	if (strcmp(v, "yes") == 0 || strcmp(v, "true") == 0) {
		*out = true;
		return 0;
	}
	if (strcmp(v, "no") == 0 || strcmp(v, "false") == 0) {
		*out = false;
		return 0;
	}
	FAIL("%s must be yes or no, not '%.40s'", key, v);
}

static int set_text(const char *key, const char *v, char *dst, size_t size, const char *file,
		    int line, struct bw_cfg_error *err)
{
	if (strlen(v) >= size)
		FAIL("%s is longer than %zu characters; shorten it", key, size - 1);
	memcpy(dst, v, strlen(v) + 1);
	return 0;
}

static int set_path(const char *key, const char *v, char *dst, const char *file, int line,
		    struct bw_cfg_error *err)
{
	/* The agent runs from /, so a relative path would not mean what the user meant. */
	if (v[0] != '/')
		FAIL("%s must be an absolute path such as /etc/burrow/certs/%s.pem", key, key);
	return set_text(key, v, dst, BW_CFG_PATH_MAX, file, line, err);
}

static int set_lifetime(const char *key, const char *v, bool zero_ok, uint32_t *out,
			const char *file, int line, struct bw_cfg_error *err)
{
	uint32_t d;

	if (bw_duration_parse(v, &d) != 0)
		FAIL("%s must be a duration such as 30s, 5m, 8h or 1d (a bare number is seconds), "
		     "not '%.40s'", key, v);
	if (d == 0 && !zero_ok)
		FAIL("%s cannot be 0; use a duration such as 1h", key);
	*out = d;
	return 0;
}

static int list_error(int rc, const char *key, size_t max, const char *file, int line,
		      struct bw_cfg_error *err)
{
	if (rc == BW_KF_LIST_EMPTY_ITEM)
		FAIL("the list '%s' has an empty entry; remove the extra comma", key);
	if (rc == BW_KF_LIST_TOO_MANY)
		FAIL("'%s' has more than %zu entries; keep the %zu that matter most", key, max, max);
	FAIL("an entry of '%s' is longer than %d characters", key, BW_KF_ITEM_MAX - 1);
}

/* A list of networks ("10.1.0.0/24") or, when single, of plain addresses. */
/* crl = a.crl, b.pem: absolute paths, at most BW_MAX_CRLS. */
static int set_paths(const char *key, const char *v, char (*dst)[BW_CFG_PATH_MAX], size_t max, size_t *n_out,
		     const char *file, int line, struct bw_cfg_error *err)
{
	char items[BW_MAX_CRLS][BW_KF_ITEM_MAX];
	size_t n;
	int rc = bw_kf_split_list(v, items, max, &n);

	if (rc != 0)
		return list_error(rc, key, max, file, line, err);
	for (size_t i = 0; i < n; i++)
		if (set_path(key, items[i], dst[i], file, line, err) != 0)
			return -1;
	*n_out = n;
	return 0;
}

static int set_cidrs(const char *key, const char *v, bool single, struct bw_cidr *dst,
		     size_t max, size_t *n_out, const char *file, int line,
		     struct bw_cfg_error *err)
{
	char items[BW_MAX_NETS][BW_KF_ITEM_MAX], why[200];
	struct bw_cidr tmp[BW_MAX_NETS];
	size_t n;
	int rc = bw_kf_split_list(v, items, max, &n);

	if (rc != 0)
		return list_error(rc, key, max, file, line, err);
	for (size_t i = 0; i < n; i++) {
		if (bw_cidr_parse_err(items[i], &tmp[i], why, sizeof(why)) != 0)
			FAIL("%s", why);
		if (single && tmp[i].prefix != (tmp[i].family == AF_INET ? 32 : 128))
			FAIL("%s takes addresses such as 10.1.0.53, not networks like '%.60s'", key,
			     items[i]);
	}
	memcpy(dst, tmp, n * sizeof(*tmp));
	*n_out = n;
	return 0;
}

static bool is_plain_address(const char *s)
{
	struct bw_cidr c;

	return bw_cidr_parse(s, &c) == 0 && !strchr(s, '/');
}

static int apply_one(struct build *b, enum ck k, const char *v, const char *file, int line,
		     struct bw_cfg_error *err)
{
	struct bw_conn_config *c = &b->c;
	const char *key = conn_keys[k].name;
	int e = 0;

	switch (k) {
	case CK_GROUP:
		return set_text(key, v, c->group, sizeof(c->group), file, line, err);
	case CK_DEVICE:
		return set_text(key, v, c->device, sizeof(c->device), file, line, err);
	case CK_GATEWAY:
		if (!is_plain_address(v) && !bw_cfg_is_hostname(v))
			FAIL("gateway '%.60s' is neither an address nor a host name", v);
		return set_text(key, v, c->gateway, sizeof(c->gateway), file, line, err);
	case CK_TOPOLOGY:
		if (set_enum(bw_topology_names, key, v, &e, file, line, err))
			return -1;
		c->topology = (enum bw_topology)e;
		return 0;
	case CK_MODE:
		if (set_enum(bw_mode_names, key, v, &e, file, line, err))
			return -1;
		c->mode = (enum bw_ipsec_mode)e;
		return 0;
	case CK_LOCAL_ADDRESS: {
		struct bw_cidr a;
		size_t n;

		if (set_cidrs(key, v, true, &a, 1, &n, file, line, err))
			return -1;
		c->local_address = a;
		c->has_local_address = true;
		return 0;
	}
	case CK_REMOTE_NETWORKS:
		return set_cidrs(key, v, false, c->remote_networks, BW_MAX_NETS,
				 &c->n_remote_networks, file, line, err);
	case CK_LOCAL_NETWORKS:
		return set_cidrs(key, v, false, c->local_networks, BW_MAX_NETS,
				 &c->n_local_networks, file, line, err);
	case CK_AUTOSTART:
		if (set_enum(bw_autostart_names, key, v, &e, file, line, err))
			return -1;
		c->autostart = (enum bw_autostart)e;
		return 0;
	case CK_KILL_SWITCH:
		return set_bool(key, v, &c->kill_switch, file, line, err);
	case CK_METHOD:
		if (set_enum(bw_auth_names, key, v, &e, file, line, err))
			return -1;
		c->auth_method = (enum bw_auth_method)e;
		return 0;
	case CK_CERTIFICATE:
		return set_path(key, v, c->certificate, file, line, err);
	case CK_PRIVATE_KEY:
		return set_path(key, v, c->private_key, file, line, err);
	case CK_CA:
		return set_path(key, v, c->ca, file, line, err);
	case CK_CRL:
		return set_paths(key, v, c->crls, BW_MAX_CRLS, &c->n_crls, file, line, err);
	case CK_XAUTH:
		return set_bool(key, v, &c->xauth, file, line, err);
	case CK_XAUTH_USER:
		return set_text(key, v, c->xauth_user, sizeof(c->xauth_user), file, line, err);
	case CK_LOCAL_ID_TYPE:
		if (set_enum(bw_id_type_names, key, v, &e, file, line, err))
			return -1;
		c->local_id_type = (enum bw_id_type)e;
		return 0;
	case CK_LOCAL_ID:
		return set_text(key, v, c->local_id, sizeof(c->local_id), file, line, err);
	case CK_REMOTE_ID_TYPE:
		if (set_enum(bw_id_type_names, key, v, &e, file, line, err))
			return -1;
		c->remote_id_type = (enum bw_id_type)e;
		return 0;
	case CK_REMOTE_ID:
		return set_text(key, v, c->remote_id, sizeof(c->remote_id), file, line, err);
	case CK_VERIFY_REMOTE_ID:
		return set_bool(key, v, &c->verify_remote_id, file, line, err);
	case CK_MODE_CONFIG:
		if (set_enum(bw_modecfg_names, key, v, &e, file, line, err))
			return -1;
		c->mode_config = (enum bw_modecfg)e;
		return 0;
	case CK_DNS:
		return set_bool(key, v, &c->accept_dns, file, line, err);
	case CK_SERVERS:
		return set_cidrs(key, v, true, c->dns_servers, BW_MAX_DNS, &c->n_dns_servers, file,
				 line, err);
	case CK_SEARCH_DOMAINS: {
		char items[BW_MAX_DOMAINS][BW_KF_ITEM_MAX];
		size_t n;
		int rc = bw_kf_split_list(v, items, BW_MAX_DOMAINS, &n);

		if (rc != 0)
			return list_error(rc, key, BW_MAX_DOMAINS, file, line, err);
		for (size_t i = 0; i < n; i++)
			if (!bw_cfg_is_hostname(items[i]))
				FAIL("search domain '%.60s' is not a domain name such as corp.example",
				     items[i]);
		_Static_assert(sizeof(c->search_domains[0]) == BW_KF_ITEM_MAX, "domain size");
		memset(c->search_domains, 0, sizeof(c->search_domains));
		memcpy(c->search_domains, items, n * sizeof(items[0]));
		c->n_search_domains = n;
		return 0;
	}
	case CK_SCOPE:
		if (set_enum(bw_scope_names, key, v, &e, file, line, err))
			return -1;
		c->dns_scope = (enum bw_dns_scope)e;
		return 0;
	case CK_EXCHANGE:
		if (set_enum(bw_exchange_names, key, v, &e, file, line, err))
			return -1;
		c->exchange = (enum bw_exchange)e;
		return 0;
	case CK_P1_PROPOSALS:
	case CK_P2_PROPOSALS: {
		char items[BW_MAX_PROPOSALS][BW_KF_ITEM_MAX], why[200];
		struct bw_p1_proposal p1[BW_MAX_PROPOSALS];
		struct bw_p2_proposal p2[BW_MAX_PROPOSALS];
		size_t n;
		int rc = bw_kf_split_list(v, items, BW_MAX_PROPOSALS, &n);

		if (rc != 0)
			return list_error(rc, key, BW_MAX_PROPOSALS, file, line, err);
		for (size_t i = 0; i < n; i++) {
			rc = k == CK_P1_PROPOSALS ?
				     bw_p1_proposal_parse(items[i], &p1[i], why, sizeof(why)) :
				     bw_p2_proposal_parse(items[i], &p2[i], why, sizeof(why));
			if (rc != 0)
				FAIL("%s", why);
		}
		if (k == CK_P1_PROPOSALS) {
			memcpy(c->p1_proposals, p1, n * sizeof(*p1));
			c->n_p1_proposals = n;
		} else {
			memcpy(c->p2_proposals, p2, n * sizeof(*p2));
			c->n_p2_proposals = n;
		}
		return 0;
	}
	case CK_P1_LIFETIME:
		return set_lifetime(key, v, false, &c->p1_lifetime_s, file, line, err);
	case CK_DPD:
		return set_lifetime(key, v, true, &c->dpd_s, file, line, err);
	case CK_NATT:
		if (set_enum(bw_natt_names, key, v, &e, file, line, err))
			return -1;
		c->nat_traversal = (enum bw_natt)e;
		return 0;
	case CK_PFS: {
		enum bw_dh_group g;
		int rc = bw_dh_group_parse(v, &g);

		if (rc == -2)
			FAIL("%s", bw_dh_insecure_msg());
		if (rc != 0)
			FAIL("pfs must be a DH group such as modp2048 or ecp256, or none; not '%.40s'", v);
		c->pfs = g;
		return 0;
	}
	case CK_P2_LIFETIME:
		return set_lifetime(key, v, false, &c->p2_lifetime_s, file, line, err);
	case CK_DEV_NAME:
		return b->dev ? set_text(key, v, b->dev->name, sizeof(b->dev->name), file, line, err) : 0;
	case CK_DEV_VENDOR:
		return b->dev ? set_text(key, v, b->dev->vendor, sizeof(b->dev->vendor), file, line, err) : 0;
	case CK_DEV_MODEL:
		return b->dev ? set_text(key, v, b->dev->model, sizeof(b->dev->model), file, line, err) : 0;
	case CK_DEV_SOURCE:
		return b->dev ? set_text(key, v, b->dev->source, sizeof(b->dev->source), file, line, err) : 0;
	case CK_COUNT:
		break;
	}
	return 0;
}

/* Applies the keys of one file in the order of their lines, so that the first bad line
 * is the one reported. Empty values mean "unset" and are skipped. */
static int apply_all(struct build *b, const struct bw_kf_value *vals, const char *file,
		     struct bw_cfg_error *err)
{
	int order[CK_COUNT];
	size_t n = 0;

	for (int k = 0; k < CK_COUNT; k++) {
		size_t j;

		if (!vals[k].set || !vals[k].value[0])
			continue;
		for (j = n; j > 0 && vals[order[j - 1]].line > vals[k].line; j--)
			order[j] = order[j - 1];
		order[j] = k;
		n++;
	}
	for (size_t i = 0; i < n; i++) {
		enum ck k = (enum ck)order[i];

		if (apply_one(b, k, vals[k].value, file, vals[k].line, err) != 0)
			return -1;
		b->org[k] = (struct origin){ file, vals[k].line };
	}
	return 0;
}

/* certificate = x.p12 or x.pfx: a PKCS#12 file, which holds the private key too. */
static bool is_p12_name(const char *path)
{
	size_t n = strlen(path);

	return n > 4 && (strcasecmp(path + n - 4, ".p12") == 0 || strcasecmp(path + n - 4, ".pfx") == 0);
}

static int check_id(const struct build *b, enum ck type_key, enum ck id_key, enum bw_id_type type,
		    const char *id, const char *cfile, struct bw_cfg_error *err)
{
	const struct origin *o = b->org[id_key].file ? &b->org[id_key] : &b->org[type_key];
	const char *file = o->file ? o->file : cfile;
	int line = o->line;
	const char *tname = bw_id_type_name(type), *iname = conn_keys[id_key].name;

	if (!id[0]) {
		/* asn1dn without a DN: our certificate's subject, or the gateway's as its CA vouches. */
		if (type == BW_ID_ADDRESS || (type == BW_ID_ASN1DN && b->c.auth_method != BW_AUTH_PSK))
			return 0;
		FAIL("%s = %s needs %s to be set in [identifiers]", conn_keys[type_key].name, tname,
		     iname);
	}
	if (type == BW_ID_ADDRESS && !is_plain_address(id))
		FAIL("%s must be an address such as 192.0.2.1 when its type is address", iname);
	if (type == BW_ID_FQDN && !bw_cfg_is_hostname(id))
		FAIL("%s must be a host name such as vpn.example.com when its type is fqdn", iname);
	if (type == BW_ID_USER_FQDN && (!strchr(id, '@') || id[0] == '@'))
		FAIL("%s must look like user@example.com when its type is user-fqdn", iname);
	return 0;
}

/* The rules that involve several keys, once both files were applied. Each error points at
 * the key to change, in whichever file set it. */
static int check_rules(const struct build *b, const char *cfile, struct bw_cfg_error *err)
{
	const struct bw_conn_config *c = &b->c;
	const char *file = cfile;
	int line = 0;

#define AT(key) (file = b->org[key].file ? b->org[key].file : cfile, line = b->org[key].line)

	if (!c->gateway[0]) {
		AT(CK_GATEWAY);
		FAIL("no gateway is set; add 'gateway = NAME-OR-ADDRESS' to [connection]");
	}
	if (c->mode == BW_MODE_TRANSPORT && c->topology != BW_TOPO_HOST_TO_HOST) {
		AT(CK_MODE);
		FAIL("mode = transport needs topology = host-to-host; use mode = tunnel");
	}
	if (c->topology == BW_TOPO_NETWORK_TO_NETWORK && c->n_local_networks == 0) {
		AT(CK_TOPOLOGY);
		FAIL("network-to-network needs local_networks; list the networks behind this host");
	}
	if (c->topology != BW_TOPO_NETWORK_TO_NETWORK && c->n_local_networks > 0) {
		AT(CK_LOCAL_NETWORKS);
		FAIL("local_networks is only for topology = network-to-network; remove it");
	}
	if ((c->topology == BW_TOPO_HOST_TO_HOST || c->topology == BW_TOPO_HOST_TO_EVERYWHERE) &&
	    c->n_remote_networks > 0) {
		AT(CK_REMOTE_NETWORKS);
		FAIL("remote_networks does not apply to topology = %s; remove it",
		     bw_topology_name(c->topology));
	}
	if (c->topology == BW_TOPO_HOST_TO_NETWORK && c->n_remote_networks == 0 &&
	    c->mode_config == BW_MODECFG_NO) {
		AT(CK_TOPOLOGY);
		FAIL("host-to-network needs remote_networks, or mode_config = pull or push to learn "
		     "them from the gateway");
	}
	if (c->topology == BW_TOPO_NETWORK_TO_NETWORK && c->n_remote_networks == 0) {
		AT(CK_TOPOLOGY);
		FAIL("network-to-network needs remote_networks; list the networks behind the gateway");
	}
	if (c->has_local_address && c->mode_config != BW_MODECFG_NO) {
		AT(CK_LOCAL_ADDRESS);
		FAIL("local_address cannot be combined with mode_config, which gets the address from "
		     "the gateway; remove one");
	}
	if (c->kill_switch && c->topology != BW_TOPO_HOST_TO_EVERYWHERE) {
		AT(CK_KILL_SWITCH);
		FAIL("kill_switch needs topology = host-to-everywhere; set kill_switch = no");
	}
	if (c->accept_dns && c->mode_config == BW_MODECFG_NO) {
		AT(CK_DNS);
		FAIL("dns = yes takes DNS servers from Mode Config; set mode_config = pull or push");
	}
	/* A PKCS#12 file holds the key too; one found by content is checked when it loads. */
	if (c->auth_method != BW_AUTH_PSK && (!c->certificate[0] || (!c->private_key[0] &&
	    !is_p12_name(c->certificate)))) {
		AT(CK_METHOD);
		FAIL("method = %s needs both certificate and private_key in [auth] (or certificate = a "
		     "PKCS#12 file, .p12 or .pfx)", bw_auth_method_name(c->auth_method));
	}
	if (check_id(b, CK_LOCAL_ID_TYPE, CK_LOCAL_ID, c->local_id_type, c->local_id, cfile, err) ||
	    check_id(b, CK_REMOTE_ID_TYPE, CK_REMOTE_ID, c->remote_id_type, c->remote_id, cfile, err))
		return -1;
	/* Defaults guarantee proposals; this guards the invariant the IKE code relies on. */
	if (c->n_p1_proposals == 0 || c->n_p2_proposals == 0) {
		AT(c->n_p1_proposals == 0 ? CK_P1_PROPOSALS : CK_P2_PROPOSALS);
		FAIL("each phase needs at least one proposal");
	}
#undef AT
	return 0;
}

int bw_conn_config_parse(const char *name, const char *file, const char *buf, size_t len,
			 const struct bw_devices *devs, struct bw_conn_config *out,
			 struct bw_cfg_error *err)
{
	struct bw_kf_value cv[CK_COUNT], dv[CK_COUNT];
	struct bw_cfg_error scratch;
	struct build *b;
	int rc = -1;

	if (!err)
		err = &scratch;
	if (!file)
		file = "";
	memset(cv, 0, sizeof(cv));
	memset(dv, 0, sizeof(dv));
	b = calloc(1, sizeof(*b));
	if (!b) {
		bw_cfg_error_set(err, file, 0, "out of memory");
		return -1;
	}
	if (!name || !bw_cfg_is_name(name)) {
		bw_cfg_error_set(err, file, 0, "the connection name may only use letters, digits, "
				 "'.', '_' and '-' (at most %d); rename the file", BW_NAME_MAX - 1);
		goto out;
	}
	if (bw_kf_parse(&conn_schema, file, buf, len, cv, err) != 0)
		goto out;
	conn_defaults(&b->c);
	bw_strlcpy(b->c.name, name, sizeof(b->c.name));
	if (bw_strlcpy(b->c.file, file, sizeof(b->c.file)) != 0) {
		bw_cfg_error_set(err, file, 0, "the file's path is too long");
		goto out;
	}
	if (cv[CK_DEVICE].set && cv[CK_DEVICE].value[0]) {
		const char *id = cv[CK_DEVICE].value;
		const struct bw_device *dev = devs ? bw_devices_find(devs, id) : NULL;

		if (!dev) {
			bw_cfg_error_set(err, file, cv[CK_DEVICE].line, "unknown device '%.60s'; run "
					 "'burrow devices' to list them", id);
			goto out;
		}
		if (bw_kf_parse(&device_schema, dev->file, dev->text, dev->text ? dev->text_len : 0,
				dv, err) != 0 ||
		    apply_all(b, dv, dev->file, err) != 0)
			goto out;
	}
	if (apply_all(b, cv, file, err) != 0)
		goto out;
	/* With certificates our identity is, unless set, the certificate's subject (asn1dn). */
	if (b->c.auth_method != BW_AUTH_PSK && !b->org[CK_LOCAL_ID_TYPE].file && !b->c.local_id[0])
		b->c.local_id_type = BW_ID_ASN1DN;
	if (check_rules(b, file, err) != 0)
		goto out;
	*out = b->c;
	rc = 0;
out:
	bw_kf_values_clear(cv, CK_COUNT);
	bw_kf_values_clear(dv, CK_COUNT);
	free(b);
	return rc;
}

int bw_conn_config_load(const char *path, const struct bw_devices *devs,
			struct bw_conn_config *out, struct bw_cfg_error *err)
{
	char name[BW_NAME_MAX], *buf;
	const char *base = strrchr(path, '/');
	size_t n, len;
	int rc;

	base = base ? base + 1 : path;
	n = strlen(base);
	if (n > 5 && strcmp(base + n - 5, ".conf") == 0)
		n -= 5;
	if (n >= sizeof(name)) {
		bw_cfg_error_set(err, path, 0, "the connection name is longer than %d characters; "
				 "rename the file", BW_NAME_MAX - 1);
		return -1;
	}
	memcpy(name, base, n);
	name[n] = '\0';
	if (bw_kf_read_file(path, false, BW_KF_FILE_MAX, NULL, &buf, &len, err) != 0)
		return -1;
	rc = bw_conn_config_parse(name, path, buf, len, devs, out, err);
	free(buf);
	return rc;
}

int bw_device_check(const char *file, const char *buf, size_t len, struct bw_device *dev,
		    struct bw_cfg_error *err)
{
	struct bw_kf_value dv[CK_COUNT];
	struct bw_device info;
	struct build *b;
	int rc = -1;

	memset(dv, 0, sizeof(dv));
	memset(&info, 0, sizeof(info));
	b = calloc(1, sizeof(*b));
	if (!b) {
		bw_cfg_error_set(err, file, 0, "out of memory");
		return -1;
	}
	conn_defaults(&b->c);
	b->dev = &info;
	if (bw_kf_parse(&device_schema, file, buf, len, dv, err) == 0 &&
	    apply_all(b, dv, file, err) == 0) {
		memcpy(dev->name, info.name, sizeof(info.name));
		memcpy(dev->vendor, info.vendor, sizeof(info.vendor));
		memcpy(dev->model, info.model, sizeof(info.model));
		memcpy(dev->source, info.source, sizeof(info.source));
		rc = 0;
	}
	bw_kf_values_clear(dv, CK_COUNT);
	free(b);
	return rc;
}

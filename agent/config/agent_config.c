/* burrow.conf: the agent's own settings ([agent] backend, ports, log level), with the
 * defaults that apply when the file or a key is missing. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "keyfile.h"
#include "log.h"

enum ak { AK_BACKEND, AK_IKE_PORT, AK_NATT_PORT, AK_LOG_LEVEL, AK_COUNT };

static const struct bw_kf_key agent_keys[AK_COUNT] = {
	[AK_BACKEND] = { "agent", "backend", 0x100 },
	[AK_IKE_PORT] = { "agent", "ike_port", 0x100 },
	[AK_NATT_PORT] = { "agent", "natt_port", 0x100 },
	[AK_LOG_LEVEL] = { "agent", "log_level", 0x100 },
};

static const struct bw_kf_schema agent_schema = {
	.keys = agent_keys, .n_keys = AK_COUNT, .known = 0x100, .allowed = 0x100,
};

void bw_agent_config_defaults(struct bw_agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->backend = BW_BACKEND_AUTO;
	cfg->ike_port = 500;
	cfg->natt_port = 4500;
	cfg->log_level = BW_LOG_INFO;
}

static int parse_port(const char *v, uint16_t *out)
{
	size_t n = strspn(v, "0123456789");
	unsigned long p = 0;

	if (n == 0 || n > 5 || v[n])
		return -1;
	for (size_t i = 0; i < n; i++)
		p = p * 10 + (unsigned long)(v[i] - '0');
	if (p > 65535)
		return -1;
	*out = (uint16_t)p;
	return 0;
}

int bw_agent_config_parse(const char *file, const char *buf, size_t len,
			  struct bw_agent_config *cfg, struct bw_cfg_error *err)
{
	struct bw_kf_value vals[AK_COUNT];
	struct bw_agent_config c;
	struct bw_cfg_error scratch;
	const struct bw_kf_value *v;
	int rc = -1, i;

	if (!err)
		err = &scratch;
	if (!file)
		file = "";
	memset(vals, 0, sizeof(vals));
	bw_agent_config_defaults(&c);
	if (bw_kf_parse(&agent_schema, file, buf, len, vals, err) != 0)
		goto out;
	v = &vals[AK_BACKEND];
	if (v->set && v->value[0]) {
		if ((i = bw_cfg_enum_parse(bw_backend_names, v->value)) < 0) {
			bw_cfg_error_set(err, file, v->line, "backend must be auto, userspace or "
					 "xfrm, not '%.40s'", v->value);
			goto out;
		}
		c.backend = (enum bw_backend)i;
	}
	v = &vals[AK_IKE_PORT];
	if (v->set && v->value[0] && parse_port(v->value, &c.ike_port) != 0) {
		bw_cfg_error_set(err, file, v->line, "ike_port must be a port number from 0 "
				 "(dynamic) to 65535, not '%.40s'", v->value);
		goto out;
	}
	v = &vals[AK_NATT_PORT];
	if (v->set && v->value[0] && parse_port(v->value, &c.natt_port) != 0) {
		bw_cfg_error_set(err, file, v->line, "natt_port must be a port number from 0 "
				 "(dynamic) to 65535, not '%.40s'", v->value);
		goto out;
	}
	v = &vals[AK_LOG_LEVEL];
	if (v->set && v->value[0]) {
		if ((i = bw_log_level_parse(v->value)) < 0) {
			bw_cfg_error_set(err, file, v->line, "log_level must be error, warn, info, "
					 "debug or trace, not '%.40s'", v->value);
			goto out;
		}
		c.log_level = i;
	}
	if (c.ike_port != 0 && c.ike_port == c.natt_port) {
		v = vals[AK_NATT_PORT].set ? &vals[AK_NATT_PORT] : &vals[AK_IKE_PORT];
		bw_cfg_error_set(err, file, v->line, "ike_port and natt_port are both %u; give "
				 "them different ports", c.ike_port);
		goto out;
	}
	*cfg = c;
	rc = 0;
out:
	bw_kf_values_clear(vals, AK_COUNT);
	return rc;
}

int bw_agent_config_load(const char *path, struct bw_agent_config *cfg, struct bw_cfg_error *err)
{
	char *buf;
	size_t len;
	int rc;

	if (access(path, F_OK) != 0 && errno == ENOENT) {
		bw_agent_config_defaults(cfg);
		return 0;
	}
	if (bw_kf_read_file(path, false, BW_KF_FILE_MAX, NULL, &buf, &len, err) != 0)
		return -1;
	rc = bw_agent_config_parse(path, buf, len, cfg, err);
	free(buf);
	return rc;
}

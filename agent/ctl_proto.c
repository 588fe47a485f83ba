/* The control protocol: request validation and reply encoding.
 * A table names each command and the type of each argument it accepts; anything else is refused. */
#include "ctl_proto.h"

#include <stdio.h>
#include <string.h>

#include "util.h"

enum arg_type { A_STR, A_BOOL, A_INT, A_STRLIST, A_OBJECT };

struct arg_spec {
	const char *key;
	enum arg_type type;
};

struct cmd_spec {
	const char *name;
	struct arg_spec args[6];
};

/* Indexed by enum bw_ctl_cmd. */
static const struct cmd_spec cmds[BW_CTL_N_CMDS] = {
	[BW_CTL_LIST] = { "list", { { NULL, 0 } } },
	[BW_CTL_STATUS] = { "status", { { "name", A_STR }, { NULL, 0 } } },
	[BW_CTL_START] = { "start", { { "names", A_STRLIST }, { "group", A_STR }, { "wait", A_BOOL }, { NULL, 0 } } },
	[BW_CTL_STOP] = { "stop", { { "names", A_STRLIST }, { "group", A_STR }, { "all", A_BOOL }, { "wait", A_BOOL }, { NULL, 0 } } },
	[BW_CTL_RESTART] = { "restart", { { "names", A_STRLIST }, { "group", A_STR }, { "wait", A_BOOL }, { NULL, 0 } } },
	[BW_CTL_LOG] = { "log", { { "name", A_STR }, { "level", A_STR }, { "follow", A_BOOL }, { "lines", A_INT }, { NULL, 0 } } },
	[BW_CTL_EXPLAIN] = { "explain", { { "name", A_STR }, { NULL, 0 } } },
	[BW_CTL_EVENTS] = { "events", { { "follow", A_BOOL }, { NULL, 0 } } },
	[BW_CTL_EMIT] = { "emit", { { "event", A_OBJECT }, { NULL, 0 } } },
	[BW_CTL_LOCATION] = { "location", { { "set", A_STR }, { "auto", A_BOOL }, { NULL, 0 } } },
	[BW_CTL_RELOAD] = { "reload", { { NULL, 0 } } },
	[BW_CTL_DEVICES] = { "devices", { { "id", A_STR }, { NULL, 0 } } },
	[BW_CTL_SECRET] = { "secret", { { "name", A_STR }, { "key", A_STR }, { "value", A_STR }, { NULL, 0 } } },
	[BW_CTL_DOCTOR] = { "doctor", { { "name", A_STR }, { NULL, 0 } } },
	[BW_CTL_REPORT] = { "report", { { "path", A_STR }, { NULL, 0 } } },
	[BW_CTL_VERSION_CMD] = { "version", { { NULL, 0 } } },
};

const char *bw_ctl_cmd_name(enum bw_ctl_cmd cmd)
{
	return (unsigned)cmd < BW_CTL_N_CMDS ? cmds[cmd].name : "?";
}

static int type_ok(json_t *v, enum arg_type t)
{
	switch (t) {
	case A_STR:
		return json_is_string(v) && json_string_length(v) < 4096 &&
		       strlen(json_string_value(v)) == json_string_length(v);
	case A_BOOL:
		return json_is_boolean(v);
	case A_INT:
		return json_is_integer(v) && json_integer_value(v) >= 0 &&
		       json_integer_value(v) <= 1000000;
	case A_STRLIST: {
		size_t i;
		json_t *e;

		if (!json_is_array(v) || json_array_size(v) > 256)
			return 0;
		json_array_foreach(v, i, e)
			if (!type_ok(e, A_STR))
				return 0;
		return 1;
	}
	case A_OBJECT:
		return json_is_object(v);
	}
	return 0;
}

static const char *type_name(enum arg_type t)
{
	static const char *const names[] = { "a string", "true or false", "a non-negative integer",
					     "a list of strings", "an object" };
	return names[t];
}

int bw_ctl_request_parse(const char *line, size_t len, struct bw_ctl_request *out,
			 char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *root, *v, *cmd, *args;
	const struct cmd_spec *spec = NULL;
	enum bw_ctl_cmd which = BW_CTL_N_CMDS;
	const char *key;

	if (len > BW_CTL_MAX_LINE) {
		snprintf(err, errlen, "request of %zu bytes exceeds the limit of %d", len, BW_CTL_MAX_LINE);
		return -1;
	}
	root = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		snprintf(err, errlen, "request is not valid JSON: %s", jerr.text);
		return -1;
	}
	if (!json_is_object(root)) {
		snprintf(err, errlen, "request must be a JSON object");
		goto fail;
	}
	v = json_object_get(root, "v");
	if (!json_is_integer(v) || json_integer_value(v) != BW_CTL_VERSION) {
		snprintf(err, errlen, "unsupported protocol version; burrow and burrowd must be the same release");
		goto fail;
	}
	cmd = json_object_get(root, "cmd");
	if (!json_is_string(cmd)) {
		snprintf(err, errlen, "request has no \"cmd\" string");
		goto fail;
	}
	for (size_t i = 0; i < BW_CTL_N_CMDS; i++)
		if (strcmp(cmds[i].name, json_string_value(cmd)) == 0 &&
		    strlen(json_string_value(cmd)) == json_string_length(cmd)) {
			spec = &cmds[i];
			which = (enum bw_ctl_cmd)i;
		}
	if (!spec) {
		snprintf(err, errlen, "unknown command \"%.64s\"", json_string_value(cmd));
		goto fail;
	}
	json_object_foreach(root, key, v) {
		if (strcmp(key, "v") && strcmp(key, "cmd") && strcmp(key, "args")) {
			snprintf(err, errlen, "unknown request field \"%.64s\"", key);
			goto fail;
		}
	}
	args = json_object_get(root, "args");
	if (args && !json_is_object(args)) {
		snprintf(err, errlen, "\"args\" must be an object");
		goto fail;
	}
	if (args) {
		json_object_foreach(args, key, v) {
			const struct arg_spec *a = NULL;

			for (const struct arg_spec *s = spec->args; s->key; s++)
				if (strcmp(s->key, key) == 0)
					a = s;
			if (!a) {
				snprintf(err, errlen, "command \"%s\" takes no argument \"%.64s\"", spec->name, key);
				goto fail;
			}
			if (!type_ok(v, a->type)) {
				snprintf(err, errlen, "argument \"%s\" of \"%s\" must be %s", key, spec->name,
					 type_name(a->type));
				goto fail;
			}
		}
		json_incref(args);
	} else {
		args = json_object();
	}
	out->cmd = which;
	out->args = args;
	json_decref(root);
	return 0;
fail:
	json_decref(root);
	return -1;
}

void bw_ctl_request_clear(struct bw_ctl_request *req)
{
	json_decref(req->args);
	req->args = NULL;
}

static char *dump_line(json_t *obj)
{
	char *s = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
	char *line;
	size_t n;

	json_decref(obj);
	if (!s)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (!line) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	return line;
}

char *bw_ctl_request_build(const char *cmd, json_t *args)
{
	json_t *o = json_pack("{s:i,s:s}", "v", BW_CTL_VERSION, "cmd", cmd);

	if (args)
		json_object_set_new(o, "args", args);
	return dump_line(o);
}

char *bw_ctl_reply_ok(json_t *result)
{
	json_t *o = json_pack("{s:i,s:b}", "v", BW_CTL_VERSION, "ok", 1);

	if (result)
		json_object_set_new(o, "result", result);
	return dump_line(o);
}

char *bw_ctl_reply_error(const char *code, const char *msg)
{
	return dump_line(json_pack("{s:i,s:b,s:s,s:s}", "v", BW_CTL_VERSION, "ok", 0,
				   "code", code, "error", msg));
}

char *bw_ctl_reply_stream(const char *kind, json_t *data)
{
	return dump_line(json_pack("{s:i,s:s,s:o}", "v", BW_CTL_VERSION, "stream", kind, "data", data));
}

json_t *bw_ctl_arg(const struct bw_ctl_request *req, const char *key)
{
	return json_object_get(req->args, key);
}

const char *bw_ctl_arg_str(const struct bw_ctl_request *req, const char *key)
{
	return json_string_value(json_object_get(req->args, key));
}

int bw_ctl_arg_bool(const struct bw_ctl_request *req, const char *key)
{
	return json_is_true(json_object_get(req->args, key));
}

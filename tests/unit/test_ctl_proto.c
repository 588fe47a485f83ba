/* The control protocol refuses every malformed, truncated, oversized or mistyped request
 * with a one-sentence reason, and accepts the well-formed ones of every command. */
#include <stdlib.h>

#include "ctl_proto.h"
#include "tap.h"

static int parses(const char *line, enum bw_ctl_cmd *cmd)
{
	struct bw_ctl_request req = { 0 };
	char err[256];
	int rc = bw_ctl_request_parse(line, strlen(line), &req, err, sizeof(err));

	if (rc == 0) {
		if (cmd)
			*cmd = req.cmd;
		bw_ctl_request_clear(&req);
	}
	return rc == 0;
}

static void refused(const char *line, const char *want, const char *what)
{
	struct bw_ctl_request req = { .cmd = BW_CTL_N_CMDS, .args = NULL };
	char err[256] = "";
	int rc = bw_ctl_request_parse(line, strlen(line), &req, err, sizeof(err));

	tap_ok(rc == -1 && strstr(err, want) && req.args == NULL, "refused: %s", what);
	if (rc == 0)
		bw_ctl_request_clear(&req);
	else if (!strstr(err, want))
		tap_diag("  error was: %s", err);
}

int main(void)
{
	enum bw_ctl_cmd cmd = BW_CTL_N_CMDS;
	char *line, *big;
	struct bw_ctl_request req;
	char err[256];

	tap_ok(parses("{\"v\":1,\"cmd\":\"list\"}", &cmd) && cmd == BW_CTL_LIST, "list without args parses");
	tap_ok(parses("{\"v\":1,\"cmd\":\"start\",\"args\":{\"names\":[\"a\",\"b\"],\"wait\":false}}", &cmd) &&
	       cmd == BW_CTL_START, "start with names and wait parses");
	tap_ok(parses("{\"v\":1,\"cmd\":\"stop\",\"args\":{\"all\":true}}", &cmd) && cmd == BW_CTL_STOP,
	       "stop --all parses");
	tap_ok(parses("{\"v\":1,\"cmd\":\"log\",\"args\":{\"name\":\"office\",\"level\":\"debug\",\"lines\":10}}", &cmd) &&
	       cmd == BW_CTL_LOG, "log with level and lines parses");
	tap_ok(parses("{\"v\":1,\"cmd\":\"emit\",\"args\":{\"event\":{\"name\":\"ssid\",\"ssid\":\"CafeFree\"}}}", &cmd) &&
	       cmd == BW_CTL_EMIT, "emit with an event object parses");

	refused("", "not valid JSON", "empty line");
	refused("{\"v\":1,\"cmd\":\"list\"", "not valid JSON", "truncated object");
	refused("[1,2]", "must be a JSON object", "array instead of object");
	refused("{\"cmd\":\"list\"}", "version", "missing version");
	refused("{\"v\":2,\"cmd\":\"list\"}", "version", "future version");
	refused("{\"v\":\"1\",\"cmd\":\"list\"}", "version", "version as a string");
	refused("{\"v\":1}", "no \"cmd\"", "missing command");
	refused("{\"v\":1,\"cmd\":7}", "no \"cmd\"", "command not a string");
	refused("{\"v\":1,\"cmd\":\"format-disk\"}", "unknown command", "unknown command");
	refused("{\"v\":1,\"cmd\":\"list\",\"extra\":1}", "unknown request field", "unknown top-level field");
	refused("{\"v\":1,\"cmd\":\"list\",\"args\":[]}", "must be an object", "args not an object");
	refused("{\"v\":1,\"cmd\":\"status\",\"args\":{\"nme\":\"x\"}}", "takes no argument", "misspelt argument");
	refused("{\"v\":1,\"cmd\":\"status\",\"args\":{\"name\":5}}", "must be a string", "argument of the wrong type");
	refused("{\"v\":1,\"cmd\":\"start\",\"args\":{\"names\":[\"a\",3]}}", "list of strings", "list with a non-string");
	refused("{\"v\":1,\"cmd\":\"log\",\"args\":{\"name\":\"a\",\"lines\":-1}}", "non-negative integer", "negative line count");
	refused("{\"v\":1,\"v\":1,\"cmd\":\"list\"}", "not valid JSON", "duplicate keys");
	refused("{\"v\":1,\"cmd\":\"list\\u0000x\"}", "not valid JSON", "NUL inside a string");

	big = malloc(BW_CTL_MAX_LINE + 2);
	memset(big, ' ', BW_CTL_MAX_LINE + 1);
	big[BW_CTL_MAX_LINE + 1] = '\0';
	refused(big, "exceeds the limit", "oversized request");
	free(big);

	/* What the CLI builds, the agent accepts. */
	line = bw_ctl_request_build("status", json_pack("{s:s}", "name", "office"));
	tap_ok(line && line[strlen(line) - 1] == '\n', "built request ends with a newline");
	tap_ok(line && bw_ctl_request_parse(line, strlen(line) - 1, &req, err, sizeof(err)) == 0 &&
	       req.cmd == BW_CTL_STATUS && strcmp(bw_ctl_arg_str(&req, "name"), "office") == 0,
	       "built request round-trips through the parser");
	if (line)
		bw_ctl_request_clear(&req);
	free(line);

	line = bw_ctl_reply_error("usage", "name a connection");
	tap_ok(line && strstr(line, "\"ok\":false") && strstr(line, "\"error\":\"name a connection\""),
	       "error reply carries ok=false and the message");
	free(line);
	line = bw_ctl_reply_ok(json_pack("[s]", "x"));
	tap_ok(line && strstr(line, "\"ok\":true") && strstr(line, "\"result\":[\"x\"]"),
	       "ok reply carries the result");
	free(line);
	return tap_done_testing();
}

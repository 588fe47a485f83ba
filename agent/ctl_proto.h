/* The control protocol between burrow and burrowd: versioned, newline-delimited JSON.
 * Requests are untrusted input: every field is checked here before any handler sees it. */
#ifndef BURROW_CTL_PROTO_H
#define BURROW_CTL_PROTO_H

#include <stddef.h>
#include <jansson.h>

#define BW_CTL_VERSION 1
#define BW_CTL_MAX_LINE 65536	/* a request longer than this is refused */

enum bw_ctl_cmd {
	BW_CTL_LIST,
	BW_CTL_STATUS,
	BW_CTL_START,
	BW_CTL_STOP,
	BW_CTL_RESTART,
	BW_CTL_LOG,
	BW_CTL_EXPLAIN,
	BW_CTL_EVENTS,
	BW_CTL_EMIT,
	BW_CTL_LOCATION,
	BW_CTL_RELOAD,
	BW_CTL_DEVICES,
	BW_CTL_SECRET,
	BW_CTL_VERSION_CMD,
	BW_CTL_DOCTOR,
	BW_CTL_REPORT,
	BW_CTL_N_CMDS,
};

/* A request after validation. args is owned (json_decref via bw_ctl_request_clear). */
struct bw_ctl_request {
	enum bw_ctl_cmd cmd;
	json_t *args;		/* always an object, possibly empty */
};

/* Parses one request line (without the newline). Returns 0, or -1 with a one-sentence
 * reason in err; on error out is untouched. */
int bw_ctl_request_parse(const char *line, size_t len, struct bw_ctl_request *out,
			 char *err, size_t errlen);
void bw_ctl_request_clear(struct bw_ctl_request *req);

const char *bw_ctl_cmd_name(enum bw_ctl_cmd cmd);

/* Builds a request line (with the trailing newline), malloc'd; args may be NULL. */
char *bw_ctl_request_build(const char *cmd, json_t *args);

/* Reply lines (with the trailing newline), malloc'd. result may be NULL; it is consumed. */
char *bw_ctl_reply_ok(json_t *result);
char *bw_ctl_reply_error(const char *code, const char *msg);
/* One item of a stream (log --follow, events --follow); data is consumed. */
char *bw_ctl_reply_stream(const char *kind, json_t *data);

/* Argument helpers for handlers (the request was validated, so types are right). */
const char *bw_ctl_arg_str(const struct bw_ctl_request *req, const char *key);
int bw_ctl_arg_bool(const struct bw_ctl_request *req, const char *key);
json_t *bw_ctl_arg(const struct bw_ctl_request *req, const char *key);

#endif

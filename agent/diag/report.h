/* `burrow report -o FILE`: a tar.gz for a support request — version, environment, doctor,
 * configuration with every secret replaced by "<removed>", connection logs, recent events. */
#ifndef BURROW_DIAG_REPORT_H
#define BURROW_DIAG_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include <jansson.h>

struct bw_agent;

#define BW_REPORT_REMOVED "<removed>"
/* Secret values shorter than this are too common as plain text to be hunted down in
 * logs and events; they are still removed from every configuration file. */
#define BW_REPORT_SCRUB_MIN 4

/* Writes the report to path, a file that must not exist yet, mode 0600, as the agent. 0, or
 * -1 with a one-sentence reason in err; nothing is left at path on failure. */
int bw_report_write(struct bw_agent *a, const char *path, char *err, size_t errlen);
/* The same, but path is created with the filesystem rights of uid:gid (setfsuid), so that a
 * member of group burrow gets a file of their own, only where they may write. uid
 * (uid_t)-1 means "as the agent". */
int bw_report_write_as(struct bw_agent *a, const char *path, uid_t uid, gid_t gid, char *err,
		       size_t errlen);

/* The control request {"cmd": "report", "args": {"path"}}: {"path": path} or NULL with err. */
json_t *bw_report_request(struct bw_agent *a, const char *path, char *err, size_t errlen);
json_t *bw_report_request_as(struct bw_agent *a, const char *path, uid_t uid, gid_t gid, char *err,
			     size_t errlen);

/* ---- The pieces, exported for the tests ------------------------------------------------- */

/* Whether a key's name says that its value is a secret (password, psk, secret, token...). */
bool bw_report_secret_key(const char *key, size_t len);

/* A keyfile with secret values replaced: in a secrets file (secrets_file) only section
 * headers and "key = <removed>" lines survive; elsewhere only the values of keys that
 * bw_report_secret_key() names, with their continuation lines. Malloc'd, NUL-terminated. */
char *bw_report_redact_keyfile(const char *text, size_t len, bool secrets_file);

/* A Lua policy with every string literal removed from lines that mention a secret word. */
char *bw_report_redact_lua(const char *text, size_t len);

/* Secret strings to hunt for in everything else (logs, events, comments). */
struct bw_report_needles {
	char **v;
	size_t n, cap;
};
/* Adds the values of a secrets file (or of the secret keys of any keyfile): as written, without
 * quotes and inline comment, and a 0x-hex psk decoded. */
void bw_report_needles_from_keyfile(struct bw_report_needles *nd, const char *text, size_t len,
				    bool secrets_file);
void bw_report_needles_add(struct bw_report_needles *nd, const char *s, size_t len);
void bw_report_needles_free(struct bw_report_needles *nd);
/* text with every needle of BW_REPORT_SCRUB_MIN bytes or more replaced by "<removed>". */
char *bw_report_scrub(const struct bw_report_needles *nd, const char *text, size_t len);

/* Packs parent/top into a tar.gz written to out_fd with /usr/bin/tar (no shell). 0, or -1
 * with err. */
int bw_report_tar(const char *parent, const char *top, int out_fd, char *err, size_t errlen);

#endif

/* Private to agent/config: the schema-driven keyfile reader on top of libinih that the
 * connection, device, secrets and agent loaders share, and a bounded file reader. */
#ifndef BURROW_CONFIG_KEYFILE_H
#define BURROW_CONFIG_KEYFILE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#include "config.h"

#define BW_KF_VALUE_MAX 4096		/* a value, continuation lines included */
#define BW_KF_FILE_MAX (256 * 1024)	/* no keyfile of Burrow comes near this */

/* Key flags. The low byte belongs to the reader; callers use the rest to say in which
 * kind of file a key may appear. */
#define BW_KF_LIST 0x01u		/* comma-separated; may go on over indented lines */

struct bw_kf_key {
	const char *section;
	const char *name;
	unsigned flags;
};

struct bw_kf_schema {
	const struct bw_kf_key *keys;
	size_t n_keys;
	unsigned known;		/* keys carrying any of these flags are recognised */
	unsigned allowed;	/* recognised keys without any of these are refused: */
	const char *deny_prefix;	/* "PREFIX 'key'SUFFIX" */
	const char *deny_suffix;
	bool secret;		/* never echo names from the file; wipe what was read */
};

struct bw_kf_value {
	bool set;		/* the key appeared, maybe with an empty value */
	int line;
	char *value;		/* NUL-terminated, comments and quotes removed */
};

/* Reads buf[0..len) against schema into vals (n_keys entries, zeroed by the caller).
 * Stops at the first problem: 0, or -1 with err set. vals must be cleared either way. */
int bw_kf_parse(const struct bw_kf_schema *schema, const char *file, const char *buf, size_t len,
		struct bw_kf_value *vals, struct bw_cfg_error *err);
void bw_kf_values_clear(struct bw_kf_value *vals, size_t n);

/* Reads a whole regular file of at most max bytes, NUL-terminated, without following a
 * final symlink when nofollow is set. check, when given, judges the open file's fstat
 * before a byte is read (0 to go on, -1 with err set). 0, or -1 with err set. */
int bw_kf_read_file(const char *path, bool nofollow, size_t max,
		    int (*check)(const char *path, const struct stat *st, struct bw_cfg_error *err),
		    char **buf, size_t *len, struct bw_cfg_error *err);

void bw_cfg_error_set(struct bw_cfg_error *err, const char *file, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* Splits a comma-separated list into trimmed items. Returns 0, or BW_KF_LIST_EMPTY_ITEM,
 * BW_KF_LIST_TOO_MANY (more than max) or BW_KF_LIST_TOO_LONG (an item of BW_KF_ITEM_MAX
 * characters or more); items and *n are written only on success. */
#define BW_KF_ITEM_MAX 256
#define BW_KF_LIST_EMPTY_ITEM (-1)
#define BW_KF_LIST_TOO_MANY (-2)
#define BW_KF_LIST_TOO_LONG (-3)
int bw_kf_split_list(const char *value, char (*items)[BW_KF_ITEM_MAX], size_t max, size_t *n);

/* Parses a device profile's text as a partial connection: fills the [device] fields of
 * dev (id, file and text are the caller's) and checks every value. 0 or -1 with err. */
int bw_device_check(const char *file, const char *buf, size_t len, struct bw_device *dev,
		    struct bw_cfg_error *err);

/* Enum names in DESIGN.md's spelling, NULL-terminated, indexed by the enum value. */
extern const char *const bw_topology_names[], *const bw_mode_names[], *const bw_autostart_names[],
	*const bw_auth_names[], *const bw_id_type_names[], *const bw_modecfg_names[],
	*const bw_scope_names[], *const bw_exchange_names[], *const bw_natt_names[],
	*const bw_backend_names[];
int bw_cfg_enum_parse(const char *const *names, const char *s);	/* index or -1 */
const char *bw_dh_insecure_msg(void);

/* Small value checks shared by the loaders. */
bool bw_cfg_is_hostname(const char *s);
bool bw_cfg_is_name(const char *s);	/* connection and device ids: [A-Za-z0-9._-], 1..63 */

#endif

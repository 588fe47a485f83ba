/* Agent-wide logging: stderr in the foreground, syslog otherwise.
 * Secrets never pass through here; callers log identifiers and sizes only. */
#ifndef BURROW_LOG_H
#define BURROW_LOG_H

enum bw_log_level {
	BW_LOG_ERROR = 0,
	BW_LOG_WARN,
	BW_LOG_INFO,
	BW_LOG_DEBUG,
	BW_LOG_TRACE,
};

/* Optional hook that also receives every line (the agent uses it for per-connection logs). */
typedef void (*bw_log_sink)(void *ctx, enum bw_log_level level, const char *conn, const char *msg);

void bw_log_init(const char *ident, int use_syslog, enum bw_log_level level);
void bw_log_set_level(enum bw_log_level level);
enum bw_log_level bw_log_get_level(void);
void bw_log_set_sink(bw_log_sink sink, void *ctx);

/* Parses "error|warn|info|debug|trace"; returns -1 when unknown. */
int bw_log_level_parse(const char *s);
const char *bw_log_level_name(enum bw_log_level level);

/* conn may be NULL for agent-wide lines. Lines above the global level still reach the
 * sink so that a connection log can be read at debug/trace on demand. */
void bw_log(enum bw_log_level level, const char *conn, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define bw_err(...) bw_log(BW_LOG_ERROR, NULL, __VA_ARGS__)
#define bw_warn(...) bw_log(BW_LOG_WARN, NULL, __VA_ARGS__)
#define bw_info(...) bw_log(BW_LOG_INFO, NULL, __VA_ARGS__)
#define bw_debug(...) bw_log(BW_LOG_DEBUG, NULL, __VA_ARGS__)
#define bw_trace(...) bw_log(BW_LOG_TRACE, NULL, __VA_ARGS__)

#endif

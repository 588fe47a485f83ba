/* Agent-wide logging: stderr in the foreground, syslog otherwise,
 * with a sink that feeds the per-connection in-memory logs. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

static const char *const level_names[] = { "error", "warn", "info", "debug", "trace" };
static enum bw_log_level cur_level = BW_LOG_INFO;
static int cur_syslog;
static bw_log_sink cur_sink;
static void *cur_sink_ctx;

void bw_log_init(const char *ident, int use_syslog, enum bw_log_level level)
{
	cur_syslog = use_syslog;
	cur_level = level;
	if (use_syslog)
		openlog(ident, LOG_PID, LOG_DAEMON);
}

void bw_log_set_level(enum bw_log_level level) { cur_level = level; }
enum bw_log_level bw_log_get_level(void) { return cur_level; }

void bw_log_set_sink(bw_log_sink sink, void *ctx)
{
	cur_sink = sink;
	cur_sink_ctx = ctx;
}

int bw_log_level_parse(const char *s)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

const char *bw_log_level_name(enum bw_log_level level)
{
	if ((unsigned)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

void bw_log(enum bw_log_level level, const char *conn, const char *fmt, ...)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG, LOG_DEBUG };
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (cur_sink)
		cur_sink(cur_sink_ctx, level, conn, msg);
	if (level > cur_level)
		return;
	if (cur_syslog) {
		if (conn)
			syslog(prio[level], "%s: %s", conn, msg);
		else
			syslog(prio[level], "%s", msg);
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(when, sizeof(when), "%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ld %-5s %s%s%s\n", when, ts.tv_nsec / 1000000L,
			level_names[level], conn ? conn : "", conn ? ": " : "", msg);
	}
}

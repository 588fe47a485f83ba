/* A small TAP producer for Burrow's test binaries.
 * Each test prints a plan, one "ok"/"not ok" line per check, and exits non-zero on failure. */
#ifndef BURROW_TAP_H
#define BURROW_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int tap_n, tap_failed;

static inline void tap_plan(int n) { printf("1..%d\n", n); fflush(stdout); }

static inline int tap_ok(int cond, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	if (!cond)
		tap_failed++;
	fflush(stdout);
	return cond;
}

static inline void tap_diag(const char *fmt, ...)
{
	va_list ap;

	/* On stderr, where prove shows it (CI logs included); stdout first, to keep the order. */
	fflush(stdout);
	fprintf(stderr, "# ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n");
}

/* Ends the test: prints the plan when none was given up front. */
static inline int tap_done(void)
{
	return tap_failed ? 1 : 0;
}

static inline int tap_done_testing(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#define tap_is_int(got, want, ...) \
	(tap_ok((long long)(got) == (long long)(want), __VA_ARGS__) ? 1 : \
	 (tap_diag("  got %lld, want %lld", (long long)(got), (long long)(want)), 0))

#define tap_is_str(got, want, ...) \
	(tap_ok((got) && (want) && strcmp((got), (want)) == 0, __VA_ARGS__) ? 1 : \
	 (tap_diag("  got \"%s\", want \"%s\"", (got) ? (got) : "(null)", (want) ? (want) : "(null)"), 0))

#define tap_is_mem(got, want, len, ...) \
	tap_ok(memcmp((got), (want), (len)) == 0, __VA_ARGS__)

#endif

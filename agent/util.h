/* Small helpers shared by every module: container_of, array sizes, hex. */
#ifndef BURROW_UTIL_H
#define BURROW_UTIL_H

#include <stddef.h>
#include <stdint.h>

#define BW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define bw_container_of(ptr, type, member) \
	((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* Copies src into dst (size dstlen), always NUL-terminated; returns -1 when truncated. */
int bw_strlcpy(char *dst, const char *src, size_t dstlen);

/* Lower-case hex of len bytes into out (2*len+1 bytes). */
void bw_hex(char *out, const uint8_t *in, size_t len);

/* Parses hex (no separators); returns bytes written or -1. */
int bw_unhex(uint8_t *out, size_t outlen, const char *hex);

/* Monotonic time in milliseconds. */
uint64_t bw_now_ms(void);

#endif

/* The gateway's name resolved without blocking the loop and without polling: getaddrinfo_a
 * works in glibc's resolver thread, and its completion (SIGEV_THREAD) wakes the loop through
 * one ev_async. */
#ifndef BURROW_IKE_RESOLVE_H
#define BURROW_IKE_RESOLVE_H

#include <ev.h>
#include <netinet/in.h>

struct ike_resolve;

/* Called from the loop once: rc is 0 with the first IPv4 address, or a getaddrinfo error
 * (gai_strerror). The request is gone after the call. */
typedef void (*ike_resolve_done_fn)(void *ctx, int rc, const struct sockaddr_in *addr);

/* Starts resolving name; NULL with a reason in err when it cannot start. */
struct ike_resolve *ike_resolve_start(struct ev_loop *loop, const char *name, ike_resolve_done_fn done,
				      void *ctx, char *err, size_t errlen);

/* Forgets a request that has not completed: done is not called. */
void ike_resolve_cancel(struct ike_resolve *r);

/* At shutdown: the loop is told of nothing more; requests still running clean up after
 * themselves. */
void ike_resolve_close(void);

#endif

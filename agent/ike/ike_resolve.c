/* Name resolution for the IKE engine. A request belongs to glibc's resolver until its
 * completion has come back to the loop (or a cancel took it back before it ran); the
 * completion thread touches only the request and the finished list, under one mutex. */
#include "ike/ike_resolve.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct ike_resolve {
	struct gaicb cb;
	struct addrinfo hints;
	char name[256];
	ike_resolve_done_fn done;	/* NULL once cancelled: freed when it comes back */
	void *ctx;
	struct ike_resolve *next;	/* on the finished list */
};

static pthread_mutex_t finished_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ike_resolve *finished;	/* completed, not yet seen by the loop */
static struct ev_loop *resolve_loop;	/* set while the loop listens (under the lock) */
static ev_async resolve_wake;

static void request_free(struct ike_resolve *r)
{
	if (r->cb.ar_result)
		freeaddrinfo(r->cb.ar_result);
	free(r);
}

/* In a thread of glibc's, once the lookup finished. */
static void on_complete(union sigval sv)
{
	struct ike_resolve *r = sv.sival_ptr;

	pthread_mutex_lock(&finished_lock);
	if (resolve_loop) {
		r->next = finished;
		finished = r;
		ev_async_send(resolve_loop, &resolve_wake);
		r = NULL;
	}
	pthread_mutex_unlock(&finished_lock);
	if (r)
		request_free(r);	/* the agent is shutting down */
}

static void deliver(struct ike_resolve *r)
{
	struct sockaddr_in addr;
	int rc = gai_error(&r->cb);

	memset(&addr, 0, sizeof(addr));
	if (rc == 0 && r->cb.ar_result && r->cb.ar_result->ai_addrlen <= sizeof(addr))
		memcpy(&addr, r->cb.ar_result->ai_addr, r->cb.ar_result->ai_addrlen);
	else if (rc == 0)
		rc = EAI_NONAME;
	if (r->done)
		r->done(r->ctx, rc, &addr);
	request_free(r);
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
	struct ike_resolve *list, *next, *fifo = NULL;

	(void)loop;
	(void)w;
	(void)revents;
	pthread_mutex_lock(&finished_lock);
	list = finished;
	finished = NULL;
	pthread_mutex_unlock(&finished_lock);
	for (; list; list = next) {	/* oldest first */
		next = list->next;
		list->next = fifo;
		fifo = list;
	}
	for (; fifo; fifo = next) {
		next = fifo->next;
		deliver(fifo);
	}
}

static void listen_on(struct ev_loop *loop)
{
	if (resolve_loop)
		return;
	ev_async_init(&resolve_wake, on_wake);
	ev_async_start(loop, &resolve_wake);
	pthread_mutex_lock(&finished_lock);
	resolve_loop = loop;
	pthread_mutex_unlock(&finished_lock);
}

struct ike_resolve *ike_resolve_start(struct ev_loop *loop, const char *name, ike_resolve_done_fn done,
				      void *ctx, char *err, size_t errlen)
{
	struct ike_resolve *r = calloc(1, sizeof(*r));
	struct sigevent sev;
	struct gaicb *list[1];

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (bw_strlcpy(r->name, name, sizeof(r->name)) != 0) {
		snprintf(err, errlen, "the gateway name %s is too long", name);
		free(r);
		return NULL;
	}
	listen_on(loop);
	r->hints.ai_family = AF_INET;
	r->hints.ai_socktype = SOCK_DGRAM;
	r->cb.ar_name = r->name;
	r->cb.ar_request = &r->hints;
	r->done = done;
	r->ctx = ctx;
	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_THREAD;
	sev.sigev_notify_function = on_complete;
	sev.sigev_value.sival_ptr = r;
	list[0] = &r->cb;
	if (getaddrinfo_a(GAI_NOWAIT, list, 1, &sev) != 0) {
		snprintf(err, errlen, "cannot start resolving the gateway name %s", name);
		free(r);
		return NULL;
	}
	return r;
}

void ike_resolve_cancel(struct ike_resolve *r)
{
	if (!r)
		return;
	r->done = NULL;
	/* Taken back before it ran: no completion will come. Otherwise the completion frees it. */
	if (gai_cancel(&r->cb) == EAI_CANCELED)
		request_free(r);
}

void ike_resolve_close(void)
{
	struct ike_resolve *list, *next;
	struct ev_loop *loop;

	pthread_mutex_lock(&finished_lock);
	loop = resolve_loop;
	resolve_loop = NULL;
	list = finished;
	finished = NULL;
	pthread_mutex_unlock(&finished_lock);
	if (loop)
		ev_async_stop(loop, &resolve_wake);
	for (; list; list = next) {
		next = list->next;
		request_free(list);
	}
}

/* The event bus: the one way the daemon tells policies (and `burrow events`) what happened.
 * Keeps the recent events for `burrow events` and fans each new one out to subscribers. */
#ifndef BURROW_EVENTS_H
#define BURROW_EVENTS_H

#include <stddef.h>
#include <jansson.h>

#define BW_EVENTS_KEEP 512

typedef void (*bw_event_cb)(void *ctx, json_t *event);

struct bw_event_sub {
	bw_event_cb cb;
	void *ctx;
};

struct bw_events {
	json_t *ring[BW_EVENTS_KEEP];
	size_t head, count;
	struct bw_event_sub subs[16];
	size_t n_subs;
};

void bw_events_init(struct bw_events *ev);
void bw_events_free(struct bw_events *ev);

/* Emits an event. ev must be an object with "name"; "time" (seconds since the epoch) is
 * added when missing. The bus takes the reference. Subscribers must not emit from their
 * callback synchronously (they may schedule). */
void bw_events_emit(struct bw_events *ev, json_t *event);

/* Convenience: emits {"name": name} plus the fields of the (consumed) object fields. */
void bw_events_emitf(struct bw_events *ev, const char *name, json_t *fields);

/* Recent events, oldest first, as a new array. */
json_t *bw_events_recent(const struct bw_events *ev);

int bw_events_subscribe(struct bw_events *ev, bw_event_cb cb, void *ctx);
void bw_events_unsubscribe(struct bw_events *ev, bw_event_cb cb, void *ctx);

/* Event names of DESIGN.md; `burrow emit` refuses others. */
int bw_event_name_known(const char *name);

#endif

/* The event bus: a ring of recent events and a short list of subscribers.
 * Subscribers are copied before the fan-out so that one may unsubscribe itself. */
#include "events.h"

#include <string.h>
#include <time.h>

static const char *const known[] = {
	"start", "login", "logout", "network", "ssid", "location", "tunnel_up",
	"tunnel_stopping", "tunnel_down", "tunnel_failed", "reload", "timer",
};

int bw_event_name_known(const char *name)
{
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(known[i], name) == 0)
			return 1;
	return 0;
}

void bw_events_init(struct bw_events *ev)
{
	memset(ev, 0, sizeof(*ev));
}

void bw_events_free(struct bw_events *ev)
{
	for (size_t i = 0; i < ev->count; i++)
		json_decref(ev->ring[(ev->head + i) % BW_EVENTS_KEEP]);
	memset(ev, 0, sizeof(*ev));
}

void bw_events_emit(struct bw_events *ev, json_t *event)
{
	struct bw_event_sub subs[16];
	size_t n = ev->n_subs;

	if (!json_object_get(event, "time")) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		json_object_set_new(event, "time", json_real((double)ts.tv_sec + ts.tv_nsec / 1e9));
	}
	if (ev->count == BW_EVENTS_KEEP) {
		json_decref(ev->ring[ev->head]);
		ev->head = (ev->head + 1) % BW_EVENTS_KEEP;
		ev->count--;
	}
	ev->ring[(ev->head + ev->count) % BW_EVENTS_KEEP] = event;
	ev->count++;

	memcpy(subs, ev->subs, sizeof(subs));
	for (size_t i = 0; i < n; i++)
		subs[i].cb(subs[i].ctx, event);
}

void bw_events_emitf(struct bw_events *ev, const char *name, json_t *fields)
{
	json_t *e = fields ? fields : json_object();

	json_object_set_new(e, "name", json_string(name));
	bw_events_emit(ev, e);
}

json_t *bw_events_recent(const struct bw_events *ev)
{
	json_t *a = json_array();

	for (size_t i = 0; i < ev->count; i++)
		json_array_append(a, ev->ring[(ev->head + i) % BW_EVENTS_KEEP]);
	return a;
}

int bw_events_subscribe(struct bw_events *ev, bw_event_cb cb, void *ctx)
{
	if (ev->n_subs == sizeof(ev->subs) / sizeof(ev->subs[0]))
		return -1;
	ev->subs[ev->n_subs].cb = cb;
	ev->subs[ev->n_subs].ctx = ctx;
	ev->n_subs++;
	return 0;
}

void bw_events_unsubscribe(struct bw_events *ev, bw_event_cb cb, void *ctx)
{
	for (size_t i = 0; i < ev->n_subs; i++) {
		if (ev->subs[i].cb == cb && ev->subs[i].ctx == ctx) {
			memmove(&ev->subs[i], &ev->subs[i + 1], (ev->n_subs - i - 1) * sizeof(ev->subs[0]));
			ev->n_subs--;
			return;
		}
	}
}

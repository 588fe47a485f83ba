/* The facts the sources gathered, and the location they give: rules from the policies are
 * matched after every change, `burrow location NAME` overrides them, the state dir keeps it. */
#include "watch/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

#define RESOLV_CONF "/etc/resolv.conf"
#define RESOLV_MAX_DOMAINS 8

/* ---- resolv.conf ---- */

/* The search list (or domain): glibc takes the last search/domain line. A resolv.conf
 * that burrowd wrote for a tunnel says where the tunnel is, not where the machine is. */
static json_t *read_dns_domains(const char *path, bool *ours)
{
	char line[1024];
	json_t *list = json_array();
	FILE *f = fopen(path, "re");
	bool first = true;

	*ours = false;
	if (!f)
		return list;
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok = strtok_r(line, " \t\r\n", &save);

		if (first && tok && strcmp(tok, "#") == 0 && strncmp(save ? save : "", "written by burrowd", 18) == 0)
			*ours = true;
		first = false;
		if (!tok || (strcmp(tok, "search") != 0 && strcmp(tok, "domain") != 0))
			continue;
		json_array_clear(list);
		while ((tok = strtok_r(NULL, " \t\r\n", &save)) && json_array_size(list) < RESOLV_MAX_DOMAINS)
			if (tok[0] != '#' && tok[0] != ';' && strlen(tok) <= 253 && strcmp(tok, ".") != 0)
				json_array_append_new(list, json_string(tok));
	}
	fclose(f);
	return list;
}

/* 1 when the domains changed. */
static int resolv_refresh(struct bw_watch *w)
{
	bool ours;
	json_t *d = read_dns_domains(w->resolv_path, &ours);

	if (ours || json_equal(d, w->dns_domains)) {
		json_decref(d);
		return 0;
	}
	json_decref(w->dns_domains);
	w->dns_domains = d;
	return 1;
}

static void on_resolv(struct ev_loop *loop, ev_stat *st, int revents)
{
	struct bw_watch *w = bw_container_of(st, struct bw_watch, resolv_stat);

	(void)loop;
	(void)revents;
	if (resolv_refresh(w))
		bw_watch_facts_changed(w);
}

/* ---- facts ---- */

static void set_str(json_t *o, const char *key, const char *v)
{
	if (v && v[0])
		json_object_set_new(o, key, json_string(v));
}

json_t *bw_watch_facts(struct bw_watch *w)
{
	json_t *f = json_object(), *users = json_array();

	set_str(f, "ssid", w->ssid);
	set_str(f, "bssid", w->bssid);
	set_str(f, "location", w->location);
	json_object_set_new(f, "interfaces", w->interfaces ? json_deep_copy(w->interfaces) : json_object());
	set_str(f, "default_gateway", w->gateway);
	set_str(f, "gateway_mac", w->gateway_mac);
	set_str(f, "default_interface", w->default_if);
	json_object_set_new(f, "online", json_boolean(w->online));
	for (size_t i = 0; i < w->n_users; i++)
		json_array_append_new(users, json_pack("{s:s,s:s}", "user", w->users[i].user, "tty", w->users[i].tty));
	json_object_set_new(f, "users", users);
	if (json_array_size(w->dns_domains)) {
		json_object_set(f, "dns_domain", json_array_get(w->dns_domains, 0));
		json_object_set_new(f, "dns_domains", json_deep_copy(w->dns_domains));
	}
	return f;
}

/* What the rules see: `interface` is any interface that is up, `dns_domain` any domain
 * of the search list (the policy host matches a list as "any of"). */
static json_t *match_view(struct bw_watch *w, json_t *facts)
{
	json_t *v = json_copy(facts), *up = json_array(), *ifo;
	const char *name;

	json_object_foreach(w->interfaces, name, ifo)
		if (json_is_true(json_object_get(ifo, "up")))
			json_array_append_new(up, json_string(name));
	json_object_set_new(v, "interface", up);
	if (json_array_size(w->dns_domains))
		json_object_set(v, "dns_domain", w->dns_domains);
	return v;
}

/* ---- location ---- */

static void state_path(struct bw_watch *w, char *out, size_t len, const char *suffix)
{
	snprintf(out, len, "%s/location%s", w->agent->opts.state_dir, suffix);
}

/* "NAME\nmanual|rules\n"; no file when there is no location and the rules decide. */
static void save_location(struct bw_watch *w)
{
	char path[PATH_MAX + 16], tmp[PATH_MAX + 16];
	FILE *f;

	state_path(w, path, sizeof(path), "");
	if (!w->location[0] && !w->manual) {
		if (unlink(path) != 0 && errno != ENOENT)
			bw_warn("cannot remove %s: %s", path, strerror(errno));
		return;
	}
	state_path(w, tmp, sizeof(tmp), ".tmp");
	if (!(f = fopen(tmp, "we"))) {
		bw_warn("cannot save the location in %s: %s; it will be forgotten at restart", tmp, strerror(errno));
		return;
	}
	fprintf(f, "%s\n%s\n", w->location, w->manual ? "manual" : "rules");
	if (fclose(f) != 0 || rename(tmp, path) != 0) {
		bw_warn("cannot save the location in %s: %s; it will be forgotten at restart", path, strerror(errno));
		unlink(tmp);
	}
}

static bool name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= BW_WATCH_LOCATION_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	{
		json_t *utf8 = json_string(s);	/* NULL unless valid UTF-8 */
		bool ok = utf8 != NULL;

		json_decref(utf8);
		return ok;
	}
}

static void load_location(struct bw_watch *w)
{
	char path[PATH_MAX + 16], name[BW_WATCH_LOCATION_MAX + 2] = "", how[16] = "";
	FILE *f;

	state_path(w, path, sizeof(path), "");
	if (!(f = fopen(path, "re")))
		return;
	if (fgets(name, sizeof(name), f) && fgets(how, sizeof(how), f)) {
		name[strcspn(name, "\n")] = '\0';
		how[strcspn(how, "\n")] = '\0';
	}
	fclose(f);
	if (strcmp(how, "manual") != 0 && strcmp(how, "rules") != 0) {
		bw_warn("%s is not a saved location; ignoring it", path);
		return;
	}
	if (name[0] && !name_ok(name)) {
		bw_warn("%s holds an invalid location name; ignoring it", path);
		return;
	}
	bw_strlcpy(w->location, name, sizeof(w->location));
	w->manual = strcmp(how, "manual") == 0;
	w->restored = true;
	bw_info("location: %s (%s, from the last run)", name[0] ? name : "none", how);
}

/* The one writer of the location: logs old -> new, saves it, emits `location`. */
static void set_location(struct bw_watch *w, const char *name, const char *reason)
{
	json_t *ev;

	if (!name)
		name = "";
	if (strcmp(w->location, name) == 0) {
		save_location(w);	/* manual may have changed */
		return;
	}
	bw_info("location: %s -> %s (%s)", w->location[0] ? w->location : "none", name[0] ? name : "none", reason);
	ev = json_object();
	set_str(ev, "location", name);
	set_str(ev, "previous", w->location);
	json_object_set_new(ev, "reason", json_string(reason));
	bw_strlcpy(w->location, name, sizeof(w->location));
	save_location(w);
	bw_events_emitf(&w->agent->events, "location", ev);
}

void bw_watch_facts_changed(struct bw_watch *w)
{
	json_t *facts = bw_watch_facts(w);
	char name[BW_WATCH_LOCATION_MAX];

	ev_timer_stop(w->agent->loop, &w->recompute);
	if (!w->manual) {
		json_t *view = match_view(w, facts);
		int found = w->sink.match_location ? w->sink.match_location(w->sink.ctx, view, name, sizeof(name)) : 0;

		json_decref(view);
		/* A location from the last run stays until a rule says otherwise or the network
		 * really changes: at boot the facts are not all there yet. */
		if (found)
			set_location(w, name, "rules");
		else if (!w->restored)
			set_location(w, NULL, "rules");
		if (found)
			w->restored = false;
		json_decref(facts);
		facts = bw_watch_facts(w);
	}
	if (w->sink.set_facts)
		w->sink.set_facts(w->sink.ctx, facts);
	json_decref(facts);
}

int bw_watch_set_location(struct bw_watch *w, const char *name, char *err, size_t errlen)
{
	if (!name) {
		w->manual = false;
		w->restored = false;
		bw_info("location: back to the rules");
		save_location(w);
		bw_watch_facts_changed(w);
		return 0;
	}
	if (!name_ok(name)) {
		snprintf(err, errlen, "a location name is 1 to %d characters of UTF-8 without control characters",
			 BW_WATCH_LOCATION_MAX - 1);
		return -1;
	}
	w->manual = true;
	w->restored = false;
	set_location(w, name, "manual");
	bw_watch_facts_changed(w);
	return 0;
}

const char *bw_watch_location(struct bw_watch *w)
{
	return w && w->location[0] ? w->location : NULL;
}

bool bw_watch_location_manual(struct bw_watch *w)
{
	return w && w->manual;
}

/* ---- the bus: `ssid` (ours, or `burrow emit ssid ...`) and `reload` ---- */

static void on_recompute(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bw_watch *w = bw_container_of(t, struct bw_watch, recompute);

	(void)loop;
	(void)revents;
	bw_watch_facts_changed(w);
}

static void replace(char **dst, const json_t *v)
{
	free(*dst);
	*dst = json_is_string(v) && json_string_length(v) ? strdup(json_string_value(v)) : NULL;
}

static void on_bus(void *ctx, json_t *ev)
{
	struct bw_watch *w = ctx;
	const char *name = json_string_value(json_object_get(ev, "name"));

	if (!name)
		return;
	if (strcmp(name, "ssid") == 0) {
		replace(&w->ssid, json_object_get(ev, "ssid"));
		replace(&w->bssid, json_object_get(ev, "bssid"));
		w->restored = false;
	} else if (strcmp(name, "reload") != 0) {
		return;			/* new rules after a reload may give another location */
	}
	/* Subscribers must not emit synchronously: match from the loop. */
	if (!ev_is_active(&w->recompute)) {
		ev_timer_set(&w->recompute, 0.0, 0.0);
		ev_timer_start(w->agent->loop, &w->recompute);
	}
}

/* ---- open / close ---- */

struct bw_watch *bw_watch_open(struct bw_agent *a, struct bw_watch_sink sink)
{
	struct bw_watch *w = calloc(1, sizeof(*w));
	const char *env = getenv("BURROW_RESOLV_CONF");
	json_t *facts;

	if (!w)
		return NULL;
	w->agent = a;
	w->sink = sink;
	ev_timer_init(&w->recompute, on_recompute, 0.0, 0.0);
	load_location(w);
	bw_watch_netlink_open(w);
	bw_watch_nl80211_open(w);
	bw_watch_utmp_open(w);
	bw_strlcpy(w->resolv_path, env && env[0] ? env : RESOLV_CONF, sizeof(w->resolv_path));
	w->dns_domains = json_array();
	resolv_refresh(w);
	ev_stat_init(&w->resolv_stat, on_resolv, w->resolv_path, 0.0);
	ev_stat_start(a->loop, &w->resolv_stat);
	if (bw_events_subscribe(&a->events, on_bus, w) == 0)
		w->subscribed = true;
	else
		bw_warn("location: cannot subscribe to the event bus; `burrow emit ssid` will not move the location");
	facts = bw_watch_facts(w);
	if (w->sink.set_facts)
		w->sink.set_facts(w->sink.ctx, facts);
	json_decref(facts);
	ev_timer_start(a->loop, &w->recompute);
	return w;
}

void bw_watch_close(struct bw_watch *w)
{
	if (!w)
		return;
	if (w->subscribed)
		bw_events_unsubscribe(&w->agent->events, on_bus, w);
	ev_timer_stop(w->agent->loop, &w->recompute);
	ev_stat_stop(w->agent->loop, &w->resolv_stat);
	bw_watch_netlink_close(w);
	bw_watch_nl80211_close(w);
	bw_watch_utmp_close(w);
	json_decref(w->dns_domains);
	free(w->ssid);
	free(w->bssid);
	free(w);
}

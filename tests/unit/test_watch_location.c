/* Location rules from a real policy host against the watch's facts: the first matching rule
 * wins, a search-list domain counts, `burrow location NAME` sticks until --auto, the
 * location survives a restart, new rules after a reload apply, and policies see the facts. */
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "lua/policy_host.h"
#include "lua/policy_priv.h"
#include "tap.h"
#include "watch/watch.h"

static json_t *seen;
static char dir[] = "/tmp/bw-test-location-XXXXXX";

static void collect(void *ctx, json_t *ev)
{
	(void)ctx;
	if (strcmp(json_string_value(json_object_get(ev, "name")), "location") == 0)
		json_array_append(seen, ev);
}

static void on_stop(struct ev_loop *loop, ev_timer *t, int revents)
{
	(void)t;
	(void)revents;
	ev_break(loop, EVBREAK_ONE);
}

static void run_for(struct ev_loop *loop, double s)
{
	ev_timer t;

	ev_now_update(loop);
	ev_timer_init(&t, on_stop, s, 0.0);
	ev_timer_start(loop, &t);
	ev_run(loop, 0);
	ev_timer_stop(loop, &t);
}

static void write_file(const char *name, const char *text)
{
	char path[PATH_MAX], tmp[PATH_MAX + 8];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.new", path);
	f = fopen(tmp, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0 || rename(tmp, path) != 0)
		tap_diag("cannot write %s", path);
}

static char *read_file(const char *name)
{
	static char buf[256];
	char path[PATH_MAX];
	FILE *f;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	buf[0] = '\0';
	if ((f = fopen(path, "r"))) {
		n = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
	return buf;
}

static void emit_ssid(struct bw_agent *a, const char *ssid)
{
	bw_events_emitf(&a->events, "ssid", json_pack("{s:s}", "ssid", ssid));
}

static const char *s_or_nil(const char *s)
{
	return s ? s : "nil";
}

/* Exactly one location event since the last check, with these fields ("nil": absent). */
static int moved(const char *loc, const char *prev, const char *reason)
{
	json_t *ev = json_array_get(seen, 0);
	const char *l = json_string_value(json_object_get(ev, "location"));
	const char *p = json_string_value(json_object_get(ev, "previous"));
	const char *r = json_string_value(json_object_get(ev, "reason"));
	int ok = json_array_size(seen) == 1 && strcmp(s_or_nil(l), loc) == 0 && strcmp(s_or_nil(p), prev) == 0 &&
		 r && strcmp(r, reason) == 0;

	if (!ok) {
		char *s = json_dumps(seen, JSON_COMPACT);

		tap_diag("  events: %s", s ? s : "?");
		free(s);
	}
	json_array_clear(seen);
	return ok;
}

int main(void)
{
	char path[PATH_MAX + 32];
	struct bw_agent a;
	struct bw_watch *w;
	json_t *f;

	bw_log_init("test", 0, BW_LOG_ERROR);
	memset(&a, 0, sizeof(a));
	a.loop = EV_DEFAULT;
	bw_events_init(&a.events);
	seen = json_array();
	bw_events_subscribe(&a.events, collect, NULL);
	if (!mkdtemp(dir))
		return 1;
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s/state", dir);
	snprintf(path, sizeof(path), "%s/state", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof(path), "%s/policies", dir);
	mkdir(path, 0700);
	write_file("policies/where.lua",
		   "burrow.locations{\n"
		   "  {name = \"Office\", ssid = \"CorpNet\", dns_domain = \"corp.example\"},\n"
		   "  {name = \"Home\", ssid = {\"HomeNet\", \"HomeNet-5G\"}},\n"
		   "  {name = \"Lab\", dns_domain = \"lab.example\"},\n"
		   "}\n");
	write_file("resolv.conf", "nameserver 192.0.2.53\nsearch other.example lab.example\n");
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	setenv("BURROW_RESOLV_CONF", path, 1);
	snprintf(path, sizeof(path), "%s/utmp", dir);
	bw_watch_set_utmp_path(path);
	snprintf(path, sizeof(path), "%s/policies", dir);
	a.policies = bw_policy_host_new(&a, path, NULL);
	tap_ok(a.policies != NULL, "the policy host loads the rules");

	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	tap_is_int(json_array_size(seen), 0, "opening emits nothing by itself");
	run_for(a.loop, 0.2);
	tap_ok(moved("Lab", "nil", "rules"), "first match from the loop: Lab (lab.example is second in the search list)");
	tap_is_str(bw_watch_location(w), "Lab", "bw_watch_location says Lab");
	tap_is_str(json_string_value(json_object_get(a.policies->facts, "location")), "Lab",
		   "the policy host's facts carry the location");
	tap_ok(json_is_array(json_object_get(a.policies->facts, "users")) &&
	       json_is_object(json_object_get(a.policies->facts, "interfaces")),
	       "and the rest of the facts (users, interfaces)");
	tap_is_str(read_file("state/location"), "Lab\nrules\n", "the location is saved in the state dir");

	emit_ssid(&a, "HomeNet-5G");
	run_for(a.loop, 0.2);
	tap_ok(moved("Home", "Lab", "rules"), "ssid HomeNet-5G: Home wins over Lab (first matching rule)");
	tap_is_str(json_string_value(json_object_get(a.policies->facts, "ssid")), "HomeNet-5G",
		   "the policy host's facts carry the ssid");

	emit_ssid(&a, "CorpNet");
	run_for(a.loop, 0.2);
	tap_ok(moved("Lab", "Home", "rules"), "ssid CorpNet without corp.example: Office does not match, Lab does");
	write_file("resolv.conf", "search corp.example lab.example\n");
	run_for(a.loop, 0.5);
	tap_ok(moved("Office", "Lab", "rules"), "resolv.conf now searches corp.example: Office (every key matched)");
	write_file("resolv.conf", "# written by burrowd for connection office; restored when it stops\n"
				  "nameserver 10.1.0.53\nsearch vpn.example\n");
	run_for(a.loop, 0.5);
	tap_is_int(json_array_size(seen), 0, "a resolv.conf written by burrowd for a tunnel does not move the location");
	write_file("resolv.conf", "search corp.example lab.example\n");	/* the tunnel went down */
	run_for(a.loop, 0.5);
	tap_is_int(json_array_size(seen), 0, "nor does the original coming back");

	tap_is_int(bw_watch_set_location(w, "Cafe", path, sizeof(path)), 0, "set by hand: Cafe");
	tap_ok(moved("Cafe", "Office", "manual"), "it emits {location=Cafe, previous=Office, reason=manual}");
	tap_is_str(read_file("state/location"), "Cafe\nmanual\n", "the manual location is saved as manual");
	emit_ssid(&a, "HomeNet");
	run_for(a.loop, 0.2);
	tap_ok(json_array_size(seen) == 0 && strcmp(bw_watch_location(w), "Cafe") == 0,
	       "while set by hand, facts that match Home do not move it");

	bw_watch_close(w);
	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	run_for(a.loop, 0.2);
	tap_ok(json_array_size(seen) == 0 && bw_watch_location(w) && strcmp(bw_watch_location(w), "Cafe") == 0 &&
	       bw_watch_location_manual(w), "after a restart the manual Cafe is still there, with no event");

	tap_is_int(bw_watch_set_location(w, NULL, path, sizeof(path)), 0, "back to the rules");
	tap_ok(moved("Lab", "Cafe", "rules"), "the rules give Lab again ({location=Lab, previous=Cafe, reason=rules})");
	tap_ok(!bw_watch_location_manual(w), "and the location is no longer manual");

	bw_watch_close(w);
	write_file("resolv.conf", "search nowhere.example\n");
	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	run_for(a.loop, 0.2);
	tap_ok(json_array_size(seen) == 0 && bw_watch_location(w) && strcmp(bw_watch_location(w), "Lab") == 0,
	       "after a restart with facts that match nothing yet, the saved Lab stays");
	emit_ssid(&a, "SomeCafe");
	run_for(a.loop, 0.2);
	tap_ok(moved("nil", "Lab", "rules"), "once the network really changes and nothing matches, the location is nil");
	snprintf(path, sizeof(path), "%s/state/location", dir);
	tap_ok(bw_watch_location(w) == NULL && access(path, F_OK) != 0, "and nothing is saved");

	write_file("policies/where.lua", "burrow.locations{ Anywhere = {dns_domain = \"nowhere.example\"} }\n");
	bw_policy_host_reload(a.policies);
	bw_events_emitf(&a.events, "reload", NULL);
	run_for(a.loop, 0.2);
	tap_ok(moved("Anywhere", "nil", "rules"), "after a reload the new rules apply");

	tap_is_int(bw_watch_set_location(w, "", path, sizeof(path)), -1, "an empty name is refused");
	tap_ok(strstr(path, "location name") != NULL, "with a sentence that says what a name is");
	tap_is_int(bw_watch_set_location(w, "a\nb", path, sizeof(path)), -1, "a name with a newline is refused");
	memset(path, 'n', 64);
	path[64] = '\0';
	tap_is_int(bw_watch_set_location(w, path, path + 100, 100), -1, "a 64-byte name is refused");
	tap_is_int(json_array_size(seen), 0, "refused names emit nothing");

	f = bw_watch_facts(w);
	tap_ok(json_is_boolean(json_object_get(f, "online")) && json_is_array(json_object_get(f, "dns_domains")) &&
	       strcmp(json_string_value(json_object_get(f, "dns_domain")), "nowhere.example") == 0,
	       "facts: online is a boolean, dns_domain the first search domain");
	json_decref(f);

	bw_watch_close(w);
	bw_policy_host_free(a.policies);
	bw_events_free(&a.events);
	json_decref(seen);
	snprintf(path, sizeof(path), "rm -rf '%s'", dir);
	if (system(path) != 0)
		return 1;
	return tap_done_testing();
}

/* libFuzzer target for the event sources' message handlers: rtnetlink (links, addresses,
 * routes) and nl80211 (connect, roam, disconnect, interface answers with SSIDs, which come from
 * the air). The first byte picks the handler, the rest is the netlink message; its length field
 * is set to what the fuzzer gave, as the kernel's framing guarantees. Every event the handlers
 * emit must be a JSON object with a string name, and an SSID must be a string. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <netlink/netlink.h>

#include "agent.h"
#include "log.h"
#include "lua/policy_host.h"
#include "watch/watch.h"

static struct bw_agent a;
static struct bw_watch *w;
static json_t *seen;

static void check(int cond)
{
	if (!cond)
		abort();
}

static void collect(void *ctx, json_t *ev)
{
	(void)ctx;
	json_array_append(seen, ev);
}

static void setup(void)
{
	static char tmpl[] = "/tmp/bw-fuzz-watch-XXXXXX";
	char path[PATH_MAX];

	bw_log_init("fuzz", 0, BW_LOG_ERROR);
	a.loop = EV_DEFAULT;
	bw_events_init(&a.events);
	seen = json_array();
	bw_events_subscribe(&a.events, collect, NULL);
	check(mkdtemp(tmpl) != NULL);
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s", tmpl);
	snprintf(path, sizeof(path), "%s/utmp", tmpl);
	bw_watch_set_utmp_path(path);
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpl);
	setenv("BURROW_RESOLV_CONF", path, 1);
	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	check(w != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint32_t buf[16384 / 4];	/* netlink messages are 4-byte aligned */
	struct nlmsghdr *nlh = (struct nlmsghdr *)buf;
	size_t len;

	if (!w)
		setup();
	if (size < 1 + sizeof(*nlh) || size - 1 > sizeof(buf))
		return 0;
	len = size - 1;
	memcpy(buf, data + 1, len);
	nlh->nlmsg_len = (uint32_t)len;
	if (data[0] & 1)
		bw_watch_nl80211_msg(w, nlh);
	else
		bw_watch_rtnl_msg(w, nlh);
	ev_run(a.loop, EVRUN_NOWAIT);	/* debounce timers may fire */
	for (size_t i = 0; i < json_array_size(seen); i++) {
		json_t *ev = json_array_get(seen, i), *ssid;

		check(json_is_object(ev) && json_is_string(json_object_get(ev, "name")));
		ssid = json_object_get(ev, "ssid");
		check(!ssid || json_is_string(ssid));
	}
	json_array_clear(seen);
	return 0;
}

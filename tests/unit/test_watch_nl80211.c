/* nl80211 messages built with libnl (as the kernel sends them) become the right `ssid`
 * events and facts; failed connects, unknown interfaces and malformed messages do not. */
#include <stdlib.h>
#include <unistd.h>

#include <linux/nl80211.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "agent.h"
#include "log.h"
#include "tap.h"
#include "lua/policy_host.h"
#include "watch/watch.h"

static json_t *seen;

static void collect(void *ctx, json_t *ev)
{
	(void)ctx;
	json_array_append(seen, ev);
}

static const char *field(const json_t *ev, const char *k)
{
	return json_string_value(json_object_get(ev, k));
}

static struct nl_msg *wl_msg(uint8_t cmd, uint32_t ifindex)
{
	struct nl_msg *m = nlmsg_alloc();

	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, 0x1c, 0, 0, cmd, 1);
	nla_put_u32(m, NL80211_ATTR_IFINDEX, ifindex);
	return m;
}

static int feed(struct bw_watch *w, struct nl_msg *m)
{
	int rc = bw_watch_nl80211_msg(w, nlmsg_hdr(m));

	nlmsg_free(m);
	return rc;
}

static int connect_msg(struct bw_watch *w, uint8_t cmd, uint32_t ifindex, const uint8_t *bssid, int status)
{
	struct nl_msg *m = wl_msg(cmd, ifindex);

	nla_put(m, NL80211_ATTR_MAC, 6, bssid);
	if (status >= 0)
		nla_put_u16(m, NL80211_ATTR_STATUS_CODE, (uint16_t)status);
	return feed(w, m);
}

/* The answer to GET_INTERFACE: name, our own MAC (not the BSSID) and the SSID. */
static int iface_msg(struct bw_watch *w, uint32_t ifindex, const char *name, const void *ssid, int ssid_len)
{
	static const uint8_t own[6] = { 0x02, 0, 0, 0, 0, 0x99 };
	struct nl_msg *m = wl_msg(NL80211_CMD_NEW_INTERFACE, ifindex);

	nla_put_string(m, NL80211_ATTR_IFNAME, name);
	nla_put(m, NL80211_ATTR_MAC, 6, own);
	if (ssid)
		nla_put(m, NL80211_ATTR_SSID, ssid_len, ssid);
	return feed(w, m);
}

static json_t *last(void)
{
	return json_array_get(seen, json_array_size(seen) - 1);
}

int main(void)
{
	static const uint8_t ap1[6] = { 0xaa, 0xbb, 0xcc, 0x00, 0x11, 0x22 };
	static const uint8_t ap2[6] = { 0xaa, 0xbb, 0xcc, 0x00, 0x11, 0x33 };
	char tmpl[] = "/tmp/bw-test-nl80211-XXXXXX", path[PATH_MAX];
	struct bw_agent a;
	struct bw_watch *w;
	struct nl_msg *m;
	json_t *ev, *facts;
	size_t n;
	int rc;

	bw_log_init("test", 0, BW_LOG_WARN);
	memset(&a, 0, sizeof(a));
	a.loop = EV_DEFAULT;
	bw_events_init(&a.events);
	seen = json_array();
	bw_events_subscribe(&a.events, collect, NULL);
	if (!mkdtemp(tmpl))
		return 1;
	snprintf(a.opts.state_dir, sizeof(a.opts.state_dir), "%s", tmpl);
	snprintf(path, sizeof(path), "%s/utmp", tmpl);
	bw_watch_set_utmp_path(path);
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpl);
	setenv("BURROW_RESOLV_CONF", path, 1);

	w = bw_watch_open(&a, bw_policy_host_watch_sink(a.policies));
	tap_ok(w != NULL, "the watch opens without Wi-Fi on the machine");
	ev_run(a.loop, EVRUN_NOWAIT);
	json_array_clear(seen);

	rc = connect_msg(w, NL80211_CMD_CONNECT, 42, ap1, 0);
	tap_is_int(rc, 1, "a successful CONNECT is taken");
	tap_is_int(json_array_size(seen), 0, "no event until the SSID is known");
	rc = iface_msg(w, 42, "wlan0", "HomeNet", 7);
	tap_is_int(rc, 1, "the GET_INTERFACE answer completes the connect");
	tap_is_int(json_array_size(seen), 1, "one ssid event for one connect");
	ev = last();
	tap_is_str(field(ev, "name"), "ssid", "the event is ssid");
	tap_is_str(field(ev, "interface"), "wlan0", "it names the interface from the answer");
	tap_is_str(field(ev, "ssid"), "HomeNet", "it carries the SSID");
	tap_is_str(field(ev, "bssid"), "aa:bb:cc:00:11:22", "the BSSID is the MAC of the CONNECT, not the interface's own");
	tap_ok(json_object_get(ev, "previous") == NULL, "previous is nil on the first connect");
	facts = bw_watch_facts(w);
	tap_is_str(field(facts, "ssid"), "HomeNet", "facts.ssid follows the event");
	tap_is_str(field(facts, "bssid"), "aa:bb:cc:00:11:22", "facts.bssid follows the event");
	json_decref(facts);

	rc = iface_msg(w, 42, "wlan0", "HomeNet", 7);
	tap_ok(rc == 0 && json_array_size(seen) == 1, "an interface answer nobody asked for emits nothing");

	rc = connect_msg(w, NL80211_CMD_ROAM, 42, ap2, -1);
	iface_msg(w, 42, "wlan0", "HomeNet", 7);
	ev = last();
	tap_ok(rc == 1 && json_array_size(seen) == 2, "a ROAM to another AP is an event");
	tap_ok(strcmp(field(ev, "previous"), "HomeNet") == 0 && strcmp(field(ev, "bssid"), "aa:bb:cc:00:11:33") == 0,
	       "the roam names the same SSID as previous and the new BSSID");

	n = json_array_size(seen);
	rc = connect_msg(w, NL80211_CMD_CONNECT, 42, ap1, 17);
	tap_ok(rc == 0 && json_array_size(seen) == n, "a CONNECT that failed (status 17) changes nothing");

	m = wl_msg(NL80211_CMD_DISCONNECT, 42);
	rc = feed(w, m);
	ev = last();
	tap_ok(rc == 1 && json_array_size(seen) == n + 1, "DISCONNECT emits at once");
	tap_ok(json_object_get(ev, "ssid") == NULL && json_object_get(ev, "bssid") == NULL,
	       "the disconnect event has ssid and bssid nil");
	tap_is_str(field(ev, "previous"), "HomeNet", "and the SSID that was left as previous");
	facts = bw_watch_facts(w);
	tap_ok(json_object_get(facts, "ssid") == NULL && json_object_get(facts, "bssid") == NULL,
	       "facts lose ssid and bssid on disconnect");
	json_decref(facts);

	m = wl_msg(NL80211_CMD_DISCONNECT, 42);
	tap_ok(feed(w, m) == 0 && json_array_size(seen) == n + 1, "a second DISCONNECT is not another event");
	m = wl_msg(NL80211_CMD_DISCONNECT, 7);
	tap_is_int(feed(w, m), 0, "DISCONNECT of an unknown interface is ignored");

	connect_msg(w, NL80211_CMD_CONNECT, 43, ap1, 0);
	iface_msg(w, 43, "wlan1", "Caf\xe9", 4);
	tap_is_str(field(last(), "ssid"), "Caf\\xe9", "an SSID that is not UTF-8 is kept readable as \\xNN");
	connect_msg(w, NL80211_CMD_CONNECT, 44, ap2, 0);
	iface_msg(w, 44, "wlan2", "Caf\xc3\xa9 \xf0\x9f\x90\x87", 10);
	tap_is_str(field(last(), "ssid"), "Caf\xc3\xa9 \xf0\x9f\x90\x87", "a UTF-8 SSID is kept as it is");

	n = json_array_size(seen);
	m = wl_msg(NL80211_CMD_CONNECT, 42);
	nla_put(m, NL80211_ATTR_MAC, 5, ap1);
	tap_is_int(feed(w, m), -1, "a MAC attribute of 5 bytes is malformed");
	m = wl_msg(NL80211_CMD_NEW_INTERFACE, 42);
	nla_put(m, NL80211_ATTR_SSID, 33, "0123456789012345678901234567890123");
	tap_is_int(feed(w, m), -1, "an SSID of 33 bytes is malformed");
	m = wl_msg(NL80211_CMD_CONNECT, 42);
	nlmsg_hdr(m)->nlmsg_len = NLMSG_LENGTH(2);
	tap_is_int(feed(w, m), -1, "a message shorter than the genetlink header is malformed");
	m = nlmsg_alloc();
	genlmsg_put(m, NL_AUTO_PORT, NL_AUTO_SEQ, 0x1c, 0, 0, NL80211_CMD_CONNECT, 1);
	tap_is_int(feed(w, m), 0, "a CONNECT without an interface index is ignored");
	tap_is_int(json_array_size(seen), n, "none of the malformed messages emitted anything");

	/* `burrow emit ssid ...` is on the bus like ours: the facts follow it too. */
	bw_events_emitf(&a.events, "ssid", json_pack("{s:s,s:s}", "ssid", "CafeFree", "bssid", "00:00:5e:00:53:01"));
	facts = bw_watch_facts(w);
	tap_is_str(field(facts, "ssid"), "CafeFree", "an injected ssid event sets facts.ssid");
	json_decref(facts);

	bw_watch_close(w);
	bw_events_free(&a.events);
	json_decref(seen);
	snprintf(path, sizeof(path), "rm -rf '%s'", tmpl);
	if (system(path) != 0)
		return 1;
	return tap_done_testing();
}

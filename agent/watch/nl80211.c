/* nl80211 through libnl-genl: CONNECT/ROAM/DISCONNECT from the "mlme" group; after a
 * connect the interface is asked for its SSID (GET_INTERFACE) and `ssid` is emitted. */
#include "watch/watch.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <linux/nl80211.h>
#include <netlink/genl/ctrl.h>
#include <netlink/genl/genl.h>
#include <netlink/netlink.h>

#include "agent.h"
#include "log.h"
#include "util.h"

static struct bw_watch_wifi *wifi_find(struct bw_watch *w, int ifindex, bool create)
{
	struct bw_watch_wifi *f;

	for (size_t i = 0; i < w->n_wifi; i++)
		if (w->wifi[i].ifindex == ifindex)
			return &w->wifi[i];
	if (!create || w->n_wifi == BW_ARRAY_SIZE(w->wifi))
		return NULL;
	f = &w->wifi[w->n_wifi++];
	memset(f, 0, sizeof(*f));
	f->ifindex = ifindex;
	if (!if_indextoname((unsigned)ifindex, f->name))
		f->name[0] = '\0';
	return f;
}

/* An SSID is 0..32 arbitrary bytes; facts and events are JSON (UTF-8). Valid UTF-8 is kept,
 * anything else becomes \xNN so that the name stays recognisable and comparable. */
static void ssid_text(char *out, size_t outlen, const uint8_t *in, size_t len)
{
	size_t o = 0;
	json_t *probe = json_stringn((const char *)in, len);
	bool utf8 = probe != NULL && memchr(in, 0, len) == NULL;

	json_decref(probe);
	for (size_t i = 0; i < len && o + 5 < outlen; i++) {
		if (utf8 ? in[i] >= 0x20 && in[i] != 0x7f : in[i] >= 0x20 && in[i] < 0x7f && in[i] != '\\')
			out[o++] = (char)in[i];
		else
			o += (size_t)snprintf(out + o, outlen - o, "\\x%02x", in[i]);
	}
	out[o] = '\0';
}

static void emit_ssid(struct bw_watch *w, struct bw_watch_wifi *f, const char *ssid, const char *bssid)
{
	json_t *ev = json_pack("{s:s}", "interface", f->name);

	if (ssid && ssid[0])
		json_object_set_new(ev, "ssid", json_string(ssid));
	if (f->ssid[0])
		json_object_set_new(ev, "previous", json_string(f->ssid));
	if (ssid && ssid[0] && bssid && bssid[0])
		json_object_set_new(ev, "bssid", json_string(bssid));
	bw_debug("wifi: %s: %s -> %s", f->name, f->ssid[0] ? f->ssid : "(none)", ssid && ssid[0] ? ssid : "(none)");
	bw_strlcpy(f->ssid, ssid ? ssid : "", sizeof(f->ssid));
	bw_strlcpy(f->bssid, ssid && ssid[0] && bssid ? bssid : "", sizeof(f->bssid));
	bw_events_emitf(&w->agent->events, "ssid", ev);
}

static int on_sync_msg(struct nl_msg *msg, void *arg)
{
	bw_watch_nl80211_msg(arg, nlmsg_hdr(msg));
	return NL_OK;
}

/* Asks the interface for its SSID; the answer comes back through bw_watch_nl80211_msg. */
static void query_interface(struct bw_watch *w, int ifindex)
{
	struct nl_msg *msg;
	int err;

	if (!w->wl_sync || !(msg = nlmsg_alloc()))
		return;
	if (!genlmsg_put(msg, NL_AUTO_PORT, NL_AUTO_SEQ, w->wl_family, 0, ifindex ? 0 : NLM_F_DUMP,
			 NL80211_CMD_GET_INTERFACE, 0) ||
	    (ifindex && nla_put_u32(msg, NL80211_ATTR_IFINDEX, (uint32_t)ifindex) < 0)) {
		nlmsg_free(msg);
		return;
	}
	err = nl_send_auto(w->wl_sync, msg);
	nlmsg_free(msg);
	if (err >= 0)
		err = nl_recvmsgs_default(w->wl_sync);
	if (err < 0)
		bw_debug("wifi: cannot ask interface %d for its SSID: %s", ifindex, nl_geterror(err));
}

int bw_watch_nl80211_msg(struct bw_watch *w, struct nlmsghdr *nlh)
{
	static struct nla_policy pol[NL80211_ATTR_MAX + 1] = {
		[NL80211_ATTR_IFINDEX] = { .type = NLA_U32 },
		[NL80211_ATTR_IFNAME] = { .type = NLA_STRING, .maxlen = IF_NAMESIZE },
		[NL80211_ATTR_MAC] = { .minlen = 6, .maxlen = 6 },
		[NL80211_ATTR_SSID] = { .maxlen = 32 },
		[NL80211_ATTR_STATUS_CODE] = { .type = NLA_U16 },
	};
	struct nlattr *tb[NL80211_ATTR_MAX + 1];
	struct genlmsghdr gh;
	struct bw_watch_wifi *f;
	char bssid[18] = "", ssid[sizeof(f->ssid)] = "";
	int ifindex;

	if (nlh->nlmsg_len < NLMSG_LENGTH(GENL_HDRLEN))
		return -1;
	memcpy(&gh, nlmsg_data(nlh), sizeof(gh));
	if (genlmsg_parse(nlh, 0, tb, NL80211_ATTR_MAX, pol) < 0)
		return -1;
	if (!tb[NL80211_ATTR_IFINDEX])
		return 0;
	ifindex = (int)nla_get_u32(tb[NL80211_ATTR_IFINDEX]);
	if (tb[NL80211_ATTR_MAC]) {
		const uint8_t *m = nla_data(tb[NL80211_ATTR_MAC]);

		if (nla_len(tb[NL80211_ATTR_MAC]) != 6)
			return -1;
		snprintf(bssid, sizeof(bssid), "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
	}

	switch (gh.cmd) {
	case NL80211_CMD_CONNECT:
	case NL80211_CMD_ROAM:
		/* A failed attempt (status != 0) changes nothing. */
		if (tb[NL80211_ATTR_STATUS_CODE] && nla_get_u16(tb[NL80211_ATTR_STATUS_CODE]) != 0)
			return 0;
		if (!(f = wifi_find(w, ifindex, true)))
			return 0;
		f->pending = true;
		/* Kept aside until the SSID is known: the event carries both. */
		bw_strlcpy(f->bssid, bssid, sizeof(f->bssid));
		query_interface(w, ifindex);
		return 1;
	case NL80211_CMD_DISCONNECT:
		if (!(f = wifi_find(w, ifindex, false)) || (!f->ssid[0] && !f->pending))
			return 0;
		f->pending = false;
		emit_ssid(w, f, NULL, NULL);
		return 1;
	case NL80211_CMD_NEW_INTERFACE:
		if (!(f = wifi_find(w, ifindex, w->wl_initial || tb[NL80211_ATTR_SSID])))
			return 0;
		if (tb[NL80211_ATTR_IFNAME])
			nla_strlcpy(f->name, tb[NL80211_ATTR_IFNAME], sizeof(f->name));
		if (tb[NL80211_ATTR_SSID])
			ssid_text(ssid, sizeof(ssid), nla_data(tb[NL80211_ATTR_SSID]),
				  (size_t)nla_len(tb[NL80211_ATTR_SSID]));
		if (w->wl_initial) {
			/* What the machine was on when burrowd started: a fact, not an event. */
			bw_strlcpy(f->ssid, ssid, sizeof(f->ssid));
			if (ssid[0] && !w->ssid)
				w->ssid = strdup(ssid);
			return 1;
		}
		if (!f->pending)
			return 0;
		f->pending = false;
		if (!ssid[0]) {
			bw_debug("wifi: %s connected but reports no SSID", f->name);
			return 0;
		}
		/* f->bssid holds the BSSID of the connect (the MAC of this answer is our own). */
		bw_strlcpy(bssid, f->bssid, sizeof(bssid));
		/* Even the same SSID again is an event: a roam to another AP or a reconnect. */
		emit_ssid(w, f, ssid, bssid);
		return 1;
	default:
		return 0;
	}
}

static int on_ev_msg(struct nl_msg *msg, void *arg)
{
	bw_watch_nl80211_msg(arg, nlmsg_hdr(msg));
	return NL_OK;
}

static void on_wl_io(struct ev_loop *loop, ev_io *io, int revents)
{
	struct bw_watch *w = bw_container_of(io, struct bw_watch, wl_io);
	struct nl_cb *cb = nl_socket_get_cb(w->wl_ev);	/* a reference of its own */
	int n, rounds = 0;

	(void)loop;
	(void)revents;
	while ((n = nl_recvmsgs_report(w->wl_ev, cb)) > 0 && ++rounds < 64)
		;
	nl_cb_put(cb);
	if (n < 0 && n != -NLE_AGAIN)
		bw_debug("wifi: nl80211 receive: %s", nl_geterror(n));
}

int bw_watch_nl80211_open(struct bw_watch *w)
{
	struct timeval tv = { .tv_sec = 1 };
	int grp, err;

	if (!(w->wl_ev = nl_socket_alloc()) || !(w->wl_sync = nl_socket_alloc())) {
		bw_watch_nl80211_close(w);
		return -ENOMEM;
	}
	if ((err = genl_connect(w->wl_ev)) < 0 || (err = genl_connect(w->wl_sync)) < 0) {
		bw_debug("wifi: cannot open generic netlink: %s; no ssid events", nl_geterror(err));
		bw_watch_nl80211_close(w);
		return -EIO;
	}
	if ((w->wl_family = genl_ctrl_resolve(w->wl_sync, "nl80211")) < 0 ||
	    (grp = genl_ctrl_resolve_grp(w->wl_sync, "nl80211", "mlme")) < 0) {
		bw_debug("wifi: no nl80211 in this kernel (no Wi-Fi); no ssid events");
		bw_watch_nl80211_close(w);
		return 0;
	}
	nl_socket_disable_seq_check(w->wl_ev);
	nl_socket_modify_cb(w->wl_ev, NL_CB_VALID, NL_CB_CUSTOM, on_ev_msg, w);
	nl_socket_modify_cb(w->wl_sync, NL_CB_VALID, NL_CB_CUSTOM, on_sync_msg, w);
	/* The synchronous question must not hang the loop if the kernel never answers. */
	setsockopt(nl_socket_get_fd(w->wl_sync), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if ((err = nl_socket_add_membership(w->wl_ev, grp)) < 0 || (err = nl_socket_set_nonblocking(w->wl_ev)) < 0) {
		bw_warn("wifi: cannot join the nl80211 mlme group: %s; no ssid events", nl_geterror(err));
		bw_watch_nl80211_close(w);
		return -EIO;
	}
	w->wl_initial = true;
	query_interface(w, 0);
	w->wl_initial = false;
	ev_io_init(&w->wl_io, on_wl_io, nl_socket_get_fd(w->wl_ev), EV_READ);
	ev_io_start(w->agent->loop, &w->wl_io);
	return 0;
}

void bw_watch_nl80211_close(struct bw_watch *w)
{
	if (w->wl_ev)
		ev_io_stop(w->agent->loop, &w->wl_io);
	nl_socket_free(w->wl_ev);
	nl_socket_free(w->wl_sync);
	w->wl_ev = w->wl_sync = NULL;
}

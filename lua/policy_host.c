/* The policy host: loads policy files into their own Lua states, queues events and
 * callbacks and runs them outside the emitter, fires timers, enforces the error budget. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>

#include "agent/events.h"
#include "policy_host.h"
#include "policy_priv.h"

static void mounts_save(struct bw_policy_host *h);

void bw_policy_hostf(struct bw_policy_host *h, enum bw_log_level level, const char *policy,
		     const char *fmt, ...)
{
	char msg[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h->ops->log(h->ctx, level, policy, msg);
}

struct bw_policy_host *bw_policy_host_new_ops(const struct bw_policy_ops *ops, void *ctx)
{
	struct bw_policy_host *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->ops = ops;
	h->ctx = ctx;
	h->facts = json_object();
	h->load_errors = json_array();
	h->next_policy_id = h->next_timer_id = h->next_token = 1;
	return h;
}

static struct bw_policy *find_policy(struct bw_policy_host *h, uint64_t id)
{
	for (size_t i = 0; i < h->n_policies; i++)
		if (h->policies[i]->id == id)
			return h->policies[i];
	return NULL;
}

/* Forgets the timers and pending callbacks of one policy (all when p is NULL). The Lua
 * references die with the state, so only the C records go. */
static void drop_policy_records(struct bw_policy_host *h, uint64_t policy_id)
{
	size_t j = 0;

	for (size_t i = 0; i < h->n_timers; i++)
		if (policy_id && h->timers[i].policy_id != policy_id)
			h->timers[j++] = h->timers[i];
	h->n_timers = j;
	/* Pending children keep running; their completion finds no callback. */
	for (size_t i = 0; i < h->n_pending; i++) {
		if (!policy_id || h->pending[i].policy_id == policy_id) {
			h->pending[i].policy_id = 0;
			h->pending[i].ref = LUA_NOREF;
		}
	}
}

static void policy_free(struct bw_policy *p)
{
	if (!p)
		return;
	if (p->L)
		lua_close(p->L);
	for (size_t i = 0; i < p->n_handlers; i++)
		free(p->handlers[i].event);
	free(p->handlers);
	json_decref(p->locations);
	json_decref(p->loc_tmp);
	json_decref(p->lint);
	free(p);
}

static void policy_disable(struct bw_policy *p, const char *reason)
{
	struct bw_policy_host *h = p->host;

	if (p->disabled)
		return;
	p->disabled = true;
	bw_policy_hostf(h, BW_LOG_ERROR, p->name,
			"disabled: %s; fix the policy and run burrow reload", reason);
	h->ops->emit(h->ctx, "policy_disabled",
		     json_pack("{s:s,s:s}", "policy", p->name, "reason", reason));
	drop_policy_records(h, p->id);
	for (size_t i = 0; i < p->n_handlers; i++)
		free(p->handlers[i].event);
	p->n_handlers = 0;
	/* No call into this state is active here (calls never nest), so it can go now. */
	lua_close(p->L);
	p->L = NULL;
}

void bw_policy_error(struct bw_policy *p, const char *what, const char *msg)
{
	struct bw_policy_host *h = p->host;
	double now = h->ops->now(h->ctx);
	char first[1024];
	const char *nl = strchr(msg, '\n');
	size_t n_recent = 0;

	snprintf(first, sizeof(first), "%.*s", nl ? (int)(nl - msg) : (int)strlen(msg), msg);
	snprintf(p->last_error, sizeof(p->last_error), "%s", first);
	h->errors++;
	bw_policy_hostf(h, BW_LOG_ERROR, p->name, "%s failed: %s", what, first);
	if (nl)
		bw_policy_hostf(h, BW_LOG_DEBUG, p->name, "%s", nl + 1);

	p->err_times[p->n_err++ % BW_POLICY_ERR_MAX] = now;
	for (size_t i = 0; i < BW_POLICY_ERR_MAX && i < p->n_err; i++)
		if (now - p->err_times[i] < BW_POLICY_ERR_WINDOW_S)
			n_recent++;
	if (n_recent >= BW_POLICY_ERR_MAX) {
		char reason[1200];

		snprintf(reason, sizeof(reason), "%d errors within %.0f s, the last: %s", BW_POLICY_ERR_MAX,
			 BW_POLICY_ERR_WINDOW_S, first);
		policy_disable(p, reason);
	}
}

/* A policy that did not load: kept for `burrow reload` and emitted as policy_error. Lua's
 * message starts "SRC:LINE: " where SRC may be shortened: the line is taken from the first
 * ":LINE: ", the file is the path the host loaded. */
static void load_failed(struct bw_policy_host *h, const char *path, const char *msg)
{
	const char *text = msg;
	long line = 0;

	for (const char *c = strchr(msg, ':'); c; c = strchr(c + 1, ':')) {
		char *end;
		long n;

		if (!isdigit((unsigned char)c[1]))
			continue;
		n = strtol(c + 1, &end, 10);
		if (end[0] == ':' && end[1] == ' ') {
			line = n;
			text = end + 2;
			break;
		}
	}
	json_array_append_new(h->load_errors, json_pack("{s:s,s:I,s:s}", "file", path, "line",
							(json_int_t)line, "message", text));
	h->ops->emit(h->ctx, "policy_error", json_pack("{s:s,s:I,s:s}", "file", path, "line",
						       (json_int_t)line, "message", text));
}

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');

	return s ? s + 1 : path;
}

int bw_policy_host_load_file(struct bw_policy_host *h, const char *path)
{
	struct bw_policy *p = calloc(1, sizeof(*p)), **n;
	int rc;

	if (!p || snprintf(p->path, sizeof(p->path), "%s", path) >= (int)sizeof(p->path)) {
		free(p);
		bw_policy_hostf(h, BW_LOG_ERROR, NULL, "%s: cannot load the policy (out of memory or path too long)", path);
		return -1;
	}
	n = realloc(h->policies, (h->n_policies + 1) * sizeof(*n));
	if (!n) {
		free(p);
		return -1;
	}
	h->policies = n;
	p->host = h;
	p->id = h->next_policy_id++;
	p->name = base_name(p->path);
	p->mem_cap = BW_POLICY_MEM_CAP;
	p->next_handler_id = 1;
	p->locations = json_array();
	p->lint = json_array();
	h->policies[h->n_policies++] = p;

	p->L = bw_policy_state_new(p);
	if (!p->L) {
		bw_policy_hostf(h, BW_LOG_ERROR, p->name, "cannot create a Lua state (out of memory)");
		p->disabled = true;
		h->errors++;
		load_failed(h, p->path, "cannot create a Lua state (out of memory)");
		return -1;
	}
	rc = luaL_loadfilex(p->L, path, "t");		/* chunk | message */
	if (rc != LUA_OK) {
		const char *msg = lua_tostring(p->L, -1);

		/* A compile error already says file:line; an unreadable file says why. */
		bw_policy_hostf(h, BW_LOG_ERROR, p->name, "not loaded: %s", msg ? msg : "cannot read the file");
		h->errors++;
		load_failed(h, p->path, msg ? msg : "cannot read the file");
		lua_close(p->L);
		p->L = NULL;
		p->disabled = true;
		return -1;
	}
	p->cur_event = NULL;
	if (bw_policy_call(p, 0, "loading the policy") != 0) {
		/* A main chunk that raised leaves half a policy: keep none of it. */
		if (p->L) {
			drop_policy_records(h, p->id);
			for (size_t i = 0; i < p->n_handlers; i++)
				free(p->handlers[i].event);
			p->n_handlers = 0;
			lua_close(p->L);
			p->L = NULL;
		}
		p->disabled = true;
		load_failed(h, p->path, p->last_error[0] ? p->last_error : "the main chunk failed");
		return -1;
	}
	bw_policy_hostf(h, BW_LOG_DEBUG, p->name, "loaded (%zu handler(s), %zu KiB)", p->n_handlers,
			p->mem_used >> 10);
	return 0;
}

static int cmp_str(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static void load_dir(struct bw_policy_host *h)
{
	char path[PATH_MAX], own_defaults[PATH_MAX];
	struct dirent *de;
	char **names = NULL;
	size_t n = 0;
	DIR *d = h->dir ? opendir(h->dir) : NULL;
	struct stat st;

	if (h->dir && !d && errno != ENOENT)
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "cannot read %s: %s", h->dir, strerror(errno));
	/* An admin's defaults.lua in the policies directory replaces the shipped one. */
	if (h->dir && snprintf(own_defaults, sizeof(own_defaults), "%s/defaults.lua", h->dir) < (int)sizeof(own_defaults) &&
	    stat(own_defaults, &st) == 0)
		bw_policy_host_load_file(h, own_defaults);
	else if (h->defaults && stat(h->defaults, &st) != 0)
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "the shipped %s is missing (%s): autostart and restarts after DPD are off until a defaults.lua is in %s",
				h->defaults, strerror(errno), h->dir ? h->dir : "the policies directory");
	else if (h->defaults)
		bw_policy_host_load_file(h, h->defaults);
	while (d && (de = readdir(d))) {
		size_t len = strlen(de->d_name);
		char **nn;

		if (de->d_name[0] == '.' || len < 5 || strcmp(de->d_name + len - 4, ".lua") != 0 ||
		    strcmp(de->d_name, "defaults.lua") == 0)
			continue;
		nn = realloc(names, (n + 1) * sizeof(*nn));
		if (!nn || !(nn[n] = strdup(de->d_name))) {
			names = nn ? nn : names;
			break;
		}
		names = nn;
		n++;
	}
	if (d)
		closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++) {
		if (snprintf(path, sizeof(path), "%s/%s", h->dir, names[i]) < (int)sizeof(path))
			bw_policy_host_load_file(h, path);
		free(names[i]);
	}
	free(names);
}

void bw_policy_host_set_dir(struct bw_policy_host *h, const char *dir, const char *defaults)
{
	free(h->dir);
	free(h->defaults);
	h->dir = dir ? strdup(dir) : NULL;
	h->defaults = defaults ? strdup(defaults) : NULL;
}

const json_t *bw_policy_host_load_errors(const struct bw_policy_host *h)
{
	return h ? h->load_errors : NULL;
}

void bw_policy_host_unload(struct bw_policy_host *h)
{
	drop_policy_records(h, 0);
	json_array_clear(h->load_errors);
	for (size_t i = 0; i < h->n_policies; i++)
		policy_free(h->policies[i]);
	free(h->policies);
	h->policies = NULL;
	h->n_policies = 0;
	/* Queued callbacks belong to the old policies; queued events stay for the new ones. */
	for (struct bw_policy_item *it = h->q_head; it; it = it->next)
		it->policy_id = 0;
}

void bw_policy_host_reload(struct bw_policy_host *h)
{
	size_t ok = 0;

	if (!h)
		return;
	bw_policy_host_unload(h);
	load_dir(h);
	for (size_t i = 0; i < h->n_policies; i++)
		ok += !h->policies[i]->disabled;
	bw_policy_hostf(h, BW_LOG_INFO, NULL, "%zu of %zu loaded", ok, h->n_policies);
}

static void item_free(struct bw_policy_item *it)
{
	json_decref(it->event);
	free(it->stop_conn);
	free(it->reason);
	free(it->output);
	free(it);
}

void bw_policy_host_free_ops(struct bw_policy_host *h)
{
	if (!h)
		return;
	bw_policy_host_unload(h);
	/* Whoever waits for a tunnel_stopping must not wait forever: tell them now. */
	while (h->n_awaits) {
		struct bw_policy_await w = h->awaits[--h->n_awaits];

		free(w.conn);
		w.done(w.ctx);
	}
	free(h->awaits);
	while (h->q_head) {
		struct bw_policy_item *it = h->q_head;

		h->q_head = it->next;
		item_free(it);
	}
	/* What policies mounted goes with the agent (habit 7); a record whose unmount failed
	 * stays in the file for the next start. */
	{
		size_t kept = 0;

		for (size_t i = 0; i < h->n_mounts; i++) {
			struct bw_policy_mount *m = &h->mounts[i];
			bool sshfs = strcmp(m->type, "sshfs") == 0;
			char *argv[] = { sshfs ? "fusermount3" : "umount", sshfs ? "-uz" : "-l", m->target, NULL };

			if (h->ops->run_sync && h->ops->run_sync(h->ctx, argv, 5.0) != 0 &&
			    (!h->ops->is_mounted || h->ops->is_mounted(h->ctx, m->target))) {
				h->mounts[kept++] = *m;
				continue;
			}
			free(m->target);
			free(m->type);
			free(m->conn);
		}
		h->n_mounts = kept;
	}
	mounts_save(h);
	for (size_t i = 0; i < h->n_mounts; i++) {
		free(h->mounts[i].target);
		free(h->mounts[i].type);
		free(h->mounts[i].conn);
	}
	free(h->mounts);
	for (size_t i = 0; i < h->n_pending; i++) {
		free(h->pending[i].target);
		free(h->pending[i].type);
		free(h->pending[i].conn);
		free(h->pending[i].what);
		free(h->pending[i].stop_conn);
	}
	free(h->pending);
	free(h->mounts_path);
	free(h->timers);
	json_decref(h->facts);
	json_decref(h->load_errors);
	free(h->dir);
	free(h->defaults);
	free(h);
}

static void enqueue(struct bw_policy_host *h, struct bw_policy_item *it)
{
	it->seq = ++h->next_seq;
	it->next = NULL;
	if (h->q_tail)
		h->q_tail->next = it;
	else
		h->q_head = it;
	h->q_tail = it;
	h->ops->arm(h->ctx, h->ops->now(h->ctx));
}

void bw_policy_host_push_event(struct bw_policy_host *h, json_t *event)
{
	struct bw_policy_item *it = calloc(1, sizeof(*it));

	if (!it)
		return;
	it->event = json_incref(event);
	enqueue(h, it);
}

int bw_policy_pending_add(struct bw_policy_host *h, struct bw_policy *p, int kind, int ref,
			  const char *target, const char *type, const char *conn, const char *what,
			  uint64_t *token)
{
	struct bw_policy_pending *n = realloc(h->pending, (h->n_pending + 1) * sizeof(*n));

	if (!n)
		return -1;
	h->pending = n;
	n = &h->pending[h->n_pending++];
	memset(n, 0, sizeof(*n));
	n->token = h->next_token++;
	n->policy_id = p ? p->id : 0;
	n->ref = ref;
	n->kind = kind;
	n->target = target ? strdup(target) : NULL;
	n->type = type ? strdup(type) : NULL;
	n->conn = conn ? strdup(conn) : NULL;
	n->what = what ? strdup(what) : NULL;
	n->stop_conn = h->cur_stop_conn ? strdup(h->cur_stop_conn) : NULL;
	*token = n->token;
	return 0;
}

/* The records as JSON in h->mounts_path, replaced atomically (habit 7: a restarted agent
 * undoes what a crashed one mounted). */
static void mounts_save(struct bw_policy_host *h)
{
	char tmp[PATH_MAX + 8];
	json_t *a, *o;

	if (!h->mounts_path)
		return;
	a = json_array();
	for (size_t i = 0; i < h->n_mounts; i++) {
		o = json_pack("{s:s,s:s}", "target", h->mounts[i].target, "type", h->mounts[i].type);
		if (h->mounts[i].conn)
			json_object_set_new(o, "connection", json_string(h->mounts[i].conn));
		json_array_append_new(a, o);
	}
	o = json_pack("{s:o}", "mounts", a);
	snprintf(tmp, sizeof(tmp), "%s.tmp", h->mounts_path);
	if (json_dump_file(o, tmp, JSON_INDENT(1)) != 0 || rename(tmp, h->mounts_path) != 0)
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "cannot record mounts in %s: %s; a crash would leave them mounted",
				h->mounts_path, strerror(errno));
	json_decref(o);
}

static void mount_record(struct bw_policy_host *h, struct bw_policy_pending *pd, bool add)
{
	for (size_t i = 0; i < h->n_mounts; i++) {
		if (strcmp(h->mounts[i].target, pd->target) != 0)
			continue;
		free(h->mounts[i].target);
		free(h->mounts[i].type);
		free(h->mounts[i].conn);
		h->mounts[i] = h->mounts[--h->n_mounts];
		break;
	}
	if (add) {
		struct bw_policy_mount *n = realloc(h->mounts, (h->n_mounts + 1) * sizeof(*n));

		if (!n)
			return;
		h->mounts = n;
		n[h->n_mounts].target = pd->target;
		n[h->n_mounts].type = pd->type;
		n[h->n_mounts].conn = pd->conn;
		pd->target = pd->type = pd->conn = NULL;
		h->n_mounts++;
	}
	mounts_save(h);
}

void bw_policy_host_exec_done(struct bw_policy_host *h, uint64_t token, int status,
			      const char *reason, const char *output, size_t len)
{
	struct bw_policy_pending pd;
	struct bw_policy_item *it;
	size_t i;

	for (i = 0; i < h->n_pending && h->pending[i].token != token; i++)
		;
	if (i == h->n_pending)
		return;
	pd = h->pending[i];
	h->pending[i] = h->pending[--h->n_pending];
	if (pd.kind == BW_PENDING_MOUNT && status == 0)
		mount_record(h, &pd, true);
	else if (pd.kind == BW_PENDING_UNMOUNT && status == 0)
		mount_record(h, &pd, false);
	if ((pd.kind == BW_PENDING_MOUNT || pd.kind == BW_PENDING_UNMOUNT) && status != 0)
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "%s %s failed (%s %d): %.*s",
				pd.kind == BW_PENDING_MOUNT ? "mount of" : "unmount of", pd.target ? pd.target : "?",
				reason, status, (int)(len > 400 ? 400 : len), output ? output : "");
	free(pd.target);
	free(pd.type);
	free(pd.conn);
	free(pd.what);
	if (!pd.policy_id || pd.ref == LUA_NOREF || !(it = calloc(1, sizeof(*it)))) {
		free(pd.stop_conn);
		/* The last action of an awaited tunnel_stopping may have just finished. */
		if (h->n_awaits)
			h->ops->arm(h->ctx, h->ops->now(h->ctx));
		return;
	}
	it->stop_conn = pd.stop_conn;
	it->policy_id = pd.policy_id;
	it->ref = pd.ref;
	it->status = status;
	it->reason = strdup(reason ? reason : "exited");
	it->output = malloc(len + 1);
	if (it->output) {
		memcpy(it->output, output, len);
		it->output[len] = '\0';
		it->output_len = len;
	}
	enqueue(h, it);
}

/* ssid/network/location events keep burrow.facts() current in both modes. */
static void fold_facts(struct bw_policy_host *h, const json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "name"));
	json_t *v;

	if (!name)
		return;
	if (strcmp(name, "ssid") == 0) {
		static const char *const keys[] = { "ssid", "bssid" };

		for (size_t i = 0; i < 2; i++) {
			if ((v = json_object_get(ev, keys[i])) && !json_is_null(v))
				json_object_set(h->facts, keys[i], v);
			else
				json_object_del(h->facts, keys[i]);
		}
	} else if (strcmp(name, "network") == 0 && (v = json_object_get(ev, "online")) && json_is_boolean(v)) {
		json_object_set(h->facts, "online", v);
	} else if (strcmp(name, "location") == 0) {
		if ((v = json_object_get(ev, "location")) && json_is_string(v))
			json_object_set(h->facts, "location", v);
		else
			json_object_del(h->facts, "location");
	}
}

/* Unmounts what policies mounted for conn (every record when conn is NULL), unless an
 * unmount of that target is already on its way (habit 7). */
static void unmount_for(struct bw_policy_host *h, const char *conn, const char *why)
{
	for (size_t i = 0; i < h->n_mounts; i++) {
		struct bw_policy_mount *m = &h->mounts[i];
		char what[PATH_MAX + 128], err[256];
		char *argv[4];
		struct bw_policy_exec_req req = { 0 };
		bool sshfs = strcmp(m->type, "sshfs") == 0, busy = false;
		uint64_t token;

		if (conn && (!m->conn || strcmp(m->conn, conn) != 0))
			continue;
		for (size_t j = 0; j < h->n_pending; j++)
			if (h->pending[j].kind == BW_PENDING_UNMOUNT && h->pending[j].target &&
			    strcmp(h->pending[j].target, m->target) == 0)
				busy = true;
		if (busy)
			continue;
		argv[0] = sshfs ? "fusermount3" : "umount";
		argv[1] = sshfs ? "-uz" : "-l";
		argv[2] = m->target;
		argv[3] = NULL;
		snprintf(what, sizeof(what), "unmount %s (%s)", m->target, why);
		if (bw_policy_pending_add(h, NULL, BW_PENDING_UNMOUNT, LUA_NOREF, m->target, m->type, m->conn,
					  what, &token) != 0)
			return;
		req.policy = "host";
		req.conn = m->conn;
		req.what = what;
		req.argv = argv;
		req.env = (char *[]){ NULL };
		req.timeout_s = 10;
		req.token = token;
		if (h->ops->exec(h->ctx, &req, err, sizeof(err)) != 0) {
			bw_policy_hostf(h, BW_LOG_WARN, NULL, "cannot unmount %s: %s", m->target, err);
			bw_policy_host_exec_done(h, token, -1, "error", err, strlen(err));
		}
	}
}

static void dispatch_event(struct bw_policy_host *h, json_t *ev)
{
	const char *name = json_string_value(json_object_get(ev, "name"));
	const char *conn = json_string_value(json_object_get(ev, "connection"));
	char what[96];

	if (!name)
		return;
	fold_facts(h, ev);
	/* Actions started for a tunnel_stopping are tagged with it: an await waits for them. */
	h->cur_stop_conn = conn && strcmp(name, "tunnel_stopping") == 0 ? conn : NULL;
	if (h->ops->dispatching)
		h->ops->dispatching(h->ctx, ev);
	snprintf(what, sizeof(what), "handler for %s", name);
	for (size_t i = 0; i < h->n_policies; i++) {
		struct bw_policy *p = h->policies[i];
		int ids[64];
		size_t n = 0;

		/* Copy the matching handlers first: a handler may call burrow.on/off. */
		for (size_t j = 0; j < p->n_handlers && n < sizeof(ids) / sizeof(ids[0]); j++)
			if (strcmp(p->handlers[j].event, name) == 0)
				ids[n++] = p->handlers[j].id;
		for (size_t k = 0; k < n && p->L; k++) {
			size_t j;

			for (j = 0; j < p->n_handlers && p->handlers[j].id != ids[k]; j++)
				;
			if (j == p->n_handlers)
				continue;			/* removed by an earlier handler */
			lua_rawgeti(p->L, LUA_REGISTRYINDEX, p->handlers[j].ref);	/* fn */
			bw_policy_push_json(p->L, ev, 0);				/* fn ev */
			p->cur_event = ev;
			bw_policy_call(p, 1, what);					/* (empty) */
			p->cur_event = NULL;
		}
	}
	/* What the handlers left mounted for a stopping tunnel goes now, awaited like the
	 * handlers' own actions; after a tunnel_down (DPD, peer delete) it is too late to be
	 * clean, but not too late to unmount. */
	if (conn && strcmp(name, "tunnel_stopping") == 0)
		unmount_for(h, conn, "its tunnel is stopping");
	else if (conn && strcmp(name, "tunnel_down") == 0)
		unmount_for(h, conn, "its tunnel went down");
	h->cur_stop_conn = NULL;
}

static void run_exit(struct bw_policy_host *h, struct bw_policy_item *it)
{
	struct bw_policy *p = find_policy(h, it->policy_id);

	if (!p || !p->L)
		return;
	lua_rawgeti(p->L, LUA_REGISTRYINDEX, it->ref);			/* fn */
	lua_pushinteger(p->L, it->status);				/* fn status */
	lua_pushlstring(p->L, it->output ? it->output : "", it->output ? it->output_len : 0);
	lua_pushstring(p->L, it->reason);				/* fn status output reason */
	h->cur_stop_conn = it->stop_conn;	/* what on_exit starts is awaited like its parent */
	bw_policy_call(p, 3, "on_exit callback");
	h->cur_stop_conn = NULL;
	if (p->L)
		luaL_unref(p->L, LUA_REGISTRYINDEX, it->ref);
}

double bw_policy_host_next_due(const struct bw_policy_host *h)
{
	double due = INFINITY;

	for (size_t i = 0; i < h->n_timers; i++)
		if (h->timers[i].due < due)
			due = h->timers[i].due;
	for (size_t i = 0; i < h->n_awaits; i++)
		if (h->awaits[i].deadline < due)
			due = h->awaits[i].deadline;
	return due;
}

static bool tagged(const char *stop_conn, const char *conn)
{
	return stop_conn && strcmp(stop_conn, conn) == 0;
}

/* Whether w is still waiting for something other than its deadline. */
static bool await_busy(const struct bw_policy_host *h, const struct bw_policy_await *w)
{
	if (w->wait_seq > h->done_seq)
		return true;			/* the event has not been dispatched yet */
	for (size_t i = 0; i < h->n_pending; i++)
		if (tagged(h->pending[i].stop_conn, w->conn))
			return true;
	for (const struct bw_policy_item *it = h->q_head; it; it = it->next)
		if (!it->event && tagged(it->stop_conn, w->conn))
			return true;		/* an on_exit still to run (it may start more) */
	return false;
}

/* Calls done for every await that is complete or past its deadline; how many. */
static size_t finish_awaits(struct bw_policy_host *h, double now)
{
	size_t n_done = 0;

	for (size_t i = 0; i < h->n_awaits;) {
		struct bw_policy_await w = h->awaits[i];
		bool busy = await_busy(h, &w);

		if (busy && now < w.deadline) {
			i++;
			continue;
		}
		if (busy) {
			char list[1024] = "";
			size_t len = 0;

			for (size_t j = 0; j < h->n_pending && len < sizeof(list); j++)
				if (tagged(h->pending[j].stop_conn, w.conn))
					len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s", len ? "; " : "",
								h->pending[j].what ? h->pending[j].what : "an action");
			bw_policy_hostf(h, BW_LOG_WARN, NULL,
					"%s: stopping goes on without the tunnel_stopping actions still running: %s",
					w.conn, len ? list : w.wait_seq > h->done_seq ? "(the event was not handled in time)"
						    : "(their on_exit callbacks)");
		} else {
			bw_policy_hostf(h, BW_LOG_DEBUG, NULL, "%s: the tunnel_stopping actions are done", w.conn);
		}
		/* Out of the list before the callback: done may start another await. */
		h->awaits[i] = h->awaits[--h->n_awaits];
		free(w.conn);
		w.done(w.ctx);
		n_done++;
	}
	return n_done;
}

void bw_policy_host_await(struct bw_policy_host *h, const char *conn, double timeout_s,
			  void (*done)(void *ctx), void *ctx)
{
	struct bw_policy_await *n = realloc(h->awaits, (h->n_awaits + 1) * sizeof(*n));
	char *name = n ? strdup(conn) : NULL;
	uint64_t seq = 0;

	for (const struct bw_policy_item *it = h->q_head; it; it = it->next) {
		const json_t *e = it->event;

		if (e && tagged(json_string_value(json_object_get(e, "name")), "tunnel_stopping") &&
		    tagged(json_string_value(json_object_get(e, "connection")), conn))
			seq = it->seq;		/* the latest one */
	}

	if (n)
		h->awaits = n;
	if (!name) {
		/* Cannot keep the record; the one case where done runs from this call, so that the
		 * caller is never held up by the host. */
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "out of memory: not waiting for the tunnel_stopping actions of %s", conn);
		done(ctx);
		return;
	}
	n = &h->awaits[h->n_awaits++];
	n->conn = name;
	n->wait_seq = seq;
	n->deadline = h->ops->now(h->ctx) + (timeout_s > 0 ? timeout_s : 0);
	n->done = done;
	n->ctx = ctx;
	/* Run soon even with nothing queued: done is never called from here. */
	h->ops->arm(h->ctx, h->ops->now(h->ctx));
}

bool bw_policy_host_busy(const struct bw_policy_host *h)
{
	return h->q_head != NULL;
}

static void drain(struct bw_policy_host *h)
{
	while (h->q_head) {
		struct bw_policy_item *it = h->q_head;

		h->q_head = it->next;
		if (!h->q_head)
			h->q_tail = NULL;
		if (it->event)
			dispatch_event(h, it->event);
		else
			run_exit(h, it);
		h->done_seq = it->seq;
		item_free(it);
	}
}

/* Drains the queue and completes awaits until neither has more to do (a done callback
 * may emit, e.g. tunnel_down). */
static void settle(struct bw_policy_host *h, double now)
{
	for (int i = 0; i < 1000; i++) {
		drain(h);
		if (!finish_awaits(h, now) && !h->q_head)
			break;
	}
}

/* Fires the earliest due timer; false when none is due. */
static bool fire_one_timer(struct bw_policy_host *h, double now)
{
	struct bw_policy_timer t;
	struct bw_policy *p;
	size_t best = h->n_timers;
	json_t *ev;

	for (size_t i = 0; i < h->n_timers; i++)
		if (h->timers[i].due <= now && (best == h->n_timers || h->timers[i].due < h->timers[best].due))
			best = i;
	if (best == h->n_timers)
		return false;
	t = h->timers[best];
	if (t.interval_s > 0) {
		h->timers[best].due = t.due + t.interval_s > now ? t.due + t.interval_s : now + t.interval_s;
	} else {
		memmove(&h->timers[best], &h->timers[best + 1], (h->n_timers - best - 1) * sizeof(t));
		h->n_timers--;
	}
	p = find_policy(h, t.policy_id);
	if (!p || !p->L)
		return true;
	if (h->ops->timer_firing)
		h->ops->timer_firing(h->ctx, p->name);
	ev = json_pack("{s:s,s:f}", "name", "timer", "time", now);
	lua_rawgeti(p->L, LUA_REGISTRYINDEX, t.ref);		/* fn */
	bw_policy_push_json(p->L, ev, 0);			/* fn ev */
	p->cur_event = ev;
	bw_policy_call(p, 1, "timer callback");
	p->cur_event = NULL;
	json_decref(ev);
	if (t.interval_s <= 0 && p->L)
		luaL_unref(p->L, LUA_REGISTRYINDEX, t.ref);
	return true;
}

void bw_policy_host_run(struct bw_policy_host *h)
{
	double now, due;

	if (h->running)
		return;			/* arm() promised a later call; never nest */
	h->running = true;
	now = h->ops->now(h->ctx);
	settle(h, now);
	/* Timers that came due by now, earliest first, each followed by what it queued.
	 * A bound keeps a zero-interval loop from starving the agent. */
	for (int i = 0; i < 1000 && fire_one_timer(h, now); i++)
		settle(h, now);
	h->running = false;
	due = bw_policy_host_next_due(h);
	if (h->q_head)
		h->ops->arm(h->ctx, now);
	else if (due < INFINITY)
		h->ops->arm(h->ctx, due);
}

void bw_policy_host_set_facts(struct bw_policy_host *h, json_t *facts)
{
	if (!h || !json_is_object(facts))
		return;
	json_decref(h->facts);
	h->facts = json_deep_copy(facts);
}

static bool value_matches(const char *key, const json_t *want, const json_t *have)
{
	bool mac = strcmp(key, "bssid") == 0 || strcmp(key, "gateway_mac") == 0;

	if (json_is_array(want)) {
		for (size_t i = 0; i < json_array_size(want); i++)
			if (value_matches(key, json_array_get(want, i), have))
				return true;
		return false;
	}
	if (json_is_array(have)) {		/* interfaces, dns domains: any of them */
		for (size_t i = 0; i < json_array_size(have); i++)
			if (value_matches(key, want, json_array_get(have, i)))
				return true;
		return false;
	}
	if (!json_is_string(want) || !json_is_string(have))
		return false;
	return mac ? strcasecmp(json_string_value(want), json_string_value(have)) == 0
		   : strcmp(json_string_value(want), json_string_value(have)) == 0;
}

static const json_t *fact_for(const json_t *facts, const char *key)
{
	const json_t *v = json_object_get(facts, key);

	if (!v && strcmp(key, "interface") == 0)
		v = json_object_get(facts, "interfaces");
	if (!v && strcmp(key, "dns_domain") == 0)
		v = json_object_get(facts, "dns_domains");
	return v;
}

int bw_policy_host_match_location(struct bw_policy_host *h, const json_t *facts, char *out,
				  size_t outlen)
{
	if (!h || !facts)
		return 0;
	for (size_t i = 0; i < h->n_policies; i++) {
		const json_t *rules = h->policies[i]->locations, *r;
		size_t k;

		if (h->policies[i]->disabled)
			continue;
		json_array_foreach(rules, k, r) {
			const json_t *rule = json_object_get(r, "rule"), *want;
			const char *key;
			bool all = json_object_size(rule) > 0;

			json_object_foreach((json_t *)rule, key, want) {
				const json_t *have = fact_for(facts, key);

				if (!have || !value_matches(key, want, have)) {
					all = false;
					break;
				}
			}
			if (all) {
				snprintf(out, outlen, "%s", json_string_value(json_object_get(r, "name")));
				return 1;
			}
		}
	}
	return 0;
}

void bw_policy_host_mounts_file(struct bw_policy_host *h, const char *path)
{
	json_t *o, *m;
	json_error_t jerr;
	size_t i, n_left = 0;

	free(h->mounts_path);
	h->mounts_path = path ? strdup(path) : NULL;
	if (!path)
		return;
	o = json_load_file(path, 0, &jerr);
	if (!o && access(path, F_OK) == 0)
		bw_policy_hostf(h, BW_LOG_WARN, NULL, "%s: %s; ignoring the mount records of the last run",
				path, jerr.text);
	json_array_foreach(json_object_get(o, "mounts"), i, m) {
		const char *target = json_string_value(json_object_get(m, "target"));
		const char *type = json_string_value(json_object_get(m, "type"));
		const char *conn = json_string_value(json_object_get(m, "connection"));
		struct bw_policy_pending pd = { 0 };

		if (!target || target[0] != '/' || !type)
			continue;
		if (h->ops->is_mounted && !h->ops->is_mounted(h->ctx, target)) {
			bw_policy_hostf(h, BW_LOG_DEBUG, NULL, "%s: recorded by the last run, no longer mounted", target);
			continue;
		}
		bw_policy_hostf(h, BW_LOG_INFO, NULL, "%s (%s) is still mounted from the last run: unmounting it",
				target, type);
		pd.target = strdup(target);
		pd.type = strdup(type);
		pd.conn = conn ? strdup(conn) : NULL;
		if (pd.target && pd.type) {
			mount_record(h, &pd, true);
			n_left++;
		}
		free(pd.target);
		free(pd.type);
		free(pd.conn);
	}
	json_decref(o);
	mounts_save(h);
	if (n_left)
		unmount_for(h, NULL, "left mounted by an earlier run");
}

size_t bw_policy_host_memory(const struct bw_policy_host *h)
{
	size_t n = 0;

	for (size_t i = 0; h && i < h->n_policies; i++)
		n += h->policies[i]->L ? h->policies[i]->mem_used : 0;
	return n;
}

static void sink_set_facts(void *ctx, json_t *facts)
{
	bw_policy_host_set_facts(ctx, facts);
}

static int sink_match_location(void *ctx, const json_t *facts, char *out, size_t outlen)
{
	return ctx ? bw_policy_host_match_location(ctx, facts, out, outlen) : 0;
}

struct bw_watch_sink bw_policy_host_watch_sink(struct bw_policy_host *h)
{
	return (struct bw_watch_sink){ .ctx = h, .set_facts = h ? sink_set_facts : NULL,
				       .match_location = sink_match_location };
}

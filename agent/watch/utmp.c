/* Logins from utmp: an ev_stat (inotify) on the file; each change reads the records again
 * and the difference in USER_PROCESS entries becomes `logout` and `login` events. */
#include "watch/watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <utmpx.h>

#include "agent.h"
#include "log.h"
#include "util.h"

/* 4096 records: far more sessions than a client machine has; a bigger file is not utmp. */
#define UTMP_MAX_BYTES (4096 * sizeof(struct utmpx))
/* ev_stat compares stat data with one-second timestamps: a second change within the same
 * second as the first leaves them equal. Looking again a little later catches it. */
#define UTMP_AGAIN_S 1.1

static char utmp_override[PATH_MAX];

void bw_watch_set_utmp_path(const char *path)
{
	bw_strlcpy(utmp_override, path ? path : "", sizeof(utmp_override));
}

static void copy_field(char *dst, size_t dstlen, const char *src, size_t srclen)
{
	size_t n = strnlen(src, srclen);

	if (n >= dstlen)
		n = dstlen - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
	/* A tty or user name with control characters would garble logs and JSON alike. */
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)dst[i] < 0x20 || dst[i] == 0x7f)
			dst[i] = '?';
}

/* Reads every USER_PROCESS record; -errno on error (the old set then stays). */
static int read_users(const char *path, struct bw_watch_user **out, size_t *n_out)
{
	struct bw_watch_user *users = NULL;
	size_t n = 0;
	struct stat st;
	char *buf;
	ssize_t got;
	size_t len;
	int fd, rc = 0;

	*out = NULL;
	*n_out = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;	/* no utmp: nobody logged in */
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		close(fd);
		return rc;
	}
	len = (size_t)st.st_size < UTMP_MAX_BYTES ? (size_t)st.st_size : UTMP_MAX_BYTES;
	if (!(buf = malloc(len ? len : 1))) {
		close(fd);
		return -ENOMEM;
	}
	got = pread(fd, buf, len, 0);
	rc = got < 0 ? -errno : 0;
	close(fd);
	/* Whole records only: a writer may be half-way through the last one. */
	for (size_t off = 0; rc == 0 && off + sizeof(struct utmpx) <= (size_t)got; off += sizeof(struct utmpx)) {
		struct utmpx u;
		struct bw_watch_user *nu;

		memcpy(&u, buf + off, sizeof(u));
		if (u.ut_type != USER_PROCESS || !u.ut_user[0])
			continue;
		if (!(nu = realloc(users, (n + 1) * sizeof(*nu)))) {
			rc = -ENOMEM;
			break;
		}
		users = nu;
		copy_field(users[n].user, sizeof(users[n].user), u.ut_user, sizeof(u.ut_user));
		copy_field(users[n].tty, sizeof(users[n].tty), u.ut_line, sizeof(u.ut_line));
		users[n].pid = u.ut_pid;
		n++;
	}
	free(buf);
	if (rc != 0) {
		free(users);
		return rc;
	}
	*out = users;
	*n_out = n;
	return 0;
}

static bool has_user(const struct bw_watch_user *set, size_t n, const struct bw_watch_user *u)
{
	for (size_t i = 0; i < n; i++)
		if (set[i].pid == u->pid && strcmp(set[i].user, u->user) == 0 && strcmp(set[i].tty, u->tty) == 0)
			return true;
	return false;
}

static void emit_user(struct bw_watch *w, const char *name, const struct bw_watch_user *u)
{
	bw_debug("utmp: %s %s on %s", name, u->user, u->tty[0] ? u->tty : "?");
	bw_events_emitf(&w->agent->events, name, json_pack("{s:s,s:s}", "user", u->user, "tty", u->tty));
}

void bw_watch_utmp_scan(struct bw_watch *w, bool emit)
{
	struct bw_watch_user *now;
	size_t n_now;
	bool changed = false;
	int rc;

	if ((rc = read_users(w->utmp_path, &now, &n_now)) != 0) {
		bw_debug("utmp: cannot read %s: %s", w->utmp_path, strerror(-rc));
		return;
	}
	/* Logouts first: a tty handed from one session to the next reads in order. */
	for (size_t i = 0; i < w->n_users; i++)
		if (!has_user(now, n_now, &w->users[i])) {
			changed = true;
			if (emit)
				emit_user(w, "logout", &w->users[i]);
		}
	for (size_t i = 0; i < n_now; i++)
		if (!has_user(w->users, w->n_users, &now[i])) {
			changed = true;
			if (emit)
				emit_user(w, "login", &now[i]);
		}
	free(w->users);
	w->users = now;
	w->n_users = n_now;
	if (changed && emit)
		bw_watch_facts_changed(w);
}

static void on_again(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bw_watch *w = bw_container_of(t, struct bw_watch, ut_again);

	(void)loop;
	(void)revents;
	bw_watch_utmp_scan(w, true);
}

static void on_stat(struct ev_loop *loop, ev_stat *st, int revents)
{
	struct bw_watch *w = bw_container_of(st, struct bw_watch, ut_stat);

	(void)revents;
	bw_watch_utmp_scan(w, true);
	ev_timer_stop(loop, &w->ut_again);
	ev_timer_set(&w->ut_again, UTMP_AGAIN_S, 0.0);
	ev_timer_start(loop, &w->ut_again);
}

int bw_watch_utmp_open(struct bw_watch *w)
{
	const char *env = getenv("BURROW_UTMP");

	if (utmp_override[0])
		bw_strlcpy(w->utmp_path, utmp_override, sizeof(w->utmp_path));
	else
		bw_strlcpy(w->utmp_path, env && env[0] ? env : _PATH_UTMPX, sizeof(w->utmp_path));
	bw_watch_utmp_scan(w, false);
	ev_timer_init(&w->ut_again, on_again, UTMP_AGAIN_S, 0.0);
	/* interval 0: libev's default poll when inotify is not there. */
	ev_stat_init(&w->ut_stat, on_stat, w->utmp_path, 0.0);
	ev_stat_start(w->agent->loop, &w->ut_stat);
	return 0;
}

void bw_watch_utmp_close(struct bw_watch *w)
{
	if (w->utmp_path[0]) {
		ev_stat_stop(w->agent->loop, &w->ut_stat);
		ev_timer_stop(w->agent->loop, &w->ut_again);
	}
	free(w->users);
	w->users = NULL;
	w->n_users = 0;
}

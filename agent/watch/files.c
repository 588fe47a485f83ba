/* inotify on the configuration directories, read from a libev io watcher; changes arm a
 * debounce timer whose expiry reloads the agent. Directories created later are picked up. */
#include "watch/files.h"

#include <errno.h>
#include <ev.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "agent.h"
#include "log.h"
#include "util.h"

static const char *const subdirs[] = { "connections", "secrets", "policies" };

struct bw_file_watch {
	struct bw_agent *agent;
	int fd;
	int wd_top;
	int wd_sub[3];
	ev_io io;
	ev_timer debounce;
};

#define DIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE | IN_CREATE | IN_ATTRIB)

static void add_subdirs(struct bw_file_watch *w)
{
	char path[PATH_MAX + 32];

	for (size_t i = 0; i < BW_ARRAY_SIZE(subdirs); i++) {
		if (w->wd_sub[i] >= 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", w->agent->opts.config_dir, subdirs[i]);
		w->wd_sub[i] = inotify_add_watch(w->fd, path, DIR_MASK | IN_DELETE_SELF | IN_MOVE_SELF);
	}
}

static void on_debounce(struct ev_loop *loop, ev_timer *t, int revents)
{
	struct bw_file_watch *w = bw_container_of(t, struct bw_file_watch, debounce);

	(void)loop;
	(void)revents;
	add_subdirs(w);
	bw_agent_reload(w->agent, "files changed");
}

static void on_inotify(struct ev_loop *loop, ev_io *io, int revents)
{
	struct bw_file_watch *w = bw_container_of(io, struct bw_file_watch, io);
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool relevant = false;
	ssize_t n;

	(void)revents;
	while ((n = read(w->fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *e = (const struct inotify_event *)(void *)p;

			p += sizeof(*e) + e->len;
			if (e->mask & (IN_IGNORED | IN_DELETE_SELF | IN_MOVE_SELF))
				for (size_t i = 0; i < BW_ARRAY_SIZE(subdirs); i++)
					if (w->wd_sub[i] == e->wd)
						w->wd_sub[i] = -1;
			/* Editors write temporary files (.swp, ~); only names we load matter. */
			if (e->len && (e->name[0] == '.' || e->name[strlen(e->name) - 1] == '~'))
				continue;
			if (e->wd == w->wd_top && e->len && strcmp(e->name, "burrow.conf") != 0 &&
			    !(e->mask & IN_ISDIR))
				continue;
			relevant = true;
		}
	}
	if (relevant) {
		ev_timer_stop(loop, &w->debounce);
		ev_timer_set(&w->debounce, BW_FILE_WATCH_DEBOUNCE_S, 0.0);
		ev_timer_start(loop, &w->debounce);
	}
}

int bw_file_watch_open(struct bw_agent *a, struct bw_file_watch **out)
{
	struct bw_file_watch *w = calloc(1, sizeof(*w));
	int rc;

	if (!w)
		return -ENOMEM;
	w->agent = a;
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0) {
		rc = -errno;
		free(w);
		return rc;
	}
	w->wd_top = inotify_add_watch(w->fd, a->opts.config_dir, DIR_MASK);
	if (w->wd_top < 0) {
		rc = -errno;
		close(w->fd);
		free(w);
		return rc;
	}
	for (size_t i = 0; i < BW_ARRAY_SIZE(subdirs); i++)
		w->wd_sub[i] = -1;
	add_subdirs(w);
	ev_io_init(&w->io, on_inotify, w->fd, EV_READ);
	ev_io_start(a->loop, &w->io);
	ev_timer_init(&w->debounce, on_debounce, BW_FILE_WATCH_DEBOUNCE_S, 0.0);
	*out = w;
	return 0;
}

void bw_file_watch_close(struct bw_file_watch *w)
{
	if (!w)
		return;
	ev_io_stop(w->agent->loop, &w->io);
	ev_timer_stop(w->agent->loop, &w->debounce);
	close(w->fd);
	free(w);
}

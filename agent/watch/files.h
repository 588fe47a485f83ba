/* Watches connections/, secrets/, policies/ and burrow.conf with inotify (through libev)
 * and reloads the agent after a short debounce, so one editor save gives one reload. */
#ifndef BURROW_WATCH_FILES_H
#define BURROW_WATCH_FILES_H

struct bw_agent;
struct bw_file_watch;

#define BW_FILE_WATCH_DEBOUNCE_S 0.3

int bw_file_watch_open(struct bw_agent *a, struct bw_file_watch **out);
void bw_file_watch_close(struct bw_file_watch *w);

#endif

/* The CLI's side of the control socket: connect, send one request, read reply lines. */
#ifndef BURROW_CLI_CLIENT_H
#define BURROW_CLI_CLIENT_H

#include <stddef.h>
#include <jansson.h>

struct bw_client {
	int fd;
	char *buf;
	size_t len, cap;
};

/* 0, or -1 after printing a one-sentence error to stderr. */
int bw_client_connect(struct bw_client *cl, const char *path);
/* The same without a message: -1 with errno set (ENOENT or ECONNREFUSED: no agent). */
int bw_client_connect_quiet(struct bw_client *cl, const char *path);
/* The one-sentence message for a failed connect with errno err. */
void bw_client_connect_error(const char *path, int err, char *buf, size_t len);
int bw_client_send(struct bw_client *cl, const char *cmd, json_t *args);
/* Reads one reply line; returns a new object or NULL (error printed) at EOF/garbage. */
json_t *bw_client_read(struct bw_client *cl);
void bw_client_close(struct bw_client *cl);

#endif

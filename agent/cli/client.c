/* The CLI's side of the control socket. Replies are trusted no more than requests: a line
 * that is not a JSON object ends the session with an error. */
#include "client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "ctl_proto.h"
#include "util.h"

int bw_client_connect_quiet(struct bw_client *cl, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int e;

	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
	if (bw_strlcpy(sa.sun_path, path, sizeof(sa.sun_path)) != 0) {
		errno = ENAMETOOLONG;
		return -1;
	}
	cl->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (cl->fd < 0 || connect(cl->fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		e = errno;
		if (cl->fd >= 0)
			close(cl->fd);
		cl->fd = -1;
		errno = e;
		return -1;
	}
	return 0;
}

void bw_client_connect_error(const char *path, int err, char *buf, size_t len)
{
	if (err == ENAMETOOLONG)
		snprintf(buf, len, "socket path %s is too long", path);
	else if (err == ENOENT || err == ECONNREFUSED)
		snprintf(buf, len, "burrowd is not running (no agent at %s); start it with systemctl start burrowd",
			 path);
	else if (err == EACCES)
		snprintf(buf, len, "permission denied on %s; run as root or join group burrow", path);
	else
		snprintf(buf, len, "cannot connect to %s: %s", path, strerror(err));
}

int bw_client_connect(struct bw_client *cl, const char *path)
{
	char msg[512];

	if (bw_client_connect_quiet(cl, path) == 0)
		return 0;
	bw_client_connect_error(path, errno, msg, sizeof(msg));
	fprintf(stderr, "burrow: %s\n", msg);
	return -1;
}

int bw_client_send(struct bw_client *cl, const char *cmd, json_t *args)
{
	char *line = bw_ctl_request_build(cmd, args);
	size_t off = 0, n;

	if (!line)
		return -1;
	n = strlen(line);
	while (off < n) {
		ssize_t w = write(cl->fd, line + off, n - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			fprintf(stderr, "burrow: lost the connection to burrowd: %s\n", strerror(errno));
			free(line);
			return -1;
		}
		off += (size_t)w;
	}
	free(line);
	return 0;
}

json_t *bw_client_read(struct bw_client *cl)
{
	for (;;) {
		char *nl = cl->buf ? memchr(cl->buf, '\n', cl->len) : NULL;
		ssize_t n;

		if (nl) {
			size_t len = (size_t)(nl - cl->buf);
			json_t *o = json_loadb(cl->buf, len, 0, NULL);

			memmove(cl->buf, nl + 1, cl->len - len - 1);
			cl->len -= len + 1;
			if (!json_is_object(o)) {
				json_decref(o);
				fprintf(stderr, "burrow: burrowd sent a reply that is not JSON; are burrow and burrowd the same version?\n");
				return NULL;
			}
			return o;
		}
		if (cl->cap - cl->len < 4096) {
			size_t cap = cl->cap ? cl->cap * 2 : 16384;
			char *b;

			if (cap > (64u << 20)) {
				fprintf(stderr, "burrow: reply from burrowd is too large\n");
				return NULL;
			}
			b = realloc(cl->buf, cap);
			if (!b) {
				fprintf(stderr, "burrow: out of memory\n");
				return NULL;
			}
			cl->buf = b;
			cl->cap = cap;
		}
		n = read(cl->fd, cl->buf + cl->len, cl->cap - cl->len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n < 0)
				fprintf(stderr, "burrow: lost the connection to burrowd: %s\n", strerror(errno));
			else
				fprintf(stderr, "burrow: burrowd closed the connection\n");
			return NULL;
		}
		cl->len += (size_t)n;
	}
}

void bw_client_close(struct bw_client *cl)
{
	if (cl->fd >= 0)
		close(cl->fd);
	free(cl->buf);
	memset(cl, 0, sizeof(*cl));
	cl->fd = -1;
}

/* Device profiles (devices/ID.conf): loaded and checked once, kept as text so that a
 * connection naming one re-reads it underneath its own keys. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "keyfile.h"
#include "util.h"

static int cmp_device(const void *x, const void *y)
{
	const struct bw_device *a = x, *b = y;

	return strcmp(a->id, b->id);
}

static void report(void (*err_cb)(void *, const struct bw_cfg_error *), void *ctx,
		   const struct bw_cfg_error *err)
{
	if (err_cb)
		err_cb(ctx, err);
}

/* Loads one profile into dev; 0, or -1 with err set (dev then holds nothing to free). */
static int load_one(const char *path, const char *id, struct bw_device *dev,
		    struct bw_cfg_error *err)
{
	char *buf;
	size_t len;

	memset(dev, 0, sizeof(*dev));
	if (bw_strlcpy(dev->file, path, sizeof(dev->file)) != 0) {
		bw_cfg_error_set(err, path, 0, "the path is too long");
		return -1;
	}
	bw_strlcpy(dev->id, id, sizeof(dev->id));
	if (bw_kf_read_file(path, false, BW_KF_FILE_MAX, NULL, &buf, &len, err) != 0)
		return -1;
	if (bw_device_check(path, buf, len, dev, err) != 0) {
		free(buf);
		return -1;
	}
	if (!dev->name[0])
		bw_strlcpy(dev->name, id, sizeof(dev->name));
	dev->text = buf;
	dev->text_len = len;
	return 0;
}

int bw_devices_load_dir(const char *dir, struct bw_devices *out,
			void (*err_cb)(void *ctx, const struct bw_cfg_error *err), void *ctx)
{
	struct bw_devices devs = { 0 };
	struct bw_cfg_error err;
	struct dirent *de;
	size_t cap = 0;
	DIR *d;
	int rc = 0;

	d = opendir(dir);
	if (!d) {
		if (errno == ENOENT) {
			*out = devs;
			return 0;
		}
		return -errno;
	}
	while ((de = readdir(d))) {
		const char *fname = de->d_name;
		size_t n = strlen(fname);
		char id[BW_NAME_MAX], path[PATH_MAX];
		struct bw_device dev;

		if (fname[0] == '.' || n <= 5 || strcmp(fname + n - 5, ".conf") != 0)
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, fname) >= (int)sizeof(path))
			continue;
		if (n - 5 >= sizeof(id)) {
			bw_cfg_error_set(&err, path, 0, "the device id is longer than %d characters; "
					 "rename the file", BW_NAME_MAX - 1);
			report(err_cb, ctx, &err);
			continue;
		}
		memcpy(id, fname, n - 5);
		id[n - 5] = '\0';
		if (!bw_cfg_is_name(id)) {
			bw_cfg_error_set(&err, path, 0, "a device id may only use letters, digits, '.', "
					 "'_' and '-'; rename the file");
			report(err_cb, ctx, &err);
			continue;
		}
		if (load_one(path, id, &dev, &err) != 0) {
			report(err_cb, ctx, &err);
			continue;
		}
		if (devs.n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct bw_device *grown = realloc(devs.items, ncap * sizeof(*grown));

			if (!grown) {
				free(dev.text);
				rc = -ENOMEM;
				break;
			}
			devs.items = grown;
			cap = ncap;
		}
		devs.items[devs.n++] = dev;
	}
	closedir(d);
	if (rc != 0) {
		bw_devices_free(&devs);
		return rc;
	}
	if (devs.n)
		qsort(devs.items, devs.n, sizeof(*devs.items), cmp_device);
	*out = devs;
	return 0;
}

const struct bw_device *bw_devices_find(const struct bw_devices *devs, const char *id)
{
	struct bw_device key;

	if (!devs || !devs->n || !id || bw_strlcpy(key.id, id, sizeof(key.id)) != 0)
		return NULL;
	return bsearch(&key, devs->items, devs->n, sizeof(*devs->items), cmp_device);
}

void bw_devices_free(struct bw_devices *devs)
{
	if (!devs)
		return;
	for (size_t i = 0; i < devs->n; i++)
		free(devs->items[i].text);
	free(devs->items);
	devs->items = NULL;
	devs->n = 0;
}

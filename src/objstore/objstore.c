/* objstore.c — opens an object store from its URL: "file:PATH" (or
 * "file://PATH"), "mem:" and "s3://BUCKET/PREFIX?...". Other schemes are
 * refused with one log line; the backends live in file.c, mem.c and s3*.c.
 * Also the backend-independent half of the request counters, and the
 * one-key-at-a-time fallback of objstore_del_many. */
#include "objstore/objstore.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "metrics/metrics.h"

int objstore_open(const char *url, struct objstore **out)
{
	*out = NULL;
	if (!url || !*url) {
		log_error("object store: empty URL (expected file:PATH, s3://BUCKET/PREFIX or mem:)");
		return SL_EINVAL;
	}
	if (strncmp(url, "file:", 5) == 0) {
		const char *path = url + 5;
		/* "file:///abs" and "file://./rel" keep what follows "//". */
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (!*path) {
			log_error("object store: '%s' names no folder (expected file:PATH)", url);
			return SL_EINVAL;
		}
		return objstore_file_open(path, out);
	}
	if (strcmp(url, "mem:") == 0)
		return objstore_mem_open(out);
	if (strncmp(url, "s3://", 5) == 0)
		return objstore_s3_open(url, out);
	log_error("object store: unknown URL '%s' (expected file:PATH, s3://BUCKET/PREFIX or mem:)",
		  url);
	return SL_EINVAL;
}

/* ---- the blocking calls, counted ---- */

size_t objstore_iov_bytes(const struct iovec *iov, int iovcnt)
{
	size_t n = 0;
	for (int i = 0; i < iovcnt; i++)
		n += iov[i].iov_len;
	return n;
}

int objstore_putv(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
		  unsigned flags)
{
	if (iovcnt < 0 || iovcnt > SL_OBJECT_IOV_MAX)
		return SL_EINVAL;
	uint64_t t0 = uv_hrtime();
	int rc = s->m->put(s, key, iov, iovcnt, flags);
	metrics_store_call(OBJSTORE_OP_PUT, rc, objstore_iov_bytes(iov, iovcnt), t0);
	return rc;
}

int objstore_put(struct objstore *s, const char *key, const void *d, size_t n)
{
	struct iovec one = { (void *)d, n };
	return objstore_putv(s, key, &one, 1, 0);
}

/* The longest sleep of objstore_pace_wait between looks at hurry. */
#define PACE_SLICE_US 50000

void objstore_pace_wait(struct objstore_pace *p, size_t n)
{
	if (!p || !p->bytes_per_sec)
		return;
	int64_t now = (int64_t)(uv_hrtime() / 1000);
	int64_t cost = (int64_t)((uint64_t)n * 1000000u / p->bytes_per_sec);
	int64_t next = atomic_load(&p->next_us), start;
	do
		start = next > now ? next : now;
	while (!atomic_compare_exchange_weak(&p->next_us, &next, start + cost));
	/* In slices, so that hurry is seen soon. */
	while (now < start && !(p->hurry && atomic_load(p->hurry))) {
		int64_t d = start - now < PACE_SLICE_US ? start - now : PACE_SLICE_US;
		struct timespec ts = { (time_t)(d / 1000000), (long)(d % 1000000) * 1000 };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
		now = (int64_t)(uv_hrtime() / 1000);
	}
}

int objstore_sync(struct objstore *s)
{
	return s->m->sync ? s->m->sync(s) : 0;
}

int objstore_get(struct objstore *s, const char *key, uint64_t off, size_t n, void *out)
{
	uint64_t t0 = uv_hrtime();
	int rc = s->m->get(s, key, off, n, out);
	metrics_store_call(OBJSTORE_OP_GET, rc, n, t0);
	return rc;
}

int objstore_head(struct objstore *s, const char *key, uint64_t *size)
{
	uint64_t t0 = uv_hrtime();
	int rc = s->m->head(s, key, size);
	metrics_store_call(OBJSTORE_OP_HEAD, rc, 0, t0);
	return rc;
}

int objstore_del(struct objstore *s, const char *key)
{
	uint64_t t0 = uv_hrtime();
	int rc = s->m->del(s, key);
	metrics_store_call(OBJSTORE_OP_DELETE, rc, 0, t0);
	return rc;
}

int objstore_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{
	uint64_t t0 = uv_hrtime();
	int rc = s->m->list(s, prefix, fn, arg);
	metrics_store_call(OBJSTORE_OP_LIST, rc, 0, t0);
	return rc;
}

int objstore_stats(struct objstore *s, struct objstore_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!s || !s->m->stats)
		return SL_EUNSUPPORTED;
	s->m->stats(s, out);
	return 0;
}

int objstore_del_many(struct objstore *s, const char *const *keys, size_t n, size_t *deleted,
		      bool *failed)
{
	if (deleted)
		*deleted = 0;
	if (failed)
		memset(failed, 0, n * sizeof *failed);
	if (n == 0)
		return 0;
	if (s->m->del_many) {
		uint64_t t0 = uv_hrtime();
		int rc = s->m->del_many(s, keys, n, deleted, failed);
		metrics_store_call(OBJSTORE_OP_DELETE, rc, 0, t0);
		return rc;
	}
	/* One key at a time; a failed key does not stop the others. */
	int first = 0;
	size_t gone = 0;
	for (size_t i = 0; i < n; i++) {
		int rc = objstore_del(s, keys[i]);
		if (rc == 0 || rc == SL_ENOTFOUND) {
			gone++;
			continue;
		}
		if (failed)
			failed[i] = true;
		if (!first) {
			first = rc;
			log_error("object store: delete %s: %s", keys[i], sl_strerror(rc));
		}
	}
	if (deleted)
		*deleted = gone;
	return first;
}

const char *objstore_op_name(int op)
{
	static const char *const names[OBJSTORE_OP_COUNT] = {
		"put", "get", "head", "delete", "list",
	};
	return op >= 0 && op < OBJSTORE_OP_COUNT ? names[op] : "?";
}

/* ---- asynchronous calls: the backend's own, or the blocking one on the
 * thread pool ---- */

struct pool_call {
	uv_work_t work;
	struct objstore *s;
	int is_put;
	char key[1024];
	const struct iovec *iov; /* put */
	int iovcnt;
	unsigned flags;
	void *out;
	uint64_t offset;
	size_t len;
	objstore_done_fn done;
	void *arg;
	int err;
};

static void pool_call_work(uv_work_t *w)
{
	struct pool_call *c = w->data;
	c->err = c->is_put ? objstore_putv(c->s, c->key, c->iov, c->iovcnt, c->flags)
			   : objstore_get(c->s, c->key, c->offset, c->len, c->out);
}

static void pool_call_done(uv_work_t *w, int status)
{
	struct pool_call *c = w->data;
	int err = status ? SL_EIO : c->err;
	objstore_done_fn done = c->done;
	void *arg = c->arg;
	free(c);
	done(arg, err);
}

static int pool_call_start(struct objstore *s, uv_loop_t *loop, int is_put, const char *key,
			   const struct iovec *iov, int iovcnt, unsigned flags, void *out,
			   uint64_t offset, size_t len, objstore_done_fn done, void *arg)
{
	size_t klen = strlen(key);
	if (klen >= sizeof ((struct pool_call *)0)->key)
		return SL_EINVAL;
	struct pool_call *c = calloc(1, sizeof *c);
	if (!c)
		return SL_ENOMEM;
	c->s = s;
	c->is_put = is_put;
	memcpy(c->key, key, klen + 1);
	c->iov = iov;
	c->iovcnt = iovcnt;
	c->flags = flags;
	c->out = out;
	c->offset = offset;
	c->len = len;
	c->done = done;
	c->arg = arg;
	c->work.data = c;
	int rc = uv_queue_work(loop, &c->work, pool_call_work, pool_call_done);
	if (rc) {
		free(c);
		return SL_EIO;
	}
	return 0;
}

/* A backend's own asynchronous call, counted when it completes. */
struct timed_call {
	objstore_done_fn done;
	void *arg;
	int op;
	uint64_t bytes;
	uint64_t started_ns;
};

static void timed_call_done(void *arg, int err)
{
	struct timed_call *t = arg;
	objstore_done_fn done = t->done;
	void *done_arg = t->arg;
	metrics_store_call(t->op, err, t->bytes, t->started_ns);
	free(t);
	done(done_arg, err);
}

static struct timed_call *timed_call_new(int op, size_t len, objstore_done_fn done, void *arg)
{
	struct timed_call *t = malloc(sizeof *t);
	if (t)
		*t = (struct timed_call){ done, arg, op, len, uv_hrtime() };
	return t;
}

int objstore_putv_start(struct objstore *s, uv_loop_t *loop, const char *key,
			const struct iovec *iov, int iovcnt, unsigned flags,
			objstore_done_fn done, void *arg)
{
	if (iovcnt < 0 || iovcnt > SL_OBJECT_IOV_MAX)
		return SL_EINVAL;
	if (!s->m->put_async)
		return pool_call_start(s, loop, 1, key, iov, iovcnt, flags, NULL, 0, 0, done, arg);
	struct timed_call *t = timed_call_new(OBJSTORE_OP_PUT, objstore_iov_bytes(iov, iovcnt), done, arg);
	if (!t)
		return SL_ENOMEM;
	int rc = s->m->put_async(s, loop, key, iov, iovcnt, flags, timed_call_done, t);
	if (rc)
		free(t);
	return rc;
}

/* objstore_put_start's one piece, kept until the put completes. */
struct put_one {
	struct iovec iov;
	objstore_done_fn done;
	void *arg;
};

static void put_one_done(void *arg, int err)
{
	struct put_one *p = arg;
	objstore_done_fn done = p->done;
	void *done_arg = p->arg;
	free(p);
	done(done_arg, err);
}

int objstore_put_start(struct objstore *s, uv_loop_t *loop, const char *key,
		       const void *data, size_t len, objstore_done_fn done, void *arg)
{
	struct put_one *p = malloc(sizeof *p);
	if (!p)
		return SL_ENOMEM;
	*p = (struct put_one){ { (void *)data, len }, done, arg };
	int rc = objstore_putv_start(s, loop, key, &p->iov, 1, 0, put_one_done, p);
	if (rc)
		free(p);
	return rc;
}

int objstore_get_start(struct objstore *s, uv_loop_t *loop, const char *key,
		       uint64_t offset, size_t len, void *out, objstore_done_fn done,
		       void *arg)
{
	if (!s->m->get_async)
		return pool_call_start(s, loop, 0, key, NULL, 0, 0, out, offset, len, done, arg);
	struct timed_call *t = timed_call_new(OBJSTORE_OP_GET, len, done, arg);
	if (!t)
		return SL_ENOMEM;
	int rc = s->m->get_async(s, loop, key, offset, len, out, timed_call_done, t);
	if (rc)
		free(t);
	return rc;
}

void objstore_async_close(struct objstore *s)
{
	if (s && s->m->async_close)
		s->m->async_close(s);
}

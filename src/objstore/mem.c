/* mem.c — the in-memory object store ("mem:") for tests and simulation,
 * with scripted faults (objstore_mem_fault).
 *
 * Objects sit in an array sorted by key behind one mutex; a lookup is a
 * binary search, an insert a memmove of pointers, which is plenty for
 * tests. Faults apply to put and get only, and sleeping for a stall
 * happens outside the lock. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/grow.h"
#include "base/clock.h"
#include "base/err.h"
#include "objstore/objstore.h"

struct mem_object {
	char *key;
	uint8_t *data;
	size_t len;
	int64_t mtime_ms;
};

struct mem_store {
	struct objstore base; /* first: the methods pointer */
	pthread_mutex_t lock;
	struct mem_object *v; /* sorted by key */
	size_t n, cap;
	enum objstore_fault fault;
	int fault_count; /* calls left; < 0: until reset */
	int fault_arg;
};

static const struct objstore_methods mem_methods;

/* Index of key, or of where it would be inserted (*found = 0). */
static size_t mem_find(struct mem_store *ms, const char *key, int *found)
{
	size_t lo = 0, hi = ms->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ms->v[mid].key, key);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

/* Take one fault for this call (under the lock). */
static enum objstore_fault mem_take_fault(struct mem_store *ms, int *arg)
{
	enum objstore_fault f = OBJSTORE_FAULT_NONE;
	pthread_mutex_lock(&ms->lock);
	if (ms->fault != OBJSTORE_FAULT_NONE && ms->fault_count != 0) {
		f = ms->fault;
		*arg = ms->fault_arg;
		if (ms->fault_count > 0 && --ms->fault_count == 0)
			ms->fault = OBJSTORE_FAULT_NONE;
	}
	pthread_mutex_unlock(&ms->lock);
	return f;
}

static void sleep_ms(int ms)
{
	if (ms <= 0)
		return;
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };
	while (nanosleep(&ts, &ts) != 0)
		;
}

/* Applies FAIL and STALL_MS; returns the fault still to act on. */
static int mem_fault_before(struct mem_store *ms, enum objstore_fault *f)
{
	int arg = 0;
	*f = mem_take_fault(ms, &arg);
	if (*f == OBJSTORE_FAULT_FAIL) {
		sleep_ms(arg);
		return SL_ESTORE;
	}
	if (*f == OBJSTORE_FAULT_STALL_MS)
		sleep_ms(arg);
	return 0;
}

static int mem_put(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
		   unsigned flags)
{
	(void)flags; /* in memory: nothing is more durable later */
	struct mem_store *ms = (struct mem_store *)s;
	if (!key || !*key)
		return SL_EINVAL;
	enum objstore_fault f;
	int rc = mem_fault_before(ms, &f);
	if (rc)
		return rc;

	/* Memory is this store's medium: the object is copied in, whole. */
	size_t len = objstore_iov_bytes(iov, iovcnt);
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		return SL_ENOMEM;
	for (size_t at = 0, k = 0; k < (size_t)iovcnt; at += iov[k].iov_len, k++)
		if (iov[k].iov_len)
			memcpy(copy + at, iov[k].iov_base, iov[k].iov_len);

	pthread_mutex_lock(&ms->lock);
	int found;
	size_t i = mem_find(ms, key, &found);
	if (found) {
		free(ms->v[i].data);
	} else {
		char *k = strdup(key);
		if (!k)
			goto out_nomem;
		if (array_grow(&ms->v, &ms->cap, ms->n, sizeof *ms->v, 16) != 0) {
			free(k);
			goto out_nomem;
		}
		memmove(ms->v + i + 1, ms->v + i, (ms->n - i) * sizeof *ms->v);
		ms->n++;
		ms->v[i].key = k;
	}
	ms->v[i].data = copy;
	ms->v[i].len = len;
	ms->v[i].mtime_ms = clock_wall_ms();
	pthread_mutex_unlock(&ms->lock);
	return f == OBJSTORE_FAULT_LOSE ? SL_ETIMEDOUT : 0;

out_nomem:
	pthread_mutex_unlock(&ms->lock);
	free(copy);
	return SL_ENOMEM;
}

static int mem_get(struct objstore *s, const char *key, uint64_t offset, size_t len,
		   void *out)
{
	struct mem_store *ms = (struct mem_store *)s;
	enum objstore_fault f;
	int rc = mem_fault_before(ms, &f);
	if (rc)
		return rc;
	pthread_mutex_lock(&ms->lock);
	int found;
	size_t i = mem_find(ms, key, &found);
	if (!found)
		rc = SL_ENOTFOUND;
	else if (offset > ms->v[i].len || len > ms->v[i].len - offset)
		rc = SL_EPROTO;
	else if (len)
		memcpy(out, ms->v[i].data + offset, len);
	pthread_mutex_unlock(&ms->lock);
	/* A lost response: the read happened, the caller never hears. */
	if (rc == 0 && f == OBJSTORE_FAULT_LOSE)
		rc = SL_ETIMEDOUT;
	return rc;
}

static int mem_head(struct objstore *s, const char *key, uint64_t *size)
{
	struct mem_store *ms = (struct mem_store *)s;
	pthread_mutex_lock(&ms->lock);
	int found;
	size_t i = mem_find(ms, key, &found);
	if (found)
		*size = ms->v[i].len;
	pthread_mutex_unlock(&ms->lock);
	return found ? 0 : SL_ENOTFOUND;
}

static int mem_del(struct objstore *s, const char *key)
{
	struct mem_store *ms = (struct mem_store *)s;
	pthread_mutex_lock(&ms->lock);
	int found;
	size_t i = mem_find(ms, key, &found);
	if (found) {
		free(ms->v[i].key);
		free(ms->v[i].data);
		memmove(ms->v + i, ms->v + i + 1, (ms->n - i - 1) * sizeof *ms->v);
		ms->n--;
	}
	pthread_mutex_unlock(&ms->lock);
	return found ? 0 : SL_ENOTFOUND;
}

struct mem_listed {
	char *key;
	uint64_t size;
	int64_t mtime_ms;
};

/* Copies the matching keys under the lock and calls fn without it, so fn
 * may call back into the store (GC deletes while it lists). */
static int mem_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{
	struct mem_store *ms = (struct mem_store *)s;
	if (!prefix)
		prefix = "";
	size_t plen = strlen(prefix);
	struct mem_listed *v = NULL;
	size_t n = 0;
	int rc = 0;

	pthread_mutex_lock(&ms->lock);
	int found;
	size_t start = mem_find(ms, prefix, &found);
	size_t end = start;
	while (end < ms->n && strncmp(ms->v[end].key, prefix, plen) == 0)
		end++;
	if (end > start) {
		v = calloc(end - start, sizeof *v);
		if (!v)
			rc = SL_ENOMEM;
	}
	for (size_t i = start; rc == 0 && i < end; i++) {
		v[n].key = strdup(ms->v[i].key);
		if (!v[n].key) {
			rc = SL_ENOMEM;
			break;
		}
		v[n].size = ms->v[i].len;
		v[n].mtime_ms = ms->v[i].mtime_ms;
		n++;
	}
	pthread_mutex_unlock(&ms->lock);

	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = fn(arg, v[i].key, v[i].size, v[i].mtime_ms);
	for (size_t i = 0; i < n; i++)
		free(v[i].key);
	free(v);
	return rc;
}

static void mem_close(struct objstore *s)
{
	struct mem_store *ms = (struct mem_store *)s;
	for (size_t i = 0; i < ms->n; i++) {
		free(ms->v[i].key);
		free(ms->v[i].data);
	}
	free(ms->v);
	pthread_mutex_destroy(&ms->lock);
	free(ms);
}

static const struct objstore_methods mem_methods = {
	.name = "mem",
	.put = mem_put,
	.get = mem_get,
	.head = mem_head,
	.del = mem_del,
	.list = mem_list,
	.close = mem_close,
};

int objstore_mem_open(struct objstore **out)
{
	struct mem_store *ms = calloc(1, sizeof *ms);
	if (!ms) {
		*out = NULL;
		return SL_ENOMEM;
	}
	ms->base.m = &mem_methods;
	pthread_mutex_init(&ms->lock, NULL);
	*out = &ms->base;
	return 0;
}

/* count < 0 applies the fault to every call until it is reset with
 * OBJSTORE_FAULT_NONE; count == 0 or FAULT_NONE clears it. */
int objstore_mem_faults_left(struct objstore *s)
{
	if (!s || s->m != &mem_methods)
		return SL_EINVAL;
	struct mem_store *ms = (struct mem_store *)s;
	pthread_mutex_lock(&ms->lock);
	int left = ms->fault == OBJSTORE_FAULT_NONE ? 0 : ms->fault_count;
	pthread_mutex_unlock(&ms->lock);
	return left;
}

int objstore_mem_fault(struct objstore *s, enum objstore_fault fault, int count, int arg)
{
	if (!s || s->m != &mem_methods)
		return SL_EINVAL;
	if (fault < OBJSTORE_FAULT_NONE || fault > OBJSTORE_FAULT_LOSE)
		return SL_EINVAL;
	struct mem_store *ms = (struct mem_store *)s;
	pthread_mutex_lock(&ms->lock);
	ms->fault = count == 0 ? OBJSTORE_FAULT_NONE : fault;
	ms->fault_count = count;
	ms->fault_arg = arg;
	pthread_mutex_unlock(&ms->lock);
	return 0;
}

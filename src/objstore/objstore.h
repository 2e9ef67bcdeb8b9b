/* objstore.h — the object store seam: where sealed objects live.
 *
 * Backends sit behind a table of methods (file, mem; s3 later). All calls
 * are blocking and thread-safe: the agent calls them from its worker
 * threads, never from the event loop thread.
 *
 * Keys are relative paths like "objects/0000000000000001-<agent>.obj";
 * a key is written once and never reused (invariant 3). */
#ifndef SLUICE_OBJSTORE_H
#define SLUICE_OBJSTORE_H

#include <stddef.h>
#include <stdint.h>

struct objstore;

typedef int (*objstore_list_fn)(void *arg, const char *key, uint64_t size,
				int64_t mtime_ms);

struct objstore_methods {
	const char *name;
	/* Store len bytes under key; durable when it returns 0. */
	int (*put)(struct objstore *s, const char *key, const void *data, size_t len);
	/* Read exactly len bytes at offset; SL_ENOTFOUND, SL_EIO, SL_EPROTO
	 * (short object). */
	int (*get)(struct objstore *s, const char *key, uint64_t offset,
		   size_t len, void *out);
	int (*head)(struct objstore *s, const char *key, uint64_t *size);
	int (*del)(struct objstore *s, const char *key);
	/* Calls fn for each key under prefix; a nonzero return stops the
	 * walk and is returned. */
	int (*list)(struct objstore *s, const char *prefix, objstore_list_fn fn,
		    void *arg);
	void (*close)(struct objstore *s);
};

struct objstore {
	const struct objstore_methods *m;
};

/* Open a store from a URL: "file:PATH" (created if missing) or "mem:".
 * Returns 0, SL_EINVAL (bad URL) or SL_EIO, after logging one line that
 * says why. */
int objstore_open(const char *url, struct objstore **out);

/* The backends objstore_open dispatches to (also usable directly):
 * a folder, created if missing (SL_EINVAL, SL_EIO), and a fresh empty
 * in-memory store (SL_ENOMEM). */
int objstore_file_open(const char *path, struct objstore **out);
int objstore_mem_open(struct objstore **out);

static inline int objstore_put(struct objstore *s, const char *key, const void *d, size_t n)
{ return s->m->put(s, key, d, n); }
static inline int objstore_get(struct objstore *s, const char *key, uint64_t off, size_t n, void *out)
{ return s->m->get(s, key, off, n, out); }
static inline int objstore_head(struct objstore *s, const char *key, uint64_t *size)
{ return s->m->head(s, key, size); }
static inline int objstore_del(struct objstore *s, const char *key)
{ return s->m->del(s, key); }
static inline int objstore_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{ return s->m->list(s, prefix, fn, arg); }
static inline void objstore_close(struct objstore *s)
{ if (s) s->m->close(s); }

/* ---- the in-memory backend's fault injection (tests only) ---- */
enum objstore_fault {
	OBJSTORE_FAULT_NONE = 0,
	OBJSTORE_FAULT_FAIL,     /* the next calls fail with SL_ESTORE */
	OBJSTORE_FAULT_STALL_MS, /* the next calls sleep arg ms first */
	OBJSTORE_FAULT_LOSE,     /* put succeeds but reports SL_ETIMEDOUT */
};
/* For a "mem:" store: apply fault to the next count put/get calls. */
int objstore_mem_fault(struct objstore *s, enum objstore_fault fault, int count, int arg);

#endif

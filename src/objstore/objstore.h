/* objstore.h — the object store seam: where sealed objects live.
 *
 * Backends sit behind a table of methods (file, mem, s3). Two ways in:
 *  - blocking, thread-safe calls (put, get, head, del, list) for tools
 *    and for backends whose I/O is a local file;
 *  - asynchronous put and get started on the event loop thread
 *    (objstore_put_start, objstore_get_start), which the agent's write
 *    and read paths use. A backend with its own non-blocking I/O (s3:
 *    curl multi on the loop) implements put_async/get_async; for the
 *    others the blocking call runs on libuv's thread pool.
 *
 * Keys are relative paths like "objects/0000000000000001-<agent>.obj";
 * a key is written once and never reused (invariant 3). */
#ifndef SLUICE_OBJSTORE_H
#define SLUICE_OBJSTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>
#include <uv.h>

struct objstore;

/* Completion of an asynchronous call, on the loop thread: err is 0 or
 * what the blocking call would have returned. */
typedef void (*objstore_done_fn)(void *arg, int err);
struct objstore_stats;

typedef int (*objstore_list_fn)(void *arg, const char *key, uint64_t size,
				int64_t mtime_ms);

struct objstore_methods {
	const char *name;
	/* Store the bytes of iov[0..iovcnt) (gathered, in order) under key;
	 * durable when it returns 0, or with OBJSTORE_PUT_DEFER_SYNC in
	 * flags once a later sync has returned 0. */
	int (*put)(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
		   unsigned flags);
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
	/* Optional (NULL for file and mem): request counters so far. */
	void (*stats)(struct objstore *s, struct objstore_stats *out);
	/* Optional non-blocking put/get driven by loop (called on the loop
	 * thread only). Same contract as objstore_put_start/get_start. */
	int (*put_async)(struct objstore *s, uv_loop_t *loop, const char *key,
			 const struct iovec *iov, int iovcnt, unsigned flags,
			 objstore_done_fn done, void *arg);
	/* Optional (NULL where every put is durable by itself): make the
	 * deferred puts that have returned durable. Thread-safe. */
	int (*sync)(struct objstore *s);
	int (*get_async)(struct objstore *s, uv_loop_t *loop, const char *key,
			 uint64_t offset, size_t len, void *out, objstore_done_fn done,
			 void *arg);
	/* Optional: stop the asynchronous machinery while its loop still
	 * runs (see objstore_async_close). */
	void (*async_close)(struct objstore *s);
	/* Optional batch delete (s3: DeleteObjects); without it
	 * objstore_del_many loops over del. Same contract as
	 * objstore_del_many. */
	int (*del_many)(struct objstore *s, const char *const *keys, size_t n,
			size_t *deleted, bool *failed);
};

/* A rate bound for background puts (OBJSTORE_PUT_PACED), shared by all
 * of them on one store: the agent's --maintenance-io-bytes-per-sec. Set
 * with objstore_set_pace before such puts start; the caller keeps it
 * alive while the store is open. */
struct objstore_pace {
	uint64_t bytes_per_sec;  /* 0: no bound */
	_Atomic int64_t next_us; /* monotonic us from which the next step may start */
	/* Optional: once it reads true, paced puts wait no more (an agent
	 * draining finishes the put under way at full speed). */
	const _Atomic bool *hurry;
};

struct objstore {
	const struct objstore_methods *m;
	struct objstore_pace *pace; /* NULL: no rate bound on paced puts */
};

static inline void objstore_set_pace(struct objstore *s, struct objstore_pace *p)
{ s->pace = p; }
/* Before a paced put writes a step of n bytes (any thread): sleeps until
 * the bound allows them (the steps of all paced puts of the store one
 * after another at bytes_per_sec; time not used is not saved up), or
 * until hurry. */
void objstore_pace_wait(struct objstore_pace *p, size_t n);

/* Open a store from a URL: "file:PATH" (created if missing), "mem:" or
 * "s3://BUCKET/PREFIX?endpoint=...&region=..." (see objstore_s3_open).
 * Returns 0, SL_EINVAL (bad URL or configuration), SL_EIO or SL_ESTORE
 * (the store cannot be reached or refused us), after logging one line
 * that says why. */
int objstore_open(const char *url, struct objstore **out);

/* An S3-compatible store. The URL's query parameters (all optional):
 *   endpoint=http[s]://HOST[:PORT]  default https://s3.REGION.amazonaws.com
 *   region=NAME                     default $AWS_REGION, $AWS_DEFAULT_REGION,
 *                                   us-east-1
 *   path_style=true|false           default true with a custom endpoint,
 *                                   false (virtual-hosted) for AWS
 *   verify_tls=true|false           default true
 *   timeout_ms=N                    per attempt, default 10000
 *   total_timeout_ms=N              per call including retries, default 30000
 * Credentials come from AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and
 * AWS_SESSION_TOKEN, else from the shared credentials file
 * ($AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile
 * $AWS_PROFILE or "default"). The bucket is checked at open (a listing of
 * one key; a 5xx or throttling answer is retried until total_timeout_ms):
 * SL_EINVAL for a bad URL or missing credentials, SL_ESTORE when the
 * endpoint is unreachable, the bucket is missing, access is denied or
 * the store still fails at total_timeout_ms.
 * del of a missing key returns 0 (S3 cannot tell). */
int objstore_s3_open(const char *url, struct objstore **out);

/* The backends objstore_open dispatches to (also usable directly):
 * a folder, created if missing (SL_EINVAL, SL_EIO), and a fresh empty
 * in-memory store (SL_ENOMEM). */
int objstore_file_open(const char *path, struct objstore **out);
int objstore_mem_open(struct objstore **out);
/* The file store's page-cache window (the agent's --file-page-cache-bytes):
 * the deferred puts made durable keep their pages in the page cache up
 * to bytes together, newest first; the oldest ones' pages are dropped
 * past it (and past 65,536 objects; one under bytes / 65,536 is left to
 * the kernel, never counted). 0 drops each one's pages once durable; -1
 * (the default) leaves every page to the kernel. Set it before such puts
 * start; a no-op for other stores. */
void objstore_file_set_page_cache(struct objstore *s, int64_t bytes);
/* The bytes of a put's pieces, together. */
size_t objstore_iov_bytes(const struct iovec *iov, int iovcnt);

/* The blocking calls (any thread). Each is counted in the metrics
 * registry (calls, errors, bytes, latency per operation). */
int objstore_put(struct objstore *s, const char *key, const void *d, size_t n);
/* A put of the bytes of iov[0..iovcnt) gathered in order (the object is
 * never assembled in one buffer): at most SL_OBJECT_IOV_MAX pieces,
 * else SL_EINVAL. flags: 0 or OBJSTORE_PUT_DEFER_SYNC. */
int objstore_putv(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
		  unsigned flags);
/* A put with this flag may leave part of its durability to the next
 * objstore_sync (the file store: the directory entry, so that one
 * directory fsync covers a group of objects). Until then a crash may
 * lose the object, or leave it under its key incomplete: only for keys
 * nothing refers to before the sync (the write path commits an object
 * after it). */
#define OBJSTORE_PUT_DEFER_SYNC 1u
/* A background put (the merge and cleaning passes' objects), written so
 * that the write path's small puts keep the device: the file store writes
 * it in steps of OBJSTORE_PACED_STEP_BYTES, each one's writeback waited
 * for before the next is written, at most the store's objstore_pace rate
 * if one is set; the S3 store (its blocking put) sends the body at most
 * at that rate, in slices of a tenth of a second's worth, its deadlines
 * stretched by the time that takes. Other stores write it as any put. */
#define OBJSTORE_PUT_PACED 2u
#define OBJSTORE_PACED_STEP_BYTES ((size_t)256 << 10)
/* Make every deferred put that has returned (completed) so far durable.
 * Returns 0 (also for stores without deferred puts) or SL_EIO; any
 * thread. */
int objstore_sync(struct objstore *s);
/* Whether a put blocks its caller (file, mem) rather than being driven
 * by the store's own loop handles (s3): a pool job may then put
 * directly, saving the hop through the loop that objstore_putv_start
 * takes to reach the pool. */
static inline bool objstore_put_blocks(const struct objstore *s)
{ return s->m->put_async == NULL; }
int objstore_get(struct objstore *s, const char *key, uint64_t off, size_t n, void *out);
int objstore_head(struct objstore *s, const char *key, uint64_t *size);
int objstore_del(struct objstore *s, const char *key);
int objstore_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg);
static inline void objstore_close(struct objstore *s)
{ if (s) s->m->close(s); }

/* Delete n keys, blocking (for tools such as `sluice gc`). A key that is
 * already missing counts as deleted. *deleted (may be NULL) gets the
 * number of keys known to be gone; failed (may be NULL, else n entries)
 * gets true for every key that may still exist. Returns 0 when all are
 * gone, else the first error (SL_EINVAL for a bad key, SL_ESTORE, SL_EIO,
 * SL_ETIMEDOUT, SL_ENOMEM) after logging the first failure; keys of
 * other requests may have been deleted meanwhile. s3 sends DeleteObjects
 * requests of at most 1000 keys (counted as OBJSTORE_OP_DELETE calls and
 * requests: free on AWS, but counted like the other operations); file
 * and mem delete one key at a time. */
int objstore_del_many(struct objstore *s, const char *const *keys, size_t n, size_t *deleted,
		      bool *failed);

/* Start a put (get) from the loop thread. key is copied; data (out) must
 * stay valid until done. Returns 0, after which done is called exactly
 * once on the loop thread, or a negative code, in which case done is
 * never called (libuv's rule). */
int objstore_put_start(struct objstore *s, uv_loop_t *loop, const char *key,
		       const void *data, size_t len, objstore_done_fn done, void *arg);
/* The same for iov[0..iovcnt) gathered in order: the array and the bytes
 * it points to must stay valid until done (a store that retries sends
 * the same bytes again). */
int objstore_putv_start(struct objstore *s, uv_loop_t *loop, const char *key,
			const struct iovec *iov, int iovcnt, unsigned flags,
			objstore_done_fn done, void *arg);
int objstore_get_start(struct objstore *s, uv_loop_t *loop, const char *key,
		       uint64_t offset, size_t len, void *out, objstore_done_fn done,
		       void *arg);

/* At the agent's drain, on the loop thread, before the loop ends: close
 * the store's event loop handles (s3: curl's sockets and timers). Calls
 * still pending complete with SL_ESTORE (from within this call, or when
 * their thread pool work returns); later starts fail with SL_ESTORE. The
 * blocking calls keep working. A no-op for stores without one. */
void objstore_async_close(struct objstore *s);

/* ---- request counters (what an S3 bill is computed from) ---- */
enum objstore_op {
	OBJSTORE_OP_PUT = 0,
	OBJSTORE_OP_GET,
	OBJSTORE_OP_HEAD,
	OBJSTORE_OP_DELETE,
	OBJSTORE_OP_LIST,
	OBJSTORE_OP_COUNT
};

struct objstore_stats {
	uint64_t calls[OBJSTORE_OP_COUNT];    /* objstore_* calls */
	uint64_t requests[OBJSTORE_OP_COUNT]; /* HTTP requests sent (retries and
					       * list pages included: billed) */
	uint64_t retries[OBJSTORE_OP_COUNT];  /* requests that were retries */
	uint64_t errors[OBJSTORE_OP_COUNT];   /* calls that failed (not-found
					       * answers excluded) */
	uint64_t bytes_written;               /* PUT bodies sent and accepted */
	uint64_t bytes_read;                  /* GET bodies received */
};

/* Fill *out with the store's counters since open. Returns 0, or
 * SL_EUNSUPPORTED (out zeroed) for a backend that keeps none. */
int objstore_stats(struct objstore *s, struct objstore_stats *out);
/* "put", "get", "head", "delete", "list" ("?" when out of range). */
const char *objstore_op_name(int op);

/* ---- the in-memory backend's fault injection (tests only) ---- */
enum objstore_fault {
	OBJSTORE_FAULT_NONE = 0,
	OBJSTORE_FAULT_FAIL,     /* the next calls fail with SL_ESTORE (after arg ms) */
	OBJSTORE_FAULT_STALL_MS, /* the next calls sleep arg ms first */
	OBJSTORE_FAULT_LOSE,     /* put succeeds but reports SL_ETIMEDOUT */
};
/* For a "mem:" store: apply fault to the next count put/get calls. */
int objstore_mem_fault(struct objstore *s, enum objstore_fault fault, int count, int arg);
/* How many calls the fault still applies to (0: none; < 0: until reset). */
int objstore_mem_faults_left(struct objstore *s);

#endif

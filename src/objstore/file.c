/* file.c — the local-folder object store: key K lives at ROOT/K.
 *
 * A put writes a temp file beside the final name (".tmp.<name>.<pid>.<n>",
 * never a valid key), fsyncs it, renames it into place and fsyncs the
 * directory, so a key is either absent or complete, even after a crash.
 * A deferred put (OBJSTORE_PUT_DEFER_SYNC, the write path's) costs one
 * device flush instead of two: it creates the file under its key at once
 * (O_EXCL: keys are never reused), writes it and fdatasyncs it, and leaves
 * the directory entry to objstore_sync, which fsyncs each directory that
 * got one since the last sync: one directory fsync for every object of a
 * commit group. A crash before that sync may leave such a key missing or
 * incomplete; nothing refers to it then (the commit comes after the
 * sync), so it is an orphan for GC like any uncommitted object.
 * The deferred puts made durable stay in the page cache in a window of
 * the newest ones, at most objstore_file_set_page_cache's bytes (the
 * agent's --file-page-cache-bytes; unset, the kernel keeps every page):
 * past it the oldest ones' pages are dropped (window_add; objects too
 * small to matter are left to the kernel, WINDOW_OBJECTS_MAX). The agent's
 * read cache serves tailing reads, and on a VM that hands free memory
 * back to the host a page written for the first time costs 10-20x one
 * recycled (the copy into never-touched pages was 1.0-1.6 of the agent's
 * 2.2 CPU s/GB produced on the disk, bench/RESULTS.md, disk17cpu); the
 * window keeps a recent catch-up and young merges reading memory.
 * Every call is stateless apart from the temp-name counter and the
 * directories waiting for a sync (under a mutex), so the store is safe
 * to use from many threads at once. A large put is written in steps
 * whose writeback starts early (write_all), and a background one
 * (OBJSTORE_PUT_PACED: a merged or cleaned object) in small steps, each
 * written back before the next, under the store's rate bound if any
 * (write_paced), so that the write path's small syncs do not queue
 * behind a merge's 64 MiB objects. A delete unlinks an object above 16
 * MiB and then cuts it from the end in 4 MiB steps before closing it
 * (del_steps), for the same small syncs. A listing removes temp files
 * older than an hour (left by a process that died inside a put). */
#define _GNU_SOURCE /* sync_file_range */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "base/log.h"
#include "objstore/objstore.h"

/* Pieces per writev (POSIX's minimum IOV_MAX is 16; Linux allows 1024). */
#ifndef IOV_MAX
#define IOV_MAX 1024
#endif

/* Format: temp files of puts in progress start with this. */
#define TEMP_PREFIX ".tmp."

/* Directories holding deferred puts' entries, waiting for a sync: the
 * write path puts every object in one directory, so a few slots do; a
 * put that finds them full syncs its directory itself. */
#define DIRTY_DIRS_MAX 8

/* Objects the page-cache window remembers, at most (the ring is 1 MiB of
 * the store's calloc'd struct, its pages touched only as it fills): past
 * it the oldest one's pages go even when the window's bytes are under its
 * bound. An object smaller than the bound over this (8 KiB at the
 * default 512 MiB) is not remembered (its pages are left to the kernel),
 * so the count never drops what the bytes would keep: with 4,096 slots a
 * producer sealing an object per record (a few KiB each) filled them in
 * seconds, and a merge of those objects then read from the device what
 * dropping their pages had saved nothing of (bench/RESULTS.md, disk17cpu:
 * merge pass 1.4-2.1 s, 2.2-4.0 with them dropped); and a fast device's
 * objects under load are tens of KiB (an object is sealed as soon as the
 * last put ends), which a floor of 128 KiB left out of the window. */
#define WINDOW_OBJECTS_MAX 65536

/* A durable deferred put whose pages the window keeps. */
struct window_entry {
	char *path;
	uint64_t bytes;
};

struct file_store {
	struct objstore base; /* first: the methods pointer */
	char *root;
	atomic_ulong temp_counter;
	pthread_mutex_t dirty_lock; /* dirty[] and the window */
	char *dirty[DIRTY_DIRS_MAX];
	size_t dirty_n;
	/* The page-cache window: the bound in bytes (-1: none, the kernel
	 * keeps every page; 0: each put's pages go once durable), and a ring
	 * of the newest deferred puts, oldest at window_head. */
	_Atomic int64_t window_bound;
	struct window_entry window[WINDOW_OBJECTS_MAX];
	size_t window_head, window_n;
	uint64_t window_bytes;
};

static const struct objstore_methods file_methods;

/* Keys are relative paths of printable ASCII without empty, "." or ".."
 * components and without our temp prefix. When prefix_ok, the last
 * component may be empty or partial (a list prefix). */
static int key_check(const char *key, int prefix_ok)
{
	size_t n = strlen(key);
	if (n > SL_OBJECT_KEY_BYTES_MAX || (!prefix_ok && n == 0) || key[0] == '/')
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (key[i] <= 0x20 || key[i] >= 0x7f || key[i] == '\\')
			return SL_EINVAL;
	const char *c = key;
	for (;;) {
		const char *slash = strchr(c, '/');
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		int last = slash == NULL;
		if (len == 0 && !(last && prefix_ok))
			return SL_EINVAL;
		if ((len == 1 && c[0] == '.') || (len == 2 && c[0] == '.' && c[1] == '.'))
			return SL_EINVAL;
		if (len >= strlen(TEMP_PREFIX) && strncmp(c, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0)
			return SL_EINVAL;
		if (last)
			return 0;
		c = slash + 1;
	}
}

static int key_path(struct file_store *fs, const char *key, char *path, size_t cap)
{
	if (key_check(key, 0))
		return SL_EINVAL;
	int n = snprintf(path, cap, "%s/%s", fs->root, key);
	if (n < 0 || (size_t)n >= cap)
		return SL_EINVAL;
	return 0;
}

static int fsync_dir(const char *dir)
{
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int rc = fsync(fd);
	int saved = errno;
	close(fd);
	errno = saved;
	return rc;
}

/* Create every missing directory of path up to (not including) its last
 * component, fsyncing the parent of each one created. Concurrent
 * creators are fine: EEXIST counts as success. */
static int mkdir_parents(const char *path, size_t root_len)
{
	char buf[PATH_MAX];
	size_t n = strlen(path);
	if (n >= sizeof buf)
		return -1;
	memcpy(buf, path, n + 1);
	for (size_t i = root_len + 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = 0;
		if (mkdir(buf, 0755) == 0) {
			char *last = strrchr(buf, '/');
			*last = 0;
			int rc = fsync_dir(buf);
			*last = '/';
			if (rc)
				return -1;
		} else if (errno != EEXIST) {
			return -1;
		}
		buf[i] = '/';
	}
	return 0;
}

/* Creates path for writing (O_EXCL), making its folders first only when
 * they are missing: a put into an existing folder costs no mkdir call. */
static int create_file(const char *path, size_t root_len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	if (mkdir_parents(path, root_len)) {
		log_error("object store: cannot create folders for %s: %s", path, strerror(errno));
		return -2;
	}
	return open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
}

/* A position in a put's pieces: piece i, of which skip bytes are written. */
struct iov_cursor {
	const struct iovec *iov;
	int iovcnt, i;
	size_t skip;
};

/* Gather the next max bytes (or all that are left) of the pieces into the
 * file (at most IOV_MAX pieces per call), resuming after short writes:
 * the object's batches go from where the requests brought them to the
 * page cache with no copy in between. */
static int write_some(int fd, struct iov_cursor *c, size_t max)
{
	struct iovec cur[IOV_MAX];
	while (c->i < c->iovcnt && max > 0) {
		int n = 0;
		size_t want = 0;
		for (int k = c->i; k < c->iovcnt && n < IOV_MAX && want < max; k++, n++) {
			cur[n] = c->iov[k];
			if (k == c->i) {
				cur[n].iov_base = (uint8_t *)cur[n].iov_base + c->skip;
				cur[n].iov_len -= c->skip;
			}
			if (cur[n].iov_len > max - want)
				cur[n].iov_len = max - want;
			want += cur[n].iov_len;
		}
		ssize_t w = writev(fd, cur, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		max -= (size_t)w;
		size_t left = (size_t)w + c->skip;
		while (c->i < c->iovcnt && left >= c->iov[c->i].iov_len)
			left -= c->iov[c->i++].iov_len;
		c->skip = left;
	}
	return 0;
}

/* Early writeback: a put larger than PACE_AFTER_BYTES (not a background
 * one, which write_paced writes; the write path's, at the default
 * --flush-bytes, stays below) is written PACE_STEP_BYTES at a time, each
 * step's writeback started as soon as it is in the page cache and the
 * step before it waited for. Without this the whole object sits dirty
 * until its fsync, which then puts tens of MiB in the device queue at
 * once, and every fdatasync of the produce path (and ext4's journal
 * commit it forces) waits behind them. So, one writer has at most two
 * steps in flight, and the final fsync has one step left to write. Only
 * the data's writeback moves earlier: the fsync, rename and directory
 * fsync that make the put durable are unchanged (in write_paced too). */
#define PACE_STEP_BYTES (4u << 20)
#define PACE_AFTER_BYTES (2 * PACE_STEP_BYTES)

/* Start (wait) a step's writeback: 0, or -1 with errno when the put must
 * fail. A waiting sync_file_range reports a writeback error and marks it
 * seen for this file, so the put's fsync would no longer report it: the
 * error is the put's now. Where the call is not supported (ENOSYS,
 * EINVAL), *paced is cleared and the fsync does all the work. */
static int writeback_step(int fd, off_t off, size_t len, bool wait, bool *paced)
{
#ifdef SYNC_FILE_RANGE_WRITE
	unsigned flags = wait ? SYNC_FILE_RANGE_WAIT_BEFORE | SYNC_FILE_RANGE_WRITE |
				SYNC_FILE_RANGE_WAIT_AFTER
			      : SYNC_FILE_RANGE_WRITE;
	if (sync_file_range(fd, off, (off_t)len, flags) == 0)
		return 0;
	if (errno != ENOSYS && errno != EINVAL)
		return -1;
#else
	(void)fd, (void)off, (void)len, (void)wait;
#endif
	*paced = false;
	return 0;
}

/* A background put (OBJSTORE_PUT_PACED): OBJSTORE_PACED_STEP_BYTES
 * written, then written back to the device and waited for, before the
 * next step is written (after the rate bound's wait, if the store has
 * one). The early writeback above still leaves one writer two steps of 4
 * MiB in flight, which on a loaded machine put the produce path's
 * fdatasyncs behind a merge pass's 64 MiB objects: produce p50 during a
 * merge 1.9-2.8x idle there, 1.0-1.4x with one small step at a time, and
 * the pass no slower. On a quiet machine produce latency during a merge
 * is the same either way (bench/RESULTS.md, session 12's end): there the
 * device queue is not what it waits on. */
static int write_paced(int fd, struct iov_cursor *c, size_t total, struct objstore_pace *pace)
{
	bool paced = true;
	for (size_t off = 0; off < total; off += OBJSTORE_PACED_STEP_BYTES) {
		size_t n = total - off < OBJSTORE_PACED_STEP_BYTES ? total - off
								   : OBJSTORE_PACED_STEP_BYTES;
		objstore_pace_wait(pace, n);
		if (write_some(fd, c, n))
			return -1;
		if (paced && writeback_step(fd, (off_t)off, n, true, &paced))
			return -1;
	}
	return 0;
}

/* A put's bytes into fd: a background put's paced (write_paced), any
 * other's with early writeback when large. */
static int write_all(int fd, const struct iovec *iov, int iovcnt, unsigned flags,
		     struct objstore_pace *pace)
{
	struct iov_cursor c = { iov, iovcnt, 0, 0 };
	size_t total = objstore_iov_bytes(iov, iovcnt);
	if (flags & OBJSTORE_PUT_PACED)
		return write_paced(fd, &c, total, pace);
	bool paced = total > PACE_AFTER_BYTES;
	if (!paced)
		return write_some(fd, &c, total);
	for (off_t off = 0; (size_t)off < total; off += PACE_STEP_BYTES) {
		size_t n = total - (size_t)off < PACE_STEP_BYTES ? total - (size_t)off
								: PACE_STEP_BYTES;
		if (write_some(fd, &c, n))
			return -1;
		if (paced && writeback_step(fd, off, n, false, &paced))
			return -1;
		if (paced && off > 0 &&
		    writeback_step(fd, off - PACE_STEP_BYTES, PACE_STEP_BYTES, true, &paced))
			return -1;
	}
	return 0;
}

/* Remember dir for the next sync: 0, or nonzero when the slots are full
 * or memory is short (the caller fsyncs it itself). */
static int dirty_add(struct file_store *fs, const char *dir)
{
	int rc = 1;
	pthread_mutex_lock(&fs->dirty_lock);
	for (size_t i = 0; i < fs->dirty_n; i++)
		if (strcmp(fs->dirty[i], dir) == 0) {
			rc = 0;
			goto out;
		}
	if (fs->dirty_n < DIRTY_DIRS_MAX) {
		char *d = strdup(dir);
		rc = d ? 0 : SL_ENOMEM;
		if (d)
			fs->dirty[fs->dirty_n++] = d;
	}
out:
	pthread_mutex_unlock(&fs->dirty_lock);
	return rc;
}

static int file_sync(struct objstore *s)
{
	struct file_store *fs = (struct file_store *)s;
	char *dirs[DIRTY_DIRS_MAX];
	pthread_mutex_lock(&fs->dirty_lock);
	size_t n = fs->dirty_n;
	memcpy(dirs, fs->dirty, n * sizeof *dirs);
	fs->dirty_n = 0;
	pthread_mutex_unlock(&fs->dirty_lock);
	int rc = 0;
	for (size_t i = 0; i < n; i++) {
		if (fsync_dir(dirs[i])) {
			log_error("object store: fsync of folder %s: %s", dirs[i], strerror(errno));
			rc = SL_EIO;
			/* Still not durable: the next sync tries again (if the
			 * slots are full, that dir's later puts sync it
			 * themselves). */
			(void)dirty_add(fs, dirs[i]);
		}
		free(dirs[i]);
	}
	return rc;
}

/* Drop the pages of a durable object from the page cache: advice, a
 * failure changes nothing. */
static void drop_cached(int fd)
{
	(void)posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* Drop the pages of an object that left the window, and forget it (a key
 * deleted meanwhile has none left: the open fails and that is all). */
static void window_drop(char *path)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd >= 0) {
		drop_cached(fd);
		close(fd);
	}
	free(path);
}

/* Take the oldest entry's path out of the window (fs->dirty_lock held). */
static char *window_pop(struct file_store *fs)
{
	struct window_entry *e = &fs->window[fs->window_head];
	char *path = e->path;
	fs->window_bytes -= e->bytes;
	fs->window_head = (fs->window_head + 1) % WINDOW_OBJECTS_MAX;
	fs->window_n--;
	return path;
}

/* A deferred put of bytes at path is durable: it joins the window as its
 * newest object, and the oldest ones leave it (their pages dropped, one
 * at a time, outside the lock) while the window holds more than its
 * bound. Without memory for the path it is simply not remembered. */
static void window_add(struct file_store *fs, const char *path, uint64_t bytes)
{
	char *p = strdup(path);
	if (!p)
		return;
	char *old = NULL;
	pthread_mutex_lock(&fs->dirty_lock);
	if (fs->window_n == WINDOW_OBJECTS_MAX)
		old = window_pop(fs);
	size_t tail = (fs->window_head + fs->window_n) % WINDOW_OBJECTS_MAX;
	fs->window[tail] = (struct window_entry){ p, bytes };
	fs->window_n++;
	fs->window_bytes += bytes;
	pthread_mutex_unlock(&fs->dirty_lock);
	uint64_t bound = (uint64_t)atomic_load(&fs->window_bound);
	for (;;) {
		if (old)
			window_drop(old);
		pthread_mutex_lock(&fs->dirty_lock);
		old = fs->window_n && fs->window_bytes > bound ? window_pop(fs) : NULL;
		pthread_mutex_unlock(&fs->dirty_lock);
		if (!old)
			return;
	}
}

void objstore_file_set_page_cache(struct objstore *s, int64_t bytes)
{
	if (s->m != &file_methods)
		return;
	struct file_store *fs = (struct file_store *)s;
	atomic_store(&fs->window_bound, bytes < 0 ? -1 : bytes);
}

/* The deferred put: created under its key, written, fdatasynced (its
 * pages dropped at once with a window of 0 bytes); the directory entry
 * waits for file_sync. Then it joins the page-cache window, if any. */
static int put_deferred(struct file_store *fs, const char *path, const char *dir,
			const struct iovec *iov, int iovcnt, unsigned flags,
			struct objstore_pace *pace)
{
	int fd = create_file(path, strlen(fs->root));
	if (fd < 0) {
		if (fd == -1)
			log_error("object store: cannot create %s: %s", path, strerror(errno));
		return SL_EIO;
	}
	const char *what = NULL;
	int64_t bound = atomic_load(&fs->window_bound);
	if (write_all(fd, iov, iovcnt, flags, pace))
		what = "write";
	else if (fdatasync(fd))
		what = "fdatasync";
	else if (bound == 0)
		drop_cached(fd);
	int saved = errno;
	if (close(fd) && !what) {
		what = "close";
		saved = errno;
	}
	/* No slot for its folder (or no memory for one): sync it now. */
	if (!what && dirty_add(fs, dir) != 0 && fsync_dir(dir)) {
		what = "fsync of its folder";
		saved = errno;
	}
	if (what) {
		log_error("object store: %s of %s failed: %s", what, path, strerror(saved));
		unlink(path);
		return SL_EIO;
	}
	if (bound > 0) {
		uint64_t bytes = objstore_iov_bytes(iov, iovcnt);
		if (bytes >= (uint64_t)bound / WINDOW_OBJECTS_MAX)
			window_add(fs, path, bytes);
	}
	return 0;
}

static int file_put(struct objstore *s, const char *key, const struct iovec *iov, int iovcnt,
		    unsigned flags)
{
	struct file_store *fs = (struct file_store *)s;
	char path[PATH_MAX], tmp[PATH_MAX], dir[PATH_MAX];
	if (key_path(fs, key, path, sizeof path))
		return SL_EINVAL;

	const char *slash = strrchr(path, '/');
	size_t dir_len = (size_t)(slash - path);
	memcpy(dir, path, dir_len);
	dir[dir_len] = 0;
	if (flags & OBJSTORE_PUT_DEFER_SYNC)
		return put_deferred(fs, path, dir, iov, iovcnt, flags, s->pace);
	unsigned long seq = atomic_fetch_add(&fs->temp_counter, 1);
	int n = snprintf(tmp, sizeof tmp, "%s/" TEMP_PREFIX "%s.%ld.%lu", dir, slash + 1,
			 (long)getpid(), seq);
	if (n < 0 || (size_t)n >= sizeof tmp)
		return SL_EINVAL;

	int fd = create_file(tmp, strlen(fs->root));
	if (fd < 0) {
		if (fd == -1)
			log_error("object store: cannot create %s: %s", tmp, strerror(errno));
		return SL_EIO;
	}
	const char *what;
	int saved;
	if (write_all(fd, iov, iovcnt, flags, s->pace)) {
		what = "write";
		goto out_close;
	}
	if (fsync(fd)) {
		what = "fsync";
		goto out_close;
	}
	if (close(fd)) {
		fd = -1;
		what = "close";
		goto out_unlink;
	}
	fd = -1;
	if (rename(tmp, path)) {
		what = "rename";
		goto out_unlink;
	}
	if (fsync_dir(dir)) {
		/* The object is in place but maybe not durable: fail the put
		 * (the caller will not reference it; GC removes orphans). */
		log_error("object store: fsync of folder %s: %s", dir, strerror(errno));
		return SL_EIO;
	}
	return 0;

out_close:
	saved = errno;
	close(fd);
	errno = saved;
out_unlink:
	saved = errno;
	log_error("object store: %s of %s failed: %s", what, tmp, strerror(saved));
	unlink(tmp);
	return SL_EIO;
}

static int file_get(struct objstore *s, const char *key, uint64_t offset, size_t len,
		    void *out)
{
	struct file_store *fs = (struct file_store *)s;
	char path[PATH_MAX];
	if (key_path(fs, key, path, sizeof path))
		return SL_EINVAL;
	if (offset > (uint64_t)INT64_MAX - len)
		return SL_EINVAL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return SL_ENOTFOUND;
		log_error("object store: open %s: %s", path, strerror(errno));
		return SL_EIO;
	}
	uint8_t *p = out;
	size_t done = 0;
	int rc = 0;
	while (done < len) {
		ssize_t r = pread(fd, p + done, len - done, (off_t)(offset + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			log_error("object store: read %s: %s", path, strerror(errno));
			rc = SL_EIO;
			break;
		}
		if (r == 0) {
			rc = SL_EPROTO; /* the object is shorter than asked */
			break;
		}
		done += (size_t)r;
	}
	close(fd);
	return rc;
}

static int file_head(struct objstore *s, const char *key, uint64_t *size)
{
	struct file_store *fs = (struct file_store *)s;
	char path[PATH_MAX];
	if (key_path(fs, key, path, sizeof path))
		return SL_EINVAL;
	struct stat st;
	if (stat(path, &st)) {
		if (errno == ENOENT || errno == ENOTDIR)
			return SL_ENOTFOUND;
		log_error("object store: stat %s: %s", path, strerror(errno));
		return SL_EIO;
	}
	if (!S_ISREG(st.st_mode))
		return SL_ENOTFOUND;
	*size = (uint64_t)st.st_size;
	return 0;
}

/* A delete of an object above DEL_STEP_ABOVE unlinks its key and then
 * cuts the file, still open, from the end in DEL_STEP steps before
 * closing it: on a filesystem mounted with -o discard, freeing 64 MiB at
 * once discards it in one piece that the write path's small fdatasyncs
 * beside it wait behind for 20-80 ms; in 4 MiB steps they wait no longer
 * than without a delete (freeing 16 MiB or less stalls them no more
 * either; bench/delete_stall.py, bench/RESULTS.md; RocksDB's
 * DeleteScheduler does the same). The key goes first, so it stays
 * absent or complete: a get after the delete finds no key, as with a
 * plain unlink, and a crash mid-way leaves only an unlinked inode, which
 * the kernel frees. One delete cuts for at most DEL_STEP_BUDGET_US; the
 * close frees the rest. Only a file with no other name is cut: cutting
 * would change what another name shows. */
#define DEL_STEP_ABOVE (16 << 20)
#define DEL_STEP (4 << 20)
#define DEL_STEP_BUDGET_US 1000000

/* Cut the unlinked file fd in steps when it is large. */
static void del_steps(int fd)
{
	struct stat st;
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_nlink != 0 ||
	    st.st_size <= DEL_STEP_ABOVE)
		return;
	int64_t t0 = clock_mono_us();
	for (off_t size = st.st_size; size > DEL_STEP;) {
		size -= DEL_STEP;
		if (ftruncate(fd, size) || clock_mono_us() - t0 > DEL_STEP_BUDGET_US)
			break;
	}
}

static int file_del(struct objstore *s, const char *key)
{
	struct file_store *fs = (struct file_store *)s;
	char path[PATH_MAX];
	if (key_path(fs, key, path, sizeof path))
		return SL_EINVAL;
	/* Opened only when it is large (a small object costs no open). */
	struct stat st;
	int fd = -1;
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > DEL_STEP_ABOVE)
		fd = open(path, O_WRONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	int rc = 0;
	if (unlink(path)) {
		if (errno == ENOENT || errno == ENOTDIR) {
			rc = SL_ENOTFOUND;
		} else {
			log_error("object store: unlink %s: %s", path, strerror(errno));
			rc = SL_EIO;
		}
	} else if (fd >= 0) {
		del_steps(fd);
	}
	if (fd >= 0)
		close(fd);
	return rc;
}

/* ---- list: collect, sort, then call back (so fn may delete) ---- */

struct list_item {
	char *key;
	uint64_t size;
	int64_t mtime_ms;
};

struct list_acc {
	struct list_item *v;
	size_t n, cap;
	const char *prefix;
	size_t prefix_len;
};

static int list_add(struct list_acc *a, const char *key, const struct stat *st)
{
	if (array_grow(&a->v, &a->cap, a->n, sizeof *a->v, 64) != 0)
		return SL_ENOMEM;
	char *k = strdup(key);
	if (!k)
		return SL_ENOMEM;
	a->v[a->n].key = k;
	a->v[a->n].size = (uint64_t)st->st_size;
	a->v[a->n].mtime_ms = (int64_t)st->st_mtim.tv_sec * 1000 + st->st_mtim.tv_nsec / 1000000;
	a->n++;
	return 0;
}

/* A temp file that old is what a put left when its process died (a put
 * takes milliseconds): listings, which `sluice gc` runs, remove it. */
#define TEMP_STALE_S 3600

static void remove_stale_temp(DIR *d, const char *name)
{
	struct stat st;
	if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
	    st.st_mtime + TEMP_STALE_S < time(NULL) && unlinkat(dirfd(d), name, 0) == 0)
		log_info("object store: removed %s, left by an interrupted write", name);
}

/* Walk root/rel (rel is "" or ends with '/'), adding regular files whose
 * key starts with the prefix. */
static int list_walk(struct file_store *fs, struct list_acc *a, char *rel, size_t rel_len,
		     int depth)
{
	char path[PATH_MAX];
	if (depth > 64)
		return 0;
	int n = snprintf(path, sizeof path, "%s/%s", fs->root, rel);
	if (n < 0 || (size_t)n >= sizeof path)
		return 0;
	DIR *d = opendir(path);
	if (!d) {
		if (errno == ENOENT || errno == ENOTDIR)
			return 0;
		log_error("object store: list %s: %s", path, strerror(errno));
		return SL_EIO;
	}
	int rc = 0;
	struct dirent *e;
	while (rc == 0 && (e = readdir(d))) {
		const char *name = e->d_name;
		if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
			continue;
		if (strncmp(name, TEMP_PREFIX, strlen(TEMP_PREFIX)) == 0) {
			remove_stale_temp(d, name);
			continue;
		}
		size_t name_len = strlen(name);
		if (rel_len + name_len + 2 > SL_OBJECT_KEY_BYTES_MAX + 1)
			continue;
		memcpy(rel + rel_len, name, name_len + 1);
		/* Prune subtrees that cannot match the prefix. */
		size_t cmp = rel_len + name_len < a->prefix_len ? rel_len + name_len : a->prefix_len;
		if (strncmp(rel, a->prefix, cmp) != 0)
			continue;
		struct stat st;
		if (fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW))
			continue; /* vanished meanwhile (deleted by GC) */
		if (S_ISDIR(st.st_mode)) {
			rel[rel_len + name_len] = '/';
			rel[rel_len + name_len + 1] = 0;
			rc = list_walk(fs, a, rel, rel_len + name_len + 1, depth + 1);
		} else if (S_ISREG(st.st_mode) && rel_len + name_len >= a->prefix_len &&
			   key_check(rel, 0) == 0) {
			rc = list_add(a, rel, &st);
		}
	}
	rel[rel_len] = 0;
	closedir(d);
	return rc;
}

static int list_item_cmp(const void *x, const void *y)
{
	return strcmp(((const struct list_item *)x)->key, ((const struct list_item *)y)->key);
}

static int file_list(struct objstore *s, const char *prefix, objstore_list_fn fn, void *arg)
{
	struct file_store *fs = (struct file_store *)s;
	if (!prefix)
		prefix = "";
	if (key_check(prefix, 1))
		return SL_EINVAL;
	struct list_acc a = { .prefix = prefix, .prefix_len = strlen(prefix) };
	char rel[SL_OBJECT_KEY_BYTES_MAX + 2] = "";
	int rc = list_walk(fs, &a, rel, 0, 0);
	if (rc == 0) {
		if (a.n)
			qsort(a.v, a.n, sizeof *a.v, list_item_cmp);
		for (size_t i = 0; i < a.n && rc == 0; i++)
			rc = fn(arg, a.v[i].key, a.v[i].size, a.v[i].mtime_ms);
	}
	for (size_t i = 0; i < a.n; i++)
		free(a.v[i].key);
	free(a.v);
	return rc;
}

static void file_close(struct objstore *s)
{
	struct file_store *fs = (struct file_store *)s;
	for (size_t i = 0; i < fs->dirty_n; i++)
		free(fs->dirty[i]);
	while (fs->window_n)
		free(window_pop(fs));
	pthread_mutex_destroy(&fs->dirty_lock);
	free(fs->root);
	free(fs);
}

static const struct objstore_methods file_methods = {
	.name = "file",
	.put = file_put,
	.get = file_get,
	.head = file_head,
	.del = file_del,
	.list = file_list,
	.close = file_close,
	.sync = file_sync,
};

int objstore_file_open(const char *path, struct objstore **out)
{
	*out = NULL;
	size_t n = strlen(path);
	while (n > 1 && path[n - 1] == '/')
		n--;
	if (n == 0 || n + SL_OBJECT_KEY_BYTES_MAX + 64 >= PATH_MAX) {
		log_error("object store: folder path '%s' is empty or too long", path);
		return SL_EINVAL;
	}
	struct file_store *fs = calloc(1, sizeof *fs);
	char *root = strndup(path, n);
	if (!fs || !root) {
		free(fs);
		free(root);
		return SL_ENOMEM;
	}
	/* mkdir -p root; "/" alone needs nothing. */
	char buf[PATH_MAX];
	memcpy(buf, root, n + 1);
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char c = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0755) && errno != EEXIST) {
			log_error("object store: cannot create folder %s: %s", buf, strerror(errno));
			goto out_free;
		}
		buf[i] = c;
	}
	struct stat st;
	if (stat(root, &st) || !S_ISDIR(st.st_mode)) {
		log_error("object store: %s is not a folder", root);
		goto out_free;
	}
	fs->base.m = &file_methods;
	fs->root = root;
	atomic_init(&fs->temp_counter, 0);
	atomic_init(&fs->window_bound, -1);
	pthread_mutex_init(&fs->dirty_lock, NULL);
	*out = &fs->base;
	return 0;

out_free:
	free(root);
	free(fs);
	return SL_EIO;
}

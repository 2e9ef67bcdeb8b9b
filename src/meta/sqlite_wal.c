/* sqlite_wal.c — a VFS over SQLite's default one that gathers a
 * transaction's WAL writes into one write (issue 17).
 *
 * SQLite writes each WAL frame as two writes, its 24-byte header and its
 * page, so a produce commit of ~12 pages costs ~24 pwrite calls: on this
 * project's VM a syscall costs 1-2 us, about 40 % of the commit's CPU. A
 * WAL file opened through this VFS keeps a run of adjacent writes in a
 * buffer and writes it with one call:
 *   - when the page of a commit frame (a frame header whose "database
 *     size after commit" field is not 0) has been added: a committed
 *     transaction's frames are all in the file before SQLite appends them
 *     to the wal-index, whatever the synchronous setting; and what the
 *     transaction writes after it (padding frames, rewritten checksums)
 *     goes straight to the file, as the wal-index may name the commit;
 *   - before any other call on the file (sync, read, size, truncate,
 *     file control, close), and when a write does not continue the run
 *     or would overflow the buffer.
 *   - before its connection lets go of the WAL write lock (the database
 *     file's xShmLock): frames a transaction spilled before it rolled
 *     back are written while it may still write there, never over what
 *     a later writer put at the same place (if that write fails, the
 *     lock is let go all the same: those frames were not needed).
 * A failed write of the run is reported by the call that made it (a
 * read, a sync), which SQLite handles as that call's I/O error.
 * So xSync still syncs every byte written before it (invariant 1: a
 * commit's fdatasync covers all its frames), a reader (another
 * connection, another process) never sees a frame that is not in the
 * file, and a crash loses only frames of a transaction that had not
 * committed, as it could before. The main database file is wrapped too
 * (every call passed on) for that lock; its WAL file is found by its
 * name (sqlite3_filename_database). Other files (journals, temp files)
 * are the default VFS's own. */
#include "meta/meta_int.h"
#include "base/log.h"

#include <pthread.h>
#include <sqlite3.h>
#include <string.h>

#define WAL_FRAME_HEADER_BYTES 24
/* The default VFS writes at most 128 KiB - 1 in one call (it masks the
 * length with 0x1ffff and takes a short write for a full disk): 30
 * frames of 4 KiB pages, more than a produce commit writes. */
#define WAL_BUFFER_BYTES (124 * 1024)

/* A main database file or a WAL file (is_wal), the default VFS's file
 * right after it. */
struct wal_file {
	sqlite3_file base;     /* pMethods = &wal_methods */
	sqlite3_file *real;
	int is_wal;
	/* A WAL file's: */
	unsigned char *buf;    /* the run [off, off + len) not yet written */
	sqlite3_int64 off;
	size_t len;
	int commit_page_next;  /* the last write was a commit frame's header */
	/* A commit frame's page was written since the connection took the
	 * WAL write lock: what follows until it lets go (padding frames,
	 * rewritten checksums) is written through, never held while the
	 * wal-index may already name the commit. */
	int committed;
	struct wal_file *db;   /* its database file (NULL: not found; then
				* nothing is buffered) */
	/* A database file's: */
	const char *name;      /* SQLite's pointer, the key of the link */
	struct wal_file *wal;  /* its open WAL file, or NULL */
	struct wal_file *next; /* in open_dbs */
};

static sqlite3_vfs *real_vfs;
static sqlite3_vfs wal_vfs;
static pthread_once_t wal_once = PTHREAD_ONCE_INIT;
static int wal_ready;
/* The open database files, for their WAL files to find. */
static pthread_mutex_t open_lock = PTHREAD_MUTEX_INITIALIZER;
static struct wal_file *open_dbs;

static int wal_flush(struct wal_file *f)
{
	if (!f->len)
		return SQLITE_OK;
	int rc = f->real->pMethods->xWrite(f->real, f->buf, (int)f->len, f->off);
	f->len = 0;
	return rc;
}

static int wal_close(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	pthread_mutex_lock(&open_lock);
	if (f->is_wal && f->db)
		f->db->wal = NULL;
	if (!f->is_wal) {
		for (struct wal_file **q = &open_dbs; *q; q = &(*q)->next)
			if (*q == f) {
				*q = f->next;
				break;
			}
		if (f->wal)
			f->wal->db = NULL;
	}
	pthread_mutex_unlock(&open_lock);
	int rc2 = f->real->pMethods->xClose(f->real);
	sqlite3_free(f->buf);
	f->buf = NULL;
	return rc != SQLITE_OK ? rc : rc2;
}

static int wal_read(sqlite3_file *p, void *out, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xRead(f->real, out, amt, off);
}

/* The frame header's bytes 4-7: the database size after a commit (big
 * endian), 0 in every frame but a transaction's last. */
static int commit_header(const void *data, int amt)
{
	const unsigned char *h = data;
	return amt == WAL_FRAME_HEADER_BYTES && (h[4] | h[5] | h[6] | h[7]) != 0;
}

static int wal_write(sqlite3_file *p, const void *data, int amt, sqlite3_int64 off)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = SQLITE_OK;
	if (!f->is_wal || !f->db)
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	if (f->len && (off != f->off + (sqlite3_int64)f->len ||
		       f->len + (size_t)amt > WAL_BUFFER_BYTES))
		rc = wal_flush(f);
	if (rc != SQLITE_OK)
		return rc;
	if (!f->buf)
		f->buf = sqlite3_malloc(WAL_BUFFER_BYTES);
	if (!f->buf || (size_t)amt > WAL_BUFFER_BYTES || f->committed) /* unbuffered, as before */
		return f->real->pMethods->xWrite(f->real, data, amt, off);
	if (!f->len)
		f->off = off;
	memcpy(f->buf + f->len, data, (size_t)amt);
	f->len += (size_t)amt;
	int commit_page = f->commit_page_next && amt != WAL_FRAME_HEADER_BYTES;
	f->commit_page_next = commit_header(data, amt);
	if (!commit_page)
		return SQLITE_OK;
	f->committed = 1;
	return wal_flush(f);
}

static int wal_truncate(sqlite3_file *p, sqlite3_int64 size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xTruncate(f->real, size);
}

static int wal_sync(sqlite3_file *p, int flags)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xSync(f->real, flags);
}

static int wal_file_size(sqlite3_file *p, sqlite3_int64 *size)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileSize(f->real, size);
}

static int wal_lock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xLock(f->real, level);
}

static int wal_unlock(sqlite3_file *p, int level)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xUnlock(f->real, level);
}

static int wal_check_reserved(sqlite3_file *p, int *out)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xCheckReservedLock(f->real, out);
}

static int wal_file_control(sqlite3_file *p, int op, void *arg)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	return rc != SQLITE_OK ? rc : f->real->pMethods->xFileControl(f->real, op, arg);
}

static int wal_sector_size(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xSectorSize(f->real);
}

static int wal_device_characteristics(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xDeviceCharacteristics(f->real);
}

/* The database file's shared memory and mapping, passed on. */
static int wal_shm_map(sqlite3_file *p, int pg, int pgsz, int extend, void volatile **out)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xShmMap(f->real, pg, pgsz, extend, out);
}

/* A database file's: before the WAL write lock (the first of the shared
 * memory's locks) is let go, its WAL's run is written. The lock is let go
 * whatever that write did: SQLite ignores what an unlock returns and
 * takes the lock as released, so keeping it would stall every other
 * writer. The run can then only hold frames of a transaction that did not
 * commit (a commit's are written with its commit frame), so losing them
 * loses nothing; the failure is logged. */
static int wal_shm_lock(sqlite3_file *p, int offset, int n, int flags)
{
	struct wal_file *f = (struct wal_file *)p;
	if ((flags & SQLITE_SHM_UNLOCK) && offset == 0 && n > 0 && f->wal) {
		int rc = wal_flush(f->wal);
		f->wal->committed = 0;
		if (rc != SQLITE_OK)
			log_warn("metadata: writing a rolled-back transaction's WAL frames failed"
				 " (SQLite error %d); they were not needed", rc);
	}
	return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

static void wal_shm_barrier(sqlite3_file *p)
{
	struct wal_file *f = (struct wal_file *)p;
	f->real->pMethods->xShmBarrier(f->real);
}

static int wal_shm_unmap(sqlite3_file *p, int delete_flag)
{
	struct wal_file *f = (struct wal_file *)p;
	return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

/* Version 3's: a file of an older version maps nothing. */
static int wal_fetch(sqlite3_file *p, sqlite3_int64 off, int amt, void **out)
{
	struct wal_file *f = (struct wal_file *)p;
	int rc = wal_flush(f);
	*out = NULL;
	if (rc != SQLITE_OK || f->real->pMethods->iVersion < 3)
		return rc;
	return f->real->pMethods->xFetch(f->real, off, amt, out);
}

static int wal_unfetch(sqlite3_file *p, sqlite3_int64 off, void *page)
{
	struct wal_file *f = (struct wal_file *)p;
	if (f->real->pMethods->iVersion < 3)
		return SQLITE_OK;
	return f->real->pMethods->xUnfetch(f->real, off, page);
}

static const sqlite3_io_methods wal_methods = {
	.iVersion = 3,
	.xClose = wal_close,
	.xRead = wal_read,
	.xWrite = wal_write,
	.xTruncate = wal_truncate,
	.xSync = wal_sync,
	.xFileSize = wal_file_size,
	.xLock = wal_lock,
	.xUnlock = wal_unlock,
	.xCheckReservedLock = wal_check_reserved,
	.xFileControl = wal_file_control,
	.xSectorSize = wal_sector_size,
	.xDeviceCharacteristics = wal_device_characteristics,
	.xShmMap = wal_shm_map,
	.xShmLock = wal_shm_lock,
	.xShmBarrier = wal_shm_barrier,
	.xShmUnmap = wal_shm_unmap,
	.xFetch = wal_fetch,
	.xUnfetch = wal_unfetch,
};

/* A main database or WAL file gets the wrapper, its default-VFS file
 * after it; any other file is the default VFS's, opened in place (its
 * own methods). */
static int vfs_open(sqlite3_vfs *vfs, const char *name, sqlite3_file *p, int flags,
		    int *out_flags)
{
	(void)vfs;
	if (!(flags & (SQLITE_OPEN_WAL | SQLITE_OPEN_MAIN_DB)) || !name)
		return real_vfs->xOpen(real_vfs, name, p, flags, out_flags);
	struct wal_file *f = (struct wal_file *)p;
	memset(f, 0, sizeof *f);
	f->real = (sqlite3_file *)(f + 1);
	f->is_wal = (flags & SQLITE_OPEN_WAL) != 0;
	int rc = real_vfs->xOpen(real_vfs, name, f->real, flags, out_flags);
	if (rc != SQLITE_OK || !f->real->pMethods) {
		/* SQLite calls xClose only on a file with methods: close the
		 * real one here if it has them. */
		if (f->real->pMethods)
			f->real->pMethods->xClose(f->real);
		f->base.pMethods = NULL;
		return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
	}
	f->base.pMethods = &wal_methods;
	pthread_mutex_lock(&open_lock);
	if (!f->is_wal) {
		f->name = name;
		f->next = open_dbs;
		open_dbs = f;
	} else {
		/* The pager opens its WAL under a name in the same block as
		 * its database's: the same pointer is the same connection. */
		const char *db = sqlite3_filename_database(name);
		for (struct wal_file *d = open_dbs; d; d = d->next)
			if (d->name == db && !d->wal) {
				d->wal = f;
				f->db = d;
				break;
			}
	}
	pthread_mutex_unlock(&open_lock);
	return SQLITE_OK;
}

static int vfs_delete(sqlite3_vfs *v, const char *name, int sync_dir)
{
	(void)v;
	return real_vfs->xDelete(real_vfs, name, sync_dir);
}

static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	(void)v;
	return real_vfs->xAccess(real_vfs, name, flags, out);
}

static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
	(void)v;
	return real_vfs->xFullPathname(real_vfs, name, n, out);
}

static void *vfs_dl_open(sqlite3_vfs *v, const char *name)
{
	(void)v;
	return real_vfs->xDlOpen(real_vfs, name);
}

static void vfs_dl_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	real_vfs->xDlError(real_vfs, n, out);
}

static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void)
{
	(void)v;
	return real_vfs->xDlSym(real_vfs, h, sym);
}

static void vfs_dl_close(sqlite3_vfs *v, void *h)
{
	(void)v;
	real_vfs->xDlClose(real_vfs, h);
}

static int vfs_randomness(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xRandomness(real_vfs, n, out);
}

static int vfs_sleep(sqlite3_vfs *v, int us)
{
	(void)v;
	return real_vfs->xSleep(real_vfs, us);
}

static int vfs_current_time(sqlite3_vfs *v, double *out)
{
	(void)v;
	return real_vfs->xCurrentTime(real_vfs, out);
}

static int vfs_last_error(sqlite3_vfs *v, int n, char *out)
{
	(void)v;
	return real_vfs->xGetLastError(real_vfs, n, out);
}

static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	(void)v;
	return real_vfs->xCurrentTimeInt64(real_vfs, out);
}

static void wal_register(void)
{
	real_vfs = sqlite3_vfs_find(NULL);
	/* xCurrentTimeInt64 is version 2's; the system-call hooks of version
	 * 3 are left out (only tests of SQLite itself use them). The shared
	 * memory calls are the default files' version 2 methods. */
	if (!real_vfs || real_vfs->iVersion < 2)
		return;
	wal_vfs = (sqlite3_vfs){
		.iVersion = 2,
		.szOsFile = (int)sizeof(struct wal_file) + real_vfs->szOsFile,
		.mxPathname = real_vfs->mxPathname,
		.zName = "sluice-wal",
		.xOpen = vfs_open,
		.xDelete = vfs_delete,
		.xAccess = vfs_access,
		.xFullPathname = vfs_full_pathname,
		.xDlOpen = vfs_dl_open,
		.xDlError = vfs_dl_error,
		.xDlSym = vfs_dl_sym,
		.xDlClose = vfs_dl_close,
		.xRandomness = vfs_randomness,
		.xSleep = vfs_sleep,
		.xCurrentTime = vfs_current_time,
		.xGetLastError = vfs_last_error,
		.xCurrentTimeInt64 = vfs_current_time64,
	};
	wal_ready = sqlite3_vfs_register(&wal_vfs, 0) == SQLITE_OK;
}

const char *meta_sqlite_wal_vfs(void)
{
	pthread_once(&wal_once, wal_register);
	return wal_ready ? wal_vfs.zName : NULL;
}

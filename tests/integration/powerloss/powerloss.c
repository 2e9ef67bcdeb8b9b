/* powerloss.c — a test double for power loss: an LD_PRELOAD shim that
 * records, under a folder tree, exactly what the process has made durable,
 * so a test can rebuild the tree as a power cut would leave it (pages
 * never synced are lost), not as the page cache still holds it.
 *
 *   SLUICE_POWERLOSS_ROOT=/abs/data  the tree watched (no trailing '/')
 *   SLUICE_POWERLOSS_SHADOW=/abs/dir  where the durable state is kept
 *
 * The model (stricter than any journaling file system, as POSIX allows):
 *  - at start, everything under ROOT is durable (the shim snapshots it);
 *  - fsync or fdatasync of a regular file makes its current content
 *    durable (kept by inode: shadow/files/<ino>);
 *  - fsync of a directory makes its current entries durable (names and
 *    inodes: shadow/dirs/<path relative to ROOT, '/' as '%'>; the
 *    starting listings stay in shadow/dirs0/ as well);
 *  - nothing else is: a write never followed by its file's sync is lost,
 *    a create, rename or unlink never followed by its directory's sync
 *    is undone. A name made durable whose file was never synced comes
 *    back empty.
 * tests/integration/powerloss.py rebuilds a tree from the shadow.
 *
 * Snapshots are written to a temp name and renamed, and taken before the
 * intercepted call returns, so a kill -9 leaves each one whole or absent
 * and every sync the process saw return is in the shadow. Inode numbers
 * are assumed not to be reused within a run (tests delete no synced
 * file before the cut). Only for tests; never linked into sluice. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char root[PATH_MAX];
static size_t root_len;
static char shadow[PATH_MAX];
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counter;

static void die(const char *what, const char *path)
{
	fprintf(stderr, "powerloss: %s %s: %s\n", what, path, strerror(errno));
	abort();
}

/* snprintf into a path buffer; a path that does not fit is a test setup
 * error, never silently cut. */
#define PATH_FMT(buf, ...) do { \
	int n_ = snprintf(buf, sizeof buf, __VA_ARGS__); \
	if (n_ < 0 || (size_t)n_ >= sizeof buf) { \
		errno = ENAMETOOLONG; \
		die("path", buf); \
	} \
} while (0)

/* Write what fill() produces to dst through a temp file and a rename. */
static void put_file(const char *dst, int (*fill)(FILE *, const void *), const void *arg)
{
	char tmp[PATH_MAX];
	PATH_FMT(tmp, "%s/tmp.%ld.%lu", shadow, (long)getpid(), counter++);
	FILE *f = fopen(tmp, "w");
	if (!f)
		die("create", tmp);
	if (fill(f, arg) || fclose(f))
		die("write", tmp);
	if (rename(tmp, dst))
		die("rename", dst);
}

static int fill_listing(FILE *out, const void *arg)
{
	const char *dir = arg;
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW))
			continue; /* gone meanwhile */
		char type = S_ISDIR(st.st_mode) ? 'd' : S_ISREG(st.st_mode) ? 'f' : 'o';
		fprintf(out, "%c %llu %s\n", type, (unsigned long long)st.st_ino, e->d_name);
	}
	closedir(d);
	return 0;
}

static int fill_content(FILE *out, const void *arg)
{
	int fd = *(const int *)arg;
	char buf[65536];
	off_t at = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof buf, at);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0)
			return 0;
		if (fwrite(buf, 1, (size_t)n, out) != (size_t)n)
			return -1;
		at += n;
	}
}

/* shadow/<sub>/<rel with '/' as '%'> ("=" for ROOT itself). */
static void dir_record_in(const char *sub, const char *path)
{
	char name[PATH_MAX], dst[PATH_MAX];
	const char *rel = path[root_len] ? path + root_len + 1 : "=";
	PATH_FMT(name, "%s", rel);
	for (char *c = name; *c; c++)
		if (*c == '/')
			*c = '%';
	PATH_FMT(dst, "%s/%s/%s", shadow, sub, name);
	put_file(dst, fill_listing, path);
}

static void dir_record(const char *path)
{
	dir_record_in("dirs", path);
}

static void file_record(int fd, ino_t ino)
{
	char dst[PATH_MAX];
	PATH_FMT(dst, "%s/files/%llu", shadow, (unsigned long long)ino);
	put_file(dst, fill_content, &fd);
}

static int under_root(const char *path)
{
	return root_len && strncmp(path, root, root_len) == 0 &&
	       (path[root_len] == 0 || path[root_len] == '/');
}

/* After a successful sync of fd: record what it made durable. */
static void synced(int fd)
{
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof path - 1);
	if (n <= 0)
		return;
	path[n] = 0;
	if (!under_root(path))
		return;
	struct stat st;
	if (fstat(fd, &st))
		return;
	int saved = errno;
	pthread_mutex_lock(&lock);
	if (S_ISDIR(st.st_mode)) {
		dir_record(path);
	} else if (S_ISREG(st.st_mode)) {
		/* fd may be write-only: read the same file through /proc. */
		int rfd = open(link, O_RDONLY | O_CLOEXEC);
		if (rfd < 0)
			die("reopen", path);
		file_record(rfd, st.st_ino);
		close(rfd);
	}
	pthread_mutex_unlock(&lock);
	errno = saved;
}

/* The starting state: every folder's entries and every file's content. */
static void snapshot_tree(const char *dir)
{
	dir_record(dir);
	dir_record_in("dirs0", dir); /* kept: the tests' control replays */
	DIR *d = opendir(dir);
	if (!d)
		die("open", dir);
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char path[PATH_MAX];
		PATH_FMT(path, "%s/%s", dir, e->d_name);
		struct stat st;
		if (lstat(path, &st))
			continue;
		if (S_ISDIR(st.st_mode)) {
			snapshot_tree(path);
		} else if (S_ISREG(st.st_mode)) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die("open", path);
			file_record(fd, st.st_ino);
			close(fd);
		}
	}
	closedir(d);
}

__attribute__((constructor)) static void powerloss_init(void)
{
	real_fsync = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
	real_fdatasync = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
	const char *r = getenv("SLUICE_POWERLOSS_ROOT");
	const char *s = getenv("SLUICE_POWERLOSS_SHADOW");
	if (!r || !s || !*r || !*s)
		return;
	PATH_FMT(root, "%s", r);
	PATH_FMT(shadow, "%s", s);
	char sub[PATH_MAX];
	mkdir(shadow, 0755);
	PATH_FMT(sub, "%s/dirs", shadow);
	mkdir(sub, 0755);
	PATH_FMT(sub, "%s/files", shadow);
	mkdir(sub, 0755);
	PATH_FMT(sub, "%s/dirs0", shadow);
	mkdir(sub, 0755);
	root_len = strlen(root);
	snapshot_tree(root);
}

int fsync(int fd)
{
	int rc = real_fsync(fd);
	if (rc == 0)
		synced(fd);
	return rc;
}

int fdatasync(int fd)
{
	int rc = real_fdatasync(fd);
	if (rc == 0)
		synced(fd);
	return rc;
}

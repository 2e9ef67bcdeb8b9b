/* test_sqlite_wal.c — the metadata store's WAL VFS (src/meta/sqlite_wal.c),
 * which gathers a transaction's WAL writes into one: through it, what a
 * connection commits is what another connection (through SQLite's own
 * VFS, as the sqlite3 tool would read it) sees right after the commit,
 * with or without a sync; a transaction bigger than its buffer and one
 * that spills pages mid-way (read back while buffered) commit whole;
 * frames spilled by a transaction that rolled back never land over a
 * later commit's, and when they cannot be written the write lock is let
 * go all the same; a
 * process killed mid-transaction leaves every transaction it committed
 * and none of the one it had not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include <sqlite3.h>

#include "meta/meta_int.h"

static char dir[64], path[128];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "/tmp/sluice-wal-test-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	snprintf(path, sizeof path, "%s/t.db", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void exec(sqlite3 *db, const char *sql)
{
	char *err = NULL;
	int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : "?");
}

static int64_t one(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int64_t v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void assert_intact(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(st, 0), "ok");
	sqlite3_finalize(st);
}

/* Through the WAL VFS, in WAL mode, with the given synchronous setting. */
static sqlite3 *open_wal(const char *sync)
{
	const char *vfs = meta_sqlite_wal_vfs();
	assert_non_null(vfs);
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
					 vfs), SQLITE_OK);
	exec(db, "PRAGMA journal_mode = WAL");
	char sql[64];
	snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", sync);
	exec(db, sql);
	return db;
}

static sqlite3 *open_plain(void)
{
	sqlite3 *db;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
	return db;
}

/* Each commit, small or large, synced or not, is whole in the other
 * connection's next read. */
static void test_commits_seen(void **state)
{
	(void)state;
	sqlite3 *w = open_wal("FULL");
	exec(w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)");
	sqlite3 *r = open_plain();
	const char *syncs[] = { "FULL", "NORMAL", "OFF" };
	int64_t rows = 0;
	for (int i = 0; i < 3; i++) {
		char sql[192];
		snprintf(sql, sizeof sql, "PRAGMA synchronous = %s", syncs[i]);
		exec(w, sql);
		/* 1 row, then ~1 MiB: far past the buffer (124 KiB). */
		for (int n = 1; n <= 1000; n *= 1000) {
			snprintf(sql, sizeof sql, "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL"
				 " SELECT x + 1 FROM s WHERE x < %d)"
				 " INSERT INTO t (v) SELECT randomblob(1000) FROM s", n);
			exec(w, sql);
			rows += n;
			assert_int_equal(one(r, "SELECT count(*) FROM t"), rows);
			assert_int_equal(one(r, "SELECT sum(length(v)) FROM t"), rows * 1000);
		}
	}
	sqlite3_close(r);
	sqlite3_close(w);
}

/* A transaction whose dirty pages spill out of a tiny page cache before
 * it commits: SQLite writes them to the WAL and reads them back while
 * still changing them. */
static void test_spill(void **state)
{
	(void)state;
	sqlite3 *w = open_wal("FULL");
	exec(w, "PRAGMA cache_size = 10");
	exec(w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)");
	exec(w, "BEGIN");
	exec(w, "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 3000)"
		" INSERT INTO t SELECT x, x, randomblob(300) FROM s");
	exec(w, "UPDATE t SET v = v * 2");
	assert_int_equal(one(w, "SELECT sum(v) FROM t"), 2 * 3000 * 3001 / 2);
	exec(w, "COMMIT");
	sqlite3 *r = open_plain();
	assert_int_equal(one(r, "SELECT sum(v) FROM t"), 2 * 3000 * 3001 / 2);
	assert_intact(r);
	sqlite3_close(r);
	sqlite3_close(w);
}

/* Frames a transaction spilled, then rolled back (no call on the WAL
 * file needed for it): another connection commits where those frames
 * were; the first one reads again and writes. Every commit stays whole.
 * unwritable: those frames cannot be written when the connection lets go
 * of the write lock (the file size limit: a full disk would do the same);
 * the lock is let go all the same, so the other connection writes at
 * once. */
static void spill_rolled_back(bool unwritable)
{
	sqlite3 *a = open_wal("FULL");
	exec(a, "PRAGMA cache_size = 10");
	exec(a, "CREATE TABLE t (k INTEGER PRIMARY KEY, v INTEGER, pad BLOB)");
	exec(a, "CREATE TABLE u (k INTEGER PRIMARY KEY, pad BLOB)");
	if (unwritable)
		exec(a, "PRAGMA wal_checkpoint(TRUNCATE)");
	exec(a, "BEGIN");
	/* u only: nothing of t is in the cache to read back at the
	 * rollback. */
	exec(a, "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 100)"
		" INSERT INTO u SELECT x, randomblob(300) FROM s");
	if (unwritable) {
		char wal[160];
		snprintf(wal, sizeof wal, "%s-wal", path);
		struct stat sb;
		assert_int_equal(stat(wal, &sb), 0);
		struct rlimit old, lim;
		assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
		lim = old;
		lim.rlim_cur = (rlim_t)sb.st_size;
		void (*was)(int) = signal(SIGXFSZ, SIG_IGN);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
		sqlite3_exec(a, "ROLLBACK", NULL, NULL, NULL);
		assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
		signal(SIGXFSZ, was);
	} else {
		exec(a, "ROLLBACK");
	}
	sqlite3 *b = open_wal("FULL");
	exec(b, "BEGIN IMMEDIATE");
	exec(b, "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM s WHERE x < 200)"
		" INSERT INTO t SELECT x, 7, randomblob(300) FROM s");
	exec(b, "COMMIT");
	assert_int_equal(one(a, "SELECT count(*) FROM t"), 200);
	exec(a, "INSERT INTO t VALUES (1000, 1, NULL)");
	sqlite3_close(a);
	sqlite3_close(b);
	sqlite3 *r = open_plain();
	assert_int_equal(one(r, "SELECT sum(v) FROM t"), 200 * 7 + 1);
	assert_int_equal(one(r, "SELECT count(*) FROM u"), 0);
	assert_intact(r);
	sqlite3_close(r);
}

static void test_spill_rolled_back(void **state)
{
	(void)state;
	spill_rolled_back(false);
}

static void test_spill_rolled_back_unwritable(void **state)
{
	(void)state;
	spill_rolled_back(true);
}

/* A child commits transactions (telling the parent after each), then
 * dies in the middle of one: after it, the store holds exactly the
 * committed ones. */
static void test_killed_mid_transaction(void **state)
{
	(void)state;
	sqlite3 *w = open_wal("FULL");
	exec(w, "CREATE TABLE t (k INTEGER PRIMARY KEY, txn INTEGER, pad BLOB)");
	sqlite3_close(w);
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(fds[0]);
		sqlite3 *c = open_wal("FULL");
		for (int txn = 1;; txn++) {
			char sql[256];
			exec(c, "BEGIN");
			snprintf(sql, sizeof sql, "WITH RECURSIVE s(x) AS (SELECT 1 UNION ALL"
				 " SELECT x + 1 FROM s WHERE x < 20) INSERT INTO t (txn, pad)"
				 " SELECT %d, randomblob(500) FROM s", txn);
			exec(c, sql);
			if (txn == 30)
				_exit(0); /* frames of this one may sit in the buffer */
			exec(c, "COMMIT");
			if (write(fds[1], &txn, sizeof txn) != sizeof txn)
				_exit(1);
		}
	}
	close(fds[1]);
	int txn, last = 0;
	while (read(fds[0], &txn, sizeof txn) == sizeof txn)
		last = txn;
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_int_equal(last, 29);
	sqlite3 *r = open_plain();
	assert_int_equal(one(r, "SELECT count(*) FROM t"), 29 * 20);
	assert_int_equal(one(r, "SELECT max(txn) FROM t"), 29);
	sqlite3_close(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_commits_seen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill_rolled_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spill_rolled_back_unwritable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_killed_mid_transaction, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

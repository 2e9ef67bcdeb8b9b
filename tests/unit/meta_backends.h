/* meta_backends.h — runs a metadata store unit suite against each
 * backend: SQLite always (a fresh file in a temp dir per test), then
 * PostgreSQL when a server is given (a fresh schema per test, in a
 * database of this test binary's own), so both are held to one set of
 * assertions.
 *
 * The server: SLUICE_TEST_PG_URL (any postgresql:// URL of a superuser,
 * e.g. from tools/pg-test.sh), or the file SLUICE_TEST_PG_URL_FILE names
 * (ctest's pg fixture writes it). Neither set: the PostgreSQL pass is
 * skipped with a line saying so. A file named but unreadable fails (the
 * fixture did not start a server CI expects).
 *
 * The including test defines _GNU_SOURCE (nftw) before any include, and
 * its tests, and calls meta_backends_run. */
#ifndef SLUICE_TEST_META_BACKENDS_H
#define SLUICE_TEST_META_BACKENDS_H

#include <ftw.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum tb_backend { TB_SQLITE, TB_POSTGRES };

static enum tb_backend tb;
static char tb_root[256];      /* sqlite: the test's temp dir */
static char tb_db_path[512];   /* sqlite: the file */
static char tb_url[1200];      /* the store's URL for the current test */
static char tb_server[1024];   /* postgres: the server's URL */
static char tb_dbname[64];     /* postgres: this binary's database */
static char tb_pg_base[1024];  /* postgres: tb_url without the database */
static PGconn *tb_pg;          /* postgres: the test's own connection */

static inline const char *tb_name(void)
{
	return tb == TB_SQLITE ? "sqlite" : "postgres";
}

/* Runs sql on conn; fails the test on an error. */
static void tb_pg_exec(PGconn *conn, const char *sql)
{
	PGresult *r = PQexec(conn, sql);
	ExecStatusType st = PQresultStatus(r);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		fprintf(stderr, "meta_backends: %s: %s", sql, PQerrorMessage(conn));
		PQclear(r);
		abort();
	}
	PQclear(r);
}

/* postgresql://USER:PASS@HOST:PORT/ from the server's URL. */
static int tb_pg_base_url(const char *server, char *out, size_t cap)
{
	char *err = NULL;
	PQconninfoOption *opts = PQconninfoParse(server, &err);
	if (!opts) {
		fprintf(stderr, "meta_backends: bad URL: %s\n", err ? err : "?");
		PQfreemem(err);
		return -1;
	}
	const char *user = "", *pw = NULL, *host = "127.0.0.1", *port = "5432";
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "user"))
			user = o->val;
		else if (!strcmp(o->keyword, "password"))
			pw = o->val;
		else if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
	}
	snprintf(out, cap, "postgresql://%s%s%s@%s:%s/", user, pw ? ":" : "", pw ? pw : "", host,
		 port);
	PQconninfoFree(opts);
	return 0;
}

/* 1: a server is given (tb_server set); 0: none; -1: named, unreadable. */
static int tb_pg_server(void)
{
	const char *url = getenv("SLUICE_TEST_PG_URL");
	if (url && *url) {
		snprintf(tb_server, sizeof tb_server, "%s", url);
		return 1;
	}
	const char *file = getenv("SLUICE_TEST_PG_URL_FILE");
	if (!file || !*file)
		return 0;
	FILE *f = fopen(file, "r");
	if (!f || !fgets(tb_server, sizeof tb_server, f)) {
		fprintf(stderr, "meta_backends: %s: no PostgreSQL URL (did the pg fixture "
			"start?)\n", file);
		if (f)
			fclose(f);
		return -1;
	}
	fclose(f);
	tb_server[strcspn(tb_server, "\r\n")] = 0;
	return 1;
}

/* Group setup: this binary's database, created afresh. */
static int tb_pg_group_setup(void **state)
{
	(void)state;
	if (tb_pg_base_url(tb_server, tb_pg_base, sizeof tb_pg_base))
		return -1;
	PGconn *admin = PQconnectdb(tb_server);
	if (PQstatus(admin) != CONNECTION_OK) {
		fprintf(stderr, "meta_backends: %s", PQerrorMessage(admin));
		PQfinish(admin);
		return -1;
	}
	char sql[256];
	snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", tb_dbname);
	tb_pg_exec(admin, sql);
	snprintf(sql, sizeof sql, "CREATE DATABASE %s", tb_dbname);
	tb_pg_exec(admin, sql);
	PQfinish(admin);
	snprintf(tb_url, sizeof tb_url, "%s%s", tb_pg_base, tb_dbname);
	tb_pg = PQconnectdb(tb_url);
	if (PQstatus(tb_pg) != CONNECTION_OK) {
		fprintf(stderr, "meta_backends: %s", PQerrorMessage(tb_pg));
		return -1;
	}
	PQsetNoticeProcessor(tb_pg, NULL, NULL);
	tb_pg_exec(tb_pg, "SET client_min_messages = warning");
	return 0;
}

static int tb_pg_group_teardown(void **state)
{
	(void)state;
	PQfinish(tb_pg);
	tb_pg = NULL;
	PGconn *admin = PQconnectdb(tb_server);
	if (PQstatus(admin) == CONNECTION_OK) {
		char sql[256];
		snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", tb_dbname);
		tb_pg_exec(admin, sql);
	}
	PQfinish(admin);
	return 0;
}

static int tb_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

/* Per test: an empty store at tb_url. */
static int tb_setup(void **state)
{
	(void)state;
	if (tb == TB_POSTGRES) {
		tb_pg_exec(tb_pg, "DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public");
		return 0;
	}
	strcpy(tb_root, "/tmp/sluice-meta-XXXXXX");
	if (!mkdtemp(tb_root))
		return -1;
	snprintf(tb_db_path, sizeof tb_db_path, "%s/meta.db", tb_root);
	snprintf(tb_url, sizeof tb_url, "sqlite:%s", tb_db_path);
	return 0;
}

static int tb_teardown(void **state)
{
	(void)state;
	if (tb == TB_SQLITE)
		nftw(tb_root, tb_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}

/* One integer the store holds, read past the backend (sql has one
 * parameter, $1 / ?1, a text). -1 when there is no row. */
static inline int64_t tb_query_i64(const char *sql, const char *arg)
{
	int64_t v = -1;
	if (tb == TB_POSTGRES) {
		PGresult *r = PQexecParams(tb_pg, sql, 1, NULL, &arg, NULL, NULL, 0);
		if (PQresultStatus(r) != PGRES_TUPLES_OK) {
			fprintf(stderr, "meta_backends: %s: %s", sql, PQerrorMessage(tb_pg));
			abort();
		}
		if (PQntuples(r) > 0)
			v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
		PQclear(r);
		return v;
	}
	sqlite3 *db;
	sqlite3_stmt *st;
	char q[512];
	snprintf(q, sizeof q, "%s", sql);
	for (char *p = q; (p = strchr(p, '$')); p++)
		*p = '?';
	if (sqlite3_open_v2(tb_db_path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, q, -1, &st, NULL) != SQLITE_OK) {
		fprintf(stderr, "meta_backends: %s: %s\n", q, sqlite3_errmsg(db));
		abort();
	}
	sqlite3_bind_text(st, 1, arg, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* Runs tests against SQLite, then PostgreSQL if a server is given.
 * Returns the failure count (a missing server that was named counts). */
static int meta_backends_run(const char *suite, const struct CMUnitTest *tests, size_t n)
{
	tb = TB_SQLITE;
	int failed = _cmocka_run_group_tests("sqlite", tests, n, NULL, NULL);
	int have = tb_pg_server();
	if (have < 0)
		return failed + 1;
	if (have == 0) {
		printf("%s: no PostgreSQL (SLUICE_TEST_PG_URL or SLUICE_TEST_PG_URL_FILE): "
		       "the postgres pass is skipped\n", suite);
		return failed;
	}
	tb = TB_POSTGRES;
	snprintf(tb_dbname, sizeof tb_dbname, "sluice_%s_%d", suite, (int)getpid());
	return failed + _cmocka_run_group_tests("postgres", tests, n, tb_pg_group_setup,
						tb_pg_group_teardown);
}

#endif

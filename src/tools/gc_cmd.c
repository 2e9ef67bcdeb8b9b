/* gc_cmd.c — `sluice gc`: one pass of garbage collection over the object
 * store, safe to run while agents serve.
 *
 * Two kinds of garbage (design brief, invariant 4):
 *  - dead objects: metadata rows whose live_bytes reached 0 (every batch
 *    in them belongs to a deleted topic), created before the grace. Each
 *    page is marked 'deleting' in one transaction (only rows still at 0
 *    live bytes are), deleted from the store, and its rows removed once
 *    the store said the keys are gone. A run stopped half-way leaves
 *    'deleting' rows that the next run finishes.
 *  - orphans: keys under objects/ that no metadata row names, last
 *    modified before the grace: an upload whose commit never happened
 *    (an agent killed between PUT and commit, or a failed commit).
 * The grace must exceed the longest time between an object's PUT and its
 * commit (seconds; the default is an hour). Keys younger than the grace
 * and keys with live bytes are never touched. One collector at a time. */
#include "tools/gc_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/log.h"
#include "meta/meta.h"
#include "objstore/objstore.h"

#define GC_GRACE_MINUTES_DEFAULT 60
/* Keys handled per metadata transaction and store request (S3's
 * DeleteObjects takes 1000). */
#define GC_PAGE 1000
#define GC_URL_BYTES 1100

struct gc {
	struct objstore *store;
	struct meta *meta;
	int64_t cutoff_ms; /* garbage was created before this */
	bool dry_run;
	/* orphans found and not yet deleted */
	char *orphans[GC_PAGE];
	uint64_t orphan_sizes[GC_PAGE];
	size_t orphans_n;
	/* totals */
	uint64_t dead_n, dead_bytes, dead_failed;
	uint64_t orphan_n, orphan_bytes, orphan_failed;
	uint64_t listed;
	int err; /* first error */
};

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice gc [--data DIR] [--store URL] [--meta URL]\n"
		"                 [--grace-minutes N] [--dry-run] [--log-level LEVEL]\n\n"
		"Deletes from the object store the objects no partition needs any more\n"
		"(every batch in them belongs to a deleted topic) and orphans (keys under\n"
		"objects/ that the metadata does not know: uploads never committed), when\n"
		"older than the grace. Safe while agents serve.\n\n"
		"  --data DIR          default store and meta URLs (default ./data; $SLUICE_DATA)\n"
		"  --store URL         object store (default file:DATA/objects; $SLUICE_STORE)\n"
		"  --meta URL          metadata store (default sqlite:DATA/meta.db; $SLUICE_META)\n"
		"  --grace-minutes N   leave anything younger alone (default %d;\n"
		"                      $SLUICE_GC_GRACE_MINUTES)\n"
		"  --dry-run           print what would be deleted, delete nothing\n"
		"  --log-level LEVEL   error, warn, info or debug (default warn)\n",
		GC_GRACE_MINUTES_DEFAULT);
}

static void gc_error(struct gc *g, int rc)
{
	if (!g->err)
		g->err = rc;
}

/* ---- dead objects ---- */

/* One page of dead rows: mark, delete from the store, forget. */
static int gc_dead_page(struct gc *g, struct meta_object *rows, size_t n)
{
	const char *keys[GC_PAGE];
	bool marked[GC_PAGE], failed[GC_PAGE];
	for (size_t i = 0; i < n; i++)
		keys[i] = rows[i].key;
	if (g->dry_run) {
		for (size_t i = 0; i < n; i++) {
			printf("would delete dead object %s (%" PRIu64 " bytes)\n", keys[i],
			       rows[i].size);
			g->dead_n++;
			g->dead_bytes += rows[i].size;
		}
		return 0;
	}
	int rc = meta_objects_mark_deleting(g->meta, keys, n, marked);
	if (rc)
		return rc;
	/* Keep only the marked keys (a row that gained live bytes, or went
	 * away meanwhile, is not ours to delete). */
	size_t m = 0;
	uint64_t sizes[GC_PAGE];
	for (size_t i = 0; i < n; i++)
		if (marked[i]) {
			sizes[m] = rows[i].size;
			keys[m++] = rows[i].key;
		}
	if (m == 0)
		return 0;
	size_t deleted = 0;
	rc = objstore_del_many(g->store, keys, m, &deleted, failed);
	if (rc) {
		gc_error(g, rc);
		g->dead_failed += m - deleted;
	}
	/* Forget only what the store says is gone; the rest stays
	 * 'deleting' for the next run. */
	size_t k = 0;
	for (size_t i = 0; i < m; i++)
		if (!failed[i]) {
			g->dead_bytes += sizes[i];
			keys[k++] = keys[i];
		}
	g->dead_n += k;
	if (k == 0)
		return 0;
	return meta_objects_forget(g->meta, keys, k, NULL);
}

static int gc_dead(struct gc *g)
{
	static struct meta_object rows[GC_PAGE];
	int64_t after = 0;
	for (;;) {
		size_t n = 0;
		int rc = meta_objects_dead(g->meta, g->cutoff_ms, after, GC_PAGE, rows, &n);
		if (rc)
			return rc;
		if (n == 0)
			return 0;
		after = rows[n - 1].oid;
		rc = gc_dead_page(g, rows, n);
		if (rc)
			return rc;
		if (n < GC_PAGE)
			return 0;
	}
}

/* ---- orphans ---- */

static void gc_orphans_flush(struct gc *g)
{
	bool failed[GC_PAGE];
	size_t deleted = 0;
	if (g->orphans_n == 0)
		return;
	int rc = objstore_del_many(g->store, (const char *const *)g->orphans, g->orphans_n,
				   &deleted, failed);
	if (rc) {
		gc_error(g, rc);
		g->orphan_failed += g->orphans_n - deleted;
	}
	for (size_t i = 0; i < g->orphans_n; i++) {
		if (!failed[i]) {
			g->orphan_n++;
			g->orphan_bytes += g->orphan_sizes[i];
		}
		free(g->orphans[i]);
	}
	g->orphans_n = 0;
}

static int gc_on_key(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	struct gc *g = arg;
	g->listed++;
	/* Young, or of unknown age: leave it. */
	if (mtime_ms <= 0 || mtime_ms >= g->cutoff_ms)
		return 0;
	bool known = true;
	int rc = meta_object_known(g->meta, key, &known);
	if (rc)
		return rc;
	if (known)
		return 0;
	if (g->dry_run) {
		printf("would delete orphan %s (%" PRIu64 " bytes)\n", key, size);
		g->orphan_n++;
		g->orphan_bytes += size;
		return 0;
	}
	char *copy = strdup(key);
	if (!copy)
		return SL_ENOMEM;
	g->orphans[g->orphans_n] = copy;
	g->orphan_sizes[g->orphans_n++] = size;
	if (g->orphans_n == GC_PAGE)
		gc_orphans_flush(g);
	return 0;
}

static int gc_orphans(struct gc *g)
{
	int rc = objstore_list(g->store, "objects/", gc_on_key, g);
	if (rc == 0)
		gc_orphans_flush(g);
	for (size_t i = 0; i < g->orphans_n; i++)
		free(g->orphans[i]);
	g->orphans_n = 0;
	return rc;
}

/* ---- flags ---- */

static int parse_minutes(const char *v, int64_t *out)
{
	char *end;
	errno = 0;
	long long n = strtoll(v, &end, 10);
	/* At most ten years: the cutoff stays far from overflow. */
	if (errno || end == v || *end || n < 0 || n > 10LL * 366 * 24 * 60)
		return SL_EINVAL;
	*out = n;
	return 0;
}

int gc_cmd(int argc, char **argv)
{
	char data[GC_URL_BYTES] = "./data", store_url[GC_URL_BYTES] = "",
	     meta_url[GC_URL_BYTES] = "";
	const char *env;
	int64_t grace_min = GC_GRACE_MINUTES_DEFAULT;
	bool dry_run = false;
	enum log_level level = LOG_WARN;
	if ((env = getenv("SLUICE_DATA")) && *env)
		snprintf(data, sizeof data, "%s", env);
	if ((env = getenv("SLUICE_STORE")) && *env)
		snprintf(store_url, sizeof store_url, "%s", env);
	if ((env = getenv("SLUICE_META")) && *env)
		snprintf(meta_url, sizeof meta_url, "%s", env);
	if ((env = getenv("SLUICE_GC_GRACE_MINUTES")) && *env &&
	    parse_minutes(env, &grace_min)) {
		fprintf(stderr, "sluice gc: bad SLUICE_GC_GRACE_MINUTES '%s'\n", env);
		return 2;
	}
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--dry-run")) {
			dry_run = true;
		} else if (!strcmp(a, "--data") && v) {
			snprintf(data, sizeof data, "%s", argv[++i]);
		} else if (!strcmp(a, "--store") && v) {
			snprintf(store_url, sizeof store_url, "%s", argv[++i]);
		} else if (!strcmp(a, "--meta") && v) {
			snprintf(meta_url, sizeof meta_url, "%s", argv[++i]);
		} else if (!strcmp(a, "--grace-minutes") && v) {
			if (parse_minutes(argv[++i], &grace_min)) {
				fprintf(stderr, "sluice gc: bad --grace-minutes '%s' (0 to 5270400)\n",
					v);
				return 2;
			}
		} else if (!strcmp(a, "--log-level") && v) {
			i++;
			if (!strcmp(v, "error"))
				level = LOG_ERROR;
			else if (!strcmp(v, "warn"))
				level = LOG_WARN;
			else if (!strcmp(v, "info"))
				level = LOG_INFO;
			else if (!strcmp(v, "debug"))
				level = LOG_DEBUG;
			else {
				fprintf(stderr, "sluice gc: bad --log-level '%s'\n", v);
				return 2;
			}
		} else {
			fprintf(stderr, "sluice gc: unknown or incomplete flag '%s'\n\n", a);
			usage(stderr);
			return 2;
		}
	}
	log_level_current = level;
	if (!store_url[0])
		snprintf(store_url, sizeof store_url, "file:%.*s/objects", GC_URL_BYTES - 20, data);
	if (!meta_url[0])
		snprintf(meta_url, sizeof meta_url, "sqlite:%.*s/meta.db", GC_URL_BYTES - 20, data);

	struct gc *g = calloc(1, sizeof *g);
	if (!g)
		return 1;
	g->dry_run = dry_run;
	g->cutoff_ms = clock_wall_ms() - grace_min * 60 * 1000;
	int status = 1;
	/* Both open calls log one line that says why they failed. */
	if (meta_open(meta_url, &g->meta) != 0)
		goto out_free;
	if (objstore_open(store_url, &g->store) != 0)
		goto out_close_meta;

	int rc = gc_dead(g);
	if (rc == SL_EUNSUPPORTED) {
		fprintf(stderr, "sluice gc: the metadata store %s cannot list dead objects\n",
			meta_url);
		goto out_close;
	}
	if (rc) {
		fprintf(stderr, "sluice gc: collecting dead objects failed: %s\n", sl_strerror(rc));
		goto out_close;
	}
	rc = gc_orphans(g);
	if (rc) {
		fprintf(stderr, "sluice gc: looking for orphans in %s failed: %s\n", store_url,
			sl_strerror(rc));
		goto out_close;
	}
	const char *verb = dry_run ? "would delete" : "deleted";
	printf("gc: %s %" PRIu64 " dead objects (%" PRIu64 " bytes) and %" PRIu64
	       " orphans (%" PRIu64 " bytes); %" PRIu64 " keys listed, grace %" PRId64
	       " minutes\n",
	       verb, g->dead_n, g->dead_bytes, g->orphan_n, g->orphan_bytes, g->listed,
	       grace_min);
	if (g->err) {
		fprintf(stderr,
			"sluice gc: %" PRIu64 " dead objects and %" PRIu64
			" orphans could not be deleted: %s (the next run retries)\n",
			g->dead_failed, g->orphan_failed, sl_strerror(g->err));
		goto out_close;
	}
	status = 0;
out_close:
	objstore_close(g->store);
out_close_meta:
	meta_close(g->meta);
out_free:
	free(g);
	return status;
}

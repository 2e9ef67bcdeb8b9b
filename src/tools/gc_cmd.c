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
 *  - orphans: keys under objects/ that no metadata row names, sealed
 *    (the wall-clock ms in a writer's key) or, for keys of another
 *    format, last modified before the grace: an upload whose commit never
 *    happened (an agent killed between PUT and commit, or a failed
 *    commit). Before listing, gc raises the metadata's gc fence to the
 *    cutoff; a commit of an object sealed before the fence is refused
 *    (meta_gc_fence_raise), so an orphan deleted here can never be
 *    committed later, whatever the clocks or a stalled agent do.
 * Safety against a wrong configuration: the metadata store must exist
 * and have a schema (never created here), and when the orphans are more
 * than a fifth of the keys listed (and more than GC_BRAKE_MIN) nothing
 * is deleted without --force. A grace under a minute also needs --force.
 * Keys younger than the grace and keys with live bytes are never touched.
 * Agents collect dead objects too (storage/gc.c, --gc-interval-ms): a key
 * with no row is checked in the store again before it counts as an
 * orphan, since a collector may have deleted it after the listing. */
#include "tools/gc_cmd.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta.h"
#include "objstore/objstore.h"
#include "storage/gc.h"

/* Flag default: the agent's --gc-grace-ms default, in the tool's unit. */
#define GC_GRACE_MINUTES_DEFAULT 60
/* Format: a store or metadata URL with a key-length path. */
#define GC_URL_BYTES 1100
/* Policy, not a resource bound. The brake: refuse when orphans > listed / GC_BRAKE_DIV and > GC_BRAKE_MIN. */
#define GC_BRAKE_DIV 5
#define GC_BRAKE_MIN 10

struct gc {
	struct objstore *store;
	struct meta *meta;
	int64_t cutoff_ms; /* garbage was created before this */
	bool dry_run;
	/* orphans found, kept until the listing is complete (the brake) */
	char **orphans;
	uint64_t *orphan_sizes;
	size_t orphans_n, orphans_cap;
	uint64_t found_n, found_bytes; /* orphans found, kept or not */
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
		"                 [--grace-minutes N] [--dry-run] [--force]\n"
		"                 [--log-level LEVEL]\n\n"
		"Deletes from the object store the objects no partition needs any more\n"
		"(every batch in them belongs to a deleted topic) and orphans (keys under\n"
		"objects/ that the metadata does not know: uploads never committed), when\n"
		"older than the grace. Safe while agents serve.\n\n"
		"  --data DIR          default store and meta URLs (default ./data; $SLUICE_DATA)\n"
		"  --store URL         object store (default file:DATA/objects; $SLUICE_STORE)\n"
		"  --meta URL          metadata store (default sqlite:DATA/meta.db; $SLUICE_META)\n"
		"  --grace-minutes N   leave anything younger alone (default %d, at\n"
		"                      least 1 without --force; $SLUICE_GC_GRACE_MINUTES)\n"
		"  --dry-run           print what would be deleted, delete nothing\n"
		"  --force             allow a grace under a minute (only with no agent\n"
		"                      writing) and deleting orphans that are more than\n"
		"                      a fifth of the keys (a wrong --meta looks like that)\n"
		"  --log-level LEVEL   error, warn, info or debug (default warn)\n",
		GC_GRACE_MINUTES_DEFAULT);
}

static void gc_error(struct gc *g, int rc)
{
	if (!g->err)
		g->err = rc;
}

/* ---- dead objects (storage/gc.c) ---- */

static void print_dry(const char *key, uint64_t size, void *arg)
{
	(void)arg;
	printf("would delete dead object %s (%" PRIu64 " bytes)\n", key, size);
}

static int gc_dead(struct gc *g)
{
	struct gc_dead_stats st = { 0 };
	int64_t after = 0;
	int rc = gc_dead_objects(g->meta, g->store, g->cutoff_ms, g->dry_run ? print_dry : NULL,
				 NULL, &after, SIZE_MAX, NULL, &st);
	g->dead_n = st.deleted;
	g->dead_bytes = st.bytes;
	g->dead_failed = st.failed;
	if (st.store_err)
		gc_error(g, st.store_err);
	return rc;
}

/* ---- orphans ---- */

/* Deletes the kept orphans, a page at a time. */
static void gc_orphans_delete(struct gc *g)
{
	bool failed[SL_GC_PAGE_OBJECTS];
	for (size_t at = 0; at < g->orphans_n; at += SL_GC_PAGE_OBJECTS) {
		size_t n = g->orphans_n - at < SL_GC_PAGE_OBJECTS ? g->orphans_n - at : SL_GC_PAGE_OBJECTS;
		size_t deleted = 0;
		int rc = objstore_del_many(g->store, (const char *const *)g->orphans + at, n,
					   &deleted, failed);
		if (rc) {
			gc_error(g, rc);
			g->orphan_failed += n - deleted;
		}
		for (size_t i = 0; i < n; i++)
			if (!failed[i]) {
				g->orphan_n++;
				g->orphan_bytes += g->orphan_sizes[at + i];
			}
	}
}

static int gc_orphan_keep(struct gc *g, const char *key, uint64_t size)
{
	if (g->orphans_n == g->orphans_cap) {
		size_t cap = g->orphans_cap ? g->orphans_cap * 2 : 256;
		char **o = realloc(g->orphans, cap * sizeof *o);
		if (!o)
			return SL_ENOMEM;
		g->orphans = o;
		uint64_t *sz = realloc(g->orphan_sizes, cap * sizeof *sz);
		if (!sz)
			return SL_ENOMEM;
		g->orphan_sizes = sz;
		g->orphans_cap = cap;
	}
	char *copy = strdup(key);
	if (!copy)
		return SL_ENOMEM;
	g->orphans[g->orphans_n] = copy;
	g->orphan_sizes[g->orphans_n++] = size;
	return 0;
}

static int gc_on_key(void *arg, const char *key, uint64_t size, int64_t mtime_ms)
{
	struct gc *g = arg;
	g->listed++;
	/* Age from the seal time in a writer's key (what the commit fence
	 * checks); other keys by their store mtime. Young, or of unknown
	 * age: leave it. */
	int64_t born_ms;
	if (!meta_object_key_seal_ms(key, &born_ms))
		born_ms = mtime_ms;
	if (born_ms <= 0 || born_ms >= g->cutoff_ms)
		return 0;
	bool known = true;
	int rc = meta_object_known(g->meta, key, &known);
	if (rc)
		return rc;
	if (known)
		return 0;
	/* A dead object that an agent's collection (or another gc) deleted
	 * after the listing saw it has no row any more, and no bytes either:
	 * not an orphan. */
	uint64_t now_size;
	rc = objstore_head(g->store, key, &now_size);
	if (rc == SL_ENOTFOUND)
		return 0;
	if (rc)
		return rc;
	g->found_n++;
	g->found_bytes += size;
	if (g->dry_run) {
		printf("would delete orphan %s (%" PRIu64 " bytes)\n", key, size);
		g->orphan_n++;
		g->orphan_bytes += size;
		return 0;
	}
	if (g->orphans_n >= SL_GC_ORPHANS_MAX)
		return 0; /* the next run */
	return gc_orphan_keep(g, key, size);
}

static void gc_orphans_free(struct gc *g)
{
	for (size_t i = 0; i < g->orphans_n; i++)
		free(g->orphans[i]);
	free(g->orphans);
	free(g->orphan_sizes);
	g->orphans = NULL;
	g->orphan_sizes = NULL;
	g->orphans_n = g->orphans_cap = 0;
}

/* Whether the orphans found look like a wrong metadata store rather than
 * failed uploads. */
static bool gc_brake(const struct gc *g)
{
	return g->found_n > GC_BRAKE_MIN && g->found_n > g->listed / GC_BRAKE_DIV;
}

/* ---- flags ---- */

/* Copies a flag value; false if it does not fit. */
static bool flag_copy(char *dst, size_t cap, const char *v)
{
	int n = snprintf(dst, cap, "%s", v);
	return n >= 0 && (size_t)n < cap;
}

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
	bool dry_run = false, force = false;
	enum log_level level = LOG_WARN;
	if (((env = getenv("SLUICE_DATA")) && *env && !flag_copy(data, sizeof data, env)) ||
	    ((env = getenv("SLUICE_STORE")) && *env &&
	     !flag_copy(store_url, sizeof store_url, env)) ||
	    ((env = getenv("SLUICE_META")) && *env && !flag_copy(meta_url, sizeof meta_url, env))) {
		fprintf(stderr, "sluice gc: an environment value is longer than %d bytes\n",
			GC_URL_BYTES - 1);
		return 2;
	}
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
		} else if (!strcmp(a, "--force")) {
			force = true;
		} else if ((!strcmp(a, "--data") || !strcmp(a, "--store") ||
			    !strcmp(a, "--meta")) && v) {
			char *dst = a[2] == 'd' ? data : a[2] == 's' ? store_url : meta_url;
			i++;
			if (!flag_copy(dst, GC_URL_BYTES, v)) {
				fprintf(stderr, "sluice gc: %s value longer than %d bytes\n", a,
					GC_URL_BYTES - 1);
				return 2;
			}
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
	if (grace_min < 1 && !force) {
		fprintf(stderr, "sluice gc: --grace-minutes under 1 needs --force (and no agent "
			"writing: uploads not yet committed would be refused)\n");
		return 2;
	}
	if ((!store_url[0] && (size_t)snprintf(store_url, sizeof store_url, "file:%s/objects",
					       data) >= sizeof store_url) ||
	    (!meta_url[0] && (size_t)snprintf(meta_url, sizeof meta_url, "sqlite:%s/meta.db",
					      data) >= sizeof meta_url)) {
		fprintf(stderr, "sluice gc: --data value too long\n");
		return 2;
	}

	struct gc *g = calloc(1, sizeof *g);
	if (!g)
		return 1;
	g->dry_run = dry_run;
	g->cutoff_ms = clock_wall_ms() - grace_min * 60 * 1000;
	int status = 1;
	/* Both open calls log one line that says why they failed. The
	 * metadata store must exist already: an empty one would make every
	 * key an orphan. */
	if (objstore_open(store_url, &g->store) != 0)
		goto out_free;
	if (meta_open_existing(meta_url, &g->meta) != 0)
		goto out_close_store;

	/* Fence, then list: every commit is either visible to the known-key
	 * check or refused (a dry run changes nothing, so sets no fence). */
	int rc = dry_run ? 0 : meta_gc_fence_raise(g->meta, g->cutoff_ms, NULL);
	if (rc) {
		char shown[1024];
		meta_url_redact(meta_url, shown, sizeof shown);
		fprintf(stderr, "sluice gc: raising the gc fence in %s failed: %s\n", shown,
			rc == SL_EUNSUPPORTED ? "not supported by this store" : sl_strerror(rc));
		goto out_close;
	}
	rc = objstore_list(g->store, "objects/", gc_on_key, g);
	if (rc) {
		fprintf(stderr, "sluice gc: looking for orphans in %s failed: %s\n", store_url,
			sl_strerror(rc));
		goto out_close;
	}
	if (gc_brake(g) && !force) {
		fprintf(stderr,
			"sluice gc: refusing: %" PRIu64 " of the %" PRIu64 " keys in %s are "
			"unknown to %s (more than 1 in %d); is --meta the store's metadata? "
			"Nothing deleted; --force deletes them\n",
			g->found_n, g->listed, store_url, meta_url, GC_BRAKE_DIV);
		goto out_close;
	}

	rc = gc_dead(g);
	if (rc == SL_EUNSUPPORTED) {
		fprintf(stderr, "sluice gc: the metadata store %s cannot list dead objects\n",
			meta_url);
		goto out_close;
	}
	if (rc) {
		fprintf(stderr, "sluice gc: collecting dead objects failed: %s\n", sl_strerror(rc));
		goto out_close;
	}
	gc_orphans_delete(g);
	const char *verb = dry_run ? "would delete" : "deleted";
	printf("gc: %s %" PRIu64 " dead objects (%" PRIu64 " bytes) and %" PRIu64
	       " orphans (%" PRIu64 " bytes); %" PRIu64 " keys listed, grace %" PRId64
	       " minutes\n",
	       verb, g->dead_n, g->dead_bytes, g->orphan_n, g->orphan_bytes, g->listed,
	       grace_min);
	if (!dry_run && g->found_n > g->orphans_n)
		printf("gc: %" PRIu64 " more orphans found, left for the next run\n",
		       g->found_n - g->orphans_n);
	if (g->err) {
		fprintf(stderr,
			"sluice gc: %" PRIu64 " dead objects and %" PRIu64
			" orphans could not be deleted: %s (the next run retries)\n",
			g->dead_failed, g->orphan_failed, sl_strerror(g->err));
		goto out_close;
	}
	status = 0;
out_close:
	meta_close(g->meta);
out_close_store:
	objstore_close(g->store);
out_free:
	gc_orphans_free(g);
	free(g);
	return status;
}

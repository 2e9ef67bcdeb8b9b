/* meta.c — opens a metadata store from its URL ("sqlite:PATH" goes to
 * sqlite.c, "postgresql://..." and "postgres://..." to postgres.c), frees
 * the structs the backends return, and holds what both backends share
 * without SQL (meta_int.h): argument checks, topic UUIDs, the gc fence
 * check, the retention scan's decisions and the transaction checks of a
 * commit. */
#include "meta/meta.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/err.h"
#include "base/grow.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta_int.h"

#define URL_EXPECTED "expected sqlite:PATH or postgresql://USER@HOST[:PORT]/DB"

static bool is_postgres_url(const char *url)
{
	return strncmp(url, "postgresql://", 13) == 0 || strncmp(url, "postgres://", 11) == 0;
}

/* The path of a sqlite: URL, or NULL (logged) when it names none.
 * "sqlite:///abs" and "sqlite://./rel" keep what follows "//". */
static const char *sqlite_path(const char *url)
{
	const char *path = url + 7;
	if (strncmp(path, "//", 2) == 0)
		path += 2;
	if (!*path) {
		log_error("metadata store: '%s' names no file (expected sqlite:PATH)", url);
		return NULL;
	}
	return path;
}

/* mkdir -p of the folder path's file is in, for an agent's store (the
 * default sqlite:DATA/meta.db must not need DATA made by hand, e.g. with
 * an s3:// object store, which makes no local folder; tools and tests
 * open only where they are told). Returns 0 or
 * SL_EIO after one line naming the folder. */
static int make_parent_folders(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	while (n > 0 && path[n - 1] != '/')
		n--;
	if (n == 0)
		return 0; /* the current folder */
	if (n >= sizeof buf) {
		log_error("metadata store: path too long: %s", path);
		return SL_EIO;
	}
	memcpy(buf, path, n);
	buf[n] = 0;
	for (size_t i = 1; i <= n; i++) {
		if (buf[i] != '/' && buf[i] != 0)
			continue;
		char c = buf[i];
		buf[i] = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			log_error("metadata store: cannot create folder %s for %s: %s", buf, path,
				  strerror(errno));
			return SL_EIO;
		}
		buf[i] = c;
	}
	return 0;
}

static int open_url(const char *url, enum meta_open_mode mode, struct meta **out)
{
	bool create = mode != META_OPEN_EXISTING;
	*out = NULL;
	if (!url || !*url) {
		log_error("metadata store: empty URL (" URL_EXPECTED ")");
		return SL_EINVAL;
	}
	if (strncmp(url, "sqlite:", 7) == 0) {
		const char *path = sqlite_path(url);
		if (!path)
			return SL_EINVAL;
		if (!create && access(path, F_OK) != 0) {
			log_error("metadata store %s does not exist (refusing to create an empty "
				  "one: check --meta/--data)", path);
			return SL_EMETA;
		}
		if (mode == META_OPEN_AGENT && make_parent_folders(path) != 0)
			return SL_EIO;
		return meta_sqlite_open(path, mode, out);
	}
	if (is_postgres_url(url))
		return meta_postgres_open(url, create, out);
	/* Redacted: a mistyped scheme may still carry a password. */
	char shown[1024];
	meta_url_redact(url, shown, sizeof shown);
	log_error("metadata store: unknown URL scheme in %s (" URL_EXPECTED ")", shown);
	return SL_EINVAL;
}

int meta_open(const char *url, struct meta **out)
{
	return open_url(url, META_OPEN_CREATE, out);
}

int meta_open_existing(const char *url, struct meta **out)
{
	return open_url(url, META_OPEN_EXISTING, out);
}

void meta_url_redact(const char *url, char *out, size_t cap)
{
	if (!cap)
		return;
	size_t n = 0;
#define PUT(c) do { if (n + 1 < cap) out[n++] = (c); } while (0)
	const char *auth = strstr(url, "://");
	const char *at = NULL, *colon = NULL;
	if (auth) {
		auth += 3;
		size_t len = strcspn(auth, "/?#");
		for (size_t i = 0; i < len; i++)
			if (auth[i] == '@')
				at = auth + i;
		if (at)
			colon = memchr(auth, ':', (size_t)(at - auth));
	}
	for (const char *p = url; *p;) {
		if (colon && p == colon + 1) {
			for (const char *m = "***"; *m; m++)
				PUT(*m);
			p = at;
			continue;
		}
		/* A password=... parameter (query string or key=value form). */
		if (!strncmp(p, "password=", 9) && (p == url || strchr("?& ", p[-1]))) {
			for (const char *m = "password=***"; *m; m++)
				PUT(*m);
			p += 9;
			p += strcspn(p, "& ");
			continue;
		}
		PUT(*p);
		p++;
	}
#undef PUT
	out[n] = 0;
}

int meta_open_agent(const char *url, struct meta **out)
{
	return open_url(url, META_OPEN_AGENT, out);
}

/* ---- shared by the backends (meta_int.h) ---- */

int meta_random_uuid(uint8_t uuid[16])
{
	size_t got = 0;
	while (got < 16) {
		ssize_t n = getrandom(uuid + got, 16 - got, 0);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			log_error("metadata store: getrandom: %s", strerror(errno));
			return SL_EIO;
		}
		got += (size_t)n;
	}
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);
	return 0;
}

/* strnlen: the names and values may come from fixed arrays that a
 * careless caller did not terminate. */
bool meta_config_ok(const char *name, const char *value)
{
	return name && *name && strnlen(name, META_CONFIG_NAME_BYTES) < META_CONFIG_NAME_BYTES &&
	       (!value || strnlen(value, META_CONFIG_VALUE_BYTES) < META_CONFIG_VALUE_BYTES);
}

int meta_topic_create_check(const char *name, int32_t partitions,
			    const struct meta_config *configs, int32_t config_count)
{
	if (!name || !*name || strnlen(name, SL_TOPIC_NAME_MAX + 1) > SL_TOPIC_NAME_MAX || partitions < 1 ||
	    partitions > SL_PARTITIONS_PER_TOPIC_MAX || config_count < 0 ||
	    config_count > SL_CONFIGS_MAX || (config_count > 0 && !configs))
		return SL_EINVAL;
	for (int32_t i = 0; i < config_count; i++)
		if (!meta_config_ok(configs[i].name, configs[i].value))
			return SL_EINVAL;
	return 0;
}

int meta_configs_check(const struct meta_config_change *changes, size_t n)
{
	if (n > SL_CONFIGS_MAX)
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!meta_config_ok(changes[i].name, changes[i].value))
			return SL_EINVAL;
	return 0;
}

int meta_topic_out_alloc(struct meta_topic *out, int32_t config_count, int32_t partitions,
			 const struct meta_replicas *replicas)
{
	memset(out, 0, sizeof *out);
	if (config_count > 0) {
		out->configs = calloc((size_t)config_count, sizeof *out->configs);
		if (!out->configs)
			return SL_ENOMEM;
	}
	if (replicas) {
		out->replicas = malloc((size_t)partitions * (size_t)replicas->replication *
				       sizeof *out->replicas);
		if (!out->replicas) {
			meta_topic_free(out);
			return SL_ENOMEM;
		}
	}
	return 0;
}

void meta_topic_out_fill(struct meta_topic *out, const char *name, int32_t partitions,
			 const struct meta_config *configs, int32_t config_count,
			 const struct meta_replicas *replicas)
{
	snprintf(out->name, sizeof out->name, "%s", name);
	out->partition_count = partitions;
	for (int32_t i = 0; i < config_count; i++)
		out->configs[i] = configs[i];
	out->config_count = config_count;
	if (replicas) {
		out->replication = replicas->replication;
		memcpy(out->replicas, replicas->ids,
		       (size_t)partitions * (size_t)replicas->replication * sizeof *out->replicas);
	}
}

int meta_replicas_check(const struct meta_replicas *r, int32_t count)
{
	if (r->first < 0 || count < 1 || r->replication < 1 ||
	    r->replication > SL_CLUSTER_AGENTS_MAX ||
	    (int64_t)count * r->replication > SL_REPLICA_ASSIGNMENT_IDS_MAX)
		return SL_EINVAL;
	for (int64_t i = 0; i < (int64_t)count * r->replication; i++)
		if (r->ids[i] < 0)
			return SL_EINVAL;
	return 0;
}

void meta_replicas_format(const struct meta_replicas *r, int32_t i, char *out)
{
	size_t len = 0;
	for (int16_t k = 0; k < r->replication; k++)
		len += (size_t)snprintf(out + len, META_REPLICAS_TEXT_BYTES - len, "%s%" PRId32,
					k ? "," : "", r->ids[(size_t)i * (size_t)r->replication + (size_t)k]);
}

int meta_topic_replicas_put(struct meta_topic *t, int32_t partition, const char *text)
{
	int32_t ids[SL_CLUSTER_AGENTS_MAX];
	int16_t n = 0;
	const char *p = text;
	for (;;) {
		char *end;
		errno = 0;
		long v = strtol(p, &end, 10);
		if (end == p || errno || v < 0 || v > INT32_MAX || n == SL_CLUSTER_AGENTS_MAX ||
		    (*end && *end != ','))
			goto corrupt;
		ids[n++] = (int32_t)v;
		if (!*end)
			break;
		p = end + 1;
	}
	if (partition < 0 || partition >= t->partition_count ||
	    (t->replicas && n != t->replication) ||
	    (int64_t)t->partition_count * n > SL_REPLICA_ASSIGNMENT_IDS_MAX)
		goto corrupt;
	if (!t->replicas) {
		size_t total = (size_t)t->partition_count * (size_t)n;
		t->replicas = malloc(total * sizeof *t->replicas);
		if (!t->replicas)
			return SL_ENOMEM;
		for (size_t i = 0; i < total; i++)
			t->replicas[i] = -1;
		t->replication = n;
	}
	memcpy(&t->replicas[(size_t)partition * (size_t)n], ids, (size_t)n * sizeof *ids);
	return 0;
corrupt:
	log_error("metadata store: topic %s partition %" PRId32 ": replica assignment '%.64s'"
		  " not understood (left out)", t->name, partition, text);
	return SL_ECORRUPT;
}

void meta_commit_offsets_clear(struct meta_commit_obj *objs, size_t count)
{
	for (size_t k = 0; k < count; k++)
		for (size_t i = 0; i < objs[k].n; i++) {
			struct meta_commit_batch *b = &objs[k].batches[i];
			b->base_offset = -1;
			b->result = META_BATCH_NO_PARTITION;
			b->last_stable_offset = -1;
			for (size_t a = 0; a < META_MARKER_ABORTED_MAX; a++)
				b->aborted[a] = (struct meta_aborted_txn){ -1, -1, -1 };
			b->n_aborted = 0;
		}
}

/* ---- transactions (meta_int.h) ---- */

enum meta_batch_result meta_txn_data_check(const struct meta_txn_head *h, bool added,
					   const struct meta_commit_batch *b)
{
	if (!h->found || h->producer_id != b->producer_id)
		return META_BATCH_TXN_UNKNOWN;
	if (h->producer_epoch != b->producer_epoch)
		return META_BATCH_FENCED;
	if (h->state == TXN_PREPARE_COMMIT || h->state == TXN_PREPARE_ABORT)
		return META_BATCH_TXN_COMPLETING;
	if (h->state != TXN_ONGOING || !added)
		return META_BATCH_TXN_NOT_ADDED;
	return META_BATCH_APPENDED;
}

int meta_txn_offsets_verdict(const struct meta_txn_head *h, int64_t producer_id,
			   int16_t producer_epoch)
{
	if (!h->found || h->producer_id != producer_id)
		return SL_ETXNUNKNOWN;
	if (h->producer_epoch != producer_epoch)
		return SL_EFENCED;
	if (h->state == TXN_PREPARE_COMMIT || h->state == TXN_PREPARE_ABORT)
		return SL_ETXNBUSY;
	return h->state == TXN_ONGOING ? 0 : SL_EBUSY;
}

bool meta_marker_applies(const struct meta_txn_head *h, bool owed, const struct meta_commit_batch *b)
{
	return h->found && owed && h->txn_seq == b->txn_seq && h->producer_id == b->producer_id &&
	       h->producer_epoch == b->producer_epoch &&
	       h->state == (b->marker_commit ? TXN_PREPARE_COMMIT : TXN_PREPARE_ABORT);
}

bool meta_marker_aborts(const struct meta_commit_batch *b, int64_t producer_id)
{
	return !b->marker_commit || producer_id != b->producer_id;
}

void meta_marker_aborted_note(struct meta_commit_batch *b, struct meta_aborted_txn a)
{
	size_t held = b->n_aborted < META_MARKER_ABORTED_MAX ? b->n_aborted : META_MARKER_ABORTED_MAX;
	size_t at = held;
	if (a.producer_id == b->producer_id) {
		/* Its own first: the others move down (the last reported one
		 * out when full). */
		at = 0;
		if (held == META_MARKER_ABORTED_MAX)
			held--;
		memmove(&b->aborted[1], &b->aborted[0], held * sizeof b->aborted[0]);
	}
	if (at < META_MARKER_ABORTED_MAX)
		b->aborted[at] = a;
	b->n_aborted++;
}

int64_t meta_trim_txn_cap(int64_t asked, int64_t point, int64_t first_unstable)
{
	if (first_unstable < 0 || point <= first_unstable || point <= asked)
		return point;
	return first_unstable > asked ? first_unstable : asked;
}

int64_t meta_lso(int64_t log_start, int64_t hwm, int64_t first_unstable)
{
	int64_t lso = first_unstable >= 0 && first_unstable < hwm ? first_unstable : hwm;
	return lso < log_start ? log_start : lso;
}

int meta_txn_record_check(const char *transactional_id, const struct txn_record *r)
{
	if (!transactional_id || !*transactional_id ||
	    strnlen(transactional_id, SL_TXN_ID_BYTES_MAX + 1) > SL_TXN_ID_BYTES_MAX)
		return SL_EINVAL;
	if (!r)
		return 0;
	if ((int)r->state < TXN_EMPTY || r->state > TXN_COMPLETE_ABORT ||
	    r->partition_count < 0 || r->partition_count > SL_TXN_PARTITIONS_MAX ||
	    r->group_count < 0 || r->group_count > SL_TXN_GROUPS_MAX ||
	    (r->partition_count > 0 && !r->partitions) || (r->group_count > 0 && !r->groups))
		return SL_EINVAL;
	for (int32_t i = 0; i < r->group_count; i++)
		if (!r->groups[i])
			return SL_EINVAL;
	return 0;
}

int meta_txn_offsets_check(const char *transactional_id, const struct meta_offset_commit *rows,
			   size_t n)
{
	if (meta_txn_record_check(transactional_id, NULL) || n == 0 || n > SL_TXN_OFFSETS_MAX ||
	    !rows || !rows[0].group_id)
		return SL_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!rows[i].group_id || strcmp(rows[i].group_id, rows[0].group_id) ||
		    (rows[i].metadata && strlen(rows[i].metadata) > META_OFFSET_METADATA_BYTES_MAX))
			return SL_EINVAL;
	return 0;
}

bool meta_lease_txn_name(const char *transactional_id, char *out)
{
	int n = snprintf(out, META_LEASE_NAME_BYTES, "%s%s", META_LEASE_TXN_PREFIX, transactional_id);
	return n > 0 && n < META_LEASE_NAME_BYTES;
}

/* meta_txn_open_list's statements (sqlite.c, postgres.c) name the open
 * states by their stored numbers. */
_Static_assert(TXN_ONGOING == 1 && TXN_PREPARE_COMMIT == 2 && TXN_PREPARE_ABORT == 3,
	       "the open transaction states as stored");

int meta_txn_row_push(struct meta_txn_row **rows, size_t *n, size_t *cap, const char *id,
		      const struct txn_record *r, int64_t version, int64_t coord_epoch)
{
	if (*n >= SL_TXN_IDS_MAX)
		return SL_ELIMIT;
	if (array_grow(rows, cap, *n, sizeof **rows, 16) != 0)
		return SL_ENOMEM;
	struct meta_txn_row *row = &(*rows)[*n];
	memset(row, 0, sizeof *row);
	row->transactional_id = strdup(id);
	if (!row->transactional_id)
		return SL_ENOMEM;
	row->r = *r;
	row->r.partitions = NULL;
	row->r.partition_count = 0;
	row->r.groups = NULL;
	row->r.group_count = 0;
	row->version = version;
	row->coord_epoch = coord_epoch;
	(*n)++;
	return 0;
}

int meta_txn_row_add_partition(struct meta_txn_row *row, int64_t tid, int32_t partition)
{
	if (row->r.partition_count >= SL_TXN_PARTITIONS_MAX)
		return SL_ECORRUPT;
	struct txn_tp *v = realloc(row->r.partitions,
				   ((size_t)row->r.partition_count + 1) * sizeof *v);
	if (!v)
		return SL_ENOMEM;
	v[row->r.partition_count++] = (struct txn_tp){ tid, partition };
	row->r.partitions = v;
	return 0;
}

int meta_txn_row_add_group(struct meta_txn_row *row, const char *group)
{
	if (row->r.group_count >= SL_TXN_GROUPS_MAX)
		return SL_ECORRUPT;
	char **v = realloc(row->r.groups, ((size_t)row->r.group_count + 1) * sizeof *v);
	if (!v)
		return SL_ENOMEM;
	row->r.groups = v;
	if (!(v[row->r.group_count] = strdup(group)))
		return SL_ENOMEM;
	row->r.group_count++;
	return 0;
}

struct meta_txn_row *meta_txn_row_find(struct meta_txn_row *rows, size_t n, const char *id)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(rows[mid].transactional_id, id);
		if (!c)
			return &rows[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

void meta_txn_rows_free(struct meta_txn_row *rows, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(rows[i].transactional_id);
		free(rows[i].r.partitions);
		for (int32_t g = 0; g < rows[i].r.group_count; g++)
			free(rows[i].r.groups[g]);
		free(rows[i].r.groups);
	}
	free(rows);
}

/* ---- idempotent producers' state (meta_int.h) ---- */

static int cmp_pstate(const void *a, const void *b)
{
	const struct meta_pstate *x = a, *y = b;
	if (x->tid != y->tid)
		return x->tid < y->tid ? -1 : 1;
	if (x->partition != y->partition)
		return x->partition < y->partition ? -1 : 1;
	return (x->producer_id > y->producer_id) - (x->producer_id < y->producer_id);
}

int meta_pstates_collect(const struct meta_commit_obj *objs, size_t count,
			 struct meta_pstates *s)
{
	size_t total = 0, k = 0;
	s->v = NULL;
	s->n = 0;
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < objs[i].n; j++)
			total += meta_batch_idempotent(&objs[i].batches[j]);
	if (!total)
		return 0;
	s->v = calloc(total, sizeof *s->v);
	if (!s->v)
		return SL_ENOMEM;
	for (size_t i = 0; i < count; i++)
		for (size_t j = 0; j < objs[i].n; j++) {
			const struct meta_commit_batch *b = &objs[i].batches[j];
			if (meta_batch_idempotent(b))
				s->v[k++] = (struct meta_pstate){ .tid = b->tid, .partition = b->partition,
								  .producer_id = b->producer_id,
								  .epoch = -1 };
		}
	qsort(s->v, total, sizeof *s->v, cmp_pstate);
	size_t u = 0;
	for (size_t i = 0; i < total; i++)
		if (u == 0 || cmp_pstate(&s->v[u - 1], &s->v[i]) != 0)
			s->v[u++] = s->v[i];
	s->n = u;
	return 0;
}

struct meta_pstate *meta_pstates_find(struct meta_pstates *s, int64_t tid, int32_t partition,
				      int64_t producer_id)
{
	struct meta_pstate key = { .tid = tid, .partition = partition, .producer_id = producer_id };
	return s->n ? bsearch(&key, s->v, s->n, sizeof *s->v, cmp_pstate) : NULL;
}

/* Kafka's inSequence: the next sequence, wrapping past INT32_MAX to 0. */
static bool in_sequence(int32_t last, int32_t next)
{
	return (int64_t)next == (int64_t)last + 1 || (next == 0 && last == INT32_MAX);
}

enum meta_batch_result meta_pstate_check(const struct meta_pstate *st,
					 const struct meta_commit_batch *b, int64_t *dup_offset)
{
	if (st->epoch < 0)
		return META_BATCH_APPENDED; /* no state: any sequence */
	if (b->producer_epoch == st->epoch)
		for (int i = 0; i < st->count; i++)
			if (st->batches[i].base_sequence == b->base_sequence &&
			    st->batches[i].last_sequence == b->last_sequence) {
				*dup_offset = st->batches[i].base_offset;
				return META_BATCH_DUPLICATE;
			}
	if (b->producer_epoch < st->epoch)
		return META_BATCH_FENCED;
	if (b->producer_epoch != st->epoch)
		return b->base_sequence == 0 ? META_BATCH_APPENDED : META_BATCH_OUT_OF_ORDER;
	if (st->count > 0 && !in_sequence(st->batches[st->count - 1].last_sequence, b->base_sequence))
		return META_BATCH_OUT_OF_ORDER;
	return META_BATCH_APPENDED;
}

void meta_pstate_append(struct meta_pstate *st, const struct meta_commit_batch *b)
{
	if (b->producer_epoch != st->epoch) {
		st->epoch = b->producer_epoch;
		st->count = 0;
	}
	if (st->count == META_PRODUCER_BATCHES) {
		memmove(&st->batches[0], &st->batches[1],
			sizeof st->batches[0] * (META_PRODUCER_BATCHES - 1));
		st->count--;
	}
	st->batches[st->count++] = (struct meta_pstate_batch){ b->base_sequence, b->last_sequence,
							       b->base_offset };
	st->dirty = true;
}

void meta_pstate_format(const struct meta_pstate *st, char *out)
{
	size_t len = 0;
	out[0] = 0;
	for (int i = 0; i < st->count; i++)
		len += (size_t)snprintf(out + len, META_PSTATE_TEXT_BYTES - len, "%s%" PRId32 ":%" PRId32
					":%" PRId64, i ? " " : "", st->batches[i].base_sequence,
					st->batches[i].last_sequence, st->batches[i].base_offset);
}

static int cmp_pstate_batch(const void *a, const void *b)
{
	const struct meta_pstate_batch *x = a, *y = b;
	return (x->base_offset > y->base_offset) - (x->base_offset < y->base_offset);
}

/* Sorted by offset after reading: the schema upgrade fills the column
 * with SQLite's group_concat, whose order is not defined. */
int meta_pstate_parse(struct meta_pstate *st, int64_t epoch, const char *text)
{
	st->count = 0;
	st->loaded = true;
	st->epoch = -1;
	const char *p = text;
	while (*p == ' ')
		p++;
	while (*p) {
		char *end;
		long long v[3];
		for (int k = 0; k < 3; k++) {
			errno = 0;
			v[k] = strtoll(p, &end, 10);
			if (end == p || errno || (k < 2 && (v[k] < 0 || v[k] > INT32_MAX)) ||
			    (k < 2 ? *end != ':' : (*end != ' ' && *end != 0)))
				goto bad;
			p = end + (k < 2);
		}
		if (st->count == META_PRODUCER_BATCHES)
			goto bad;
		st->batches[st->count++] = (struct meta_pstate_batch){ (int32_t)v[0], (int32_t)v[1],
								       (int64_t)v[2] };
		while (*p == ' ')
			p++;
	}
	if (epoch < 0 || epoch > INT16_MAX)
		goto bad;
	qsort(st->batches, (size_t)st->count, sizeof st->batches[0], cmp_pstate_batch);
	st->epoch = (int16_t)epoch;
	return 0;
bad:
	log_error("metadata store: producer %" PRId64 " of partition %" PRId32 " of topic %" PRId64
		  ": unreadable state '%.64s'", st->producer_id, st->partition, st->tid, text);
	st->count = 0;
	return SL_ECORRUPT;
}

int meta_producer_desc_fill(struct meta_producer_desc *d, int64_t tid, int32_t partition,
			    int64_t producer_id, int64_t epoch, const char *batches,
			    int64_t updated_ms, int64_t coordinator_epoch,
			    int64_t txn_start_offset)
{
	struct meta_pstate st = { .tid = tid, .partition = partition, .producer_id = producer_id };
	int rc = meta_pstate_parse(&st, epoch, batches);
	if (rc)
		return rc;
	*d = (struct meta_producer_desc){
		.producer_id = producer_id,
		.producer_epoch = st.epoch,
		/* sorted by offset: the last is the newest */
		.last_sequence = st.count ? st.batches[st.count - 1].last_sequence : -1,
		.last_ms = updated_ms,
		.coordinator_epoch = coordinator_epoch < INT32_MIN || coordinator_epoch > INT32_MAX
					     ? -1 : (int32_t)coordinator_epoch,
		.txn_start_offset = txn_start_offset,
	};
	return 0;
}

int meta_commit_check(struct meta_commit_obj *objs, size_t count)
{
	if (count == 0 || count > META_COMMIT_OBJECTS_MAX)
		return SL_EINVAL;
	for (size_t k = 0; k < count; k++) {
		const struct meta_commit_obj *o = &objs[k];
		if (!o->key || !*o->key || strnlen(o->key, META_OBJECT_KEY_BYTES) >= META_OBJECT_KEY_BYTES ||
		    o->size > INT64_MAX || o->n > SL_OBJECT_BATCHES_MAX || (o->n > 0 && !o->batches))
			return SL_EINVAL;
		for (size_t i = 0; i < o->n; i++) {
			const struct meta_commit_batch *b = &o->batches[i];
			if (b->last_offset_delta < 0 || (unsigned)b->kind > META_BATCH_MARKER)
				return SL_EINVAL;
			if (b->kind != META_BATCH_DATA &&
			    (meta_txn_record_check(b->transactional_id, NULL) || b->producer_id < 0))
				return SL_EINVAL;
		}
		meta_commit_offsets_clear(&objs[k], 1);
	}
	return 0;
}

/* meta.h: the writer's key format, "objects/<13 digits>-<16 hex>-<8-16 hex>.obj". */
bool meta_object_key_seal_ms(const char *key, int64_t *seal_ms)
{
	static const char prefix[] = "objects/";
	const char *p = key;
	int64_t ms = 0;
	int n;
	for (n = 0; prefix[n]; n++)
		if (p[n] != prefix[n])
			return false;
	p += n;
	for (n = 0; n < 13; n++) {
		if (p[n] < '0' || p[n] > '9')
			return false;
		ms = ms * 10 + (p[n] - '0');
	}
	p += 13;
	if (*p++ != '-')
		return false;
	for (n = 0; n < 16; n++)
		if (!((p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f')))
			return false;
	p += 16;
	if (*p++ != '-')
		return false;
	for (n = 0; (p[n] >= '0' && p[n] <= '9') || (p[n] >= 'a' && p[n] <= 'f'); n++)
		;
	if (n < 8 || n > 16)
		return false;
	p += n;
	if (p[0] != '.' || p[1] != 'o' || p[2] != 'b' || p[3] != 'j' || p[4])
		return false;
	*seal_ms = ms;
	return true;
}

/* Keys not in the writer's format carry no seal time and are not checked
 * (gc judges those by store mtime). */
int meta_commit_fence_check(const struct meta_commit_obj *objs, size_t count, int64_t fence_ms)
{
	for (size_t k = 0; k < count; k++) {
		int64_t seal_ms;
		if (meta_object_key_seal_ms(objs[k].key, &seal_ms) && seal_ms < fence_ms) {
			log_error("metadata store: object %s was sealed at %" PRId64
				  " ms, before the garbage collector's fence (%" PRId64
				  " ms): not committed (gc may have deleted it)",
				  objs[k].key, seal_ms, fence_ms);
			return SL_EMETA;
		}
	}
	return 0;
}

/* ---- rows of several batches (meta_int.h) ---- */

bool meta_run_continues(const struct meta_run *r, const struct meta_commit_batch *b)
{
	return r->open && r->tid == b->tid && r->partition == b->partition &&
	       r->count < META_ROW_BATCHES_MAX && b->base_offset == r->row.last_offset + 1 &&
	       meta_batch_attributes(b) == meta_batch_attributes(&r->first) &&
	       b->byte_offset == r->row.byte_offset + r->row.length &&
	       (uint64_t)r->row.length + b->length <= INT32_MAX &&
	       (int64_t)r->row.record_count + b->record_count <= INT32_MAX;
}

int meta_run_add(struct meta_run *r, const struct meta_commit_batch *b)
{
	char span[96];
	int len = snprintf(span, sizeof span, "%s%" PRId32 ":%" PRId32 ":%" PRIu32 ":%" PRId64,
			   r->open ? " " : "", b->last_offset_delta + 1, b->record_count, b->length,
			   b->max_timestamp);
	if (!r->open) {
		r->open = true;
		r->tid = b->tid;
		r->partition = b->partition;
		r->first = *b;
		r->count = 0;
		r->spans_len = 0;
		r->row = (struct meta_batch_row){ .base_offset = b->base_offset,
						  .last_offset = b->base_offset - 1,
						  .byte_offset = b->byte_offset,
						  .max_timestamp = b->max_timestamp };
	}
	if (r->spans_len + (size_t)len + 1 > r->spans_cap) {
		size_t cap = r->spans_cap ? r->spans_cap * 2 : 256;
		while (cap < r->spans_len + (size_t)len + 1)
			cap *= 2;
		char *p = realloc(r->spans, cap);
		if (!p)
			return SL_ENOMEM;
		r->spans = p;
		r->spans_cap = cap;
	}
	memcpy(r->spans + r->spans_len, span, (size_t)len + 1);
	r->spans_len += (size_t)len;
	r->count++;
	r->row.last_offset = b->base_offset + b->last_offset_delta;
	r->row.length += b->length;
	r->row.record_count += b->record_count;
	if (b->max_timestamp > r->row.max_timestamp)
		r->row.max_timestamp = b->max_timestamp;
	return 0;
}

const char *meta_run_spans(const struct meta_run *r)
{
	return r->count > 1 ? r->spans : NULL;
}

/* A cleaning pass's rows: its batches, joined as a commit joins them. */
static int compact_rows(const struct meta_merge *cp, int (*emit)(void *arg, struct meta_run *r),
			void *arg)
{
	struct meta_run run = { 0 };
	int rc = 0;
	for (size_t i = 0; !rc && i < cp->nb; i++) {
		const struct meta_compact_batch *c = &cp->batches[i];
		struct meta_commit_batch b = {
			.tid = cp->tid, .partition = cp->partition, .byte_offset = c->byte_offset,
			.length = c->length, .record_count = c->record_count,
			.last_offset_delta = (int32_t)(c->last_offset - c->base_offset),
			.max_timestamp = c->max_timestamp, .producer_id = -1, .producer_epoch = -1,
			.base_sequence = -1, .last_sequence = -1, .base_offset = c->base_offset,
			.result = META_BATCH_APPENDED, .attributes = c->attributes };
		if (run.open && !meta_run_continues(&run, &b))
			rc = emit(arg, &run);
		if (!rc)
			rc = meta_run_add(&run, &b);
	}
	if (!rc && run.open)
		rc = emit(arg, &run);
	meta_run_free(&run);
	return rc;
}

int meta_merge_rows(const struct meta_merge *mg, const struct meta_merge_stored *stored,
		    int (*emit)(void *arg, struct meta_run *r), void *arg)
{
	if (mg->batches)
		return compact_rows(mg, emit, arg);
	struct meta_run run = { 0 };
	/* One batch at a time (the run copies its first), and every
	 * batch's producer columns are -1 (producer_state has them). */
	struct meta_commit_batch b;
	int rc = 0;
	for (size_t i = 0; !rc && i < mg->n; i++) {
		const struct meta_merge_row *mr = &mg->rows[i];
		struct meta_batch_row row = { .base_offset = mr->base_offset,
					      .last_offset = mr->last_offset,
					      .byte_offset = mr->new_byte_offset,
					      .length = mr->length,
					      .record_count = stored[i].record_count,
					      .max_timestamp = stored[i].max_timestamp };
		struct meta_spans it;
		struct meta_batch_row one;
		int more = 0;
		meta_spans_begin(&it, &row, stored[i].spans);
		while (!rc && (more = meta_spans_next(&it, &one)) == 1) {
			b = (struct meta_commit_batch){
				.tid = mg->tid, .partition = mg->partition,
				.byte_offset = one.byte_offset, .length = one.length,
				.record_count = one.record_count,
				.last_offset_delta = (int32_t)(one.last_offset - one.base_offset),
				.max_timestamp = one.max_timestamp, .producer_id = -1,
				.producer_epoch = -1, .base_sequence = -1, .last_sequence = -1,
				.base_offset = one.base_offset, .result = META_BATCH_APPENDED,
				.attributes = stored[i].attributes };
			if (run.open && !meta_run_continues(&run, &b))
				rc = emit(arg, &run);
			if (!rc)
				rc = meta_run_add(&run, &b);
		}
		if (!rc && more < 0)
			rc = more;
	}
	if (!rc && run.open)
		rc = emit(arg, &run);
	meta_run_free(&run);
	return rc;
}

void meta_run_free(struct meta_run *r)
{
	free(r->spans);
	r->spans = NULL;
	r->spans_cap = r->spans_len = 0;
	r->open = false;
}

void meta_spans_begin(struct meta_spans *it, const struct meta_batch_row *row, const char *spans)
{
	it->row = row;
	it->spans = spans && *spans ? spans : NULL;
	it->p = it->spans;
	it->base = row->base_offset;
	it->pos = row->byte_offset;
}

static int spans_bad(const struct meta_spans *it)
{
	log_error("metadata store: the batch row %" PRId64 "..%" PRId64 " of object %s has "
		  "unreadable spans '%.64s'", it->row->base_offset, it->row->last_offset,
		  it->row->object_key, it->spans);
	return SL_ECORRUPT;
}

int meta_spans_next(struct meta_spans *it, struct meta_batch_row *out)
{
	const struct meta_batch_row *row = it->row;
	if (!it->spans) { /* a row of one batch */
		if (it->base > row->last_offset)
			return 0;
		*out = *row;
		it->base = row->last_offset + 1;
		return 1;
	}
	if (!*it->p) {
		if (it->base != row->last_offset + 1 || it->pos != row->byte_offset + row->length)
			return spans_bad(it);
		return 0;
	}
	long long v[4];
	const char *p = it->p;
	for (int k = 0; k < 4; k++) {
		char *end;
		errno = 0;
		v[k] = strtoll(p, &end, 10);
		if (end == p || errno || (k < 3 && (v[k] < 0 || v[k] > INT32_MAX)) ||
		    (k < 3 ? *end != ':' : (*end != ' ' && *end != 0)))
			return spans_bad(it);
		p = end + (k < 3 || *end == ' ');
	}
	if (v[0] < 1 || it->base + v[0] - 1 > row->last_offset ||
	    it->pos + (uint64_t)v[2] > row->byte_offset + row->length)
		return spans_bad(it);
	*out = *row;
	out->base_offset = it->base;
	out->last_offset = it->base + v[0] - 1;
	out->byte_offset = it->pos;
	out->length = (uint32_t)v[2];
	out->record_count = (int32_t)v[1];
	out->max_timestamp = v[3];
	it->p = p;
	it->base = out->last_offset + 1;
	it->pos += (uint64_t)v[2];
	return 1;
}

int meta_row_expand(const struct meta_batch_row *row, const char *spans, int64_t from,
		    struct meta_batch_row *out, size_t cap)
{
	struct meta_spans it;
	meta_spans_begin(&it, row, spans);
	size_t n = 0;
	int rc = 0;
	while (n < cap && (rc = meta_spans_next(&it, &out[n])) == 1)
		if (out[n].last_offset >= from)
			n++;
	return rc < 0 ? rc : (int)n;
}

int meta_ts_row_pick(const struct meta_batch_row *row, const char *spans, int64_t log_start,
		     const int64_t *ts, int64_t *offset, int64_t *batch_ts)
{
	struct meta_batch_row *b = malloc(META_ROW_BATCHES_MAX * sizeof *b);
	if (!b)
		return SL_ENOMEM;
	int n = meta_row_expand(row, spans, log_start, b, META_ROW_BATCHES_MAX);
	int found = n < 0 ? n : 0;
	for (int i = 0; i < n; i++) {
		bool better = ts ? b[i].max_timestamp >= *ts
				 : !found || b[i].max_timestamp > *batch_ts;
		if (!better)
			continue;
		*offset = b[i].base_offset;
		*batch_ts = b[i].max_timestamp;
		found = 1;
		if (ts)
			break;
	}
	free(b);
	return found;
}


int meta_merge_check(const struct meta_merge *mg)
{
	if (!mg->key || !*mg->key || strnlen(mg->key, META_OBJECT_KEY_BYTES) >= META_OBJECT_KEY_BYTES ||
	    mg->size > INT64_MAX || mg->n == 0 || mg->n > SL_MERGE_RUN_ROWS_MAX || !mg->rows ||
	    (mg->continues && mg->batches))
		return SL_EINVAL;
	for (size_t i = 0; i < mg->n; i++) {
		const struct meta_merge_row *r = &mg->rows[i];
		if (r->last_offset < r->base_offset ||
		    (i > 0 && r->base_offset <= mg->rows[i - 1].last_offset) ||
		    (!mg->batches && (r->new_byte_offset > mg->size ||
				      r->length > mg->size - r->new_byte_offset)))
			return SL_EINVAL;
	}
	if (!mg->batches)
		return mg->n_aborted_gone ? SL_EINVAL : 0;
	if (mg->n_aborted_gone > mg->nb || (mg->n_aborted_gone && !mg->aborted_gone))
		return SL_EINVAL;
	for (size_t i = 0; i < mg->n_aborted_gone; i++)
		if (mg->aborted_gone[i] < mg->rows[0].base_offset ||
		    mg->aborted_gone[i] > mg->rows[mg->n - 1].last_offset ||
		    (i > 0 && mg->aborted_gone[i] <= mg->aborted_gone[i - 1]))
			return SL_EINVAL;
	/* A cleaning pass: its batches cover the rows' offsets, each once
	 * (the rows themselves lie one after another: offsets are dense). */
	if (mg->nb == 0 || mg->nb > (size_t)SL_MERGE_RUN_ROWS_MAX * META_ROW_BATCHES_MAX ||
	    mg->batches[0].base_offset != mg->rows[0].base_offset ||
	    mg->batches[mg->nb - 1].last_offset != mg->rows[mg->n - 1].last_offset ||
	    mg->clean_offset < 0)
		return SL_EINVAL;
	for (size_t i = 0; i < mg->nb; i++) {
		const struct meta_compact_batch *b = &mg->batches[i];
		if (b->last_offset < b->base_offset || b->last_offset - b->base_offset > INT32_MAX ||
		    (i > 0 && b->base_offset != mg->batches[i - 1].last_offset + 1) ||
		    b->record_count < 0 || b->byte_offset > mg->size ||
		    b->length > mg->size - b->byte_offset)
			return SL_EINVAL;
	}
	for (size_t i = 1; i < mg->n; i++)
		if (mg->rows[i].base_offset != mg->rows[i - 1].last_offset + 1)
			return SL_EINVAL;
	return 0;
}

void meta_trim_scan_init(struct meta_trim_scan *s, const struct meta_trim *t, int64_t from,
			 int64_t live_bytes)
{
	s->cutoff_ms = t->cutoff_ms;
	s->excess = t->retention_bytes >= 0 ? live_bytes - t->retention_bytes : -1;
	s->point = from;
}

int meta_ts_lookup(meta_ts_row_fn fn, void *ctx, const int64_t *ts, int64_t *offset,
		   int64_t *batch_ts)
{
	struct meta_batch_row row;
	int64_t after = 0;
	int rc;
	while ((rc = fn(ctx, ts, after, &row, offset, batch_ts)) == 0) {
		if (!ts)
			return SL_ENOTFOUND; /* cannot be: the row reaches the log start */
		after = row.last_offset + 1;
	}
	if (rc != 1)
		return rc;
	if (!ts && *batch_ts < row.max_timestamp) {
		/* The row's largest is below the log start (DeleteRecords cut
		 * into it): a later row may beat what is left of it. */
		int64_t o2, t2;
		struct meta_batch_row next;
		rc = fn(ctx, ts, row.last_offset + 1, &next, &o2, &t2);
		if (rc == 1 && t2 > *batch_ts) {
			*offset = o2;
			*batch_ts = t2;
		} else if (rc < 0 && rc != SL_ENOTFOUND) {
			return rc;
		}
	}
	return 0;
}

bool meta_trim_scan_batches(struct meta_trim_scan *s, const struct meta_batch_row *row,
			    const char *spans, int64_t created_ms, int64_t from, int *err)
{
	struct meta_spans it;
	struct meta_batch_row b;
	int rc;
	*err = 0;
	meta_spans_begin(&it, row, spans);
	while ((rc = meta_spans_next(&it, &b)) == 1) {
		if (b.last_offset < from) {
			/* Below the log start, in a row that straddles it: the
			 * live bytes counted the whole row. */
			if (s->excess >= 0)
				s->excess -= b.length;
			continue;
		}
		if (!meta_trim_scan_row(s, b.last_offset, b.length,
					b.max_timestamp >= 0 ? b.max_timestamp : created_ms))
			return false;
	}
	*err = rc;
	return rc == 0;
}

/* Kafka deletes expired segments from the oldest and stops at the first
 * one that is not; then it deletes by size what is left. Either way the
 * bytes count against the size limit. */
bool meta_trim_scan_row(struct meta_trim_scan *s, int64_t last_offset, int64_t length,
			int64_t max_timestamp)
{
	if (s->cutoff_ms >= 0 && max_timestamp >= s->cutoff_ms)
		s->cutoff_ms = -1;
	bool drop = s->cutoff_ms >= 0 || (s->excess >= 0 && s->excess - length >= 0);
	if (!drop)
		return false;
	if (s->excess >= 0)
		s->excess -= length;
	s->point = last_offset + 1;
	return true;
}

void meta_topic_free(struct meta_topic *t)
{
	if (!t)
		return;
	free(t->configs);
	t->configs = NULL;
	t->config_count = 0;
	free(t->replicas);
	t->replicas = NULL;
	t->replication = 0;
}

void meta_topics_free(struct meta_topic *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		meta_topic_free(&t[i]);
	free(t);
}

void meta_committed_offsets_free(struct meta_committed_offset *o, size_t n)
{
	for (size_t i = 0; o && i < n; i++)
		free(o[i].metadata);
	free(o);
}

void meta_group_summaries_free(struct meta_group_summary *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++)
		free(g[i].group_id);
	free(g);
}

void meta_group_states_free(struct meta_group_state *g, size_t n)
{
	for (size_t i = 0; g && i < n; i++) {
		free(g[i].group_id);
		free(g[i].protocol_type);
		free(g[i].protocol_name);
		free(g[i].leader_id);
		free(g[i].members);
	}
	free(g);
}

void meta_catalog_free(struct meta_catalog *c)
{
	meta_topics_free(c->topics, c->topic_count);
	free(c->parts);
	c->topics = NULL;
	c->parts = NULL;
	c->topic_count = c->part_count = 0;
}

/* meta_int.h. */
int32_t meta_agent_unused_id(const int32_t *ids, size_t n)
{
	int32_t id = 1;
	for (size_t i = 0; i < n; i++) /* ascending */
		if (ids[i] == id)
			id++;
	return id;
}

int meta_view_add(struct meta_cluster_view *v, size_t *cap, const struct meta_agent *ag)
{
	if (v->count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 8;
		struct meta_agent *p = realloc(v->agents, ncap * sizeof *p);
		if (!p)
			return SL_ENOMEM;
		v->agents = p;
		*cap = ncap;
	}
	v->agents[v->count++] = *ag;
	return 0;
}

int meta_scram_changes_check(const struct meta_scram_change *changes, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct meta_scram_credential *c = &changes[i].cred;
		size_t ulen = strnlen(c->user, sizeof c->user);
		bool mech_ok = c->mechanism == META_SCRAM_SHA_256 || c->mechanism == META_SCRAM_SHA_512 ||
			       (changes[i].remove && c->mechanism == 0);
		uint32_t key_len = c->mechanism == META_SCRAM_SHA_256 ? 32 : 64;
		bool ok = ulen > 0 && ulen < sizeof c->user && mech_ok;
		if (ok && !changes[i].remove)
			ok = c->salt_len > 0 && c->salt_len <= sizeof c->salt && c->key_len == key_len &&
			     c->iterations > 0;
		if (!ok) {
			log_error("metadata store: SCRAM credential change %zu is out of range", i);
			return SL_EINVAL;
		}
	}
	return 0;
}
/* ---- leases ---- */

static bool lease_self(const struct meta_lease_row *row, const struct meta_agent *self)
{
	return row->found && row->holder == self->node_id && row->incarnation == self->incarnation;
}

/* Free: no row, released, expired, or its holder is no longer registered. */
static bool lease_free(const struct meta_lease_row *row, int64_t now_ms)
{
	return !row->found || row->holder < 0 || row->expires_ms <= now_ms || !row->holder_alive;
}

enum meta_lease_action meta_lease_decide(const struct meta_lease_row *row,
					 const struct meta_agent *self, bool release, int64_t now_ms)
{
	if (release)
		return lease_self(row, self) ? META_LEASE_RELEASE : META_LEASE_KEEP;
	/* Self's own hold is renewed even past its expiry: nobody took it
	 * meanwhile (a taker raises the epoch and becomes the holder), so
	 * what self wrote under that epoch was never overtaken. */
	if (lease_self(row, self))
		return META_LEASE_RENEW;
	return lease_free(row, now_ms) ? META_LEASE_TAKE : META_LEASE_KEEP;
}

bool meta_lease_free_or_self(const struct meta_lease_row *row, const struct meta_agent *self,
			     int64_t now_ms)
{
	return lease_self(row, self) || lease_free(row, now_ms);
}

size_t meta_offsets_lane(const struct meta *m, const char *id)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)id; *p; p++)
		h = (h ^ *p) * 16777619u;
	return h % meta_offsets_lanes(m);
}

bool meta_lease_group_name(const char *group, char *out)
{
	int n = snprintf(out, META_LEASE_NAME_BYTES, "%s%s", META_LEASE_GROUP_PREFIX, group);
	return n > 0 && n < META_LEASE_NAME_BYTES;
}

int meta_leases_check(const struct meta_lease *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!l[i].name || !l[i].name[0] || strlen(l[i].name) >= META_LEASE_NAME_BYTES)
			return SL_EINVAL;
	return 0;
}

void meta_leases_clear(struct meta_lease *l, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		l[i].epoch = 0;
		l[i].holder = -1;
		l[i].expires_in_ms = 0;
	}
}

size_t meta_offset_fence_run(const struct meta_offset_commit *rows, const int64_t *epochs,
			     size_t n, size_t i)
{
	size_t run = 1;
	while (i + run < n && epochs[i + run] == epochs[i] && rows[i].group_id &&
	       rows[i + run].group_id && !strcmp(rows[i + run].group_id, rows[i].group_id))
		run++;
	return run;
}

int meta_acl_push(struct acl_binding **v, size_t *count, size_t *cap, const struct acl_binding *row)
{
	if (*count == *cap) {
		size_t ncap = *cap ? *cap * 2 : 16;
		struct acl_binding *nv = realloc(*v, ncap * sizeof *nv);
		if (!nv)
			return SL_ENOMEM;
		*v = nv;
		*cap = ncap;
	}
	struct acl_binding *b = &(*v)[*count];
	*b = *row;
	b->resource_name = strdup(row->resource_name ? row->resource_name : "");
	b->principal = strdup(row->principal ? row->principal : "");
	b->host = strdup(row->host ? row->host : "");
	if (!b->resource_name || !b->principal || !b->host) {
		free(b->resource_name);
		free(b->principal);
		free(b->host);
		return SL_ENOMEM;
	}
	(*count)++;
	return 0;
}

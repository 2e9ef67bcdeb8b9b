/* merge_plan.c — the merge planner (merge_plan.h). */
#include "storage/merge_plan.h"

#include <stdbool.h>

#include "base/err.h"
#include "base/limits.h"

void merge_plan_defaults(struct merge_plan_config *c)
{
	if (!c->small_object_bytes)
		c->small_object_bytes = c->target_bytes / 2;
	if (c->min_objects < 2)
		c->min_objects = 2;
	if (!c->min_rows)
		c->min_rows = 2;
	if (!c->swap_rows)
		c->swap_rows = SL_MERGE_SWAP_ROWS;
}

static bool candidate(const struct merge_plan_row *r, const struct merge_plan_config *c,
		      int64_t now_ms)
{
	return r->object_size < c->small_object_bytes &&
	       now_ms - r->object_created_ms >= c->min_age_ms &&
	       r->length <= c->target_bytes;
}

/* The run from rows[i] (a candidate): its rows, bytes and objects. */
static void run_from(const struct merge_plan_row *rows, size_t i, size_t n,
		     const struct merge_plan_config *c, int64_t now_ms, struct merge_plan_run *run)
{
	*run = (struct merge_plan_run){ .first = i, .n = 0, .bytes = 0, .objects = 0 };
	/* Objects counted as switches between neighbours: the same as
	 * distinct objects unless two objects' rows interleave, where
	 * merging them pays all the more. */
	while (i < n && candidate(&rows[i], c, now_ms) &&
	       run->bytes + rows[i].length <= c->target_bytes && run->n < SL_MERGE_RUN_ROWS_MAX) {
		if (run->n == 0 || rows[i].object_id != rows[i - 1].object_id)
			run->objects++;
		run->bytes += rows[i].length;
		run->n++;
		i++;
	}
}

int merge_plan(const struct merge_plan_row *rows, size_t n, const struct merge_plan_config *c,
	       int64_t now_ms, struct merge_plan_run *runs, size_t runs_cap, size_t *nruns)
{
	*nruns = 0;
	if (!c->target_bytes)
		return SL_EINVAL;
	for (size_t i = 1; i < n; i++)
		if (rows[i].base_offset <= rows[i - 1].last_offset ||
		    rows[i].last_offset < rows[i].base_offset)
			return SL_EINVAL;
	size_t i = 0;
	while (i < n && *nruns < runs_cap) {
		if (!candidate(&rows[i], c, now_ms)) {
			i++;
			continue;
		}
		struct merge_plan_run run;
		run_from(rows, i, n, c, now_ms, &run);
		i += run.n;
		if (run.objects >= c->min_objects && run.n >= c->min_rows)
			runs[(*nruns)++] = run;
	}
	return 0;
}

size_t merge_plan_open(const struct merge_plan_row *rows, size_t n,
		       const struct merge_plan_config *c, int64_t now_ms)
{
	size_t i = 0;
	while (i < n) {
		if (!candidate(&rows[i], c, now_ms)) {
			i++;
			continue;
		}
		struct merge_plan_run run;
		run_from(rows, i, n, c, now_ms, &run);
		if (i + run.n == n)
			return i;
		i += run.n;
	}
	return n;
}

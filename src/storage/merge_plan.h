/* merge_plan.h — the merge planner (issue 15): pure logic that picks, in
 * one partition's batch rows, the runs worth rewriting into one
 * per-partition object each. No I/O: rows and a clock in, runs out; the
 * merge job (agent/merge.c, `sluice compact`) does the reads, the write
 * and the metadata swap.
 *
 * A row is a candidate when its object is small (object_size below
 * small_object_bytes: an ingest object shared by many partitions, or a
 * merged object that stayed small) and old (made at least min_age_ms
 * ago, so a run never races the newest commits and objects that will
 * soon be trimmed anyway are not the common case). A run is a stretch of
 * consecutive candidate rows, cut before it would pass target_bytes of
 * batch data or SL_MERGE_RUN_ROWS_MAX rows (the bound on the merge's
 * memory; its metadata swap is cut into transactions of swap_rows rows,
 * storage/merge.h). A run is kept only when it pays: it draws on at least min_objects distinct objects (merging the
 * rows of one object into another gains nothing) and holds at least
 * min_rows rows. */
#ifndef SLUICE_MERGE_PLAN_H
#define SLUICE_MERGE_PLAN_H

#include <stddef.h>
#include <stdint.h>

/* One batch row of the partition (a row may cover several contiguous
 * batches of one object), ascending by offset. */
struct merge_plan_row {
	int64_t base_offset;
	int64_t last_offset;
	uint64_t object_id;        /* tells objects apart (any stable id) */
	uint64_t object_size;      /* the whole object's bytes */
	int64_t object_created_ms;
	uint32_t length;           /* the row's bytes in its object */
};

struct merge_plan_config {
	uint64_t target_bytes;       /* batch data per merged object, at most */
	uint64_t small_object_bytes; /* objects at or above it are left */
	int64_t min_age_ms;          /* objects younger than it are left */
	size_t min_objects;          /* a run draws on at least this many (>= 2) */
	size_t min_rows;             /* and holds at least this many rows */
	/* Not the planner's: merge_partition swaps a run's rows into its
	 * object this many per metadata transaction (--merge-swap-rows). */
	size_t swap_rows;
};

/* One run: rows[first, first + n) of the input, bytes of batch data. */
struct merge_plan_run {
	size_t first, n;
	uint64_t bytes;
	size_t objects;  /* distinct source objects */
};

/* Fill the defaults a flag left at 0: small_object_bytes = target / 2,
 * min_objects 2, min_rows 2, swap_rows SL_MERGE_SWAP_ROWS. */
void merge_plan_defaults(struct merge_plan_config *c);

/* Plan the runs of rows[0, n) at now_ms, at most runs_cap of them
 * (planning stops there). *nruns gets how many. Returns 0, or SL_EINVAL
 * for rows out of order or a config without a target. */
int merge_plan(const struct merge_plan_row *rows, size_t n, const struct merge_plan_config *c,
	       int64_t now_ms, struct merge_plan_run *runs, size_t runs_cap, size_t *nruns);

/* Where the last stretch of rows[0, n) that merge_plan would cut into a
 * run starts when that run reaches row n (kept or not: one too short to
 * pay may pay with the rows after n), or n. The rows are as merge_plan
 * accepted them. A caller planning a partition a page of rows at a time
 * plans that run again with the next page's rows. */
size_t merge_plan_open(const struct merge_plan_row *rows, size_t n,
		       const struct merge_plan_config *c, int64_t now_ms);

#endif

/* arena.h — a bump allocator for one request's decoded structures.
 *
 * Everything allocated from an arena is freed at once by arena_free.
 * The arena refuses to grow past its limit (SL_ARENA_BYTES_MAX by
 * default), so a request cannot make the agent allocate without bound. */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stddef.h>

struct arena_chunk;

struct arena {
	struct arena_chunk *head;
	size_t used_bytes;  /* across all chunks */
	size_t limit_bytes;
};

void arena_init(struct arena *a, size_t limit_bytes);
/* Zeroed, 16-byte aligned memory, or NULL when the limit is reached or
 * malloc fails. n == 0 returns a valid non-NULL pointer. */
void *arena_alloc(struct arena *a, size_t n);
void arena_free(struct arena *a);

#endif

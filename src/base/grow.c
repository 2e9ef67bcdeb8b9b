/* grow.c — doubling growth for arrays of any element type. */
#include "base/grow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"

int array_grow(void *items, size_t *cap, size_t count, size_t elem_size, size_t first_cap)
{
	if (count < *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : first_cap;
	if (n < count + 1 || n > SIZE_MAX / elem_size)
		return SL_ENOMEM;
	void *old;
	memcpy(&old, items, sizeof old);
	void *p = realloc(old, n * elem_size);
	if (!p)
		return SL_ENOMEM;
	memcpy(items, &p, sizeof p);
	*cap = n;
	return 0;
}

/* grow.h — growable arrays: make room for one more element.
 *
 *	if (array_grow(&v, &cap, n, sizeof *v, 16) != 0)
 *		return SL_ENOMEM;
 *	v[n++] = x;
 */
#ifndef SLUICE_GROW_H
#define SLUICE_GROW_H

#include <stddef.h>

/* When count == *cap, double the array at *items (first_cap elements the
 * first time). Returns 0, or SL_ENOMEM with the array unchanged. items is
 * a pointer to the array pointer, passed as void * so any element type
 * fits. */
int array_grow(void *items, size_t *cap, size_t count, size_t elem_size, size_t first_cap);

#endif

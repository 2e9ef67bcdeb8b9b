/* objstore.c — opens an object store from its URL: "file:PATH" (or
 * "file://PATH"), "mem:" and "s3://BUCKET/PREFIX?...". Other schemes are
 * refused with one log line; the backends live in file.c, mem.c and s3.c.
 * Also the backend-independent half of the request counters. */
#include "objstore/objstore.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"

int objstore_open(const char *url, struct objstore **out)
{
	*out = NULL;
	if (!url || !*url) {
		log_error("object store: empty URL (expected file:PATH, s3://BUCKET/PREFIX or mem:)");
		return SL_EINVAL;
	}
	if (strncmp(url, "file:", 5) == 0) {
		const char *path = url + 5;
		/* "file:///abs" and "file://./rel" keep what follows "//". */
		if (strncmp(path, "//", 2) == 0)
			path += 2;
		if (!*path) {
			log_error("object store: '%s' names no folder (expected file:PATH)", url);
			return SL_EINVAL;
		}
		return objstore_file_open(path, out);
	}
	if (strcmp(url, "mem:") == 0)
		return objstore_mem_open(out);
	if (strncmp(url, "s3://", 5) == 0)
		return objstore_s3_open(url, out);
	log_error("object store: unknown URL '%s' (expected file:PATH, s3://BUCKET/PREFIX or mem:)",
		  url);
	return SL_EINVAL;
}

int objstore_stats(struct objstore *s, struct objstore_stats *out)
{
	memset(out, 0, sizeof *out);
	if (!s || !s->m->stats)
		return SL_EUNSUPPORTED;
	s->m->stats(s, out);
	return 0;
}

const char *objstore_op_name(int op)
{
	static const char *const names[OBJSTORE_OP_COUNT] = {
		"put", "get", "head", "delete", "list",
	};
	return op >= 0 && op < OBJSTORE_OP_COUNT ? names[op] : "?";
}

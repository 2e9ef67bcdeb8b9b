/* objstore.c — opens an object store from its URL: "file:PATH" (or
 * "file://PATH") and "mem:". Other schemes are refused with one log line;
 * the backends live in file.c and mem.c. */
#include "objstore/objstore.h"

#include <string.h>

#include "base/err.h"
#include "base/log.h"

int objstore_open(const char *url, struct objstore **out)
{
	*out = NULL;
	if (!url || !*url) {
		log_error("object store: empty URL (expected file:PATH or mem:)");
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
	if (strncmp(url, "s3://", 5) == 0) {
		log_error("object store: '%s': s3 store not built yet (use file:PATH)", url);
		return SL_EINVAL;
	}
	log_error("object store: unknown URL '%s' (expected file:PATH or mem:)", url);
	return SL_EINVAL;
}

/* fuzz_http.c — fuzz target for the metrics server's request head parser
 * (metrics_http_parse): any bytes give a head length inside the input,
 * 0 (more needed) only below the head limit, or an HTTP error status; a
 * parsed path lies inside the head and starts with '/'. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/limits.h"
#include "metrics/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes, so reading past it is caught. */
	char *p = malloc(size ? size : 1);
	if (!p)
		return 0;
	memcpy(p, data, size);
	struct metrics_http_request rq;
	int rc = metrics_http_parse(p, size, &rq);
	if (rc > 0) {
		if ((size_t)rc > size || rc > SL_METRICS_HTTP_HEAD_BYTES_MAX)
			abort();
		if (!rq.path || rq.path < p || rq.path + rq.path_len > p + rc || rq.path_len == 0 ||
		    rq.path[0] != '/')
			abort();
	} else if (rc == 0) {
		if (size >= SL_METRICS_HTTP_HEAD_BYTES_MAX)
			abort();
	} else if (rc != -400 && rc != -405 && rc != -414 && rc != -431 && rc != -505) {
		abort();
	}
	free(p);
	return 0;
}

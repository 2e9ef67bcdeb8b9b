/* sl_assert.c — the failure path of SL_ASSERT (base/sl_assert.h). */
#include "base/sl_assert.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/log.h"

void sl_assert_fail(const char *file, int line, const char *expr, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	/* fmt is " " plus the caller's message, if any. */
	const char *sep = msg[1] ? ":" : "";
	log_msg(LOG_ERROR, "%s:%d: assertion failed: %s%s%s", file, line, expr, sep,
		msg[1] ? msg : "");
	abort();
}

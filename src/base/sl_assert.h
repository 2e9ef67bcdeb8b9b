/* sl_assert.h — checked invariants.
 *
 * SL_ASSERT(cond) and SL_ASSERT(cond, "fmt", args...) stay on in every
 * build: they guard invariants whose violation would corrupt data or lose
 * an acknowledgement (offsets, seal order, one answer per request), where
 * stopping is safer than going on. A failure logs file:line, the
 * expression and the message through base/log, then abort()s (a core
 * dump shows the state). Keep them cheap: a comparison or two.
 *
 * SL_ASSERT_DEBUG is for costly checks (walking a list, recounting a
 * total). It is compiled in only when SLUICE_DEBUG is defined, or in an
 * unoptimised build without NDEBUG (CMake's Debug type); the release
 * builds (RelWithDebInfo, which does not define NDEBUG) leave it out.
 * Left out, the condition is still type-checked but never evaluated, so
 * it must have no side effects.
 *
 * Never assert on what a client or a store can cause: wire input and I/O
 * failures are errors with codes (base/err.h), not broken invariants. */
#ifndef SLUICE_SL_ASSERT_H
#define SLUICE_SL_ASSERT_H

/* Logs "file:line: assertion failed: expr: message" and aborts. The
 * message's format always starts with a space (see SL_ASSERT). */
__attribute__((noreturn, cold, format(printf, 4, 5)))
void sl_assert_fail(const char *file, int line, const char *expr, const char *fmt, ...);

/* The " " before the optional format keeps the format non-empty when no
 * message is given (gcc warns on an empty one) and makes it a literal. */
#define SL_ASSERT(cond, ...) \
	(__builtin_expect(!!(cond), 1) ? (void)0 \
	 : sl_assert_fail(__FILE__, __LINE__, #cond, " " __VA_ARGS__))

#if defined(SLUICE_DEBUG) || (!defined(NDEBUG) && !defined(__OPTIMIZE__))
#define SL_ASSERT_DEBUG_ENABLED 1
#define SL_ASSERT_DEBUG(cond, ...) SL_ASSERT(cond, __VA_ARGS__)
#else
#define SL_ASSERT_DEBUG_ENABLED 0
/* Dead code the compiler drops, but type-checks (and counts as a use of
 * the functions it names, unlike sizeof). */
#define SL_ASSERT_DEBUG(cond, ...) \
	((void)(0 && (SL_ASSERT(cond, __VA_ARGS__), 1)))
#endif

#endif

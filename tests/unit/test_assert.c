/* test_assert.c — SL_ASSERT aborts with file:line, the expression and the
 * message on stderr; a true condition costs nothing; SL_ASSERT_DEBUG
 * follows the build's debug setting. Each failing case runs in a forked
 * child. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "base/sl_assert.h"

/* Runs fn in a child with stderr into a pipe; returns the wait status and
 * the child's stderr in out. */
static int run_child(void (*fn)(void), char *out, size_t cap)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rlimit no_core = { 0, 0 };
		setrlimit(RLIMIT_CORE, &no_core);
		signal(SIGABRT, SIG_DFL);
		close(fds[0]);
		dup2(fds[1], STDERR_FILENO);
		fn();
		_exit(0);
	}
	close(fds[1]);
	size_t n = 0;
	ssize_t r;
	while (n + 1 < cap && (r = read(fds[0], out + n, cap - 1 - n)) > 0)
		n += (size_t)r;
	out[n] = '\0';
	close(fds[0]);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static int pins = -1;

static void fail_with_message(void)
{
	SL_ASSERT(pins >= 0, "pins %d of object %s", pins, "k");
}

static void fail_bare(void) { SL_ASSERT(pins == 7); }
enum { FAIL_BARE_LINE = __LINE__ - 1 };

static void test_aborts_with_message(void **state)
{
	char out[4096];
	int status = run_child(fail_with_message, out, sizeof out);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	assert_non_null(strstr(out, "test_assert.c:"));
	assert_non_null(strstr(out, "assertion failed: pins >= 0: pins -1 of object k"));
}

static void test_aborts_without_message(void **state)
{
	char out[4096], want[128];
	int status = run_child(fail_bare, out, sizeof out);
	assert_true(WIFSIGNALED(status));
	assert_int_equal(WTERMSIG(status), SIGABRT);
	snprintf(want, sizeof want, "test_assert.c:%d: assertion failed: pins == 7\n",
		 FAIL_BARE_LINE);
	assert_non_null(strstr(out, want));
}

static int evaluated;
static int count_evaluation(void)
{
	return ++evaluated;
}

static void test_true_passes(void **state)
{
	evaluated = 0;
	SL_ASSERT(count_evaluation() == 1);
	SL_ASSERT(1, "never printed %d", 1);
	assert_int_equal(evaluated, 1); /* evaluated exactly once */
}

static void debug_fails(void)
{
	SL_ASSERT_DEBUG(pins >= 0, "debug %d", pins);
}

static void test_debug_follows_build(void **state)
{
	evaluated = 0;
	SL_ASSERT_DEBUG(count_evaluation() > 0);
	assert_int_equal(evaluated, SL_ASSERT_DEBUG_ENABLED ? 1 : 0);
	char out[4096];
	int status = run_child(debug_fails, out, sizeof out);
	if (SL_ASSERT_DEBUG_ENABLED) {
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGABRT);
		assert_non_null(strstr(out, "assertion failed: pins >= 0: debug -1"));
	} else {
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
		assert_string_equal(out, "");
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aborts_with_message),
		cmocka_unit_test(test_aborts_without_message),
		cmocka_unit_test(test_true_passes),
		cmocka_unit_test(test_debug_follows_build),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}

/* users_cmd.c — `sluice users`: the SASL/SCRAM users of a metadata store
 * (add, delete, list), as kafka-configs.sh --alter --add-config
 * 'SCRAM-SHA-256=[...]' manages them for Kafka.
 *
 * Works on the store itself (--data DIR or --meta URL), creating it when
 * there is none yet, so users can exist before the first agent starts;
 * agents read credentials per authentication, so a change counts for the
 * next connection on every agent. The password is read from standard
 * input (never from an argument, which other users can see in ps), one
 * line, without its line end; the salt is random, the keys are derived
 * here and only they are stored. */
#include "tools/users_cmd.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/limits.h"
#include "base/log.h"
#include "meta/meta.h"
#include "net/sasl.h"

/* Format: a metadata URL with a path. */
#define USERS_URL_BYTES 1100
/* Policy: Kafka's kafka-configs.sh default for SCRAM iterations. */
#define USERS_ITERATIONS_DEFAULT 4096

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice users add NAME [--mechanism SCRAM-SHA-256|SCRAM-SHA-512]\n"
		"                        [--iterations N] --password-stdin [STORE]\n"
		"       sluice users delete NAME [--mechanism M] [STORE]\n"
		"       sluice users list [STORE]\n"
		"STORE: [--data DIR | --meta URL]\n\n"
		"Manages the users SASL clients log in as (PLAIN, SCRAM-SHA-256,\n"
		"SCRAM-SHA-512 on SASL_PLAINTEXT and SASL_SSL listeners). Only a salt,\n"
		"the iteration count and the SCRAM keys are stored, never the password.\n"
		"A change counts for the next connection on every agent of the store.\n\n"
		"  --mechanism M       SCRAM-SHA-256 or SCRAM-SHA-512 (add: default\n"
		"                      SCRAM-SHA-512; delete: default every mechanism).\n"
		"                      PLAIN logins check either one\n"
		"  --iterations N      PBKDF2 iterations, %d to %d (default %d)\n"
		"  --password-stdin    read the password from standard input (one line)\n"
		"  --data DIR          the store is sqlite:DIR/meta.db (default ./data;\n"
		"                      $SLUICE_DATA), created if missing\n"
		"  --meta URL          metadata store URL ($SLUICE_META), created if missing\n",
		SL_SCRAM_ITERATIONS_MIN, SL_SCRAM_ITERATIONS_MAX, USERS_ITERATIONS_DEFAULT);
}

/* mkdir -p dir (the sqlite file's folder, before the store exists). */
static int mkdir_p(const char *dir)
{
	char buf[USERS_URL_BYTES];
	snprintf(buf, sizeof buf, "%s", dir);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(buf, 0755) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* One line of standard input, without "\n" or "\r\n": its length, or -1
 * (nothing, empty, or longer than cap - 1). */
static long read_password(char *buf, size_t cap)
{
	if (!fgets(buf, (int)cap, stdin))
		return -1;
	size_t n = strlen(buf);
	if (n == cap - 1 && buf[n - 1] != '\n')
		return -1;
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = 0;
	return n ? (long)n : -1;
}

static int users_add(struct meta *m, const char *name, int mech, int32_t iterations)
{
	char pw[SL_SASL_PASSWORD_BYTES_MAX + 2];
	long n = read_password(pw, sizeof pw);
	if (n < 0) {
		fprintf(stderr, "sluice users: no password on standard input (one line, 1 to %d "
			"bytes)\n", SL_SASL_PASSWORD_BYTES_MAX);
		return 2;
	}
	struct meta_scram_change ch = { 0 };
	int rc = scram_credential_new(mech, name, (const uint8_t *)pw, (size_t)n, iterations,
				      &ch.cred);
	OPENSSL_cleanse(pw, sizeof pw);
	if (!rc)
		rc = meta_scram_alter(m, &ch, 1);
	OPENSSL_cleanse(&ch, sizeof ch);
	if (rc) {
		fprintf(stderr, "sluice users: adding %s failed: %s\n", name, sl_strerror(rc));
		return 1;
	}
	printf("user %s: %s credential set (%d iterations)\n", name, sasl_mech_name(mech),
	       (int)iterations);
	return 0;
}

static int users_delete(struct meta *m, const char *name, int mech)
{
	struct meta_scram_change ch = { .remove = true };
	snprintf(ch.cred.user, sizeof ch.cred.user, "%s", name);
	ch.cred.mechanism = (int8_t)mech;
	int rc = meta_scram_alter(m, &ch, 1);
	if (rc) {
		fprintf(stderr, "sluice users: deleting %s failed: %s\n", name, sl_strerror(rc));
		return 1;
	}
	if (ch.result == SL_ENOTFOUND) {
		fprintf(stderr, "sluice users: no %s credential of user %s\n",
			mech ? sasl_mech_name(mech) : "SCRAM", name);
		return 1;
	}
	printf("user %s: %s deleted\n", name, mech ? sasl_mech_name(mech) : "every credential");
	return 0;
}

static int users_list(struct meta *m)
{
	struct meta_scram_credential *c;
	size_t n;
	int rc = meta_scram_list(m, &c, &n);
	if (rc) {
		fprintf(stderr, "sluice users: listing failed: %s\n", sl_strerror(rc));
		return 1;
	}
	printf("%-32s %-14s %s\n", "USER", "MECHANISM", "ITERATIONS");
	for (size_t i = 0; i < n; i++)
		printf("%-32s %-14s %d\n", c[i].user, sasl_mech_name(c[i].mechanism),
		       (int)c[i].iterations);
	OPENSSL_cleanse(c, n * sizeof *c);
	free(c);
	return 0;
}

int users_cmd(int argc, char **argv)
{
	char data[USERS_URL_BYTES] = "./data", meta_url[USERS_URL_BYTES] = "";
	const char *env;
	if ((env = getenv("SLUICE_DATA")) && *env)
		snprintf(data, sizeof data, "%s", env);
	if ((env = getenv("SLUICE_META")) && *env)
		snprintf(meta_url, sizeof meta_url, "%s", env);
	if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
		usage(argc < 1 ? stderr : stdout);
		return argc < 1 ? 2 : 0;
	}
	const char *cmd = argv[0], *name = NULL;
	int i = 1;
	if (strcmp(cmd, "add") && strcmp(cmd, "delete") && strcmp(cmd, "list")) {
		fprintf(stderr, "sluice users: unknown command '%s'\n\n", cmd);
		usage(stderr);
		return 2;
	}
	if (strcmp(cmd, "list")) {
		if (argc < 2 || argv[1][0] == '-') {
			fprintf(stderr, "sluice users %s: NAME missing\n", cmd);
			return 2;
		}
		name = argv[1];
		i = 2;
		size_t len = strlen(name);
		if (len > SL_SASL_USER_BYTES_MAX) {
			fprintf(stderr, "sluice users: a user name is at most %d bytes\n",
				SL_SASL_USER_BYTES_MAX);
			return 2;
		}
	}
	int mech = 0;
	long iterations = USERS_ITERATIONS_DEFAULT;
	bool password_stdin = false;
	for (; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--password-stdin") && !strcmp(cmd, "add")) {
			password_stdin = true;
		} else if (!strcmp(a, "--mechanism") && v && strcmp(cmd, "list")) {
			i++;
			mech = sasl_mech_parse(v, strlen(v));
			if (mech != SASL_MECH_SCRAM_SHA_256 && mech != SASL_MECH_SCRAM_SHA_512) {
				fprintf(stderr, "sluice users: --mechanism is SCRAM-SHA-256 or "
					"SCRAM-SHA-512, not '%s'\n", v);
				return 2;
			}
		} else if (!strcmp(a, "--iterations") && v && !strcmp(cmd, "add")) {
			i++;
			char *end;
			errno = 0;
			iterations = strtol(v, &end, 10);
			if (errno || end == v || *end || iterations < SL_SCRAM_ITERATIONS_MIN ||
			    iterations > SL_SCRAM_ITERATIONS_MAX) {
				fprintf(stderr, "sluice users: --iterations is %d to %d, not '%s'\n",
					SL_SCRAM_ITERATIONS_MIN, SL_SCRAM_ITERATIONS_MAX, v);
				return 2;
			}
		} else if ((!strcmp(a, "--data") || !strcmp(a, "--meta")) && v) {
			i++;
			char *dst = a[2] == 'd' ? data : meta_url;
			if ((size_t)snprintf(dst, USERS_URL_BYTES, "%s", v) >= USERS_URL_BYTES) {
				fprintf(stderr, "sluice users: %s value too long\n", a);
				return 2;
			}
			if (a[2] == 'd')
				meta_url[0] = 0; /* --data after $SLUICE_META wins */
		} else {
			fprintf(stderr, "sluice users: unknown or incomplete flag '%s'\n\n", a);
			usage(stderr);
			return 2;
		}
	}
	if (!strcmp(cmd, "add") && !password_stdin) {
		fprintf(stderr, "sluice users add: --password-stdin is required (a password "
			"in an argument is visible to every user of the machine)\n");
		return 2;
	}
	if (!strcmp(cmd, "add") && !mech)
		mech = SASL_MECH_SCRAM_SHA_512;
	if (!meta_url[0]) {
		if ((size_t)snprintf(meta_url, sizeof meta_url, "sqlite:%s/meta.db", data) >=
		    sizeof meta_url) {
			fprintf(stderr, "sluice users: --data value too long\n");
			return 2;
		}
		if (mkdir_p(data) != 0) {
			fprintf(stderr, "sluice users: cannot create %s: %s\n", data, strerror(errno));
			return 1;
		}
	}
	log_level_current = LOG_WARN;
	struct meta *m;
	if (meta_open(meta_url, &m) != 0)
		return 1; /* it logged why */
	int status = !strcmp(cmd, "add") ? users_add(m, name, mech, (int32_t)iterations)
		   : !strcmp(cmd, "delete") ? users_delete(m, name, mech)
		   : users_list(m);
	meta_close(m);
	return status;
}

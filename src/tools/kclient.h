/* kclient.h — the tools' small blocking Kafka client: one TCP connection
 * to a bootstrap broker and one request/response round trip at a time
 * with the generated codec (kmsg.h). `sluice groups`, `sluice topics`,
 * `sluice configs`, `sluice acls` and `sluice transactions` talk to a
 * running broker through it, as the Kafka command-line tools talk to
 * theirs, and read the flags they all take (--help, --bootstrap, the
 * security flags) with kclient_args_parse.
 *
 * Errors are printed to stderr, prefixed with the tool's name, where they
 * happen; callers only pass the status on. Decoded responses point into
 * frames and an arena the client owns: valid until kclient_close. */
#ifndef SLUICE_KCLIENT_H
#define SLUICE_KCLIENT_H

#include <stdint.h>
#include <stdio.h>

#include "base/arena.h"
#include "base/buf.h"
#include "kmsg.h"

#define KCLIENT_FRAMES_MAX 64 /* responses one run of a tool keeps */

/* How the connection is secured: a Kafka client's security.protocol,
 * ssl.* and sasl.* settings, taken from the tools' flags
 * (kclient_args_parse, KCLIENT_SECURITY_USAGE). Strings point into
 * argv and the environment. */
struct kclient_security {
	bool tls;                  /* SSL, SASL_SSL */
	bool sasl;                 /* SASL_PLAINTEXT, SASL_SSL */
	const char *ca_file;       /* --tls-ca; NULL: the system's CAs */
	const char *cert_file;     /* --tls-cert and --tls-key: a client */
	const char *key_file;      /*   certificate (mutual TLS) */
	int mechanism;             /* enum sasl_mech (net/sasl.h) */
	const char *user;          /* --sasl-username */
};

/* The end of every broker tool's usage: where --bootstrap defaults to, the
 * exit statuses, and KCLIENT_SECURITY_USAGE's flags. */
#define KCLIENT_ARGS_USAGE \
	"--bootstrap (or --bootstrap-server) defaults to $SLUICE_BOOTSTRAP or 127.0.0.1:9092.\n" \
	"Errors print Kafka's error name and exit 1; usage errors exit 2.\n\n" \
	KCLIENT_SECURITY_USAGE

#define KCLIENT_SECURITY_USAGE \
	"connection (as a Kafka client's security.protocol, ssl.*, sasl.*):\n" \
	"  --security-protocol PLAINTEXT|SSL|SASL_PLAINTEXT|SASL_SSL (default PLAINTEXT)\n" \
	"  --tls-ca PEM          CAs the broker's certificate must chain to (default:\n" \
	"                        the system's); the name or address of --bootstrap\n" \
	"                        must be in the certificate\n" \
	"  --tls-cert PEM --tls-key PEM   a client certificate (mutual TLS)\n" \
	"  --sasl-mechanism PLAIN|SCRAM-SHA-256|SCRAM-SHA-512 (default SCRAM-SHA-512)\n" \
	"  --sasl-username NAME  the password is read from $SLUICE_SASL_PASSWORD\n"

/* What every tool that talks to a broker takes on its command line besides
 * its own arguments (kclient_args_parse); strings point into argv and the
 * environment. */
struct kclient_args {
	const char *bootstrap;  /* --bootstrap, else $SLUICE_BOOTSTRAP, else 127.0.0.1:9092 */
	struct kclient_security sec;
};

/* One of a tool's own arguments, argv[*i] (advancing *i past a value it
 * takes), into tool_args. Returns 0, or -1 for a usage error (having said
 * why, or not: the usage follows). */
typedef int (*kclient_arg_fn)(void *tool_args, int argc, char **argv, int *i);

/* Reads a broker tool's command line in order: -h/--help prints usage to
 * stdout and ends it; --bootstrap (or --bootstrap-server) HOST:PORT and
 * KCLIENT_SECURITY_USAGE's flags go into args; every other argument goes
 * to own. A flag without its value, a bad security flag or own's -1 says
 * why on stderr, prefixed with tool, and prints usage there. Returns -1
 * when the tool goes on, else the status it exits with: 0 after --help,
 * 2 after a usage error. */
int kclient_args_parse(struct kclient_args *args, const char *tool, void (*usage)(FILE *out),
		       int argc, char **argv, kclient_arg_fn own, void *tool_args);

struct kclient {
	const char *tool;       /* "sluice groups": the prefix of messages */
	const char *client_id;  /* sent in every request header */
	int fd;
	int32_t correlation_id;
	struct arena arena;     /* decoded responses and request arrays */
	uint8_t *frames[KCLIENT_FRAMES_MAX]; /* bytes the decoded views point into */
	int frame_count;
	void *ssl_ctx, *ssl;    /* OpenSSL's, with --security-protocol SSL/SASL_SSL */
};

/* Connect to HOST:PORT (a name or an address; IPv6 as [::1]:9092 or
 * ::1:9092), then, as sec asks (NULL: plaintext), make TLS (TLS 1.2+,
 * the broker's certificate checked against the CAs and the host) and
 * log in with SASL. Returns 0, SL_EINVAL (bad address, no password) or
 * SL_EIO (cannot resolve or connect, TLS failed, the login refused:
 * Kafka's error printed), having said why. */
int kclient_connect(struct kclient *c, const char *tool, const char *client_id,
		    const char *bootstrap, const struct kclient_security *sec);
void kclient_close(struct kclient *c);

typedef void (*kclient_encode_fn)(struct kbuf *b, int16_t version, const void *m);
typedef int (*kclient_decode_fn)(struct kreader *r, int16_t version, void *m, struct arena *a);

/* One round trip: encode req as api key/version, send, read the answer
 * and decode it into resp. Returns 0, SL_ENOMEM, SL_EIO (connection
 * lost) or SL_EPROTO (an answer that does not decode, too large, out of
 * order, or more than KCLIENT_FRAMES_MAX of them), having said why. */
int kclient_call(struct kclient *c, int16_t key, int16_t version, kclient_encode_fn enc,
		 const void *req, kclient_decode_fn dec, void *resp);

/* Untyped wrappers of one API's generated encoder and decoder, for
 * kclient_call; KCLIENT_CALL(c, LIST_GROUPS, list_groups, 4, &q, &r)
 * after KCLIENT_WRAP(list_groups) at file scope. */
#define KCLIENT_WRAP(name) \
	static void kmsg_##name##_req_encode_(struct kbuf *b, int16_t v, const void *m) \
	{ kmsg_##name##_req_encode(b, v, m); } \
	static int kmsg_##name##_resp_decode_(struct kreader *r, int16_t v, void *m, struct arena *a) \
	{ return kmsg_##name##_resp_decode(r, v, m, a); }
#define KCLIENT_CALL(c, API, api, v, req, resp) \
	kclient_call(c, KMSG_##API##_KEY, v, kmsg_##api##_req_encode_, req, \
		     kmsg_##api##_resp_decode_, resp)

/* Print s left-aligned in width columns (0: as is); null prints "". */
void kclient_print_kstr(kstr s, int width);

/* A Kafka error as the tools report it, on stderr:
 * "TOOL: WHAT: NAME (CODE): MESSAGE" (no ": MESSAGE" when it is null
 * or empty), WHAT from the printf-style what_fmt. */
void kclient_print_error(const struct kclient *c, int16_t code, kstr message,
			 const char *what_fmt, ...) __attribute__((format(printf, 4, 5)));

/* IncrementalAlterConfigs of one resource (type 2 topic, 4 broker) with
 * ops[0..n), printing kafka-configs.sh's "Completed updating config for
 * topic NAME." or the error. Returns the exit status: 0 or 1. */
int kclient_alter_configs(struct kclient *c, int8_t type, const char *name,
			  struct kmsg_incremental_alter_configs_req_alterable_config *ops, int32_t n);

/* A uuid as Kafka prints one (Uuid.toString: URL-safe base64 without
 * padding, 22 characters); out has room for 23 bytes. */
void kclient_uuid_string(const uint8_t uuid[16], char out[23]);

#endif

/* main.c — `sluice` subcommands: wires configuration to subsystems and
 * runs the loop; nothing more. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#include <signal.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "api/api.h"
#include "base/log.h"
#include "tools/acls_cmd.h"
#include "tools/compact_cmd.h"
#include "tools/configs_cmd.h"
#include "tools/gc_cmd.h"
#include "tools/groups_cmd.h"
#include "tools/inspect_cmd.h"
#include "tools/topics_cmd.h"
#include "tools/transactions_cmd.h"
#include "tools/users_cmd.h"

#define SLUICE_VERSION "0.1.0"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: sluice <command> [flags]\n\n"
		"Sluice is a diskless, Kafka-compatible broker: records live in object\n"
		"storage, coordination in a metadata store, and agents keep no state.\n\n"
		"commands:\n"
		"  serve     run an agent (sluice serve --help for its flags)\n"
		"  inspect   dump an object or a partition's batch rows\n"
		"            (sluice inspect --help)\n"
		"  topics    list, describe, create, delete topics, alter their\n"
		"            configs, add partitions (sluice topics --help)\n"
		"  configs   describe and alter topic and broker configs\n"
		"            (sluice configs --help)\n"
		"  groups    list, describe, delete consumer groups, reset offsets\n"
		"            (sluice groups --help)\n"
		"  transactions\n"
		"            list and describe transactions, a partition's\n"
		"            producers (sluice transactions --help)\n"
		"  compact   merge a topic's small objects into per-partition ones\n"
		"            (sluice compact --help)\n"
		"  gc        delete dead and orphaned objects from the store\n"
		"            (sluice gc --help)\n"
		"  users     add, delete, list SASL users (sluice users --help)\n"
		"  acls      add, list, remove ACLs (sluice acls --help)\n"
		"  version   print the version\n");
}

static int cmd_serve(int argc, char **argv)
{
	struct config cfg;
	int rc = config_parse_serve(&cfg, argc, argv);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	log_level_current = (enum log_level)cfg.log_level;
	signal(SIGPIPE, SIG_IGN);
	/* Request frames and objects are large and short-lived: keep them in
	 * their own mappings, returned to the system when freed, instead of
	 * letting glibc's adaptive threshold pull them into per-thread heaps
	 * that stay resident (measured: peak RSS under a produce flood). */
	mallopt(M_MMAP_THRESHOLD, 256 * 1024);
	mallopt(M_ARENA_MAX, 2);
	/* A fixed mmap threshold leaves glibc's trim threshold at 128 KiB:
	 * SQLite's page caches (dropped whenever another connection wrote)
	 * and RETURNING's scratch tables then shrank a heap and grew it back
	 * several times per store transaction, each shrink a madvise whose
	 * TLB shootdown is costly on a VM (a third of the agent's CPU with
	 * transactions of 100 records, bench/txn.py). Peak RSS unchanged. */
	mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
	/* Each client connection is a descriptor: allow as many as the hard
	 * limit does (SL_CONNECTIONS_MAX bounds them anyway). */
	struct rlimit nofile;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	/* libuv's pool runs cold reads, offset commits and the S3 store's
	 * blocking calls (object encodes, file puts and the in-order commits
	 * run on the writer's own threads, base/workers.h); its default 4
	 * threads let four slow reads hold up the rest. Read before the
	 * pool's first use; a user's setting wins. */
	setenv("UV_THREADPOOL_SIZE", "8", 0);
	uv_loop_t *loop = uv_default_loop();
	struct agent *a = calloc(1, sizeof *a);
	if (!a)
		return 1;
	if (agent_start(a, loop, &cfg, &api_agent_hooks) != 0) {
		agent_free(a);
		free(a);
		return 1;
	}
	uv_run(loop, UV_RUN_DEFAULT);
	int exit_code = a->exit_code;
	agent_free(a);
	free(a);
	return exit_code;
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") ||
	    !strcmp(argv[1], "help")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (!strcmp(argv[1], "serve"))
		return cmd_serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "inspect"))
		return inspect_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "groups"))
		return groups_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "transactions"))
		return transactions_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "topics"))
		return topics_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "configs"))
		return configs_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "compact"))
		return compact_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "gc"))
		return gc_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "acls"))
		return acls_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "users"))
		return users_cmd(argc - 2, argv + 2);
	if (!strcmp(argv[1], "version") || !strcmp(argv[1], "--version")) {
		printf("sluice %s\n", SLUICE_VERSION);
		return 0;
	}
	fprintf(stderr, "sluice: unknown command: %s\n\n", argv[1]);
	usage(stderr);
	return 2;
}

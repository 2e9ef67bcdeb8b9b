/* txn_driver.c — a test double of the transaction coordinator
 * (issue 14): `sluice-txn-driver serve FLAGS` runs an agent exactly as
 * `sluice serve` does and also reads commands on stdin, one per line,
 * answering each with one line on stdout, so tests/integration/test_txn_wire.py
 * can drive what the coordinator will (its records, its markers) while
 * real clients produce and fetch:
 *
 *   persist ID PID EPOCH STATE SEQ [TOPIC:PARTITION ...]
 *       meta_txn_persist of the id's record (state: txn_state's number),
 *       on the pool as the coordinator's writes go -> "ok" or "err CODE"
 *   markers ID PID EPOCH COORD_EPOCH SEQ commit|abort TOPIC:PARTITION ...
 *       agent_txn_write_markers -> "done CODE" once every marker is
 *       committed or refused as not owed, "err CODE" when not started
 *
 * Not installed and not part of the broker: the real coordinator
 * (src/txn/coordinator.c with its service) replaces it. */
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "agent/agent.h"
#include "agent/config.h"
#include "api/api.h"
#include "base/clock.h"
#include "base/log.h"
#include "meta/meta.h"
#include "txn/coordinator.h"

#define DRIVER_LINE_MAX 8192
#define DRIVER_IDS_MAX 64
#define DRIVER_PARTS_MAX 64

static struct agent *agent;
static uv_pipe_t in;
static char line[DRIVER_LINE_MAX];
static size_t line_len;

/* The version of each id's record as last written (0: none). */
static struct {
	char id[128];
	int64_t version;
} ids[DRIVER_IDS_MAX];

static int64_t *version_of(const char *id)
{
	for (int i = 0; i < DRIVER_IDS_MAX; i++) {
		if (!strcmp(ids[i].id, id))
			return &ids[i].version;
		if (!ids[i].id[0]) {
			snprintf(ids[i].id, sizeof ids[i].id, "%s", id);
			return &ids[i].version;
		}
	}
	return NULL;
}

static void reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void reply(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

/* "TOPIC:PARTITION" words from *save into tps; -1 on a bad one. */
static int parse_tps(char **save, struct txn_tp *tps)
{
	int n = 0;
	char *w;
	while ((w = strtok_r(NULL, " ", save)) && n < DRIVER_PARTS_MAX) {
		char *colon = strrchr(w, ':');
		if (!colon)
			return -1;
		*colon = 0;
		struct topic_state *t = agent_topic_by_name(agent, w);
		if (!t)
			return -1;
		tps[n++] = (struct txn_tp){ t->tid, atoi(colon + 1) };
	}
	return n;
}

struct persist_job {
	uv_work_t work;
	char id[128];
	struct txn_record r;
	struct txn_tp tps[DRIVER_PARTS_MAX];
	int64_t *version;
	int rc;
};

static bool want_id(void *arg, const char *id)
{
	return !strcmp(arg, id);
}

static void persist_work(uv_work_t *w)
{
	struct persist_job *j = w->data;
	if (*j->version == 0) {
		/* First write since this process started: the stored
		 * version, as the coordinator loads it. */
		struct meta_txn_row *rows;
		size_t n;
		if (meta_txn_load(agent->meta, want_id, j->id, &rows, &n) == 0) {
			if (n == 1)
				*j->version = rows[0].version;
			meta_txn_rows_free(rows, n);
		}
	}
	j->rc = meta_txn_persist(agent->meta, j->id, &j->r, 0, j->version);
}

static void persist_done(uv_work_t *w, int status)
{
	struct persist_job *j = w->data;
	(void)status;
	if (j->rc)
		reply("err %d", j->rc);
	else
		reply("ok");
	free(j);
}

static void markers_done(void *arg, int err)
{
	(void)arg;
	reply("done %d", err);
}

static void command(char *cmd)
{
	char *save = NULL;
	char *verb = strtok_r(cmd, " ", &save);
	if (!verb)
		return;
	if (!strcmp(verb, "persist")) {
		struct persist_job *j = calloc(1, sizeof *j);
		char *id = strtok_r(NULL, " ", &save);
		char *pid = strtok_r(NULL, " ", &save), *epoch = strtok_r(NULL, " ", &save);
		char *state = strtok_r(NULL, " ", &save), *seq = strtok_r(NULL, " ", &save);
		int n = seq ? parse_tps(&save, j->tps) : -1;
		if (!j || n < 0 || !(j->version = version_of(id))) {
			reply("err bad command");
			free(j);
			return;
		}
		snprintf(j->id, sizeof j->id, "%s", id);
		/* Started now: on a shared store the agents' own coordinators
		 * take over open transactions placed on them (txn_coord.c's
		 * scan) and would abort one whose 60 s ran out long ago. */
		int64_t now = clock_wall_ms();
		j->r = (struct txn_record){
			.producer_id = strtoll(pid, NULL, 10), .last_producer_id = -1,
			.producer_epoch = (int16_t)atoi(epoch), .last_producer_epoch = -1,
			.timeout_ms = 60000, .state = (enum txn_state)atoi(state),
			.txn_seq = strtoll(seq, NULL, 10), .start_ms = now, .update_ms = now,
			.partitions = j->tps, .partition_count = n,
		};
		j->work.data = j;
		uv_queue_work(agent->loop, &j->work, persist_work, persist_done);
	} else if (!strcmp(verb, "markers")) {
		char *id = strtok_r(NULL, " ", &save);
		char *pid = strtok_r(NULL, " ", &save), *epoch = strtok_r(NULL, " ", &save);
		char *coord = strtok_r(NULL, " ", &save), *seq = strtok_r(NULL, " ", &save);
		char *kind = strtok_r(NULL, " ", &save);
		struct txn_tp tps[DRIVER_PARTS_MAX];
		int n = kind ? parse_tps(&save, tps) : -1;
		if (n < 0) {
			reply("err bad command");
			return;
		}
		int rc = agent_txn_write_markers(agent, id, strtoll(pid, NULL, 10),
						 (int16_t)atoi(epoch), atoi(coord),
						 strtoll(seq, NULL, 10), !strcmp(kind, "commit"), tps,
						 (size_t)n, markers_done, NULL);
		if (rc)
			reply("err %d", rc);
	} else {
		reply("err unknown command");
	}
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	static char chunk[4096];
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(chunk, sizeof chunk);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
	if (n < 0) {
		/* The test went away: stop reading, the agent goes on until
		 * its SIGTERM. */
		uv_close((uv_handle_t *)s, NULL);
		return;
	}
	for (ssize_t i = 0; i < n; i++) {
		char c = buf->base[i];
		if (c != '\n') {
			if (line_len + 1 < sizeof line)
				line[line_len++] = c;
			continue;
		}
		line[line_len] = 0;
		line_len = 0;
		command(line);
	}
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "serve") != 0) {
		fprintf(stderr, "usage: sluice-txn-driver serve FLAGS (as sluice serve)\n");
		return 2;
	}
	struct config cfg;
	int rc = config_parse_serve(&cfg, argc - 2, argv + 2);
	if (rc != 0)
		return rc > 0 ? 0 : 2;
	log_level_current = (enum log_level)cfg.log_level;
	signal(SIGPIPE, SIG_IGN);
	uv_loop_t *loop = uv_default_loop();
	agent = calloc(1, sizeof *agent);
	if (!agent || agent_start(agent, loop, &cfg, &api_agent_hooks) != 0)
		return 1;
	uv_pipe_init(loop, &in, 0);
	if (uv_pipe_open(&in, 0) == 0)
		uv_read_start((uv_stream_t *)&in, on_alloc, on_read);
	/* The agent's own handles decide when the loop ends (SIGTERM). */
	uv_unref((uv_handle_t *)&in);
	uv_run(loop, UV_RUN_DEFAULT);
	int exit_code = agent->exit_code;
	agent_free(agent);
	free(agent);
	return exit_code;
}

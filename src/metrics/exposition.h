/* exposition.h — the agent's metrics endpoint: --metrics-listen's HTTP
 * server (metrics/http.h) routing /metrics (every family in Prometheus'
 * text exposition format 0.0.4, docs/metrics.md lists them), /healthz
 * and /readyz, and the counters that need the agent's catalog.
 *
 * Loop thread only. */
#ifndef SLUICE_METRICS_EXPOSITION_H
#define SLUICE_METRICS_EXPOSITION_H

#include "base/buf.h"
#include "kmsg.h"

struct agent;
struct reader_fetch;

/* At the start of agent_start (before the stores open): install the
 * codec's error hook and, with --metrics-listen, start the server. 0, or SL_EINVAL / SL_EIO / SL_ENOMEM
 * after logging why (the agent does not start). */
int metrics_agent_start(struct agent *a);
/* At the end of the drain: close the server (NULL-safe, idempotent). */
void metrics_agent_stop(struct agent *a);

/* s as a label value: backslash, quote and newline escaped, control
 * bytes and every byte that is not part of valid UTF-8 as '?' (a group id
 * is any string a client chose, and one invalid value would make
 * Prometheus refuse the whole scrape). malloc'd; NULL when out of memory. */
char *metrics_label_escape(const char *s);

/* A fetch response's records are going out (api/fetch.c): partition n
 * of the response (counted across its topics) is the reader's slot
 * resp_slot[n] of rf, whose pieces are walked for the batches' record
 * counts. */
void metrics_fetch_out(struct agent *a, int16_t version, const struct kmsg_fetch_resp *r,
		       const struct reader_fetch *rf, const size_t *resp_slot);

#endif

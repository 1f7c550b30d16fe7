/*
 * obs.h: the coordinator's instrumentation.  Owns the Prometheus registry
 * (metrics.c) and the metric families, the structured access log line, the
 * slow-request log (a ring of the slowest recent requests, served by
 * GET /v1/admin/slow), and a one-minute window of request latencies for
 * QPS, percentiles and error rate (GET /v1/admin/stats).
 *
 * A leaf module like log.c: the HTTP layer, the executor and the handlers
 * call in; it calls nothing above it.  Everything runs on the event loop.
 */
#ifndef VX_OBS_H
#define VX_OBS_H

#include "metrics.h"
#include "util.h"

#include <jansson.h>

#ifndef VECTRON_VERSION
#define VECTRON_VERSION "1.0.0"
#endif

/* Register every family (once, at start). */
void obs_init(void);
MetricsRegistry *obs_registry(void);

/*
 * The route template of a path, for labels: collection and node names
 * become {name}, unknown paths "other" (bounded label values).
 */
const char *obs_route(const char *path, char *buf, size_t buflen);

/* True when s is an acceptable client request id: [A-Za-z0-9._:-]{1,64}. */
bool obs_valid_request_id(const char *s);

/*
 * One request answered: counts it, observes its latency, writes the access
 * log line, and keeps it in the slow log when over slow_query_ms.
 * shard_timing (borrowed; may be NULL) is a JSON array of
 * {"shard","node","ms"} from the executor.
 */
void obs_request_done(const char *reqid, const char *method, const char *path, int status,
					  double ms, const char *errcode, json_t *shard_timing);

/* Executor events. */
void obs_fanout_shard(const char *node, double ms, bool ok);
void obs_fanout_retry(const char *node);
void obs_shard_failed(void);
void obs_partial_result(void);
void obs_failover(void);

/* Auth events (for the auth wiring in api_authorize, issue 5): a refused
 * credential, by reason (missing, invalid, expired, forbidden), and a
 * request refused by the rate limiter. */
void obs_auth_failure(const char *reason);
void obs_rate_limited(void);

/* Data movement: a move began here / ended (done, rolled_back, or
 * left to the adopt timer). */
void obs_move_started(void);
void obs_move_ended(const char *result);
extern Metric *obs_m_rebalance;		/* rebalance moves by state (api_admin.c) */

/* Maintenance: tombstones removed (rows, over placements), a GC pass
 * ended ("done" or "skipped" when some shard was not fully active), a
 * repair taken over from an expired lease (gc.c, repair.c). */
void obs_tombstones_collected(long n);
void obs_tombstone_gc_pass(const char *result);
void obs_repair_takeover(void);

/* Data events. */
void obs_points_upserted(const char *coll, long n);
void obs_search(const char *coll, long nresults);

/* Gauges refreshed just before rendering (api_admin.c). */
extern Metric *obs_m_placements;	/* node, state */
extern Metric *obs_m_pool_conns;	/* node, state busy|idle */
extern Metric *obs_m_pool_queued;	/* node */
extern Metric *obs_m_node_up;		/* node */
extern Metric *obs_m_map_version;
extern Metric *obs_m_inflight;

/* The slowest recent requests, slowest first (new reference). */
json_t *obs_slow_json(int limit);

/* Figures over the last 60 seconds. */
typedef struct ObsWindow {
	double qps;
	double p50_ms, p95_ms, p99_ms;
	double error_rate;		/* 5xx share of requests */
	long requests;
	long errors;
} ObsWindow;
void obs_window(ObsWindow *w);

/* Totals since start (for the stats report). */
long obs_total_requests(void);
long obs_total_upserted(void);
long obs_total_searches(void);

#endif

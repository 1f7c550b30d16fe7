/*
 * obs.c: metric families, the access log line, the slow-request log and
 * the one-minute latency window (see obs.h).
 *
 * The window is 60 one-second slots, each with a request count, a 5xx
 * count and a log-spaced latency histogram (bucket i holds latencies up to
 * 0.1 ms * 1.2^i); percentiles come from the summed histogram, so they are
 * accurate to about 20%.  The slow log keeps the cf_slow_log_size slowest
 * requests of the recent past: a new slow request replaces the fastest
 * entry once the ring is full, and entries older than ten minutes go first.
 */
#include "obs.h"

#include "config.h"
#include "log.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OBS_NBUCKETS 80
#define OBS_SLOTS 60
#define OBS_SLOW_MAX 1000
#define OBS_SLOW_MAX_AGE_S 600

static MetricsRegistry *reg;
static Metric *m_requests, *m_duration, *m_shard_duration, *m_shard_errors, *m_retries,
	*m_shard_failed, *m_partial, *m_failovers, *m_upserted, *m_searches, *m_search_results,
	*m_slow, *m_build, *m_auth_fail, *m_rate_limited, *m_moves, *m_moves_running,
	*m_tombstones, *m_gc_passes, *m_repair_takeovers;
Metric *obs_m_rebalance;
Metric *obs_m_placements, *obs_m_pool_conns, *obs_m_pool_queued, *obs_m_node_up,
	*obs_m_map_version, *obs_m_inflight;

static long tot_requests, tot_upserted, tot_searches;

typedef struct Slot {
	time_t sec;
	long n, errors;
	unsigned hist[OBS_NBUCKETS];
} Slot;
static Slot slots[OBS_SLOTS];

typedef struct SlowEntry {
	time_t at;
	double ms;
	json_t *doc;
} SlowEntry;
static SlowEntry slow[OBS_SLOW_MAX];
static int nslow;

static const double shard_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
									   0.05,   0.1,   0.25,   0.5,   1,    2.5, 5, 10};

static Metric *
must(Metric *m, const char *err)
{
	if (!m) {
		log_write(LOG_FATAL, NULL, "metrics: %s", err);
		abort();
	}
	return m;
}

void
obs_init(void)
{
	char err[256];

	if (reg)
		return;
	reg = metrics_registry_new();
	m_build = must(metrics_gauge(reg, "vectron_build_info",
								 "Build of this coordinator (value 1).", 2,
								 METRICS_LABELS("version", "coordinator_id"), err, sizeof(err)),
				   err);
	m_requests = must(metrics_counter(reg, "vectron_http_requests_total",
									  "HTTP requests answered, by method, route and status.", 3,
									  METRICS_LABELS("method", "route", "status"), err,
									  sizeof(err)),
					  err);
	m_duration = must(metrics_histogram(reg, "vectron_http_request_duration_seconds",
										"HTTP request latency, by method, route and status.", 3,
										METRICS_LABELS("method", "route", "status"),
										metrics_latency_buckets, metrics_latency_nbuckets, err,
										sizeof(err)),
					  err);
	m_shard_duration = must(
		metrics_histogram(reg, "vectron_fanout_shard_duration_seconds",
						  "Latency of one worker round trip of a fan-out read, by node.", 1,
						  METRICS_LABELS("node"), shard_buckets,
						  (int) (sizeof(shard_buckets) / sizeof(shard_buckets[0])), err,
						  sizeof(err)),
		err);
	m_shard_errors = must(metrics_counter(reg, "vectron_fanout_errors_total",
										  "Fan-out round trips that failed, by node.", 1,
										  METRICS_LABELS("node"), err, sizeof(err)),
						  err);
	m_retries = must(metrics_counter(reg, "vectron_fanout_retries_total",
									 "Shard reads retried on another placement, by the node "
									 "that failed.",
									 1, METRICS_LABELS("node"), err, sizeof(err)),
					 err);
	m_failovers = must(metrics_counter(reg, "vectron_fanout_failovers_total",
									   "Shard reads answered by a placement after another "
									   "placement failed.",
									   0, NULL, err, sizeof(err)),
					   err);
	m_shard_failed = must(metrics_counter(reg, "vectron_fanout_shard_failures_total",
										  "Shard reads with no placement left to try.", 0, NULL,
										  err, sizeof(err)),
						  err);
	m_partial = must(metrics_counter(reg, "vectron_partial_results_total",
									 "Searches answered with partial results.", 0, NULL, err,
									 sizeof(err)),
					 err);
	m_upserted = must(metrics_counter(reg, "vectron_points_upserted_total",
									  "Points acknowledged by upsert or import, by collection.",
									  1, METRICS_LABELS("collection"), err, sizeof(err)),
					  err);
	m_searches = must(metrics_counter(reg, "vectron_searches_total",
									  "Searches answered (each of a batch counts), by collection.",
									  1, METRICS_LABELS("collection"), err, sizeof(err)),
					  err);
	m_search_results = must(metrics_counter(reg, "vectron_search_results_total",
											"Points returned by searches, by collection.", 1,
											METRICS_LABELS("collection"), err, sizeof(err)),
							err);
	m_slow = must(metrics_counter(reg, "vectron_slow_requests_total",
								  "Requests slower than slow_query_ms.", 0, NULL, err,
								  sizeof(err)),
				  err);
	m_auth_fail = must(metrics_counter(reg, "vectron_auth_failures_total",
									   "Requests refused for their credentials, by reason.", 1,
									   METRICS_LABELS("reason"), err, sizeof(err)),
					   err);
	m_rate_limited = must(metrics_counter(reg, "vectron_rate_limited_total",
										  "Requests refused by the rate limiter.", 0, NULL, err,
										  sizeof(err)),
						  err);
	m_moves = must(metrics_counter(reg, "vectron_shard_moves_total",
								   "Shard moves and re-replications ended by this coordinator, "
								   "by result (done, rolled_back, adopt).",
								   1, METRICS_LABELS("result"), err, sizeof(err)),
				   err);
	m_moves_running = must(metrics_gauge(reg, "vectron_shard_moves_running",
										 "Shard moves running on this coordinator.", 0, NULL, err,
										 sizeof(err)),
						   err);
	m_tombstones = must(metrics_counter(reg, "vectron_tombstones_collected_total",
										"Delete tombstones removed by the tombstone GC, "
										"counted per placement.", 0, NULL, err, sizeof(err)),
						err);
	m_gc_passes = must(metrics_counter(reg, "vectron_tombstone_gc_passes_total",
									   "Tombstone GC passes over every shard, by result "
									   "(done, skipped: a shard was not fully active).",
									   1, METRICS_LABELS("result"), err, sizeof(err)),
					   err);
	m_repair_takeovers = must(metrics_counter(reg, "vectron_repair_takeovers_total",
											  "Repairs taken over from a coordinator whose "
											  "lease expired.", 0, NULL, err, sizeof(err)),
							  err);
	obs_m_rebalance = must(metrics_gauge(reg, "vectron_rebalance_moves",
										 "Moves of this coordinator's rebalance job, by state.", 1,
										 METRICS_LABELS("state"), err, sizeof(err)),
						   err);
	obs_m_placements = must(metrics_gauge(reg, "vectron_placements",
										  "Shard placements in the map, by node and state.", 2,
										  METRICS_LABELS("node", "state"), err, sizeof(err)),
							err);
	obs_m_pool_conns = must(metrics_gauge(reg, "vectron_pool_connections",
										  "Worker pool connections, by node and state "
										  "(busy, idle, connecting).",
										  2, METRICS_LABELS("node", "state"), err, sizeof(err)),
							err);
	obs_m_pool_queued = must(metrics_gauge(reg, "vectron_pool_queued_jobs",
										   "Jobs waiting for a pool connection, by node.", 1,
										   METRICS_LABELS("node"), err, sizeof(err)),
							 err);
	obs_m_node_up = must(metrics_gauge(reg, "vectron_node_up",
									   "1 when the node answers health checks, by node.", 1,
									   METRICS_LABELS("node"), err, sizeof(err)),
						 err);
	obs_m_map_version = must(metrics_gauge(reg, "vectron_map_version",
										   "Version of the shard map in use.", 0, NULL, err,
										   sizeof(err)),
							 err);
	obs_m_inflight = must(metrics_gauge(reg, "vectron_http_inflight_requests",
										"Requests being handled.", 0, NULL, err, sizeof(err)),
						  err);
	{
		char id[16];

		snprintf(id, sizeof(id), "%d", cf_coordinator_id);
		metrics_set(m_build, METRICS_LABELS(VECTRON_VERSION, id), 1);
	}
}

MetricsRegistry *
obs_registry(void)
{
	return reg;
}

bool
obs_valid_request_id(const char *s)
{
	size_t n = 0;

	for (; s[n]; n++) {
		char c = s[n];

		if (n >= 64 || !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
						 (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' || c == '-'))
			return false;
	}
	return n > 0;
}

const char *
obs_route(const char *path, char *buf, size_t buflen)
{
	const char *segs[8];
	size_t lens[8];
	int n = 0;
	const char *p = path;

	while (*p) {
		const char *e;

		while (*p == '/')
			p++;
		if (!*p)
			break;
		e = strchr(p, '/');
		if (!e)
			e = p + strlen(p);
		if (n == 8)
			return "other";
		segs[n] = p;
		lens[n++] = (size_t) (e - p);
		p = e;
	}
#define SEG(i, s) (lens[i] == strlen(s) && strncmp(segs[i], s, lens[i]) == 0)
	if (n == 1 && (SEG(0, "healthz") || SEG(0, "readyz") || SEG(0, "metrics"))) {
		snprintf(buf, buflen, "/%.*s", (int) lens[0], segs[0]);
		return buf;
	}
	if (n < 2 || !SEG(0, "v1"))
		return "other";
	if (n == 2 && (SEG(1, "collections") || SEG(1, "openapi.json"))) {
		snprintf(buf, buflen, "/v1/%.*s", (int) lens[1], segs[1]);
		return buf;
	}
	if (SEG(1, "collections")) {
		if (n == 3)
			return "/v1/collections/{name}";
		if (n == 4 && SEG(3, "points"))
			return "/v1/collections/{name}/points";
		if (n == 4 && SEG(3, "search"))
			return "/v1/collections/{name}/search";
		if (n == 5 && SEG(3, "search") && SEG(4, "batch"))
			return "/v1/collections/{name}/search/batch";
		if (n == 5 && SEG(3, "points") && (SEG(4, "get") || SEG(4, "delete") || SEG(4, "import"))) {
			snprintf(buf, buflen, "/v1/collections/{name}/points/%.*s", (int) lens[4], segs[4]);
			return buf;
		}
		return "other";
	}
	if (SEG(1, "admin") && n >= 3) {
		if (SEG(2, "nodes")) {
			if (n == 3)
				return "/v1/admin/nodes";
			if (n == 4)
				return "/v1/admin/nodes/{name}";
			if (n == 5 && SEG(4, "drain"))
				return "/v1/admin/nodes/{name}/drain";
			return "other";
		}
		if (n == 5 && SEG(2, "shards") && SEG(4, "move"))
			return "/v1/admin/shards/{id}/move";
		if (n == 4 && SEG(2, "moves"))
			return "/v1/admin/moves/{id}";
		if (n == 3 && (SEG(2, "slow") || SEG(2, "stats") || SEG(2, "collections") ||
					   SEG(2, "moves") || SEG(2, "rebalance"))) {
			snprintf(buf, buflen, "/v1/admin/%.*s", (int) lens[2], segs[2]);
			return buf;
		}
	}
#undef SEG
	return "other";
}

/* Latency bucket of the window histogram. */
static int
window_bucket(double ms)
{
	int b = 0;
	double ub = 0.1;

	while (b < OBS_NBUCKETS - 1 && ms > ub) {
		ub *= 1.2;
		b++;
	}
	return b;
}

static Slot *
window_slot(time_t now)
{
	Slot *s = &slots[now % OBS_SLOTS];

	if (s->sec != now) {
		memset(s, 0, sizeof(*s));
		s->sec = now;
	}
	return s;
}

static void
slow_add(time_t now, double ms, json_t *doc)
{
	int victim = -1;

	if (cf_slow_log_size <= 0) {
		json_decref(doc);
		return;
	}
	/* drop entries that are too old, then take a free slot or the fastest */
	for (int i = 0; i < nslow;) {
		if (now - slow[i].at > OBS_SLOW_MAX_AGE_S) {
			json_decref(slow[i].doc);
			slow[i] = slow[--nslow];
		} else
			i++;
	}
	while (nslow > cf_slow_log_size) {
		json_decref(slow[nslow - 1].doc);
		nslow--;
	}
	if (nslow < cf_slow_log_size && nslow < OBS_SLOW_MAX)
		victim = nslow++;
	else {
		for (int i = 0; i < nslow; i++)
			if (victim < 0 || slow[i].ms < slow[victim].ms)
				victim = i;
		if (slow[victim].ms > ms) {
			json_decref(doc);
			return;
		}
		json_decref(slow[victim].doc);
	}
	slow[victim] = (SlowEntry){now, ms, doc};
}

void
obs_request_done(const char *reqid, const char *method, const char *path, int status,
				 double ms, const char *errcode, json_t *shard_timing)
{
	char rbuf[128], st[8];
	const char *route = obs_route(path, rbuf, sizeof(rbuf));
	time_t now = time(NULL);
	Slot *s = window_slot(now);
	bool is_slow = cf_slow_query_ms > 0 && ms >= cf_slow_query_ms;

	snprintf(st, sizeof(st), "%d", status);
	if (reg) {
		metrics_inc(m_requests, METRICS_LABELS(method, route, st), 1);
		metrics_observe(m_duration, METRICS_LABELS(method, route, st), ms / 1000.0);
	}
	tot_requests++;
	s->n++;
	if (status >= 500)
		s->errors++;
	s->hist[window_bucket(ms)]++;

	if (log_min_level <= LOG_INFO || (is_slow && log_min_level <= LOG_WARNING)) {
		json_t *f = json_pack("{s:s,s:s,s:s,s:i,s:f}", "method", method, "path", path, "route",
							  route, "status", status, "latency_ms", round(ms * 1000) / 1000);

		if (errcode && errcode[0])
			json_object_set_new(f, "error_code", json_string(errcode));
		if (is_slow) {
			json_object_set_new(f, "slow", json_true());
			if (shard_timing)
				json_object_set(f, "shards", shard_timing);
		}
		log_fields(is_slow ? LOG_WARNING : LOG_INFO, reqid, f, "%s %s -> %d (%.1f ms)%s",
				   method, path, status, ms, is_slow ? " slow" : "");
		json_decref(f);
	}
	if (is_slow) {
		char ts[32];
		struct tm tm;
		json_t *doc;

		if (reg)
			metrics_inc(m_slow, NULL, 1);
		gmtime_r(&now, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
		doc = json_pack("{s:s,s:s,s:s,s:s,s:i,s:f,s:o}", "time", ts, "request_id", reqid,
						"method", method, "path", path, "status", status, "latency_ms",
						round(ms * 1000) / 1000, "shards",
						shard_timing ? json_incref(shard_timing) : json_array());
		slow_add(now, ms, doc);
	}
}

void
obs_fanout_shard(const char *node, double ms, bool ok)
{
	if (!reg)
		return;
	metrics_observe(m_shard_duration, METRICS_LABELS(node), ms / 1000.0);
	if (!ok)
		metrics_inc(m_shard_errors, METRICS_LABELS(node), 1);
}

void
obs_fanout_retry(const char *node)
{
	if (reg)
		metrics_inc(m_retries, METRICS_LABELS(node), 1);
}

void
obs_shard_failed(void)
{
	if (reg)
		metrics_inc(m_shard_failed, NULL, 1);
}

void
obs_partial_result(void)
{
	if (reg)
		metrics_inc(m_partial, NULL, 1);
}

void
obs_failover(void)
{
	if (reg)
		metrics_inc(m_failovers, NULL, 1);
}

void
obs_auth_failure(const char *reason)
{
	if (reg)
		metrics_inc(m_auth_fail, METRICS_LABELS(reason), 1);
}

void
obs_rate_limited(void)
{
	if (reg)
		metrics_inc(m_rate_limited, NULL, 1);
}

static int moves_running;

void
obs_move_started(void)
{
	if (reg)
		metrics_set(m_moves_running, NULL, ++moves_running);
}

void
obs_move_ended(const char *result)
{
	if (!reg)
		return;
	metrics_set(m_moves_running, NULL, --moves_running);
	metrics_inc(m_moves, METRICS_LABELS(result), 1);
}

void
obs_tombstones_collected(long n)
{
	if (reg && n > 0)
		metrics_inc(m_tombstones, NULL, n);
}

void
obs_tombstone_gc_pass(const char *result)
{
	if (reg)
		metrics_inc(m_gc_passes, METRICS_LABELS(result), 1);
}

void
obs_repair_takeover(void)
{
	if (reg)
		metrics_inc(m_repair_takeovers, NULL, 1);
}

void
obs_points_upserted(const char *coll, long n)
{
	tot_upserted += n;
	if (reg && n > 0)
		metrics_inc(m_upserted, METRICS_LABELS(coll), (double) n);
}

void
obs_search(const char *coll, long nresults)
{
	tot_searches++;
	if (!reg)
		return;
	metrics_inc(m_searches, METRICS_LABELS(coll), 1);
	metrics_inc(m_search_results, METRICS_LABELS(coll), (double) nresults);
}

static int
slow_cmp(const void *a, const void *b)
{
	double x = ((const SlowEntry *) a)->ms, y = ((const SlowEntry *) b)->ms;

	return x < y ? 1 : x > y ? -1 : 0;
}

json_t *
obs_slow_json(int limit)
{
	SlowEntry *copy = xmalloc(sizeof(SlowEntry) * (nslow ? nslow : 1));
	json_t *arr = json_array();

	memcpy(copy, slow, sizeof(SlowEntry) * nslow);
	qsort(copy, nslow, sizeof(SlowEntry), slow_cmp);
	for (int i = 0; i < nslow && i < limit; i++)
		json_array_append(arr, copy[i].doc);
	free(copy);
	return arr;
}

void
obs_window(ObsWindow *w)
{
	time_t now = time(NULL);
	unsigned hist[OBS_NBUCKETS] = {0};
	long n = 0, errors = 0;
	double q[3] = {0.5, 0.95, 0.99}, *out[3] = {&w->p50_ms, &w->p95_ms, &w->p99_ms};

	memset(w, 0, sizeof(*w));
	for (int i = 0; i < OBS_SLOTS; i++) {
		const Slot *s = &slots[i];

		/* the current second is incomplete: count the 60 before it */
		if (s->sec >= now || now - s->sec > OBS_SLOTS)
			continue;
		n += s->n;
		errors += s->errors;
		for (int b = 0; b < OBS_NBUCKETS; b++)
			hist[b] += s->hist[b];
	}
	w->requests = n;
	w->errors = errors;
	w->qps = n / (double) OBS_SLOTS;
	w->error_rate = n ? errors / (double) n : 0;
	for (int k = 0; k < 3; k++) {
		long need = (long) ceil(q[k] * n), seen = 0;
		double ub = 0.1;

		if (n == 0)
			continue;
		for (int b = 0; b < OBS_NBUCKETS; b++, ub *= 1.2) {
			seen += hist[b];
			if (seen >= need) {
				*out[k] = round(ub * 1000) / 1000;
				break;
			}
		}
	}
}

long
obs_total_requests(void)
{
	return tot_requests;
}

long
obs_total_upserted(void)
{
	return tot_upserted;
}

long
obs_total_searches(void)
{
	return tot_searches;
}

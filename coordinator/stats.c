/*
 * stats.c: the stats report timer and the worker scan behind
 * GET /v1/admin/stats, /v1/admin/collections and /v1/admin/nodes (see
 * stats.h).
 *
 * A Scan takes a reference on the map, sends one job per node (node facts,
 * then one UNION ALL statement over the shard tables placed there; the
 * table names are the map's own c<id>_s<id>, never client input) and,
 * when every job is back, calls the handler's formatter with the results.
 * Nodes that do not answer within 5 s are reported with their error; the
 * rest of the answer stands.
 */
#include "stats.h"

#include "api_internal.h"
#include "config.h"
#include "log.h"
#include "metadata.h"
#include "obs.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SCAN_TIMEOUT_MS 5000

/* ---- the report timer ---- */

static struct event *report_ev;
static char started_at[40];
static bool report_busy;

static void report_arm(void);

static void
report_done(PgJob *job, void *arg)
{
	(void) arg;
	if (!job->ok)
		log_debug("stats report: %s", job->errmsg ? job->errmsg : "failed");
	pgjob_free(job);
	report_busy = false;
}

static void
report_tick(evutil_socket_t fd, short what, void *arg)
{
	ObsWindow w;
	ParamList p;
	PgJob *job;
	char key[320];

	(void) fd;
	(void) what;
	(void) arg;
	report_arm();
	if (report_busy)
		return;
	obs_window(&w);
	snprintf(key, sizeof(key), "%d@%s:%d", cf_coordinator_id, cf_listen_addr, http_server_port());
	params_init(&p);
	params_add(&p, key);
	params_add_owned(&p, xasprintf("%d", cf_coordinator_id));
	params_add(&p, VECTRON_VERSION);
	params_add(&p, started_at);
	params_add_owned(&p, xasprintf("%ld", w.requests));
	params_add_owned(&p, xasprintf("%ld", w.errors));
	params_add_owned(&p, xasprintf("%.3f", w.qps));
	params_add_owned(&p, xasprintf("%.3f", w.p50_ms));
	params_add_owned(&p, xasprintf("%.3f", w.p95_ms));
	params_add_owned(&p, xasprintf("%.3f", w.p99_ms));
	params_add_owned(&p, xasprintf("%ld", obs_total_requests()));
	params_add_owned(&p, xasprintf("%ld", obs_total_upserted()));
	params_add_owned(&p, xasprintf("%ld", obs_total_searches()));
	params_add_owned(&p, xasprintf("%d", http_inflight()));
	job = pgjob_new(report_done, NULL);
	job->timeout_ms = 5000;
	pgjob_add(job,
			  "INSERT INTO vectron_meta.coordinator_stats AS s VALUES ($1, $2::int, $3,\n"
			  "  $4::timestamptz, now(), $5::bigint, $6::bigint, $7::float8, $8::float8,\n"
			  "  $9::float8, $10::float8, $11::bigint, $12::bigint, $13::bigint, $14::int)\n"
			  "ON CONFLICT (coordinator) DO UPDATE SET coordinator_id = excluded.coordinator_id,\n"
			  "  version = excluded.version, started_at = excluded.started_at,\n"
			  "  reported_at = now(), requests_1m = excluded.requests_1m,\n"
			  "  errors_1m = excluded.errors_1m, qps = excluded.qps, p50_ms = excluded.p50_ms,\n"
			  "  p95_ms = excluded.p95_ms, p99_ms = excluded.p99_ms,\n"
			  "  requests_total = excluded.requests_total,\n"
			  "  points_upserted_total = excluded.points_upserted_total,\n"
			  "  searches_total = excluded.searches_total, inflight = excluded.inflight",
			  &p);
	params_free(&p);
	report_busy = true;
	pgjob_submit(metadata_pool(), job);
}

static void
report_arm(void)
{
	struct timeval tv = {cf_stats_report_ms / 1000, (cf_stats_report_ms % 1000) * 1000};

	if (report_ev)
		evtimer_add(report_ev, &tv);
}

void
stats_start(struct event_base *base)
{
	time_t now = time(NULL);
	struct tm tm;
	struct timeval tv = {0, 200000};

	gmtime_r(&now, &tm);
	strftime(started_at, sizeof(started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	report_ev = evtimer_new(base, report_tick, NULL);
	evtimer_add(report_ev, &tv);
}

void
stats_stop(void)
{
	if (report_ev) {
		event_free(report_ev);
		report_ev = NULL;
	}
}

/* ---- the worker scan ---- */

typedef struct ScanTable {
	int node_id;
	char table[64];
	long long count, table_bytes, index_bytes;
	bool have;
} ScanTable;

typedef struct ScanNode {
	const SmNode *node;
	bool ok;
	char *errmsg;
	char version[64];
	char ext_version[32];
	long long db_bytes;
	int connections;
} ScanNode;

typedef struct Scan Scan;
typedef void (*ScanDone)(Scan *s);

struct Scan {
	HttpRequest *req;
	ShardMap *map;
	int nnodes;
	ScanNode *nodes;
	int ntables;
	ScanTable *tables;
	int pending;
	ScanDone done;
	json_t *meta;		/* stats: the coordinator rows */
	char *meta_err;
	StatsSizesCallback sizes_cb;	/* stats_placement_sizes */
	void *sizes_arg;
};

typedef struct ScanJobArg {
	Scan *s;
	int node;
} ScanJobArg;

static void
scan_finish(Scan *s)
{
	if (--s->pending > 0)
		return;
	s->done(s);
	for (int i = 0; i < s->nnodes; i++)
		free(s->nodes[i].errmsg);
	free(s->nodes);
	free(s->tables);
	json_decref(s->meta);
	free(s->meta_err);
	shardmap_release(s->map);
	free(s);
}

static ScanTable *
scan_table(Scan *s, int node_id, const char *table)
{
	for (int i = 0; i < s->ntables; i++)
		if (s->tables[i].node_id == node_id && strcmp(s->tables[i].table, table) == 0)
			return &s->tables[i];
	return NULL;
}

static void
scan_job_done(PgJob *job, void *arg)
{
	ScanJobArg *a = arg;
	Scan *s = a->s;
	ScanNode *sn = &s->nodes[a->node];

	if (!job->ok) {
		sn->errmsg = xstrdup(job->errmsg ? job->errmsg : "failed");
	} else {
		PGresult *r = job->results[0];

		sn->ok = true;
		util_strlcpy(sn->version, PQgetvalue(r, 0, 0), sizeof(sn->version));
		util_strlcpy(sn->ext_version, PQgetvalue(r, 0, 1), sizeof(sn->ext_version));
		sn->db_bytes = atoll(PQgetvalue(r, 0, 2));
		sn->connections = atoi(PQgetvalue(r, 0, 3));
		if (job->nstmts > 1) {
			r = job->results[1];
			for (int row = 0; row < PQntuples(r); row++) {
				ScanTable *t = scan_table(s, sn->node->id, PQgetvalue(r, row, 0));

				if (!t)
					continue;
				t->have = true;
				t->count = atoll(PQgetvalue(r, row, 1));
				t->table_bytes = atoll(PQgetvalue(r, row, 2));
				t->index_bytes = atoll(PQgetvalue(r, row, 3));
			}
		}
	}
	pgjob_free(job);
	free(a);
	scan_finish(s);
}

/* Start the scan; done runs once every node answered or failed. */
static Scan *
scan_new(HttpRequest *req, ScanDone done)
{
	Scan *s = xcalloc(1, sizeof(Scan));
	ShardMap *m = shardmap_acquire();
	int cap = 0;

	s->req = req;
	s->map = m;
	s->done = done;
	s->nnodes = m->nnodes;
	s->nodes = xcalloc(m->nnodes ? m->nnodes : 1, sizeof(ScanNode));
	for (int c = 0; c < m->ncollections; c++)
		for (int sh = 0; sh < m->collections[c].nshards; sh++)
			cap += m->collections[c].shards[sh].nplacements;
	s->tables = xcalloc(cap ? cap : 1, sizeof(ScanTable));
	for (int c = 0; c < m->ncollections; c++)
		for (int sh = 0; sh < m->collections[c].nshards; sh++) {
			const SmShard *shard = &m->collections[c].shards[sh];

			for (int p = 0; p < shard->nplacements; p++) {
				ScanTable *t = &s->tables[s->ntables++];

				t->node_id = shard->placements[p].node_id;
				util_strlcpy(t->table, shard->table, sizeof(t->table));
			}
		}
	s->pending = 1;	/* released by scan_go */
	return s;
}

static void
scan_go(Scan *s)
{
	for (int i = 0; i < s->nnodes; i++) {
		const SmNode *n = &s->map->nodes[i];
		ScanJobArg *a = xcalloc(1, sizeof(ScanJobArg));
		PgJob *job;
		StrBuf sql;
		bool any = false;

		s->nodes[i].node = n;
		a->s = s;
		a->node = i;
		job = pgjob_new(scan_job_done, a);
		job->timeout_ms = SCAN_TIMEOUT_MS;
		pgjob_add0(job, "SELECT current_setting('server_version'),\n"
						"  coalesce((SELECT extversion FROM pg_extension WHERE extname = 'vectron'), ''),\n"
						"  pg_database_size(current_database()),\n"
						"  (SELECT count(*) FROM pg_stat_activity WHERE datname = current_database())");
		sb_init(&sql);
		for (int t = 0; t < s->ntables; t++) {
			const char *tab = s->tables[t].table;

			if (s->tables[t].node_id != n->id)
				continue;
			sb_appendf(&sql,
					   "%sSELECT '%s'::text, count(*) FILTER (WHERE NOT deleted),\n"
					   "  pg_table_size('vectron_shards.%s'), pg_indexes_size('vectron_shards.%s')\n"
					   "FROM vectron_shards.%s\n",
					   any ? "UNION ALL " : "", tab, tab, tab, tab);
			any = true;
		}
		if (any)
			pgjob_add0(job, sql.data);
		sb_free(&sql);
		s->pending++;
		pgjob_submit(workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname), job);
	}
	scan_finish(s);
}

/* ---- formatting ---- */

/* Collections with per-shard counts, sizes and placements; totals out. */
static json_t *
collections_json(Scan *s, long long *points_out, long long *index_bytes_out)
{
	json_t *arr = json_array();
	long long all_points = 0, all_ib = 0;

	for (int c = 0; c < s->map->ncollections; c++) {
		const SmCollection *coll = &s->map->collections[c];
		json_t *shards = json_array();
		long long points = 0, tb = 0, ib = 0;
		bool exact = true;

		for (int sh = 0; sh < coll->nshards; sh++) {
			const SmShard *shard = &coll->shards[sh];
			json_t *pls = json_array();
			long long count = -1;

			for (int p = 0; p < shard->nplacements; p++) {
				const SmPlacement *pl = &shard->placements[p];
				ScanTable *t = scan_table(s, pl->node_id, shard->table);
				json_t *o = json_pack("{s:s,s:s}", "node", pl->node ? pl->node->name : "?",
									  "state", shardmap_placement_state_name(pl->state));

				if (t && t->have) {
					json_object_set_new(o, "count", json_integer(t->count));
					json_object_set_new(o, "table_bytes", json_integer(t->table_bytes));
					json_object_set_new(o, "index_bytes", json_integer(t->index_bytes));
					tb += t->table_bytes;
					ib += t->index_bytes;
					if (count < 0 && pl->state == SM_ACTIVE)
						count = t->count;
				} else
					json_object_set_new(o, "count", json_null());
				json_array_append_new(pls, o);
			}
			if (count < 0)
				exact = false;
			else
				points += count;
			json_array_append_new(shards,
								  json_pack("{s:I,s:i,s:s,s:o,s:o}", "id", (json_int_t) shard->id,
											"index", shard->index, "table",
											shard->table, "count",
											count < 0 ? json_null() : json_integer(count),
											"placements", pls));
		}
		all_points += points;
		all_ib += ib;
		json_array_append_new(
			arr, json_pack("{s:s,s:i,s:s,s:i,s:i,s:s,s:I,s:b,s:I,s:I,s:o}", "name", coll->name,
						   "dimension", coll->dimension, "metric",
						   shardmap_metric_name(coll->metric), "shards", coll->nshards,
						   "replication_factor", coll->replication_factor, "state",
						   coll->active ? "active" : "creating", "points", (json_int_t) points,
						   "count_exact", exact, "table_bytes", (json_int_t) tb, "index_bytes",
						   (json_int_t) ib, "shard_detail", shards));
	}
	if (points_out)
		*points_out = all_points;
	if (index_bytes_out)
		*index_bytes_out = all_ib;
	return arr;
}

static void
collections_done(Scan *s)
{
	json_t *errs = json_array();

	for (int i = 0; i < s->nnodes; i++)
		if (!s->nodes[i].ok)
			json_array_append_new(errs, json_pack("{s:s,s:s}", "node", s->nodes[i].node->name,
												  "error", s->nodes[i].errmsg));
	http_respond_json(s->req, 200,
					  json_pack("{s:o,s:o}", "collections", collections_json(s, NULL, NULL),
								"node_errors", errs));
}

void
stats_handle_collections(HttpRequest *req)
{
	scan_go(scan_new(req, collections_done));
}

static void
nodes_done(Scan *s)
{
	json_t *arr = json_array();

	for (int i = 0; i < s->nnodes; i++) {
		const ScanNode *sn = &s->nodes[i];
		const SmNode *n = sn->node;
		PgPool *pool = workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname);
		long long tb = 0, ib = 0;
		int nplace = 0;
		json_t *o;

		for (int t = 0; t < s->ntables; t++)
			if (s->tables[t].node_id == n->id) {
				nplace++;
				tb += s->tables[t].table_bytes;
				ib += s->tables[t].index_bytes;
			}
		o = json_pack("{s:s,s:s,s:i,s:s,s:s,s:b,s:s,s:i}", "name", n->name, "host", n->host,
					  "port", n->port, "dbname", n->dbname, "state",
					  n->draining ? "draining" : "active", "up",
					  workerconn_pool_up(pool) && sn->ok, "health",
					  sn->ok ? "ok" : (workerconn_pool_up(pool) ? "error" : "down"),
					  "placements", nplace);
		if (sn->ok) {
			json_object_set_new(o, "version", json_string(sn->version));
			json_object_set_new(o, "extension_version", json_string(sn->ext_version));
			json_object_set_new(o, "disk_bytes", json_integer(sn->db_bytes));
			json_object_set_new(o, "connections", json_integer(sn->connections));
			json_object_set_new(o, "table_bytes", json_integer(tb));
			json_object_set_new(o, "index_bytes", json_integer(ib));
		} else
			json_object_set_new(o, "error", json_string(sn->errmsg ? sn->errmsg : "no answer"));
		json_array_append_new(arr, o);
	}
	http_respond_json(s->req, 200, json_pack("{s:o}", "nodes", arr));
}

void
stats_handle_nodes(HttpRequest *req)
{
	scan_go(scan_new(req, nodes_done));
}

static void
stats_done(Scan *s)
{
	long long points = 0, ib = 0;
	json_t *colls = collections_json(s, &points, &ib);
	json_t *coords = s->meta ? json_incref(s->meta) : json_array();
	double qps = 0, p50 = 0, p95 = 0, p99 = 0;
	long long req1m = 0, err1m = 0;
	size_t i;
	json_t *c;
	int up = 0;

	json_decref(colls);
	json_array_foreach(coords, i, c)
	{
		qps += json_number_value(json_object_get(c, "qps"));
		req1m += json_integer_value(json_object_get(c, "requests_1m"));
		err1m += json_integer_value(json_object_get(c, "errors_1m"));
		/* percentiles do not add up: the cluster figure is the worst one */
		if (json_number_value(json_object_get(c, "p50_ms")) > p50)
			p50 = json_number_value(json_object_get(c, "p50_ms"));
		if (json_number_value(json_object_get(c, "p95_ms")) > p95)
			p95 = json_number_value(json_object_get(c, "p95_ms"));
		if (json_number_value(json_object_get(c, "p99_ms")) > p99)
			p99 = json_number_value(json_object_get(c, "p99_ms"));
	}
	for (int n = 0; n < s->nnodes; n++)
		up += s->nodes[n].ok;
	http_respond_json(
		s->req, 200,
		json_pack("{s:{s:i,s:I,s:I,s:i,s:i,s:i,s:f,s:f,s:f,s:f,s:I,s:f},s:o,s:o*}", "totals",
				  "collections", s->map->ncollections, "points", (json_int_t) points,
				  "index_bytes", (json_int_t) ib, "nodes", s->nnodes, "nodes_up", up,
				  "coordinators", (int) json_array_size(coords), "qps", qps, "p50_ms", p50,
				  "p95_ms", p95, "p99_ms", p99, "requests_1m", (json_int_t) req1m, "error_rate",
				  req1m ? (double) err1m / (double) req1m : 0.0, "coordinators", coords,
				  "metadata_error", s->meta_err ? json_string(s->meta_err) : NULL));
}

static void
stats_meta_done(PgJob *job, void *arg)
{
	Scan *s = arg;

	if (job->ok) {
		json_error_t je;

		s->meta = json_loads(PQgetvalue(job->results[0], 0, 0), 0, &je);
	} else
		s->meta_err = xstrdup(job->errmsg ? job->errmsg : "metadata query failed");
	pgjob_free(job);
	scan_finish(s);
}

void
stats_handle_stats(HttpRequest *req)
{
	Scan *s = scan_new(req, stats_done);
	PgJob *job = pgjob_new(stats_meta_done, s);
	ParamList p;

	params_init(&p);
	params_add_owned(&p, xasprintf("%d milliseconds", 3 * cf_stats_report_ms));
	job->timeout_ms = SCAN_TIMEOUT_MS;
	pgjob_add(job,
			  "SELECT coalesce(json_agg(json_build_object('coordinator', coordinator,\n"
			  "  'coordinator_id', coordinator_id, 'version', version,\n"
			  "  'started_at', started_at, 'reported_at', reported_at,\n"
			  "  'qps', qps, 'p50_ms', p50_ms, 'p95_ms', p95_ms, 'p99_ms', p99_ms,\n"
			  "  'requests_1m', requests_1m, 'errors_1m', errors_1m,\n"
			  "  'requests_total', requests_total,\n"
			  "  'points_upserted_total', points_upserted_total,\n"
			  "  'searches_total', searches_total, 'inflight', inflight)\n"
			  "  ORDER BY coordinator), '[]')\n"
			  "FROM vectron_meta.coordinator_stats WHERE reported_at > now() - $1::interval",
			  &p);
	params_free(&p);
	s->pending++;
	pgjob_submit(metadata_pool(), job);
	scan_go(s);
}

/* ---- sizes for the rebalance planner ---- */

static void
sizes_done(Scan *s)
{
	StatsPlacementSize *sz = xcalloc(s->ntables ? s->ntables : 1, sizeof(StatsPlacementSize));
	bool *ok = xcalloc(s->nnodes ? s->nnodes : 1, sizeof(bool));

	for (int i = 0; i < s->ntables; i++)
		sz[i] = (StatsPlacementSize){s->tables[i].node_id, s->tables[i].table,
									 s->tables[i].table_bytes + s->tables[i].index_bytes,
									 s->tables[i].have};
	for (int i = 0; i < s->nnodes; i++)
		ok[i] = s->nodes[i].ok;
	s->sizes_cb(s->sizes_arg, s->map, sz, s->ntables, ok);
	free(sz);
	free(ok);
}

void
stats_placement_sizes(StatsSizesCallback cb, void *arg)
{
	Scan *s = scan_new(NULL, sizes_done);

	s->sizes_cb = cb;
	s->sizes_arg = arg;
	scan_go(s);
}

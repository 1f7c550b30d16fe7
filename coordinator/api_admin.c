/*
 * api_admin.c: the operations endpoints.
 *
 *   GET /readyz               200 when the metadata database answers and every
 *                             shard of every collection has a readable
 *                             placement on a node that is up; otherwise 503
 *                             with {"ready":false,"missing":[...]}.
 *   GET /metrics              Prometheus text format (obs.c's registry, with
 *                             the gauges refreshed from the map and pools).
 *   GET /v1/admin/slow        the slowest recent requests with per-shard timings.
 *   GET /v1/admin/stats       cluster totals and a per-coordinator breakdown
 *                             (stats.c).
 *   GET /v1/admin/collections per-shard counts, sizes and placements (stats.c).
 *   GET /v1/admin/nodes       each node with health, versions, placements, disk
 *                             and connections (stats.c); POST/DELETE on nodes
 *                             stay in api.c.
 *
 *   POST /v1/admin/shards/{id}/move, GET /v1/admin/moves[/{id}]: shardmove.c.
 *   POST /v1/admin/rebalance {"dry_run"}, GET /v1/admin/rebalance: rebalance.c.
 *
 * GET /healthz stays in api.c (process alive).
 */
#include "api_admin.h"

#include "api_internal.h"
#include "config.h"
#include "fanout.h"
#include "log.h"
#include "metadata.h"
#include "obs.h"
#include "rebalance.h"
#include "shardmove.h"
#include "stats.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- readiness ---- */

typedef struct ReadyCtx {
	HttpRequest *req;
} ReadyCtx;

static void
ready_meta_done(PgJob *job, void *arg)
{
	ReadyCtx *rc = arg;
	json_t *missing = json_array();
	ShardMap *m = shardmap_acquire();

	if (!job->ok)
		json_array_append_new(missing,
							  json_pack("{s:s,s:s}", "component", "metadata", "reason",
										job->errmsg ? job->errmsg : "metadata database down"));
	for (int c = 0; c < m->ncollections; c++) {
		const SmCollection *coll = &m->collections[c];

		if (!coll->active)
			continue;
		for (int s = 0; s < coll->nshards; s++) {
			const SmShard *sh = &coll->shards[s];
			bool ok = false;

			for (int p = 0; p < sh->nplacements && !ok; p++) {
				const SmPlacement *pl = &sh->placements[p];
				PgPool *pool;

				if (!fanout_placement_readable(pl))
					continue;
				pool = workerconn_pool_for_node(pl->node->id, pl->node->name, pl->node->host,
												pl->node->port, pl->node->dbname);
				ok = workerconn_pool_up(pool);
			}
			if (!ok)
				json_array_append_new(
					missing, json_pack("{s:s,s:s,s:i,s:s}", "component", "shard", "collection",
									   coll->name, "shard", sh->index, "reason",
									   "no active placement on a node that is up"));
		}
	}
	shardmap_release(m);
	pgjob_free(job);
	if (json_array_size(missing) == 0) {
		json_decref(missing);
		http_respond_json(rc->req, 200, json_pack("{s:b}", "ready", 1));
	} else
		http_respond_json(rc->req, 503, json_pack("{s:b,s:o}", "ready", 0, "missing", missing));
	free(rc);
}

static void
readyz(HttpRequest *req)
{
	ReadyCtx *rc = xcalloc(1, sizeof(ReadyCtx));
	PgJob *job = pgjob_new(ready_meta_done, rc);

	rc->req = req;
	job->timeout_ms = 2000;
	pgjob_add0(job, "SELECT 1");
	pgjob_submit(metadata_pool(), job);
}

/* ---- metrics ---- */

static void
pool_gauges(const WorkerconnPoolStats *st, void *arg)
{
	(void) arg;
	if (st->node_id < 0)
		return;	/* metadata pools and temporary node-add pools */
	metrics_set(obs_m_pool_conns, METRICS_LABELS(st->name, "busy"), st->busy);
	metrics_set(obs_m_pool_conns, METRICS_LABELS(st->name, "idle"), st->idle);
	metrics_set(obs_m_pool_conns, METRICS_LABELS(st->name, "connecting"), st->connecting);
	metrics_set(obs_m_pool_queued, METRICS_LABELS(st->name), st->queued);
}

static void
metrics_page(HttpRequest *req)
{
	ShardMap *m = shardmap_acquire();
	static const SmPlacementState states[] = {SM_ACTIVE, SM_STALE, SM_BUILDING, SM_REPAIRING};
	char *text;

	for (int n = 0; n < m->nnodes; n++) {
		const SmNode *node = &m->nodes[n];
		PgPool *pool = workerconn_pool_for_node(node->id, node->name, node->host, node->port,
												node->dbname);

		metrics_set(obs_m_node_up, METRICS_LABELS(node->name), workerconn_pool_up(pool));
		for (size_t k = 0; k < sizeof(states) / sizeof(states[0]); k++) {
			int cnt = 0;

			for (int c = 0; c < m->ncollections; c++)
				for (int s = 0; s < m->collections[c].nshards; s++)
					for (int p = 0; p < m->collections[c].shards[s].nplacements; p++) {
						const SmPlacement *pl = &m->collections[c].shards[s].placements[p];

						if (pl->node_id == node->id && pl->state == states[k])
							cnt++;
					}
			metrics_set(obs_m_placements,
						METRICS_LABELS(node->name, shardmap_placement_state_name(states[k])), cnt);
		}
	}
	metrics_set(obs_m_map_version, NULL, (double) m->version);
	shardmap_release(m);
	workerconn_pool_stats(pool_gauges, NULL);
	metrics_set(obs_m_inflight, NULL, http_inflight());
	{
		int pending, running, done, failed;

		rebalance_counts(&pending, &running, &done, &failed);
		metrics_set(obs_m_rebalance, METRICS_LABELS("pending"), pending);
		metrics_set(obs_m_rebalance, METRICS_LABELS("running"), running);
		metrics_set(obs_m_rebalance, METRICS_LABELS("done"), done);
		metrics_set(obs_m_rebalance, METRICS_LABELS("failed"), failed);
	}
	text = metrics_render(obs_registry());
	if (!text) {
		http_respond_error(req, 500, "INTERNAL", "out of memory rendering metrics");
		return;
	}
	http_respond_raw(req, 200, METRICS_CONTENT_TYPE, text, strlen(text));
	free(text);
}

/* ---- slow log ---- */

static void
slow_page(HttpRequest *req)
{
	int limit = 50;

	if (req->query) {
		const char *l = strstr(req->query, "limit=");

		if (l) {
			limit = atoi(l + 6);
			if (limit < 1 || limit > 1000) {
				http_respond_error(req, 400, "INVALID_ARGUMENT", "limit must be 1..1000");
				return;
			}
		}
	}
	http_respond_json(req, 200,
					  json_pack("{s:i,s:o}", "threshold_ms", cf_slow_query_ms, "requests",
								obs_slow_json(limit)));
}

/* ---- routing ---- */

static void
only_get(HttpRequest *req, void (*fn)(HttpRequest *))
{
	if (req->method != HTTP_GET)
		http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use GET",
						   req->method_name, req->path);
	else
		fn(req);
}

bool
api_admin_route(HttpRequest *req, char **segs, int n)
{
	if (n == 1 && strcmp(segs[0], "readyz") == 0) {
		only_get(req, readyz);
		return true;
	}
	if (n == 1 && strcmp(segs[0], "metrics") == 0) {
		only_get(req, metrics_page);
		return true;
	}
	if (n < 3 || strcmp(segs[0], "v1") != 0 || strcmp(segs[1], "admin") != 0)
		return false;
	if (n == 5 && strcmp(segs[2], "shards") == 0 && strcmp(segs[4], "move") == 0) {
		if (req->method != HTTP_POST)
			http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use POST",
							   req->method_name, req->path);
		else if (api_authorize(req, "admin", NULL))
			shardmove_handle_move(req, segs[3]);
		return true;
	}
	if ((n == 3 || n == 4) && strcmp(segs[2], "moves") == 0) {
		if (req->method != HTTP_GET)
			http_respond_error(req, 405, "METHOD_NOT_ALLOWED", "%s is not allowed on %s; use GET",
							   req->method_name, req->path);
		else if (api_authorize(req, "admin", NULL))
			shardmove_handle_list(req, n == 4 ? segs[3] : NULL);
		return true;
	}
	if (n != 3)
		return false;
	if (strcmp(segs[2], "rebalance") == 0) {
		if (!api_authorize(req, "admin", NULL))
			;
		else if (req->method == HTTP_POST)
			rebalance_handle_post(req);
		else if (req->method == HTTP_GET)
			rebalance_handle_get(req);
		else
			http_respond_error(req, 405, "METHOD_NOT_ALLOWED",
							   "%s is not allowed on %s; use GET, POST", req->method_name,
							   req->path);
		return true;
	}
	if (strcmp(segs[2], "slow") == 0) {
		if (api_authorize(req, "admin", NULL))
			only_get(req, slow_page);
		return true;
	}
	if (strcmp(segs[2], "stats") == 0) {
		if (api_authorize(req, "admin", NULL))
			only_get(req, stats_handle_stats);
		return true;
	}
	if (strcmp(segs[2], "nodes") == 0 && req->method == HTTP_GET) {
		/* a superset of api.c's list: health, versions, disk, connections */
		if (api_authorize(req, "admin", NULL))
			stats_handle_nodes(req);
		return true;
	}
	if (strcmp(segs[2], "collections") == 0) {
		if (api_authorize(req, "admin", NULL))
			only_get(req, stats_handle_collections);
		return true;
	}
	return false;
}

/*
 * rebalance.c: the rebalance job.
 *
 * POST /v1/admin/rebalance {"dry_run":true} scans the workers for the size
 * of every placement (stats.c), plans with rebalance_plan and answers the
 * plan.  Without dry_run it plans the same way, answers 202 with the plan,
 * and runs the moves one after another through shardmove_begin (each one a
 * full logical-replication move, durable and resumable on its own).
 * GET /v1/admin/rebalance shows the job: state (idle, running, done,
 * failed), the plan, how many moves are done, the current one and errors.
 * One job at a time per coordinator; the job's own state lives in memory
 * (a restarted coordinator has finished or rolled back the move it was
 * running, and a new rebalance plans the rest).
 */
#include "rebalance.h"

#include "api_internal.h"
#include "log.h"
#include "shardmove.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RB_MAX_MOVES 1000

/* ---- the planner ---- */

static bool
rb_holds(const RbPlacement *pl, int npl, int64_t shard, int node)
{
	for (int i = 0; i < npl; i++)
		if (pl[i].shard_id == shard && pl[i].node == node)
			return true;
	return false;
}

/* The eligible node that would take a placement of shard best, or -1. */
static int
rb_best_target(const RbNode *nodes, int nnodes, const int *count, const int64_t *bytes,
			   const RbPlacement *pl, int npl, int64_t shard)
{
	int best = -1;

	for (int n = 0; n < nnodes; n++) {
		if (!nodes[n].eligible || rb_holds(pl, npl, shard, n))
			continue;
		if (best < 0 || count[n] < count[best] ||
			(count[n] == count[best] && bytes[n] < bytes[best]))
			best = n;
	}
	return best;
}

int
rebalance_plan(RbNode *nodes, int nnodes, RbPlacement *pl, int npl, RbMove *out, int max)
{
	int *count = xcalloc(nnodes ? nnodes : 1, sizeof(int));
	int64_t *bytes = xcalloc(nnodes ? nnodes : 1, sizeof(int64_t));
	int nout = 0;

	for (int i = 0; i < npl; i++) {
		count[pl[i].node]++;
		bytes[pl[i].node] += pl[i].bytes;
	}
	/* 1: empty the draining nodes */
	for (int i = 0; i < npl && nout < max; i++) {
		int to, from = pl[i].node, replace = -1;

		if (!nodes[pl[i].node].draining)
			continue;
		if (nodes[pl[i].node].down) {
			/* re-replication: copy from a replica on a node that answers */
			from = -1;
			for (int k = 0; k < npl; k++)
				if (k != i && pl[k].shard_id == pl[i].shard_id && !nodes[pl[k].node].down &&
					!nodes[pl[k].node].draining)
					from = pl[k].node;
			if (from < 0)
				continue;	/* no replica left: nothing to copy from */
			replace = pl[i].node;
		}
		to = rb_best_target(nodes, nnodes, count, bytes, pl, npl, pl[i].shard_id);
		if (to < 0)
			continue;	/* no node can take it without breaking replica spread */
		out[nout++] = (RbMove){pl[i].shard_id, from, to, replace, pl[i].bytes};
		count[pl[i].node]--;
		bytes[pl[i].node] -= pl[i].bytes;
		count[to]++;
		bytes[to] += pl[i].bytes;
		pl[i].node = to;
	}
	/* 2: even out the counts among eligible nodes, largest placements first */
	while (nout < max) {
		int hi = -1, lo = -1, pick = -1;

		for (int n = 0; n < nnodes; n++) {
			if (!nodes[n].eligible)
				continue;
			if (hi < 0 || count[n] > count[hi] || (count[n] == count[hi] && bytes[n] > bytes[hi]))
				hi = n;
			if (lo < 0 || count[n] < count[lo] || (count[n] == count[lo] && bytes[n] < bytes[lo]))
				lo = n;
		}
		if (hi < 0 || lo < 0 || count[hi] - count[lo] < 2)
			break;
		for (int i = 0; i < npl; i++)
			if (pl[i].node == hi && !rb_holds(pl, npl, pl[i].shard_id, lo) &&
				(pick < 0 || pl[i].bytes > pl[pick].bytes ||
				 (pl[i].bytes == pl[pick].bytes && pl[i].shard_id < pl[pick].shard_id)))
				pick = i;
		if (pick < 0)
			break;
		out[nout++] = (RbMove){pl[pick].shard_id, hi, lo, -1, pl[pick].bytes};
		count[hi]--;
		bytes[hi] -= pl[pick].bytes;
		count[lo]++;
		bytes[lo] += pl[pick].bytes;
		pl[pick].node = lo;
	}
	free(count);
	free(bytes);
	return nout;
}

/* ---- the job ---- */

typedef struct RbJobMove {
	int64_t shard_id;
	char table[64];
	char from[64], to[64];
	char replace[64];	/* re-replication: the down node's placement it replaces */
	int64_t bytes;
	int64_t move_id;
	const char *state;	/* pending, running, done, failed */
	char *error;
} RbJobMove;

static struct {
	const char *state;	/* idle, planning, running, done, failed */
	RbJobMove *moves;
	int nmoves;
	int next;
	int ndone, nfailed;
	char started_at[40];
} rb = {"idle", NULL, 0, 0, 0, 0, ""};

typedef struct RbReq {
	HttpRequest *req;
	bool dry_run;
} RbReq;

static json_t *
rb_plan_json(const RbJobMove *m, int n)
{
	json_t *arr = json_array();

	for (int i = 0; i < n; i++) {
		json_t *o = json_pack("{s:I,s:s,s:s,s:s,s:I,s:s}", "shard_id", (json_int_t) m[i].shard_id,
							  "table", m[i].table, "from", m[i].from, "to", m[i].to, "bytes",
							  (json_int_t) m[i].bytes, "state", m[i].state);

		if (m[i].move_id)
			json_object_set_new(o, "move_id", json_integer(m[i].move_id));
		if (m[i].replace[0])
			json_object_set_new(o, "replaces", json_string(m[i].replace));
		if (m[i].error)
			json_object_set_new(o, "error", json_string(m[i].error));
		json_array_append_new(arr, o);
	}
	return arr;
}

static json_t *
rb_job_json(void)
{
	return json_pack("{s:s,s:s,s:i,s:i,s:i,s:o}", "state", rb.state, "started_at",
					 rb.started_at, "total", rb.nmoves, "done", rb.ndone, "failed", rb.nfailed,
					 "moves", rb_plan_json(rb.moves, rb.nmoves));
}

static void rb_next(void);

static void
rb_move_done(void *arg, int64_t move_id, bool ok, const char *error)
{
	RbJobMove *m = &rb.moves[(intptr_t) arg];

	(void) move_id;
	m->state = ok ? "done" : "failed";
	if (ok)
		rb.ndone++;
	else {
		rb.nfailed++;
		m->error = xstrdup(error ? error : "failed");
	}
	log_info("rebalance: move %d/%d (shard %lld %s -> %s) %s", (int) (intptr_t) arg + 1,
			 rb.nmoves, (long long) m->shard_id, m->from, m->to, m->state);
	rb_next();
}

static void
rb_move_started(void *arg, int status, const char *code, const char *msg, int64_t move_id,
				const char *from, const char *to)
{
	RbJobMove *m = &rb.moves[(intptr_t) arg];

	(void) from;
	(void) to;
	if (status != 202) {
		m->state = "failed";
		m->error = xasprintf("%s: %s", code ? code : "ERROR", msg ? msg : "");
		rb.nfailed++;
		rb_next();
		return;
	}
	m->move_id = move_id;
	m->state = "running";
}

static void
rb_next(void)
{
	if (rb.next >= rb.nmoves) {
		rb.state = rb.nfailed ? "failed" : "done";
		log_info("rebalance: %s (%d moved, %d failed)", rb.state, rb.ndone, rb.nfailed);
		return;
	}
	{
		int i = rb.next++;

		shardmove_begin(rb.moves[i].shard_id, rb.moves[i].from, rb.moves[i].to,
						rb.moves[i].replace[0] ? rb.moves[i].replace : NULL, rb_move_started,
						rb_move_done, (void *) (intptr_t) i);
	}
}

static void
rb_planned(void *arg, ShardMap *map, const StatsPlacementSize *sizes, int n, const bool *node_ok)
{
	RbReq *rr = arg;
	RbNode *nodes = xcalloc(map->nnodes ? map->nnodes : 1, sizeof(RbNode));
	RbPlacement *pl = xcalloc(n ? n : 1, sizeof(RbPlacement));
	RbMove *out = xcalloc(RB_MAX_MOVES, sizeof(RbMove));
	RbJobMove *jm;
	int npl = 0, nout;
	bool busy = false;

	for (int i = 0; i < map->nnodes; i++) {
		nodes[i].name = map->nodes[i].name;
		nodes[i].draining = map->nodes[i].draining;
		nodes[i].eligible = !map->nodes[i].draining && node_ok[i];
		nodes[i].down = !node_ok[i];
	}
	/* every shard's placements; a shard with a placement that is not active
	 * (being built, moved or repaired) is left alone this round, except that
	 * a stale placement on a node that does not answer is what
	 * re-replication replaces */
	for (int c = 0; c < map->ncollections; c++)
		for (int s = 0; s < map->collections[c].nshards; s++) {
			const SmShard *sh = &map->collections[c].shards[s];
			bool settled = true;

			for (int p = 0; p < sh->nplacements; p++) {
				const SmPlacement *pp = &sh->placements[p];
				bool node_down = false;

				for (int k = 0; k < map->nnodes; k++)
					if (map->nodes[k].id == pp->node_id && !node_ok[k])
						node_down = true;
				if (pp->state != SM_ACTIVE && !(pp->state == SM_STALE && node_down))
					settled = false;
			}
			if (!settled) {
				busy = true;
				continue;
			}
			for (int p = 0; p < sh->nplacements; p++) {
				int ni = -1;

				for (int k = 0; k < map->nnodes; k++)
					if (map->nodes[k].id == sh->placements[p].node_id)
						ni = k;
				if (ni < 0)
					continue;
				pl[npl].shard_id = sh->id;
				pl[npl].node = ni;
				for (int z = 0; z < n; z++)
					if (sizes[z].node_id == sh->placements[p].node_id &&
						strcmp(sizes[z].table, sh->table) == 0)
						pl[npl].bytes = sizes[z].bytes;
				npl++;
			}
		}
	nout = rebalance_plan(nodes, map->nnodes, pl, npl, out, RB_MAX_MOVES);
	jm = xcalloc(nout ? nout : 1, sizeof(RbJobMove));
	for (int i = 0; i < nout; i++) {
		jm[i].shard_id = out[i].shard_id;
		snprintf(jm[i].table, sizeof(jm[i].table), "?");
		for (int c = 0; c < map->ncollections; c++)
			for (int s = 0; s < map->collections[c].nshards; s++)
				if (map->collections[c].shards[s].id == out[i].shard_id)
					util_strlcpy(jm[i].table, map->collections[c].shards[s].table,
								 sizeof(jm[i].table));
		util_strlcpy(jm[i].from, nodes[out[i].from].name, sizeof(jm[i].from));
		util_strlcpy(jm[i].to, nodes[out[i].to].name, sizeof(jm[i].to));
		if (out[i].replace >= 0)
			util_strlcpy(jm[i].replace, nodes[out[i].replace].name, sizeof(jm[i].replace));
		jm[i].bytes = out[i].bytes;
		jm[i].state = "pending";
	}
	free(nodes);
	free(pl);
	free(out);
	if (rr->dry_run) {
		json_t *plan = rb_plan_json(jm, nout);

		http_respond_json(rr->req, 200,
						  json_pack("{s:b,s:i,s:o,s:b}", "dry_run", 1, "total", nout, "moves",
									plan, "skipped_busy_shards", busy));
		free(jm);
		free(rr);
		return;
	}
	for (int i = 0; i < rb.nmoves; i++)
		free(rb.moves[i].error);
	free(rb.moves);
	rb.moves = jm;
	rb.nmoves = nout;
	rb.next = rb.ndone = rb.nfailed = 0;
	rb.state = "running";
	{
		time_t now = time(NULL);
		struct tm tm;

		gmtime_r(&now, &tm);
		strftime(rb.started_at, sizeof(rb.started_at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	}
	log_info("rebalance: %d move(s) planned", nout);
	http_respond_json(rr->req, 202, rb_job_json());
	free(rr);
	rb_next();
}

void
rebalance_handle_post(HttpRequest *req)
{
	size_t len;
	char *body = http_body_string(req, &len);
	RbReq *rr;
	bool dry_run = false;

	if (len > 0) {
		json_error_t je;
		json_t *b = json_loadb(body, len, 0, &je), *d;

		if (!b || !json_is_object(b)) {
			free(body);
			json_decref(b);
			http_respond_error(req, 400, "INVALID_JSON", "request body must be a JSON object");
			return;
		}
		d = json_object_get(b, "dry_run");
		if (d && !json_is_boolean(d)) {
			free(body);
			json_decref(b);
			http_respond_error(req, 400, "INVALID_ARGUMENT", "dry_run must be a boolean");
			return;
		}
		dry_run = d && json_is_true(d);
		json_decref(b);
	}
	free(body);
	if (!dry_run && (strcmp(rb.state, "running") == 0 || strcmp(rb.state, "planning") == 0)) {
		http_respond_error(req, 409, "REBALANCE_RUNNING", "a rebalance is running; see GET %s",
						   "/v1/admin/rebalance");
		return;
	}
	if (!dry_run)
		rb.state = "planning";
	rr = xcalloc(1, sizeof(RbReq));
	rr->req = req;
	rr->dry_run = dry_run;
	stats_placement_sizes(rb_planned, rr);
}

void
rebalance_handle_get(HttpRequest *req)
{
	http_respond_json(req, 200, rb_job_json());
}

void
rebalance_counts(int *pending, int *running, int *done, int *failed)
{
	*pending = *running = *done = *failed = 0;
	for (int i = 0; i < rb.nmoves; i++) {
		const char *st = rb.moves[i].state;

		if (strcmp(st, "pending") == 0)
			(*pending)++;
		else if (strcmp(st, "running") == 0)
			(*running)++;
		else if (strcmp(st, "done") == 0)
			(*done)++;
		else
			(*failed)++;
	}
}

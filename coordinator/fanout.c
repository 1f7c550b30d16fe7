/*
 * fanout.c: the read executor (search, get, count).
 *
 * Structs: a Fanout is one read of every shard of one collection.  It holds
 * a FanoutShard per shard (result, error, which placements were tried) and
 * a list of FanoutJobs, one per worker node currently queried; each
 * FanoutJob is one PgJob (workerconn.c) carrying the prelude statement and
 * one statement per shard it serves.
 *
 * One search, step by step:
 *  1. api_points.c parses the body, takes a reference on the shard map and
 *     calls fanout_start with a prelude
 *       SELECT set_config('hnsw.ef_search', $1, true), set_config(...)
 *     and a builder that writes each shard's
 *       SELECT id, v <-> $1::vector ... FROM vectron_shards.c7_s21
 *       WHERE NOT deleted AND <filter> ORDER BY 2 LIMIT k
 *     ($1 in binary); with FANOUT_PREPARED (searches without a filter) the
 *     prelude and shard statements are prepared once per worker connection
 *     and then only bound and executed (workerconn.c).
 *  2. fanout_dispatch picks, for each shard without an answer, the next
 *     readable placement (active state, node not draining, node up first;
 *     round-robin over replicas) and groups shards by node.  Each node gets
 *     one pipeline: prelude, shard statements, Sync -- one round trip and
 *     one implicit transaction, so set_config(..., true) scopes to it.
 *  3. When a node's job finishes, each of its shards either keeps its
 *     PGresult, or marks that placement tried and goes back to step 2 for
 *     another placement.  A shard with no placement left is failed.
 *  4. When no job is in flight, done runs; the API merges the per-shard
 *     top-k lists (merge.c) or answers 503 / a partial result.
 * If the client hangs up, the API calls fanout_cancel, which drops the
 * connections of in-flight jobs (see workerconn.h on cancelling).
 */
#include "fanout.h"

#include "log.h"
#include "obs.h"

#include <stdlib.h>
#include <string.h>

typedef struct FanoutJob {
	Fanout *f;
	PgJob *job;
	int nshards;
	int *shard_idx;
	uint64_t start_us;
	struct FanoutJob *next;
} FanoutJob;

static unsigned fanout_rr;

static void fanout_dispatch(Fanout *f);

bool
fanout_placement_readable(const SmPlacement *p)
{
	return p->state == SM_ACTIVE && p->node && !p->node->draining;
}

/* Next placement to try for a shard, or -1. */
static int
fanout_pick(FanoutShard *fs)
{
	const SmShard *s = fs->shard;
	int n = s->nplacements, start = n ? (int) (fanout_rr++ % n) : 0, fallback = -1;

	for (int k = 0; k < n; k++) {
		int i = (start + k) % n;
		const SmPlacement *p = &s->placements[i];
		PgPool *pool;

		if (fs->tried[i] || !fanout_placement_readable(p))
			continue;
		pool = workerconn_pool_for_node(p->node->id, p->node->name, p->node->host, p->node->port,
										p->node->dbname);
		if (workerconn_pool_up(pool))
			return i;
		if (fallback < 0)
			fallback = i;
	}
	return fallback;
}

static void
fanout_maybe_done(Fanout *f)
{
	if (f->inflight == 0 && !f->finished) {
		f->finished = true;
		f->done(f, f->done_arg);
	}
}

static void
fanout_job_done(PgJob *job, void *arg)
{
	FanoutJob *fj = arg, **pp;
	Fanout *f = fj->f;
	bool retry = false;
	double ms = (double) (util_now_us() - fj->start_us) / 1000.0;

	obs_fanout_shard(job->node, ms, job->ok);
	for (int j = 0; j < fj->nshards; j++) {
		FanoutShard *fs = &f->shards[fj->shard_idx[j]];
		int stmt = j + (f->prelude ? 1 : 0);

		fs->ms = ms;
		fs->rtt_ms = job->done_us > job->sent_us ? (double) (job->done_us - job->sent_us) / 1000.0
												 : ms;
		if (job->ok) {
			if (fs->attempts > 1)
				obs_failover();
			fs->ok = true;
			fs->res = job->results[stmt];
			job->results[stmt] = NULL;
			util_strlcpy(fs->node, job->node, sizeof(fs->node));
		} else {
			free(fs->errmsg);
			fs->errmsg = xstrdup(job->errmsg ? job->errmsg : "unknown error");
			util_strlcpy(fs->sqlstate, job->sqlstate, sizeof(fs->sqlstate));
			util_strlcpy(fs->node, job->node, sizeof(fs->node));
			fs->sql_error = !job->conn_error;
			retry = true;
			obs_fanout_retry(job->node);
			log_info("shard %s: %s (sqlstate %s); trying another placement", fs->shard->table,
					 fs->errmsg, fs->sqlstate);
		}
	}
	for (pp = &f->jobs; *pp; pp = &(*pp)->next)
		if (*pp == fj) {
			*pp = fj->next;
			break;
		}
	f->inflight--;
	pgjob_free(job);
	free(fj->shard_idx);
	free(fj);
	if (retry)
		fanout_dispatch(f);
	fanout_maybe_done(f);
}

/* Send every shard still without an answer to its next placement. */
static void
fanout_dispatch(Fanout *f)
{
	int *pick = xmalloc(sizeof(int) * (f->nshards ? f->nshards : 1));

	for (int i = 0; i < f->nshards; i++) {
		FanoutShard *fs = &f->shards[i];

		pick[i] = -1;
		if (fs->ok || fs->failed)
			continue;
		/* in flight? those have tried[] set for the running placement and no answer */
		{
			bool running = false;

			for (FanoutJob *fj = f->jobs; fj && !running; fj = fj->next)
				for (int j = 0; j < fj->nshards; j++)
					if (fj->shard_idx[j] == i)
						running = true;
			if (running)
				continue;
		}
		pick[i] = fanout_pick(fs);
		if (pick[i] < 0) {
			fs->failed = true;
			f->nfailed++;
			obs_shard_failed();
			if (!fs->errmsg)
				fs->errmsg = xstrdup("no readable placement");
			continue;
		}
		fs->tried[pick[i]] = true;
		fs->attempts++;
	}
	/* group by node */
	for (int i = 0; i < f->nshards; i++) {
		const SmNode *node;
		FanoutJob *fj;
		PgPool *pool;

		if (pick[i] < 0)
			continue;
		node = f->shards[i].shard->placements[pick[i]].node;
		fj = xcalloc(1, sizeof(FanoutJob));
		fj->f = f;
		fj->shard_idx = xmalloc(sizeof(int) * f->nshards);
		fj->job = pgjob_new(fanout_job_done, fj);
		if (f->prelude)
			((f->flags & FANOUT_PREPARED) ? pgjob_add_prepared : pgjob_add)(fj->job, f->prelude,
																		   &f->prelude_params);
		for (int j = i; j < f->nshards; j++) {
			StrBuf sql;
			ParamList params;

			if (pick[j] < 0 || f->shards[j].shard->placements[pick[j]].node != node)
				continue;
			sb_init(&sql);
			params_init(&params);
			f->build(f->build_arg, f->shards[j].shard, &sql, &params);
			((f->flags & FANOUT_PREPARED) ? pgjob_add_prepared : pgjob_add)(fj->job, sql.data,
																		   &params);
			sb_free(&sql);
			params_free(&params);
			fj->shard_idx[fj->nshards++] = j;
			pick[j] = -1;
		}
		pool = workerconn_pool_for_node(node->id, node->name, node->host, node->port,
										node->dbname);
		fj->next = f->jobs;
		f->jobs = fj;
		f->inflight++;
		fj->start_us = util_now_us();
		pgjob_submit(pool, fj->job);
	}
	free(pick);
}

static void
fanout_later_cb(evutil_socket_t fd, short what, void *arg)
{
	Fanout *f = arg;

	f->inflight--;
	f->later_pending = false;
	if (f->cancelled) {
		fanout_free(f);
		return;
	}
	fanout_maybe_done(f);
}

Fanout *
fanout_start(ShardMap *map, const SmCollection *c, const bool *touched, const char *prelude,
			 const ParamList *prelude_params, FanoutBuild build, void *build_arg,
			 FanoutDone done, void *done_arg)
{
	return fanout_start_flags(map, c, touched, prelude, prelude_params, build, build_arg, done,
							  done_arg, 0);
}

Fanout *
fanout_start_flags(ShardMap *map, const SmCollection *c, const bool *touched,
				   const char *prelude, const ParamList *prelude_params, FanoutBuild build,
				   void *build_arg, FanoutDone done, void *done_arg, unsigned flags)
{
	Fanout *f = xcalloc(1, sizeof(Fanout));

	f->flags = flags;
	map->refcount++;
	f->map = map;
	f->coll = c;
	f->nshards = c->nshards;
	f->shards = xcalloc(c->nshards, sizeof(FanoutShard));
	for (int i = 0; i < c->nshards; i++) {
		f->shards[i].shard = &c->shards[i];
		f->shards[i].tried = xcalloc(c->shards[i].nplacements + 1, sizeof(bool));
		if (touched && !touched[i])
			f->shards[i].ok = true;	/* nothing to ask this shard */
	}
	params_init(&f->prelude_params);
	if (prelude) {
		f->prelude = xstrdup(prelude);
		if (prelude_params)
			params_append(&f->prelude_params, prelude_params);
	}
	f->build = build;
	f->build_arg = build_arg;
	f->done = done;
	f->done_arg = done_arg;
	fanout_dispatch(f);
	if (f->inflight == 0) {
		/* nothing could be sent (no placement at all): finish from the loop */
		struct timeval zero = {0, 0};

		f->inflight++;
		f->later_pending = true;
		event_base_once(workerconn_base(), -1, EV_TIMEOUT, fanout_later_cb, f, &zero);
	}
	return f;
}

void
fanout_cancel(Fanout *f)
{
	if (f->later_pending) {
		f->cancelled = true;
		return;
	}
	while (f->jobs) {
		FanoutJob *fj = f->jobs;

		f->jobs = fj->next;
		pgjob_cancel(fj->job);
		pgjob_free(fj->job);
		free(fj->shard_idx);
		free(fj);
	}
	f->inflight = 0;
	f->finished = true;
	fanout_free(f);
}

void
fanout_free(Fanout *f)
{
	if (!f)
		return;
	for (int i = 0; i < f->nshards; i++) {
		if (f->shards[i].res)
			PQclear(f->shards[i].res);
		free(f->shards[i].errmsg);
		free(f->shards[i].tried);
	}
	free(f->shards);
	free(f->prelude);
	params_free(&f->prelude_params);
	shardmap_release(f->map);
	free(f);
}

/*
 * gc.c: garbage collection of delete tombstones (see gc.h).
 *
 * A delete writes a tombstone (deleted = true, version V) instead of
 * removing the row, so that an older write arriving late -- a replay, a
 * repair copy, a write planned before the delete -- loses to it under the
 * versioned-upsert rule.  Kept forever, tombstones grow the shard tables.
 *
 * A tombstone (id, V) may go once nothing can bring back an older version
 * of the id:
 *   - every placement of its shard is 'active' in the map (none stale,
 *     repairing or building: a placement that missed the delete would be
 *     stale, and a repair or a move in progress still copies);
 *   - on every placement, no row of that id has a version below V (each
 *     holds the tombstone, a newer version, or nothing at all -- an active
 *     placement with no row is one a previous pass already cleaned), which
 *     is checked on the workers, not assumed from the map;
 *   - V is older than tombstone_retention (the version is a hybrid-clock
 *     timestamp, so its age is known), which bounds how late an older
 *     write may still arrive (in flight on a worker connection, clock skew
 *     between coordinators).
 * Then the tombstone is deleted on every placement, only where the row is
 * still that tombstone (a version at most V, deleted); a newer write that
 * raced the pass stays.
 *
 * One pass walks every shard of a map snapshot, one shard and one batch of
 * GC_BATCH ids at a time, each step a job on the loop:
 *   candidates  on one placement (rotating between passes): tombstones
 *               older than the cutoff, in id order after the last batch;
 *   confirm     on every placement in turn: the candidates with no older
 *               version there (the list shrinks as it goes);
 *   delete      on every placement in parallel, parameterised
 *               (unnest($1::text[], $2::bigint[])).
 * A shard whose placements are not all active, or whose node errs, is
 * skipped for this pass.  One pass at a time per coordinator; passes of
 * several coordinators may overlap harmlessly (every step is idempotent).
 */
#include "gc.h"

#include "config.h"
#include "log.h"
#include "obs.h"
#include "shardmap.h"
#include "workerconn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GC_BATCH 1000
#define GC_MAX_PLACEMENTS 16

typedef struct Gc {
	ShardMap *m;		/* snapshot held for the whole pass */
	int c, s;			/* the shard being collected */
	int src;			/* placement index giving the candidates */
	char table[64];
	int npl;
	const SmNode *nodes[GC_MAX_PLACEMENTS];
	char *last_id;		/* keyset position in the shard; NULL = start */
	char *ids, *vers;	/* the batch, as PostgreSQL array literals */
	int ncand;			/* candidates in the batch before confirming */
	int confirm_i;
	int pending;		/* delete jobs not back yet */
	bool del_failed;
	long long collected;
	bool skipped;		/* a shard was not fully active or failed */
	int64_t cutoff;
	GcDoneCallback done_cb;
	void *done_arg;
} Gc;

static Gc *gc_current;
static unsigned gc_rotation;

static PgPool *
pool_of(const SmNode *n)
{
	return workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname);
}

static void gc_next_shard(void);
static void gc_batch(void);

static void
gc_end(void)
{
	Gc *g = gc_current;

	if (g->collected > 0)
		log_info("tombstone gc: removed %lld tombstone rows%s", g->collected,
				 g->skipped ? " (some shards skipped)" : "");
	obs_tombstone_gc_pass(g->skipped ? "skipped" : "done");
	shardmap_release(g->m);
	free(g->last_id);
	free(g->ids);
	free(g->vers);
	gc_current = NULL;
	if (g->done_cb)
		g->done_cb(g->done_arg, g->collected, g->skipped);
	free(g);
}

/* Leave the current shard (skipped when why is set) and go to the next. */
static void
gc_shard_over(const char *why)
{
	Gc *g = gc_current;

	if (why) {
		log_debug("tombstone gc: %s skipped: %s", g->table, why);
		g->skipped = true;
	}
	free(g->last_id);
	g->last_id = NULL;
	g->s++;
	gc_next_shard();
}

/* True (and the shard skipped) when a step's job failed. */
static bool
gc_job_failed(PgJob *job)
{
	char why[512];

	if (job->ok)
		return false;
	snprintf(why, sizeof(why), "%s: %s", job->node, job->errmsg ? job->errmsg : "failed");
	pgjob_free(job);
	gc_shard_over(why);
	return true;
}

static void
gc_deleted(PgJob *job, void *arg)
{
	Gc *g = gc_current;

	(void) arg;
	if (job->ok) {
		long n = atol(PQgetvalue(job->results[0], 0, 0));

		g->collected += n;
		obs_tombstones_collected(n);
	} else {
		log_debug("tombstone gc: delete on %s: %s", job->node, job->errmsg);
		g->del_failed = true;
	}
	pgjob_free(job);
	if (--g->pending > 0)
		return;
	if (g->del_failed)
		gc_shard_over("a delete failed; the next pass retries");
	else if (g->ncand == GC_BATCH)
		gc_batch();
	else
		gc_shard_over(NULL);
}

/* Remove the confirmed batch on every placement. */
static void
gc_delete(void)
{
	Gc *g = gc_current;
	char sql[512];

	snprintf(sql, sizeof(sql),
			 "WITH d AS (DELETE FROM vectron_shards.%s t\n"
			 "  USING unnest($1::text[], $2::bigint[]) AS c(id, v)\n"
			 "  WHERE t.id = c.id AND t.deleted AND t.version <= c.v RETURNING 1)\n"
			 "SELECT count(*) FROM d",
			 g->table);
	g->pending = g->npl;
	g->del_failed = false;
	for (int i = 0; i < g->npl; i++) {
		PgJob *job = pgjob_new(gc_deleted, NULL);
		ParamList p;

		params_init(&p);
		params_add(&p, g->ids);
		params_add(&p, g->vers);
		job->timeout_ms = 60000;
		pgjob_add(job, sql, &p);
		params_free(&p);
		pgjob_submit(pool_of(g->nodes[i]), job);
	}
}

static void gc_confirm_next(void);

static void
gc_confirmed(PgJob *job, void *arg)
{
	Gc *g = gc_current;
	PGresult *r;

	(void) arg;
	if (gc_job_failed(job))
		return;
	r = job->results[0];
	free(g->ids);
	free(g->vers);
	g->ids = xstrdup(PQgetvalue(r, 0, 0));
	g->vers = xstrdup(PQgetvalue(r, 0, 1));
	pgjob_free(job);
	if (strcmp(g->ids, "{}") == 0) {
		/* every candidate of the batch is blocked somewhere */
		if (g->ncand == GC_BATCH)
			gc_batch();
		else
			gc_shard_over(NULL);
		return;
	}
	g->confirm_i++;
	gc_confirm_next();
}

/* Keep the candidates of which this placement holds no older version. */
static void
gc_confirm_next(void)
{
	Gc *g = gc_current;
	PgJob *job;
	ParamList p;
	char sql[640];

	if (g->confirm_i == g->npl) {
		gc_delete();
		return;
	}
	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(array_agg(c.id ORDER BY c.id), '{}'),\n"
			 "  coalesce(array_agg(c.v ORDER BY c.id), '{}')\n"
			 "FROM unnest($1::text[], $2::bigint[]) AS c(id, v)\n"
			 "WHERE NOT EXISTS (SELECT 1 FROM vectron_shards.%s t\n"
			 "                  WHERE t.id = c.id AND t.version < c.v)",
			 g->table);
	params_init(&p);
	params_add(&p, g->ids);
	params_add(&p, g->vers);
	job = pgjob_new(gc_confirmed, NULL);
	job->timeout_ms = 60000;
	pgjob_add(job, sql, &p);
	params_free(&p);
	pgjob_submit(pool_of(g->nodes[g->confirm_i]), job);
}

static void
gc_candidates(PgJob *job, void *arg)
{
	Gc *g = gc_current;
	PGresult *r;

	(void) arg;
	if (gc_job_failed(job))
		return;
	r = job->results[0];
	g->ncand = atoi(PQgetvalue(r, 0, 2));
	if (g->ncand == 0) {
		pgjob_free(job);
		gc_shard_over(NULL);
		return;
	}
	free(g->ids);
	free(g->vers);
	free(g->last_id);
	g->ids = xstrdup(PQgetvalue(r, 0, 0));
	g->vers = xstrdup(PQgetvalue(r, 0, 1));
	g->last_id = xstrdup(PQgetvalue(r, 0, 3));
	pgjob_free(job);
	g->confirm_i = 0;
	gc_confirm_next();
}

/* The next batch of old tombstones of the current shard, from one placement. */
static void
gc_batch(void)
{
	Gc *g = gc_current;
	PgJob *job = pgjob_new(gc_candidates, NULL);
	ParamList p;
	char sql[640], cut[32], lim[16];

	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(array_agg(id ORDER BY id), '{}'),\n"
			 "  coalesce(array_agg(version ORDER BY id), '{}'), count(*), max(id)\n"
			 "FROM (SELECT id, version FROM vectron_shards.%s\n"
			 "      WHERE deleted AND version < $1::bigint AND ($2::text IS NULL OR id > $2::text)\n"
			 "      ORDER BY id LIMIT $3::int) s",
			 g->table);
	snprintf(cut, sizeof(cut), "%lld", (long long) g->cutoff);
	snprintf(lim, sizeof(lim), "%d", GC_BATCH);
	params_init(&p);
	params_add(&p, cut);
	params_add(&p, g->last_id);
	params_add(&p, lim);
	job->timeout_ms = 60000;
	pgjob_add(job, sql, &p);
	params_free(&p);
	pgjob_submit(pool_of(g->nodes[g->src]), job);
}

/* Why the shard cannot be collected now, or NULL when it can. */
static const char *
gc_shard_blocked(const SmShard *sh)
{
	if (sh->nplacements == 0 || sh->nplacements > GC_MAX_PLACEMENTS)
		return "no placement, or too many";
	for (int p = 0; p < sh->nplacements; p++) {
		const SmPlacement *pl = &sh->placements[p];

		if (pl->state != SM_ACTIVE)
			return "a placement is not active";
		if (!pl->node || !workerconn_pool_up(pool_of(pl->node)))
			return "a node is down";
	}
	return NULL;
}

/* Find the next shard from (c, s) on and start its first batch. */
static void
gc_next_shard(void)
{
	Gc *g = gc_current;

	for (; g->c < g->m->ncollections; g->c++, g->s = 0) {
		const SmCollection *coll = &g->m->collections[g->c];

		if (!coll->active)
			continue;
		for (; g->s < coll->nshards; g->s++) {
			const SmShard *sh = &coll->shards[g->s];
			const char *why = gc_shard_blocked(sh);

			util_strlcpy(g->table, sh->table, sizeof(g->table));
			if (why) {
				log_debug("tombstone gc: %s skipped: %s", g->table, why);
				g->skipped = true;
				continue;
			}
			g->npl = sh->nplacements;
			for (int p = 0; p < sh->nplacements; p++)
				g->nodes[p] = sh->placements[p].node;
			g->src = (int) (gc_rotation % (unsigned) g->npl);
			gc_batch();
			return;
		}
	}
	gc_end();
}

bool
gc_run(GcDoneCallback cb, void *arg)
{
	Gc *g;
	int64_t now_us = (int64_t) util_wall_us();

	if (gc_current)
		return false;
	g = xcalloc(1, sizeof(Gc));
	g->m = shardmap_acquire();
	/* versions are (wall-clock microseconds << 10) | coordinator id */
	g->cutoff = (now_us - (int64_t) cf_tombstone_retention * 1000000) << 10;
	g->done_cb = cb;
	g->done_arg = arg;
	gc_rotation++;
	gc_current = g;
	gc_next_shard();
	return true;
}

bool
gc_running(void)
{
	return gc_current != NULL;
}

/*
 * repair.c: copy a stale placement back from a healthy one (see repair.h).
 */
#include "repair.h"

#include "log.h"
#include "metadata.h"
#include "shardmap.h"
#include "workerconn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REPAIR_BATCH 2000
#define REPAIR_MAX_PASSES 5

typedef struct Repair {
	int64_t placement_id;
	char table[64];
	SmNode src;			/* copies: the map may change under us */
	SmNode dst;
	char *last_id;		/* keyset position; NULL = start */
	int pass;
	long long copied;
	char src_sum[128];
} Repair;

static Repair *rp_current;

static PgPool *
node_pool(const SmNode *n)
{
	return workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname);
}

static void
repair_end(const char *why, bool ok)
{
	Repair *r = rp_current;

	if (ok)
		log_info("repair of %s on %s done: %lld rows copied from %s", r->table, r->dst.name,
				 r->copied, r->src.name);
	else
		log_warning("repair of %s on %s stopped: %s", r->table, r->dst.name, why);
	free(r->last_id);
	free(r);
	rp_current = NULL;
}

static void
repair_meta_done(PgJob *job, void *arg)
{
	bool ok = (bool) (intptr_t) arg;

	if (!job->ok)
		log_warning("repair: metadata update failed: %s", job->errmsg);
	pgjob_free(job);
	shardmap_reload(NULL, NULL);
	repair_end(ok ? NULL : "placement set back to stale", ok);
}

/* Finish: mark the placement active (ok) or stale again. */
static void
repair_finish(bool ok, const char *why)
{
	PgJob *job = pgjob_new(repair_meta_done, (void *) (intptr_t) ok);
	ParamList p;
	char id[32];

	if (!ok)
		log_warning("repair of %s on %s failed: %s", rp_current->table, rp_current->dst.name, why);
	snprintf(id, sizeof(id), "%lld", (long long) rp_current->placement_id);
	params_init(&p);
	params_add(&p, id);
	pgjob_add(job,
			  ok ? "UPDATE vectron_meta.placement SET state = 'active' "
				   "WHERE id = $1::bigint AND state = 'repairing'"
				 : "UPDATE vectron_meta.placement SET state = 'stale' "
				   "WHERE id = $1::bigint AND state = 'repairing'",
			  &p);
	pgjob_add0(job, "SELECT vectron_meta.bump()");
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

/* When a repair step's job failed: free it, end the repair with its error,
 * and return true. */
static bool
repair_job_failed(PgJob *job)
{
	char why[512];

	if (job->ok)
		return false;
	snprintf(why, sizeof(why), "%s", job->errmsg);
	pgjob_free(job);
	repair_finish(false, why);
	return true;
}

static void repair_copy_next(void);
static void repair_verify(void);

static const char *
sum_sql(const char *table, char *buf, size_t len)
{
	snprintf(buf, len,
			 "SELECT count(*) || ':' || coalesce(sum(hashtext(id || ':' || version)), 0) "
			 "FROM vectron_shards.%s",
			 table);
	return buf;
}

static void
repair_dst_sum(PgJob *job, void *arg)
{
	Repair *r = rp_current;

	if (repair_job_failed(job))
		return;
	if (strcmp(PQgetvalue(job->results[0], 0, 0), r->src_sum) == 0) {
		pgjob_free(job);
		repair_finish(true, NULL);
		return;
	}
	log_info("repair of %s: replicas differ after pass %d (%s vs %s); copying again", r->table,
			 r->pass, r->src_sum, PQgetvalue(job->results[0], 0, 0));
	pgjob_free(job);
	if (++r->pass >= REPAIR_MAX_PASSES) {
		repair_finish(false, "replicas still differ");
		return;
	}
	free(r->last_id);
	r->last_id = NULL;
	repair_copy_next();
}

static void
repair_src_sum(PgJob *job, void *arg)
{
	Repair *r = rp_current;
	PgJob *dj;
	char sql[256];

	if (repair_job_failed(job))
		return;
	util_strlcpy(r->src_sum, PQgetvalue(job->results[0], 0, 0), sizeof(r->src_sum));
	pgjob_free(job);
	dj = pgjob_new(repair_dst_sum, NULL);
	pgjob_add0(dj, sum_sql(r->table, sql, sizeof(sql)));
	pgjob_submit(node_pool(&r->dst), dj);
}

static void
repair_verify(void)
{
	Repair *r = rp_current;
	PgJob *job = pgjob_new(repair_src_sum, NULL);
	char sql[256];

	pgjob_add0(job, sum_sql(r->table, sql, sizeof(sql)));
	pgjob_submit(node_pool(&r->src), job);
}

static void
repair_batch_written(PgJob *job, void *arg)
{
	if (repair_job_failed(job))
		return;
	pgjob_free(job);
	repair_copy_next();
}

static void
repair_tail_deleted(PgJob *job, void *arg)
{
	if (repair_job_failed(job))
		return;
	pgjob_free(job);
	repair_verify();
}

static void
repair_batch_read(PgJob *job, void *arg)
{
	Repair *r = rp_current;
	PGresult *res;
	PgJob *wj;
	ParamList p;
	char sql[1400];
	int n;

	if (repair_job_failed(job))
		return;
	res = job->results[0];
	n = atoi(PQgetvalue(res, 0, 2));
	params_init(&p);
	if (n == 0) {
		/* past the source's last row: drop what only the target has */
		snprintf(sql, sizeof(sql),
				 "DELETE FROM vectron_shards.%s WHERE $1::text IS NULL OR id > $1::text",
				 r->table);
		params_add(&p, r->last_id);
		wj = pgjob_new(repair_tail_deleted, NULL);
		pgjob_add(wj, sql, &p);
		params_free(&p);
		pgjob_free(job);
		pgjob_submit(node_pool(&r->dst), wj);
		return;
	}
	r->copied += n;
	/* rows of this id range that the source lacks go; the rest is upserted */
	snprintf(sql, sizeof(sql),
			 "WITH b AS (SELECT * FROM jsonb_to_recordset($1::jsonb)\n"
			 "    AS r(id text, v text, p jsonb, version bigint, deleted boolean)),\n"
			 "  gone AS (DELETE FROM vectron_shards.%s d\n"
			 "    WHERE ($2::text IS NULL OR d.id > $2::text) AND d.id <= $3::text\n"
			 "      AND d.id NOT IN (SELECT id FROM b))\n"
			 "INSERT INTO vectron_shards.%s AS t (id, v, payload, version, deleted)\n"
			 "SELECT b.id, b.v::vector, b.p, b.version, b.deleted FROM b\n"
			 "ON CONFLICT (id) DO UPDATE SET v = excluded.v, payload = excluded.payload,\n"
			 "  version = excluded.version, deleted = excluded.deleted\n"
			 "WHERE t.version < excluded.version",
			 r->table, r->table);
	params_add(&p, PQgetvalue(res, 0, 0));
	params_add(&p, r->last_id);
	params_add(&p, PQgetvalue(res, 0, 1));
	free(r->last_id);
	r->last_id = xstrdup(PQgetvalue(res, 0, 1));
	wj = pgjob_new(repair_batch_written, NULL);
	wj->timeout_ms = 60000;
	pgjob_add(wj, sql, &p);
	params_free(&p);
	pgjob_free(job);
	pgjob_submit(node_pool(&r->dst), wj);
}

static void
repair_copy_next(void)
{
	Repair *r = rp_current;
	PgJob *job = pgjob_new(repair_batch_read, NULL);
	ParamList p;
	char sql[1024];

	snprintf(sql, sizeof(sql),
			 "SELECT coalesce(jsonb_agg(jsonb_build_object('id', id, 'v', v::text, 'p', payload,\n"
			 "    'version', version, 'deleted', deleted)), '[]'), max(id), count(*)\n"
			 "FROM (SELECT * FROM vectron_shards.%s WHERE $1::text IS NULL OR id > $1::text\n"
			 "      ORDER BY id LIMIT %d) s",
			 r->table, REPAIR_BATCH);
	params_init(&p);
	params_add(&p, r->last_id);
	job->timeout_ms = 60000;
	pgjob_add(job, sql, &p);
	params_free(&p);
	pgjob_submit(node_pool(&r->src), job);
}

static void
repair_map_ready(void *arg, bool ok)
{
	log_info("repair of %s on %s: copying from %s", rp_current->table, rp_current->dst.name,
			 rp_current->src.name);
	repair_copy_next();
}

static void
repair_claimed(PgJob *job, void *arg)
{
	if (!job->ok || PQntuples(job->results[0]) != 1) {
		pgjob_free(job);
		repair_end("another coordinator claimed it, or the metadata is unreachable", false);
		return;
	}
	pgjob_free(job);
	/* writes reach the placement once the map says "repairing" */
	shardmap_reload(repair_map_ready, NULL);
}

void
repair_tick(void)
{
	ShardMap *m;

	if (rp_current)
		return;
	m = shardmap_acquire();
	for (int c = 0; c < m->ncollections && !rp_current; c++) {
		const SmCollection *coll = &m->collections[c];

		if (!coll->active)
			continue;
		for (int s = 0; s < coll->nshards && !rp_current; s++) {
			const SmShard *sh = &coll->shards[s];
			const SmPlacement *stale = NULL, *src = NULL;

			for (int p = 0; p < sh->nplacements; p++) {
				const SmPlacement *pl = &sh->placements[p];

				if (!pl->node || !workerconn_pool_up(node_pool(pl->node)))
					continue;
				if (pl->state == SM_STALE && !stale)
					stale = pl;
				if (pl->state == SM_ACTIVE && !src)
					src = pl;
			}
			if (stale && src) {
				Repair *r = xcalloc(1, sizeof(Repair));
				PgJob *job;
				ParamList p;
				char id[32];

				r->placement_id = stale->id;
				util_strlcpy(r->table, sh->table, sizeof(r->table));
				r->src = *src->node;
				r->dst = *stale->node;
				rp_current = r;
				snprintf(id, sizeof(id), "%lld", (long long) stale->id);
				params_init(&p);
				params_add(&p, id);
				job = pgjob_new(repair_claimed, NULL);
				pgjob_add(job,
						  "UPDATE vectron_meta.placement SET state = 'repairing' "
						  "WHERE id = $1::bigint AND state = 'stale' RETURNING id",
						  &p);
				pgjob_add0(job, "SELECT vectron_meta.bump()");
				params_free(&p);
				pgjob_submit(metadata_pool(), job);
			}
		}
	}
	shardmap_release(m);
}

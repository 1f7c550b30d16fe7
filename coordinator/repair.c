/*
 * repair.c: copy a stale placement back from a healthy one (see repair.h).
 *
 * Leases: the claim writes lease_owner (this coordinator's identity,
 * "<coordinator_id>@<hostname>:<port>") and lease_expires (now +
 * repair_lease_ms) into the placement row; a timer renews it every third of
 * the lease while the repair runs, and the final state change (active, or
 * back to stale) only applies while we still own it.  A placement left
 * 'repairing' by a coordinator that died is claimed again, by any
 * coordinator, once its lease has expired, and by the same identity at
 * once after a restart (it cannot be running a repair it does not know
 * of); the copy then starts over, which the versioned upsert makes safe.
 * A repair that loses its lease (renewal finds another owner, or the row
 * no longer 'repairing') stops without touching the row.
 */
#include "repair.h"

#include "config.h"
#include "http.h"
#include "log.h"
#include "metadata.h"
#include "obs.h"
#include "shardmap.h"
#include "workerconn.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	bool lost;			/* the lease is gone: stop at the next step */
	struct event *renew_ev;
	struct event *delay_ev;	/* test hook: pause between batches */
} Repair;

static Repair *rp_current;
static char rp_owner[320];

/* This coordinator's lease identity. */
static const char *
repair_owner(void)
{
	char host[256];

	if (gethostname(host, sizeof(host)) != 0)
		util_strlcpy(host, "unknown", sizeof(host));
	host[sizeof(host) - 1] = '\0';
	snprintf(rp_owner, sizeof(rp_owner), "%d@%s:%d", cf_coordinator_id, host, http_server_port());
	return rp_owner;
}

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
	if (r->renew_ev)
		event_free(r->renew_ev);
	if (r->delay_ev)
		event_free(r->delay_ev);
	free(r->last_id);
	free(r);
	rp_current = NULL;
}

static void
repair_meta_done(PgJob *job, void *arg)
{
	bool ok = (bool) (intptr_t) arg;
	const char *why = ok ? NULL : "placement set back to stale";

	if (!job->ok) {
		/* still 'repairing' under our lease: the next tick claims it again */
		log_warning("repair: metadata update failed: %s", job->errmsg);
		ok = false;
		why = "the final state could not be recorded; retrying";
	} else if (strcmp(PQcmdTuples(job->results[0]), "1") != 0) {
		ok = false;
		why = "the lease was lost before the end (another coordinator owns the repair, or a "
			  "write marked the placement stale)";
	}
	pgjob_free(job);
	shardmap_reload(NULL, NULL);
	repair_end(why, ok);
}

/* Finish: mark the placement active (ok) or stale again, if still ours. */
static void
repair_finish(bool ok, const char *why)
{
	PgJob *job;
	ParamList p;
	char id[32];

	if (rp_current->lost) {
		repair_end("the lease was lost (another coordinator took the repair over)", false);
		return;
	}
	job = pgjob_new(repair_meta_done, (void *) (intptr_t) ok);
	if (!ok)
		log_warning("repair of %s on %s failed: %s", rp_current->table, rp_current->dst.name, why);
	snprintf(id, sizeof(id), "%lld", (long long) rp_current->placement_id);
	params_init(&p);
	params_add(&p, id);
	params_add(&p, rp_owner);
	pgjob_add(job,
			  ok ? "UPDATE vectron_meta.placement SET state = 'active', lease_owner = NULL, "
				   "lease_expires = NULL "
				   "WHERE id = $1::bigint AND state = 'repairing' AND lease_owner = $2"
				 : "UPDATE vectron_meta.placement SET state = 'stale', lease_owner = NULL, "
				   "lease_expires = NULL "
				   "WHERE id = $1::bigint AND state = 'repairing' AND lease_owner = $2",
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

	if (job->ok && !rp_current->lost)
		return false;
	snprintf(why, sizeof(why), "%s", job->ok ? "lease lost" : job->errmsg);
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
repair_delay_cb(evutil_socket_t fd, short what, void *arg)
{
	repair_copy_next();
}

static void
repair_batch_written(PgJob *job, void *arg)
{
	const char *delay = getenv("VECTRON_TEST_REPAIR_BATCH_DELAY_MS");

	if (repair_job_failed(job))
		return;
	pgjob_free(job);
	if (delay && atoi(delay) > 0) {
		/* test hook: a slow copy, so that a test can stop us mid-repair */
		struct timeval tv = {atoi(delay) / 1000, (atoi(delay) % 1000) * 1000};

		if (!rp_current->delay_ev)
			rp_current->delay_ev = evtimer_new(workerconn_base(), repair_delay_cb, NULL);
		evtimer_add(rp_current->delay_ev, &tv);
		return;
	}
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

static void repair_renew_arm(void);

static void
repair_renewed(PgJob *job, void *arg)
{
	if (!rp_current || rp_current->placement_id != (int64_t) (intptr_t) arg) {
		pgjob_free(job);
		return;
	}
	if (job->ok && PQntuples(job->results[0]) == 0) {
		log_warning("repair of %s on %s: lease lost; stopping", rp_current->table,
					rp_current->dst.name);
		rp_current->lost = true;
	} else if (!job->ok)
		log_warning("repair of %s: lease renewal failed: %s", rp_current->table, job->errmsg);
	pgjob_free(job);
	if (!rp_current->lost)
		repair_renew_arm();
}

/* Extend the lease while the repair runs. */
static void
repair_renew_cb(evutil_socket_t fd, short what, void *arg)
{
	PgJob *job;
	ParamList p;
	char id[32], ms[16];

	if (!rp_current)
		return;
	job = pgjob_new(repair_renewed, (void *) (intptr_t) rp_current->placement_id);
	snprintf(id, sizeof(id), "%lld", (long long) rp_current->placement_id);
	snprintf(ms, sizeof(ms), "%d", cf_repair_lease_ms);
	params_init(&p);
	params_add(&p, id);
	params_add(&p, rp_owner);
	params_add(&p, ms);
	job->timeout_ms = cf_repair_lease_ms / 3;
	pgjob_add(job,
			  "UPDATE vectron_meta.placement\n"
			  "SET lease_expires = now() + $3::int * interval '1 millisecond'\n"
			  "WHERE id = $1::bigint AND state = 'repairing' AND lease_owner = $2 RETURNING id",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

static void
repair_renew_arm(void)
{
	int ms = cf_repair_lease_ms / 3;
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!rp_current->renew_ev)
		rp_current->renew_ev = evtimer_new(workerconn_base(), repair_renew_cb, NULL);
	evtimer_add(rp_current->renew_ev, &tv);
}

static void
repair_map_ready(void *arg, bool ok)
{
	log_info("repair of %s on %s: copying from %s", rp_current->table, rp_current->dst.name,
			 rp_current->src.name);
	repair_copy_next();
}

static void
repair_bumped(PgJob *job, void *arg)
{
	pgjob_free(job);
	/* writes reach the placement once the map says "repairing" */
	shardmap_reload(repair_map_ready, NULL);
}

/* Find placement id in the map with an active source on a node that is up. */
static bool
repair_fill(Repair *r, int64_t placement_id)
{
	ShardMap *m = shardmap_acquire();
	bool found = false;

	for (int c = 0; c < m->ncollections && !found; c++) {
		const SmCollection *coll = &m->collections[c];

		for (int s = 0; s < coll->nshards && !found; s++) {
			const SmShard *sh = &coll->shards[s];
			const SmPlacement *dst = NULL, *src = NULL;

			for (int p = 0; p < sh->nplacements; p++) {
				const SmPlacement *pl = &sh->placements[p];

				if (pl->id == placement_id)
					dst = pl;
				else if (pl->state == SM_ACTIVE && pl->node && !src &&
						 workerconn_pool_up(node_pool(pl->node)))
					src = pl;
			}
			if (dst && src && dst->node) {
				util_strlcpy(r->table, sh->table, sizeof(r->table));
				r->src = *src->node;
				r->dst = *dst->node;
				found = true;
			}
		}
	}
	shardmap_release(m);
	return found;
}

static void
repair_claimed(PgJob *job, void *arg)
{
	Repair *r = rp_current;
	PGresult *res;
	PgJob *bj;

	if (!job->ok || PQntuples(job->results[0]) != 1) {
		if (!job->ok)
			log_debug("repair claim: %s", job->errmsg);
		pgjob_free(job);
		free(r);
		rp_current = NULL;
		return;
	}
	res = job->results[0];
	r->placement_id = atoll(PQgetvalue(res, 0, 0));
	if (!repair_fill(r, r->placement_id)) {
		/* the map moved under us: give the claim back */
		pgjob_free(job);
		repair_finish(false, "the placement or its source is no longer in the map");
		return;
	}
	if (strcmp(PQgetvalue(res, 0, 1), "repairing") == 0) {
		log_warning("repair of %s on %s: taking over from %s (lease %s)", r->table, r->dst.name,
					PQgetvalue(res, 0, 2), PQgetisnull(res, 0, 3) ? "unset" : "expired");
		obs_repair_takeover();
	}
	pgjob_free(job);
	repair_renew_arm();
	bj = pgjob_new(repair_bumped, NULL);
	pgjob_add0(bj, "SELECT vectron_meta.bump()");
	pgjob_submit(metadata_pool(), bj);
}

void
repair_tick(void)
{
	ShardMap *m;
	StrBuf ids;
	int n = 0;

	if (rp_current)
		return;
	/* candidates: stale or repairing placements on a node that answers,
	 * whose shard has an active placement on a node that answers */
	sb_init(&ids);
	sb_append(&ids, "{");
	m = shardmap_acquire();
	for (int c = 0; c < m->ncollections; c++) {
		const SmCollection *coll = &m->collections[c];

		if (!coll->active)
			continue;
		for (int s = 0; s < coll->nshards; s++) {
			const SmShard *sh = &coll->shards[s];
			bool src = false;

			for (int p = 0; p < sh->nplacements; p++) {
				const SmPlacement *pl = &sh->placements[p];

				if (pl->state == SM_ACTIVE && pl->node && workerconn_pool_up(node_pool(pl->node)))
					src = true;
			}
			if (!src)
				continue;
			for (int p = 0; p < sh->nplacements; p++) {
				const SmPlacement *pl = &sh->placements[p];

				if ((pl->state == SM_STALE || pl->state == SM_REPAIRING) && pl->node &&
					workerconn_pool_up(node_pool(pl->node)))
					sb_appendf(&ids, "%s%lld", n++ ? "," : "", (long long) pl->id);
			}
		}
	}
	shardmap_release(m);
	sb_append(&ids, "}");
	if (n == 0) {
		free(sb_steal(&ids));
		return;
	}
	{
		Repair *r = xcalloc(1, sizeof(Repair));
		PgJob *job;
		ParamList p;
		char ms[16];

		rp_current = r;
		snprintf(ms, sizeof(ms), "%d", cf_repair_lease_ms);
		params_init(&p);
		params_add_owned(&p, sb_steal(&ids));
		params_add(&p, repair_owner());
		params_add(&p, ms);
		job = pgjob_new(repair_claimed, NULL);
		job->timeout_ms = 10000;
		/* one claim at a time: a stale placement, or a repairing one whose
		 * lease expired (or is ours from before a restart) */
		pgjob_add(job,
				  "WITH c AS (SELECT id, state, lease_owner, lease_expires\n"
				  "    FROM vectron_meta.placement\n"
				  "    WHERE id = ANY($1::bigint[]) AND (state = 'stale' OR (state = 'repairing'\n"
				  "      AND (lease_expires IS NULL OR lease_expires < now() OR lease_owner = $2)))\n"
				  "    ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED)\n"
				  "UPDATE vectron_meta.placement p SET state = 'repairing', lease_owner = $2,\n"
				  "  lease_expires = now() + $3::int * interval '1 millisecond'\n"
				  "FROM c WHERE p.id = c.id\n"
				  "RETURNING p.id, c.state, coalesce(c.lease_owner, ''), c.lease_expires",
				  &p);
		params_free(&p);
		pgjob_submit(metadata_pool(), job);
	}
}

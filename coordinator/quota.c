/*
 * quota.c: vector and dimension x count quotas (see quota.h for what is
 * counted, how, and the race window with several coordinators).
 *
 * State, all on the loop thread:
 *   q_limits    {"<user>": [max_vectors or -1, max_dimension_count or -1]}
 *   q_points    {"<collection id>": live points}, from collection_usage
 *   q_reserved  {"<collection id>": points admitted and not yet written back}
 *   q_stamp     {"<collection id>": q_seq when this coordinator last wrote the row}
 * A reload replaces q_limits and q_points, but keeps the value of a row this
 * coordinator wrote after the reload started (the reload may have read it
 * before that write committed).  A collection with no usage row (made
 * before counting existed, or while auth was off) is seeded once by
 * counting its shards; the seed never overwrites a row a write created
 * meanwhile.
 */
#include "quota.h"

#include "authz.h"
#include "config.h"
#include "fanout.h"
#include "log.h"
#include "metadata.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static json_t *q_limits, *q_points, *q_reserved, *q_stamp, *q_seeding;
static long long q_seq, q_poll_seq;
static bool q_loading;

static void
ckey(char *buf, size_t len, long long id)
{
	snprintf(buf, len, "%lld", id);
}

static json_t *
obj(json_t **o)
{
	if (!*o)
		*o = json_object();
	return *o;
}

static long long
get_ll(json_t *o, const char *k, long long dflt)
{
	json_t *v = o ? json_object_get(o, k) : NULL;

	return json_is_integer(v) ? (long long) json_integer_value(v) : dflt;
}

static void
add_ll(json_t **o, const char *k, long long d)
{
	long long v = get_ll(*o, k, 0) + d;

	if (v == 0)
		json_object_del(obj(o), k);
	else
		json_object_set_new(obj(o), k, json_integer(v));
}

bool
quota_counting(void)
{
	return authz_enabled();
}

/* ---- seeding a collection without a usage row: count its shards ---- */

typedef struct SeedCtx {
	int64_t coll_id;
} SeedCtx;

static void
seed_written(PgJob *job, void *arg)
{
	SeedCtx *sc = arg;
	char k[32];

	ckey(k, sizeof(k), sc->coll_id);
	json_object_del(obj(&q_seeding), k);
	if (job->ok && PQntuples(job->results[0]) == 1) {
		json_object_set_new(obj(&q_points), k,
							json_integer(atoll(PQgetvalue(job->results[0], 0, 0))));
		json_object_set_new(obj(&q_stamp), k, json_integer(++q_seq));
	}
	pgjob_free(job);
	free(sc);
}

static void
seed_count_build(void *arg, const SmShard *s, StrBuf *sql, ParamList *params)
{
	sb_appendf(sql, "SELECT count(*) FROM vectron_shards.%s WHERE NOT deleted", s->table);
}

static void
seed_counted(Fanout *f, void *arg)
{
	SeedCtx *sc = arg;
	long long total = 0;
	char id[32], n[32];
	ParamList p;
	PgJob *job;

	for (int i = 0; i < f->nshards; i++) {
		if (!f->shards[i].ok || !f->shards[i].res || PQntuples(f->shards[i].res) != 1) {
			/* a shard is down: try again on a later reload */
			ckey(id, sizeof(id), sc->coll_id);
			json_object_del(obj(&q_seeding), id);
			fanout_free(f);
			free(sc);
			return;
		}
		total += atoll(PQgetvalue(f->shards[i].res, 0, 0));
	}
	fanout_free(f);
	ckey(id, sizeof(id), sc->coll_id);
	ckey(n, sizeof(n), total);
	params_init(&p);
	params_add(&p, id);
	params_add(&p, n);
	job = pgjob_new(seed_written, sc);
	job->timeout_ms = 10000;
	/* a write that created the row meanwhile counted from a true start: keep it */
	pgjob_add(job,
			  "WITH i AS (INSERT INTO vectron_meta.collection_usage (collection_id, points) "
			  "SELECT id, $2::bigint FROM vectron_meta.collection WHERE id = $1::bigint "
			  "ON CONFLICT (collection_id) DO NOTHING RETURNING points) "
			  "SELECT points FROM i UNION ALL SELECT points FROM vectron_meta.collection_usage "
			  "WHERE collection_id = $1::bigint AND NOT EXISTS (SELECT 1 FROM i)",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

/* Seed every active collection that has no count yet (after a reload). */
static void
seed_missing(void)
{
	ShardMap *m = shardmap_acquire();
	char k[32];

	for (int i = 0; i < m->ncollections; i++) {
		const SmCollection *c = &m->collections[i];
		SeedCtx *sc;

		ckey(k, sizeof(k), c->id);
		if (!c->active || json_object_get(obj(&q_points), k) ||
			json_object_get(obj(&q_seeding), k))
			continue;
		json_object_set_new(q_seeding, k, json_true());
		sc = xcalloc(1, sizeof(SeedCtx));
		sc->coll_id = c->id;
		fanout_start(m, c, NULL, NULL, NULL, seed_count_build, NULL, seed_counted, sc);
	}
	shardmap_release(m);
}

/* ---- reload ---- */

static void
quota_loaded(PgJob *job, void *arg)
{
	json_t *lim, *pts;
	PGresult *u, *c;

	q_loading = false;
	if (!job->ok) {
		log_warning("auth: reloading quotas and usage failed: %s", job->errmsg ? job->errmsg : "?");
		pgjob_free(job);
		return;
	}
	u = job->results[0];
	c = job->results[1];
	lim = json_object();
	pts = json_object();
	for (int i = 0; i < PQntuples(u); i++)
		json_object_set_new(lim, PQgetvalue(u, i, 0),
							json_pack("[I,I]",
									  (json_int_t) (PQgetisnull(u, i, 1) ? -1 :
													atoll(PQgetvalue(u, i, 1))),
									  (json_int_t) (PQgetisnull(u, i, 2) ? -1 :
													atoll(PQgetvalue(u, i, 2)))));
	for (int i = 0; i < PQntuples(c); i++) {
		const char *k = PQgetvalue(c, i, 0);

		if (get_ll(q_stamp, k, 0) > q_poll_seq)
			continue;
		json_object_set_new(pts, k, json_integer(atoll(PQgetvalue(c, i, 1))));
	}
	{
		const char *k;
		json_t *v;

		/* rows written here after the reload read them */
		json_object_foreach(obj(&q_stamp), k, v)
			if (json_integer_value(v) > q_poll_seq && json_object_get(q_points, k))
				json_object_set(pts, k, json_object_get(q_points, k));
	}
	json_decref(q_limits);
	json_decref(q_points);
	q_limits = lim;
	q_points = pts;
	json_object_clear(obj(&q_stamp));
	pgjob_free(job);
	seed_missing();
}

void
quota_poll(void)
{
	PgJob *job;

	if (q_loading || !authz_enabled())
		return;
	q_loading = true;
	q_poll_seq = q_seq;
	job = pgjob_new(quota_loaded, NULL);
	job->timeout_ms = 10000;
	pgjob_add0(job, "SELECT id, max_vectors, max_dimension_count FROM vectron_meta.app_user "
			   "WHERE max_vectors IS NOT NULL OR max_dimension_count IS NOT NULL");
	pgjob_add0(job, "SELECT collection_id, points FROM vectron_meta.collection_usage");
	pgjob_submit(metadata_pool(), job);
}

void
quota_free(void)
{
	json_decref(q_limits);
	json_decref(q_points);
	json_decref(q_reserved);
	json_decref(q_stamp);
	json_decref(q_seeding);
	q_limits = q_points = q_reserved = q_stamp = q_seeding = NULL;
}

/* ---- limits and usage ---- */

void
quota_set_user(long long user, long long vectors, long long dimension_count)
{
	char k[32];

	ckey(k, sizeof(k), user);
	if (vectors < 0 && dimension_count < 0)
		json_object_del(obj(&q_limits), k);
	else
		json_object_set_new(obj(&q_limits), k,
							json_pack("[I,I]", (json_int_t) vectors, (json_int_t) dimension_count));
}

static long long
limit_of(long long user, int which)
{
	char k[32];
	json_t *v;

	ckey(k, sizeof(k), user);
	v = json_array_get(json_object_get(obj(&q_limits), k), which);
	return v ? (long long) json_integer_value(v) : -1;
}

long long
quota_vectors(long long user)
{
	return limit_of(user, 0);
}

long long
quota_dimension_count(long long user)
{
	return limit_of(user, 1);
}

/* Points of a collection: the count plus what is reserved in flight. */
static long long
points_of(int64_t coll_id)
{
	char k[32];

	ckey(k, sizeof(k), coll_id);
	return get_ll(q_points, k, 0) + get_ll(q_reserved, k, 0);
}

void
quota_usage(long long user, long long *vectors, long long *dimension_count)
{
	ShardMap *m = shardmap_acquire();

	*vectors = *dimension_count = 0;
	for (int i = 0; i < m->ncollections; i++) {
		const SmCollection *c = &m->collections[i];
		long long n;

		if (authz_cache_owner(c->name) != user)
			continue;
		n = points_of(c->id);
		*vectors += n;
		*dimension_count += n * c->dimension;
	}
	shardmap_release(m);
}

bool
quota_reserve(const SmCollection *c, long long npoints, long long *reserved, char *msg,
			  size_t msglen)
{
	long long owner, qv, qd, v, d;
	char k[32];

	*reserved = 0;
	if (!authz_enabled())
		return true;
	owner = authz_cache_owner(c->name);
	qv = owner ? quota_vectors(owner) : -1;
	qd = owner ? quota_dimension_count(owner) : -1;
	if (qv >= 0 || qd >= 0) {
		quota_usage(owner, &v, &d);
		if (qv >= 0 && v + npoints > qv) {
			snprintf(msg, msglen,
					 "vector quota exceeded: the owner of \"%s\" has %lld of %lld vectors and "
					 "this write adds up to %lld; delete points or ask an admin",
					 c->name, v, qv, npoints);
			return false;
		}
		if (qd >= 0 && d + npoints * c->dimension > qd) {
			snprintf(msg, msglen,
					 "dimension_count quota exceeded: the owner of \"%s\" uses %lld of %lld "
					 "(dimension x vectors) and this write adds up to %lld; delete points or "
					 "ask an admin",
					 c->name, d, qd, npoints * c->dimension);
			return false;
		}
	}
	ckey(k, sizeof(k), c->id);
	add_ll(&q_reserved, k, npoints);
	*reserved = npoints;
	return true;
}

typedef struct SettleCtx {
	int64_t coll_id;
	long long reserved;
} SettleCtx;

static void
settle_written(PgJob *job, void *arg)
{
	SettleCtx *sc = arg;
	char k[32];

	ckey(k, sizeof(k), sc->coll_id);
	if (job->ok && PQntuples(job->results[0]) == 1) {
		json_object_set_new(obj(&q_points), k,
							json_integer(atoll(PQgetvalue(job->results[0], 0, 0))));
		json_object_set_new(obj(&q_stamp), k, json_integer(++q_seq));
	} else if (!job->ok && strcmp(job->sqlstate, "23503") != 0)
		log_warning("quota: recording the point count of collection %lld failed: %s",
					(long long) sc->coll_id, job->errmsg ? job->errmsg : "?");
	add_ll(&q_reserved, k, -sc->reserved);
	pgjob_free(job);
	free(sc);
}

void
quota_settle(int64_t coll_id, long long reserved, long long delta)
{
	char k[32], d[32];
	SettleCtx *sc;
	ParamList p;
	PgJob *job;

	ckey(k, sizeof(k), coll_id);
	if (!authz_enabled() || delta == 0) {
		add_ll(&q_reserved, k, -reserved);
		return;
	}
	if (delta < 0 && get_ll(q_points, k, 0) + delta >= 0)
		/* freed at once; the row write confirms it (a 0 stays: it is a count) */
		json_object_set_new(obj(&q_points), k, json_integer(get_ll(q_points, k, 0) + delta));
	sc = xcalloc(1, sizeof(SettleCtx));
	sc->coll_id = coll_id;
	sc->reserved = reserved;
	ckey(d, sizeof(d), delta);
	params_init(&p);
	params_add(&p, k);
	params_add(&p, d);
	job = pgjob_new(settle_written, sc);
	job->timeout_ms = 10000;
	pgjob_add(job,
			  "INSERT INTO vectron_meta.collection_usage (collection_id, points) "
			  "VALUES ($1::bigint, greatest($2::bigint, 0)) ON CONFLICT (collection_id) DO UPDATE "
			  "SET points = greatest(vectron_meta.collection_usage.points + $2::bigint, 0), "
			  "updated_at = now() RETURNING points",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

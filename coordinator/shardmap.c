/*
 * shardmap.c: the shard map snapshot and its reloads (see shardmap.h).
 */
#include "shardmap.h"

#include "hash.h"
#include "log.h"
#include "metadata.h"
#include "workerconn.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static ShardMap *sm_current;
static bool sm_loading;
static bool sm_again;

typedef struct SmWaiter {
	ShardMapReadyCallback cb;
	void *arg;
	struct SmWaiter *next;
} SmWaiter;
static SmWaiter *sm_waiters;

const char *
shardmap_metric_name(SmMetric m)
{
	static const char *const n[] = {"l2", "ip", "cosine", "l1"};

	return n[m];
}

const char *
shardmap_metric_op(SmMetric m)
{
	static const char *const n[] = {"<->", "<#>", "<=>", "<+>"};

	return n[m];
}

const char *
shardmap_placement_state_name(SmPlacementState s)
{
	static const char *const n[] = {"active", "stale", "building", "repairing"};

	return n[s];
}

static void
shardmap_free(ShardMap *m)
{
	for (int i = 0; i < m->ncollections; i++) {
		SmCollection *c = &m->collections[i];

		for (int s = 0; s < c->nshards; s++)
			free(c->shards[s].placements);
		free(c->shards);
		free(c->hash_mins);
		json_decref(c->index);
		json_decref(c->metadata);
	}
	free(m->collections);
	free(m->nodes);
	free(m);
}

static const char *
jstr(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s ? s : "";
}

ShardMap *
shardmap_parse(const char *text, char *err, size_t errlen)
{
	json_error_t je;
	json_t *root = json_loads(text, 0, &je), *nodes, *cols, *v;
	ShardMap *m;
	size_t i;

	if (!root) {
		snprintf(err, errlen, "shard map JSON: %s", je.text);
		return NULL;
	}
	m = xcalloc(1, sizeof(ShardMap));
	m->refcount = 1;
	m->version = json_integer_value(json_object_get(root, "version"));
	nodes = json_object_get(root, "nodes");
	cols = json_object_get(root, "collections");
	m->nnodes = json_array_size(nodes);
	m->nodes = xcalloc(m->nnodes, sizeof(SmNode));
	json_array_foreach(nodes, i, v) {
		SmNode *n = &m->nodes[i];

		n->id = json_integer_value(json_object_get(v, "id"));
		util_strlcpy(n->name, jstr(v, "name"), sizeof(n->name));
		util_strlcpy(n->host, jstr(v, "host"), sizeof(n->host));
		util_strlcpy(n->dbname, jstr(v, "dbname"), sizeof(n->dbname));
		n->port = json_integer_value(json_object_get(v, "port"));
		n->draining = strcmp(jstr(v, "state"), "draining") == 0;
	}
	m->ncollections = json_array_size(cols);
	m->collections = xcalloc(m->ncollections, sizeof(SmCollection));
	json_array_foreach(cols, i, v) {
		SmCollection *c = &m->collections[i];
		json_t *shards = json_object_get(v, "shards"), *sv;
		const char *metric = jstr(v, "metric");
		size_t s;

		c->id = json_integer_value(json_object_get(v, "id"));
		util_strlcpy(c->name, jstr(v, "name"), sizeof(c->name));
		util_strlcpy(c->created_at, jstr(v, "created_at"), sizeof(c->created_at));
		c->dimension = json_integer_value(json_object_get(v, "dimension"));
		c->replication_factor = json_integer_value(json_object_get(v, "replication_factor"));
		c->metric = strcmp(metric, "ip") == 0 ? SM_IP
				  : strcmp(metric, "cosine") == 0 ? SM_COSINE
				  : strcmp(metric, "l1") == 0 ? SM_L1 : SM_L2;
		c->active = strcmp(jstr(v, "state"), "active") == 0;
		c->index = json_incref(json_object_get(v, "index"));
		c->metadata = json_incref(json_object_get(v, "metadata"));
		c->nshards = json_array_size(shards);
		c->shards = xcalloc(c->nshards, sizeof(SmShard));
		c->hash_mins = xcalloc(c->nshards, sizeof(int64_t));
		json_array_foreach(shards, s, sv) {
			SmShard *sh = &c->shards[s];
			json_t *pls = json_object_get(sv, "placements"), *pv;
			size_t p;

			sh->id = json_integer_value(json_object_get(sv, "id"));
			sh->index = json_integer_value(json_object_get(sv, "index"));
			sh->hash_min = json_integer_value(json_object_get(sv, "hash_min"));
			sh->hash_max = json_integer_value(json_object_get(sv, "hash_max"));
			c->hash_mins[s] = sh->hash_min;
			snprintf(sh->table, sizeof(sh->table), "c%lld_s%lld", (long long) c->id,
					 (long long) sh->id);
			sh->nplacements = json_array_size(pls);
			sh->placements = xcalloc(sh->nplacements, sizeof(SmPlacement));
			json_array_foreach(pls, p, pv) {
				SmPlacement *pl = &sh->placements[p];
				const char *st = jstr(pv, "state");

				pl->id = json_integer_value(json_object_get(pv, "id"));
				pl->node_id = json_integer_value(json_object_get(pv, "node_id"));
				pl->state = strcmp(st, "stale") == 0 ? SM_STALE
						  : strcmp(st, "building") == 0 ? SM_BUILDING
						  : strcmp(st, "repairing") == 0 ? SM_REPAIRING : SM_ACTIVE;
				for (int n = 0; n < m->nnodes; n++)
					if (m->nodes[n].id == pl->node_id)
						pl->node = &m->nodes[n];
			}
		}
	}
	json_decref(root);
	return m;
}

static void
shardmap_install(ShardMap *m)
{
	ShardMap *old = sm_current;

	if (old && old->version != m->version)
		log_info("shard map version %lld -> %lld", (long long) old->version,
				 (long long) m->version);
	/* forget pools of removed nodes */
	if (old)
		for (int i = 0; i < old->nnodes; i++)
			if (!shardmap_node_by_id(m, old->nodes[i].id))
				workerconn_pool_drop(old->nodes[i].id);
	sm_current = m;
	if (old)
		shardmap_release(old);
}

bool
shardmap_load_initial(const char *dsn, char *err, size_t errlen)
{
	PGconn *c = PQconnectdb(dsn);
	PGresult *r;
	ShardMap *m;

	if (PQstatus(c) != CONNECTION_OK) {
		snprintf(err, errlen, "cannot connect to the metadata database: %s", PQerrorMessage(c));
		PQfinish(c);
		return false;
	}
	r = PQexec(c, META_SQL_MAP);
	if (PQresultStatus(r) != PGRES_TUPLES_OK) {
		snprintf(err, errlen, "loading the shard map: %s", PQresultErrorMessage(r));
		PQclear(r);
		PQfinish(c);
		return false;
	}
	m = shardmap_parse(PQgetvalue(r, 0, 0), err, errlen);
	PQclear(r);
	PQfinish(c);
	if (!m)
		return false;
	shardmap_install(m);
	return true;
}

ShardMap *
shardmap_acquire(void)
{
	sm_current->refcount++;
	return sm_current;
}

void
shardmap_release(ShardMap *m)
{
	if (m && --m->refcount == 0)
		shardmap_free(m);
}

int64_t
shardmap_version(void)
{
	return sm_current ? sm_current->version : 0;
}

static void reload_start(void);

static void
reload_done(PgJob *job, void *arg)
{
	bool ok = false;
	SmWaiter *w;

	if (job->ok && job->results[0] && PQntuples(job->results[0]) == 1) {
		char err[256];
		ShardMap *m = shardmap_parse(PQgetvalue(job->results[0], 0, 0), err, sizeof(err));

		if (m) {
			shardmap_install(m);
			ok = true;
		} else
			log_error("%s", err);
	} else
		log_warning("shard map reload failed: %s", job->errmsg ? job->errmsg : "no rows");
	pgjob_free(job);
	sm_loading = false;
	if (sm_again) {
		/* someone asked again while we loaded: their callbacks wait for the next load */
		sm_again = false;
		reload_start();
		return;
	}
	w = sm_waiters;
	sm_waiters = NULL;
	while (w) {
		SmWaiter *n = w->next;

		w->cb(w->arg, ok);
		free(w);
		w = n;
	}
}

static void
reload_start(void)
{
	PgJob *job = pgjob_new(reload_done, NULL);

	sm_loading = true;
	pgjob_add0(job, META_SQL_MAP);
	pgjob_submit(metadata_pool(), job);
}

void
shardmap_reload(ShardMapReadyCallback cb, void *arg)
{
	if (cb) {
		SmWaiter *w = xcalloc(1, sizeof(SmWaiter));

		w->cb = cb;
		w->arg = arg;
		w->next = sm_waiters;
		sm_waiters = w;
	}
	if (sm_loading)
		sm_again = true;
	else
		reload_start();
}

static bool sm_polling;

static void
poll_done(PgJob *job, void *arg)
{
	sm_polling = false;
	if (job->ok && job->results[0] && PQntuples(job->results[0]) == 1) {
		long long v = atoll(PQgetvalue(job->results[0], 0, 0));

		if (v != shardmap_version() && !sm_loading)
			shardmap_reload(NULL, NULL);
	}
	pgjob_free(job);
}

void
shardmap_poll(void)
{
	PgJob *job;

	if (sm_polling || sm_loading)
		return;
	sm_polling = true;
	job = pgjob_new(poll_done, NULL);
	job->timeout_ms = 5000;
	pgjob_add0(job, META_SQL_VERSION);
	pgjob_submit(metadata_pool(), job);
}

const SmCollection *
shardmap_collection(const ShardMap *m, const char *name)
{
	for (int i = 0; i < m->ncollections; i++)
		if (m->collections[i].active && strcmp(m->collections[i].name, name) == 0)
			return &m->collections[i];
	return NULL;
}

const SmCollection *
shardmap_collection_by_id(const ShardMap *m, int64_t id)
{
	for (int i = 0; i < m->ncollections; i++)
		if (m->collections[i].id == id)
			return &m->collections[i];
	return NULL;
}

const SmNode *
shardmap_node(const ShardMap *m, const char *name)
{
	for (int i = 0; i < m->nnodes; i++)
		if (strcmp(m->nodes[i].name, name) == 0)
			return &m->nodes[i];
	return NULL;
}

const SmNode *
shardmap_node_by_id(const ShardMap *m, int id)
{
	for (int i = 0; i < m->nnodes; i++)
		if (m->nodes[i].id == id)
			return &m->nodes[i];
	return NULL;
}

const SmShard *
shardmap_route(const SmCollection *c, const char *id, size_t len)
{
	return &c->shards[hash_route(hash_point_id(id, len), c->hash_mins, c->nshards)];
}

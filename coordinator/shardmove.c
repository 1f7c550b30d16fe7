/*
 * shardmove.c: shard moves with PostgreSQL logical replication.
 *
 * A move copies one placement of a shard (table vectron_shards.c<C>_s<S>)
 * from node `from` to node `to` while reads and writes go on, switches the
 * map atomically and drops the old copy.  Each step is written to the
 * move's row in vectron_meta.shard_move before it runs, so that a move
 * whose coordinator stopped can be finished (after the switch) or rolled
 * back (before it) by the adopt timer of any coordinator.  Every step is
 * idempotent (IF EXISTS / IF NOT EXISTS), so running one twice is harmless.
 *
 *   begin         vectron_meta.move_begin: checks, a 'building' placement on
 *                 the target (gets neither reads nor writes), the move row.
 *   target_table  on the target: the shard table (no HNSW index yet) and a
 *                 marker table vx_move_<id>(k, v).
 *   publication   on the source: the marker table and a publication of the
 *                 shard table plus the marker.
 *   subscription  on the target: CREATE SUBSCRIPTION (slot vx_move_<id> on
 *                 the source, initial copy from a snapshot).
 *   sync          wait until both tables are in state 'r' (copied, caught up).
 *   index         on the target: the HNSW index, CREATE INDEX CONCURRENTLY
 *                 after the bulk load (when the workers have the hnsw AM),
 *                 and a REPLICA trigger that makes replicated rows obey the
 *                 versioned-upsert rule (an older version never overwrites
 *                 a newer one; an INSERT of an existing id becomes that
 *                 update), since after the switch direct writes and late
 *                 replicated ones can meet on the target.
 *   fence         on the source, from a one-connection pool: BEGIN; LOCK
 *                 TABLE ... IN EXCLUSIVE MODE (reads go on, writes wait);
 *                 then a new token in the marker table, committed after the
 *                 lock, and wait until the target shows it: every write
 *                 committed before the fence has been applied there.
 *   switch        vectron_meta.move_switch in one transaction: the target
 *                 placement becomes active, the source placement goes; map
 *                 version bump.  The map is reloaded, then the fence is
 *                 released (COMMIT).  Writes that waited at the fence with
 *                 the old map commit on the source and still replicate.
 *   grace         wait 2 x map_poll_ms so other coordinators see the map.
 *   drain         a second marker round: the late writes are on the target.
 *   cleanup       drop the subscription (disable, slot_name = NONE, drop),
 *                 the trigger and markers, then on the source the slots
 *                 (vx_move_<id> and any table-sync slot pg_<suboid>_sync_*),
 *                 the publication; the source table goes to the cleanup list
 *                 (dropped by health.c's cleanup pass); the move is 'done'.
 * Rollback (a failure before the switch, or an adopted unswitched move):
 * drop the subscription, the target table and markers, the slots and the
 * publication, and delete the 'building' placement ('rolled_back').
 *
 * Leases: a move row is owned by `owner`; every adopt tick (5 s, or a third
 * of move_lease_ms if shorter) renews updated_at of the moves this process
 * runs, and any coordinator adopts a running move whose updated_at is older
 * than move_lease_ms (default 60 s: its owner died).
 *
 * Testing hook: with VECTRON_TEST_MOVE_CRASH_AT=<step> in the environment
 * the process exits (status 70) when that step is recorded, as a crash.
 */
#include "shardmove.h"

#include "api_internal.h"
#include "config.h"
#include "log.h"
#include "metadata.h"
#include "obs.h"

#include <http_parser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MV_POLL_MS 50
#define MV_SYNC_TIMEOUT_MS (30 * 60 * 1000)
#define MV_FENCE_TIMEOUT_MS 10000
#define MV_SLOT_TRIES 100

typedef struct MvNode {
	int id;
	char name[64];
	char host[256];
	int port;
	char dbname[64];
	bool known;
} MvNode;

typedef struct Move Move;
typedef void (*MvStep)(Move *mv);
typedef void (*MvNext)(Move *mv, PgJob *job);

struct Move {
	int64_t id;
	int64_t shard_id;
	char table[64];
	char marker[64];	/* vx_move_<id>: marker table, publication, subscription, slot */
	MvNode from, to;
	int dimension;
	int metric;
	int m, efc;
	bool switched;
	int64_t sub_oid;
	bool rolling_back;
	bool ended;			/* move_end recorded */
	char *error;
	int polls;
	int64_t token;
	PgPool *fence;
	int fence_pool_id;
	struct event *timer;
	MvStep after_timer;
	ShardMoveDone done;		/* rebalance: told when the move ends here */
	void *done_arg;
	Move *next;
};

typedef struct MvJobArg {
	Move *mv;
	MvNext next;
} MvJobArg;

static Move *moves;
static struct event *adopt_ev;
static struct event_base *mv_base;
static char mv_owner[320];
static char mv_boot[40];	/* when this process started (UTC) */

static void mv_rollback(Move *mv, const char *why);
static void mv_step_target_table(Move *mv);
static void mv_step_publication(Move *mv);
static void mv_step_subscription(Move *mv);
static void mv_step_sync(Move *mv);
static void mv_step_index(Move *mv);
static void mv_step_fence(Move *mv);
static void mv_step_grace(Move *mv);
static void mv_step_drain(Move *mv);
static void mv_step_cleanup(Move *mv);
static void mv_rb_target(Move *mv);

/* ---- plumbing ---- */

static PgPool *
mv_pool(const MvNode *n)
{
	return workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname);
}

static void
mv_job_cb(PgJob *job, void *arg)
{
	MvJobArg *a = arg;

	a->next(a->mv, job);
	pgjob_free(job);
	free(a);
}

static void
mv_submit(Move *mv, PgPool *pool, PgJob *job, MvNext next)
{
	MvJobArg *a = xcalloc(1, sizeof(MvJobArg));

	a->mv = mv;
	a->next = next;
	job->cb = mv_job_cb;
	job->arg = a;
	pgjob_submit(pool, job);
}

static PgJob *
mv_job(int timeout_ms)
{
	PgJob *job = pgjob_new(NULL, NULL);

	job->timeout_ms = timeout_ms;
	return job;
}

static void
mv_free(Move *mv)
{
	Move **pp;

	obs_move_ended(!mv->ended ? "adopt" : mv->switched ? "done" : "rolled_back");
	if (mv->done) {
		/* ended here (done or rolled back), or left to the adopt timer */
		mv->done(mv->done_arg, mv->id, mv->ended && mv->switched,
				 mv->error ? mv->error : (mv->ended ? NULL : "left to the adopt timer"));
		mv->done = NULL;
	}

	for (pp = &moves; *pp; pp = &(*pp)->next)
		if (*pp == mv) {
			*pp = mv->next;
			break;
		}
	if (mv->fence)
		workerconn_pool_drop(mv->fence_pool_id);
	if (mv->timer)
		event_free(mv->timer);
	free(mv->error);
	free(mv);
}

static void
mv_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	Move *mv = arg;

	(void) fd;
	(void) what;
	mv->after_timer(mv);
}

static void
mv_later(Move *mv, int ms, MvStep step)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (!mv->timer)
		mv->timer = evtimer_new(mv_base, mv_timer_cb, mv);
	mv->after_timer = step;
	evtimer_add(mv->timer, &tv);
}

/* A step of a switched move failed: the move must finish, so try again. */
static void
mv_retry_forward(Move *mv, MvStep step, PgJob *job)
{
	log_warning("move %lld (%s %s -> %s): %s; retrying", (long long) mv->id, mv->table,
				mv->from.name, mv->to.name, job && job->errmsg ? job->errmsg : "failed");
	mv_later(mv, 1000, step);
}

/* A step before the switch failed: roll back. */
static bool
mv_check(Move *mv, PgJob *job, const char *what)
{
	char msg[1200];

	if (job->ok)
		return true;
	snprintf(msg, sizeof(msg), "%s failed on %s: %s", what, job->node,
			 job->errmsg ? job->errmsg : "unknown error");
	mv_rollback(mv, msg);
	return false;
}

typedef struct StepRec {
	Move *mv;
	MvStep step;
	char name[32];
} StepRec;

static void
mv_recorded(PgJob *job, void *arg)
{
	StepRec *sr = arg;
	const char *crash = getenv("VECTRON_TEST_MOVE_CRASH_AT");

	if (!job->ok)
		log_warning("move %lld: recording step %s: %s", (long long) sr->mv->id, sr->name,
					job->errmsg ? job->errmsg : "failed");
	if (crash && strcmp(crash, sr->name) == 0) {
		log_write(LOG_FATAL, NULL, "move %lld: VECTRON_TEST_MOVE_CRASH_AT=%s: exiting",
				  (long long) sr->mv->id, sr->name);
		_exit(70);
	}
	pgjob_free(job);
	sr->step(sr->mv);
	free(sr);
}

/* Record the step (and heartbeat) in the move's row, then run it. */
static void
mv_record(Move *mv, const char *name, MvStep step)
{
	StepRec *sr = xcalloc(1, sizeof(StepRec));
	PgJob *job = pgjob_new(mv_recorded, sr);
	ParamList p;

	sr->mv = mv;
	sr->step = step;
	util_strlcpy(sr->name, name, sizeof(sr->name));
	log_info("move %lld (%s %s -> %s): %s", (long long) mv->id, mv->table, mv->from.name,
			 mv->to.name, name);
	params_init(&p);
	params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
	params_add(&p, name);
	job->timeout_ms = 10000;
	pgjob_add(job,
			  "UPDATE vectron_meta.shard_move SET step = $2, updated_at = now() "
			  "WHERE id = $1::bigint",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

/* Fill the move's node and collection facts from the current map. */
static bool
mv_fill_from_map(Move *mv, int from_id, int to_id)
{
	ShardMap *m = shardmap_acquire();
	const SmNode *f = shardmap_node_by_id(m, from_id), *t = shardmap_node_by_id(m, to_id);
	bool found = false;

	mv->from.id = from_id;
	mv->to.id = to_id;
	if (f) {
		mv->from.known = true;
		util_strlcpy(mv->from.name, f->name, sizeof(mv->from.name));
		util_strlcpy(mv->from.host, f->host, sizeof(mv->from.host));
		util_strlcpy(mv->from.dbname, f->dbname, sizeof(mv->from.dbname));
		mv->from.port = f->port;
	}
	if (t) {
		mv->to.known = true;
		util_strlcpy(mv->to.name, t->name, sizeof(mv->to.name));
		util_strlcpy(mv->to.host, t->host, sizeof(mv->to.host));
		util_strlcpy(mv->to.dbname, t->dbname, sizeof(mv->to.dbname));
		mv->to.port = t->port;
	}
	for (int c = 0; c < m->ncollections && !found; c++)
		for (int s = 0; s < m->collections[c].nshards; s++)
			if (m->collections[c].shards[s].id == mv->shard_id) {
				const SmCollection *coll = &m->collections[c];
				json_t *ix = coll->index;

				mv->dimension = coll->dimension;
				mv->metric = coll->metric;
				mv->m = ix && json_is_integer(json_object_get(ix, "m"))
							? (int) json_integer_value(json_object_get(ix, "m"))
							: 16;
				mv->efc = ix && json_is_integer(json_object_get(ix, "ef_construction"))
							  ? (int) json_integer_value(json_object_get(ix, "ef_construction"))
							  : 64;
				found = true;
				break;
			}
	shardmap_release(m);
	snprintf(mv->marker, sizeof(mv->marker), "vx_move_%lld", (long long) mv->id);
	return found;
}

static Move *
mv_new(int64_t id, int64_t shard_id, const char *table)
{
	Move *mv = xcalloc(1, sizeof(Move));

	mv->id = id;
	mv->shard_id = shard_id;
	util_strlcpy(mv->table, table, sizeof(mv->table));
	mv->fence_pool_id = -1000000 - (int) (id % 1000000);
	mv->next = moves;
	moves = mv;
	obs_move_started();
	return mv;
}

/* A job whose outcome does not matter (progress figures). */
static void
mv_ignore(PgJob *job, void *arg)
{
	(void) arg;
	pgjob_free(job);
}

/* ---- forward steps ---- */

static void
after_target_table(Move *mv, PgJob *job)
{
	if (mv_check(mv, job, "creating the target table"))
		mv_record(mv, "publication", mv_step_publication);
}

static void
mv_step_target_table(Move *mv)
{
	PgJob *job = mv_job(30000);
	StrBuf sql;

	if (mv->dimension <= 0) {
		mv_rollback(mv, "the collection is gone");
		return;
	}
	sb_init(&sql);
	/* a leftover of an earlier, failed move of this shard to this node goes first */
	sb_appendf(&sql,
			   "DO $vx$ BEGIN\n"
			   "  SET LOCAL client_min_messages = warning;\n"
			   "  CREATE EXTENSION IF NOT EXISTS vectron;\n"
			   "  CREATE SCHEMA IF NOT EXISTS vectron_shards;\n"
			   "  DROP TABLE IF EXISTS vectron_shards.%s;\n"
			   "  CREATE TABLE vectron_shards.%s (\n"
			   "    id text PRIMARY KEY,\n"
			   "    v vector(%d),\n"
			   "    payload jsonb,\n"
			   "    version bigint NOT NULL,\n"
			   "    deleted boolean NOT NULL DEFAULT false);\n"
			   "  CREATE TABLE IF NOT EXISTS vectron_shards.%s (k int PRIMARY KEY, v bigint);\n"
			   "END $vx$",
			   mv->table, mv->table, mv->dimension, mv->marker);
	pgjob_add0(job, sql.data);
	sb_free(&sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_target_table);
}

static void
after_publication(Move *mv, PgJob *job)
{
	if (mv_check(mv, job, "creating the publication"))
		mv_record(mv, "subscription", mv_step_subscription);
}

static void
mv_step_publication(Move *mv)
{
	PgJob *job = mv_job(30000);
	char *sql;

	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	sql = xasprintf("CREATE TABLE IF NOT EXISTS vectron_shards.%s (k int PRIMARY KEY, v bigint)",
					mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("DROP PUBLICATION IF EXISTS %s", mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("CREATE PUBLICATION %s FOR TABLE vectron_shards.%s, vectron_shards.%s",
					mv->marker, mv->table, mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->from), job, after_publication);
}

/* Append a conninfo value, quoted for libpq, to sb. */
static void
conninfo_value(StrBuf *sb, const char *v)
{
	sb_append(sb, "'");
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			sb_append(sb, "\\");
		sb_appendn(sb, v, 1);
	}
	sb_append(sb, "'");
}

static void after_sub_oid_recorded(Move *mv, PgJob *job);

static void
after_sub_oid(Move *mv, PgJob *job)
{
	ParamList p;
	PgJob *mj;

	if (!mv_check(mv, job, "reading the subscription"))
		return;
	if (PQntuples(job->results[0]) == 1)
		mv->sub_oid = atoll(PQgetvalue(job->results[0], 0, 0));
	params_init(&p);
	params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
	params_add_owned(&p, xasprintf("%lld", (long long) mv->sub_oid));
	mj = pgjob_new(NULL, NULL);
	pgjob_add(mj, "UPDATE vectron_meta.shard_move SET sub_oid = $2::bigint WHERE id = $1::bigint",
			  &p);
	params_free(&p);
	mv_submit(mv, metadata_pool(), mj, after_sub_oid_recorded);
}

static void
after_sub_oid_recorded(Move *mv, PgJob *job)
{
	(void) job;
	mv->polls = 0;
	mv_record(mv, "sync", mv_step_sync);
}

static void
after_subscription(Move *mv, PgJob *job)
{
	PgJob *q;
	ParamList p;

	if (!mv_check(mv, job, "creating the subscription"))
		return;
	params_init(&p);
	params_add(&p, mv->marker);
	q = mv_job(10000);
	pgjob_add(q, "SELECT oid FROM pg_subscription WHERE subname = $1", &p);
	params_free(&p);
	mv_submit(mv, mv_pool(&mv->to), q, after_sub_oid);
}

static void
mv_step_subscription(Move *mv)
{
	PgJob *job = mv_job(60000);
	StrBuf ci, sql;
	char port[16];

	/* the connection string holds the password if one is configured: never logged */
	sb_init(&ci);
	sb_append(&ci, "host=");
	conninfo_value(&ci, mv->from.host);
	snprintf(port, sizeof(port), " port=%d", mv->from.port);
	sb_append(&ci, port);
	sb_append(&ci, " dbname=");
	conninfo_value(&ci, mv->from.dbname);
	sb_append(&ci, " user=");
	conninfo_value(&ci, cf_worker_user);
	if (cf_worker_password[0]) {
		sb_append(&ci, " password=");
		conninfo_value(&ci, cf_worker_password);
	}
	sb_init(&sql);
	sb_appendf(&sql, "CREATE SUBSCRIPTION %s CONNECTION '", mv->marker);
	for (const char *c = ci.data; *c; c++)
		sb_append(&sql, *c == '\'' ? "''" : (char[]){*c, 0});
	sb_appendf(&sql, "' PUBLICATION %s WITH (copy_data = true)", mv->marker);
	/* alone in its pipeline: CREATE SUBSCRIPTION cannot run in a transaction block */
	pgjob_add0(job, sql.data);
	sb_free(&ci);
	sb_free(&sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_subscription);
}

static void after_sync_poll(Move *mv, PgJob *job);

static void
mv_sync_poll(Move *mv)
{
	PgJob *job = mv_job(10000);
	ParamList p;

	params_init(&p);
	params_add(&p, mv->marker);
	pgjob_add(job,
			  "SELECT count(*), count(*) FILTER (WHERE r.srsubstate = 'r')\n"
			  "FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid\n"
			  "WHERE s.subname = $1",
			  &p);
	params_free(&p);
	mv_submit(mv, mv_pool(&mv->to), job, after_sync_poll);
}

static void
after_sync_poll(Move *mv, PgJob *job)
{
	if (!mv_check(mv, job, "waiting for the initial copy"))
		return;
	if (atoi(PQgetvalue(job->results[0], 0, 0)) == 2 &&
		atoi(PQgetvalue(job->results[0], 0, 1)) == 2) {
		mv_record(mv, "index", mv_step_index);
		return;
	}
	if (++mv->polls * MV_POLL_MS > MV_SYNC_TIMEOUT_MS) {
		mv_rollback(mv, "the initial copy did not finish in time");
		return;
	}
	mv_later(mv, MV_POLL_MS * 2, mv_sync_poll);
}

static void
mv_step_sync(Move *mv)
{
	mv_sync_poll(mv);
}

static void
after_index(Move *mv, PgJob *job)
{
	if (!mv_check(mv, job, "building the index"))
		return;
	mv->polls = 0;
	mv_record(mv, "fence", mv_step_fence);
}

static void
after_index_check(Move *mv, PgJob *job)
{
	static const char *const opclass[] = {"vector_l2_ops", "vector_ip_ops", "vector_cosine_ops",
										  "vector_l1_ops"};
	PgJob *ix;
	char *sql;
	PGresult *r;

	if (!mv_check(mv, job, "preparing the target"))
		return;
	r = job->results[job->nstmts - 1];
	{
		ParamList p;
		PgJob *mj = pgjob_new(mv_ignore, NULL);

		params_init(&p);
		params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
		params_add(&p, PQgetvalue(r, 0, 1));
		pgjob_add(mj,
				  "UPDATE vectron_meta.shard_move SET rows_copied = $2::bigint "
				  "WHERE id = $1::bigint",
				  &p);
		params_free(&p);
		pgjob_submit(metadata_pool(), mj);
	}
	if (strcmp(PQgetvalue(r, 0, 0), "t") != 0) {
		/* no hnsw access method on this worker build: exact search, as at create */
		mv->polls = 0;
		mv_record(mv, "fence", mv_step_fence);
		return;
	}
	ix = mv_job(0);
	sql = xasprintf("CREATE INDEX CONCURRENTLY IF NOT EXISTS %s_v_idx ON vectron_shards.%s "
					"USING hnsw (v %s) WITH (m = %d, ef_construction = %d)",
					mv->table, mv->table, opclass[mv->metric & 3], mv->m, mv->efc);
	pgjob_add0(ix, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->to), ix, after_index);
}

static void
mv_step_index(Move *mv)
{
	PgJob *job = mv_job(30000);
	char *sql;

	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	/* the versioned-upsert rule for replicated rows (fires only in the apply
	 * worker: ENABLE REPLICA) */
	pgjob_add0(job,
			   "CREATE OR REPLACE FUNCTION vectron_shards.vx_move_apply() RETURNS trigger\n"
			   "LANGUAGE plpgsql AS $f$\n"
			   "DECLARE found boolean;\n"
			   "BEGIN\n"
			   "  IF TG_OP = 'UPDATE' THEN\n"
			   "    IF NEW.version < OLD.version THEN RETURN NULL; END IF;\n"
			   "    RETURN NEW;\n"
			   "  END IF;\n"
			   "  EXECUTE format('SELECT true FROM %I.%I WHERE id = $1', TG_TABLE_SCHEMA,\n"
			   "    TG_TABLE_NAME) INTO found USING NEW.id;\n"
			   "  IF found THEN\n"
			   "    EXECUTE format('UPDATE %I.%I SET v = $1, payload = $2, version = $3,\n"
			   "      deleted = $4 WHERE id = $5 AND version < $3', TG_TABLE_SCHEMA, TG_TABLE_NAME)\n"
			   "      USING NEW.v, NEW.payload, NEW.version, NEW.deleted, NEW.id;\n"
			   "    RETURN NULL;\n"
			   "  END IF;\n"
			   "  RETURN NEW;\n"
			   "END $f$");
	sql = xasprintf("DROP TRIGGER IF EXISTS vx_move_apply ON vectron_shards.%s", mv->table);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("CREATE TRIGGER vx_move_apply BEFORE INSERT OR UPDATE ON vectron_shards.%s "
					"FOR EACH ROW EXECUTE FUNCTION vectron_shards.vx_move_apply()",
					mv->table);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("ALTER TABLE vectron_shards.%s ENABLE REPLICA TRIGGER vx_move_apply",
					mv->table);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("SELECT EXISTS (SELECT 1 FROM pg_am WHERE amname = 'hnsw'), "
					"(SELECT count(*) FROM vectron_shards.%s WHERE NOT deleted)",
					mv->table);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_index_check);
}

/* ---- fence, marker rounds, switch ---- */

static void mv_marker_poll(Move *mv);

static void mv_step_switch(Move *mv);

/* After a marker round: the fence's next step, or the drain's. */
static void
mv_marker_seen(Move *mv)
{
	if (!mv->switched)
		mv_record(mv, "switch", mv_step_switch);
	else
		mv_record(mv, "cleanup", mv_step_cleanup);
}

static void
after_marker_poll(Move *mv, PgJob *job)
{
	if (job->ok && PQntuples(job->results[0]) == 1 &&
		atoll(PQgetvalue(job->results[0], 0, 0)) == mv->token) {
		mv_marker_seen(mv);
		return;
	}
	if (++mv->polls * MV_POLL_MS > MV_FENCE_TIMEOUT_MS) {
		if (!mv->switched)
			mv_rollback(mv, "the target did not catch up within the write fence");
		else
			mv_retry_forward(mv, mv_step_drain, NULL);
		return;
	}
	mv_later(mv, MV_POLL_MS / 5, mv_marker_poll);
}

static void
mv_marker_poll(Move *mv)
{
	PgJob *job = mv_job(5000);
	char *sql = xasprintf("SELECT v FROM vectron_shards.%s WHERE k = 1", mv->marker);

	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_marker_poll);
}

static void
after_marker_insert(Move *mv, PgJob *job)
{
	if (!job->ok) {
		if (!mv->switched)
			mv_check(mv, job, "writing the marker");
		else
			mv_retry_forward(mv, mv_step_drain, job);
		return;
	}
	mv->polls = 0;
	mv_marker_poll(mv);
}

/* Commit a new token into the source's marker table (after the fence). */
static void
mv_marker_round(Move *mv)
{
	PgJob *job = mv_job(10000);
	ParamList p;
	char *sql = xasprintf("INSERT INTO vectron_shards.%s VALUES (1, $1::bigint) "
						  "ON CONFLICT (k) DO UPDATE SET v = excluded.v",
						  mv->marker);

	mv->token = (int64_t) util_wall_us();
	params_init(&p);
	params_add_owned(&p, xasprintf("%lld", (long long) mv->token));
	pgjob_add(job, sql, &p);
	params_free(&p);
	free(sql);
	mv_submit(mv, mv_pool(&mv->from), job, after_marker_insert);
}

static void
after_fence(Move *mv, PgJob *job)
{
	if (!mv_check(mv, job, "taking the write fence"))
		return;
	mv_marker_round(mv);
}

static void
mv_step_fence(Move *mv)
{
	PgJob *job = mv_job(15000);
	char *sql;

	mv->fence = workerconn_pool_for_node(mv->fence_pool_id, mv->from.name, mv->from.host,
										 mv->from.port, mv->from.dbname);
	workerconn_pool_set_max(mv->fence, 1);
	/* an explicit BEGIN outlives the pipeline's Sync: the lock stays until COMMIT */
	pgjob_add0(job, "BEGIN");
	pgjob_add0(job, "SET LOCAL lock_timeout = '10s'");
	sql = xasprintf("LOCK TABLE vectron_shards.%s IN EXCLUSIVE MODE", mv->table);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv->fence, job, after_fence);
}

static void
after_fence_released(Move *mv, PgJob *job)
{
	(void) job;
	workerconn_pool_drop(mv->fence_pool_id);
	mv->fence = NULL;
	mv_record(mv, "grace", mv_step_grace);
}

static void
mv_release_fence(Move *mv)
{
	PgJob *job = mv_job(10000);

	pgjob_add0(job, "COMMIT");
	mv_submit(mv, mv->fence, job, after_fence_released);
}

static void
mv_map_reloaded(void *arg, bool ok)
{
	Move *mv = arg;

	(void) ok;
	mv_release_fence(mv);
}

static void mv_switch_check(Move *mv);

static void
after_switch_check(Move *mv, PgJob *job)
{
	if (!job->ok || PQntuples(job->results[0]) != 1) {
		mv_retry_forward(mv, mv_switch_check, job);
		return;
	}
	if (strcmp(PQgetvalue(job->results[0], 0, 0), "t") == 0) {
		mv->switched = true;
		shardmap_reload(mv_map_reloaded, mv);
	} else
		mv_rollback(mv, "the map switch failed");
}

static void
after_switch(Move *mv, PgJob *job)
{
	if (job->ok) {
		mv->switched = true;
		shardmap_reload(mv_map_reloaded, mv);
		return;
	}
	/* did it commit?  ask (the answer decides between finishing and rolling back) */
	log_warning("move %lld: switch: %s", (long long) mv->id, job->errmsg ? job->errmsg : "");
	mv_switch_check(mv);
}

static void
mv_switch_check(Move *mv)
{
	PgJob *q;
	ParamList p;

	params_init(&p);
	params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
	q = mv_job(10000);
	pgjob_add(q, "SELECT switched FROM vectron_meta.shard_move WHERE id = $1::bigint", &p);
	params_free(&p);
	mv_submit(mv, metadata_pool(), q, after_switch_check);
}

static void
mv_step_switch(Move *mv)
{
	PgJob *job = mv_job(15000);
	ParamList p;

	params_init(&p);
	params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
	pgjob_add(job, "SELECT vectron_meta.move_switch($1::bigint)", &p);
	params_free(&p);
	mv_submit(mv, metadata_pool(), job, after_switch);
}

static void
mv_record_drain(Move *mv)
{
	mv_record(mv, "drain", mv_step_drain);
}

static void
mv_step_grace(Move *mv)
{
	int ms = 2 * cf_map_poll_ms;

	mv_later(mv, ms < 500 ? 500 : ms, mv_record_drain);
}

static void
mv_step_drain(Move *mv)
{
	mv_marker_round(mv);
}

/* ---- cleanup (forward) and rollback share the resource drops ---- */

static void
mv_add_drop_subscription(Move *mv, PgJob *job)
{
	char *sql = xasprintf(
		"DO $vx$ BEGIN\n"
		"  IF EXISTS (SELECT 1 FROM pg_subscription WHERE subname = '%s') THEN\n"
		"    ALTER SUBSCRIPTION %s DISABLE;\n"
		"    ALTER SUBSCRIPTION %s SET (slot_name = NONE);\n"
		"    DROP SUBSCRIPTION %s;\n"
		"  END IF;\n"
		"END $vx$",
		mv->marker, mv->marker, mv->marker, mv->marker);

	pgjob_add0(job, sql);
	free(sql);
}

typedef void (*MvAfterSource)(Move *mv);

static void mv_drop_source(Move *mv);

static void after_move_end(Move *mv, PgJob *job);

static void
after_drop_source(Move *mv, PgJob *job)
{
	if (!job->ok) {
		/* a walsender may still hold the slot for a moment */
		if (++mv->polls < MV_SLOT_TRIES) {
			mv_later(mv, 100, mv_drop_source);
			return;
		}
		log_warning("move %lld: cleaning the source: %s; the adopt timer will retry",
					(long long) mv->id, job->errmsg ? job->errmsg : "");
		mv_free(mv);
		return;
	}
	{
		PgJob *mj = mv_job(10000);
		ParamList p;

		params_init(&p);
		params_add_owned(&p, xasprintf("%lld", (long long) mv->id));
		params_add(&p, mv->error);
		pgjob_add(mj, "SELECT vectron_meta.move_end($1::bigint, $2)", &p);
		params_free(&p);
		mv_submit(mv, metadata_pool(), mj, after_move_end);
	}
}

static void
after_move_end(Move *mv, PgJob *job)
{
	if (!job->ok) {
		log_warning("move %lld: recording the end: %s", (long long) mv->id,
					job->errmsg ? job->errmsg : "");
		mv_free(mv);
		return;
	}
	mv->ended = true;
	log_info("move %lld (%s %s -> %s): %s%s%s", (long long) mv->id, mv->table, mv->from.name,
			 mv->to.name, mv->switched ? "done" : "rolled back", mv->error ? ": " : "",
			 mv->error ? mv->error : "");
	shardmap_reload(NULL, NULL);
	mv_free(mv);
}

/* Drop the slots (after ending their walsenders), publication and marker. */
static void
mv_drop_source(Move *mv)
{
	PgJob *job = mv_job(10000);
	ParamList p;
	char *sql;

	if (!mv->from.known) {
		/* the source node was removed: nothing left to drop there */
		job->ok = true;
		after_drop_source(mv, job);
		pgjob_free(job);
		return;
	}
	params_init(&p);
	params_add(&p, mv->marker);
	params_add_owned(&p, xasprintf("pg\\_%lld\\_sync\\_%%", (long long) mv->sub_oid));
	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	pgjob_add(job,
			  "SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots\n"
			  "WHERE (slot_name = $1 OR slot_name LIKE $2) AND active_pid IS NOT NULL",
			  &p);
	pgjob_add(job,
			  "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots\n"
			  "WHERE (slot_name = $1 OR slot_name LIKE $2) AND NOT active",
			  &p);
	pgjob_add(job,
			  "SELECT 1 / (count(*) = 0)::int FROM pg_replication_slots\n"
			  "WHERE slot_name = $1 OR slot_name LIKE $2",
			  &p);
	params_free(&p);
	sql = xasprintf("DROP PUBLICATION IF EXISTS %s", mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("DROP TABLE IF EXISTS vectron_shards.%s", mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->from), job, after_drop_source);
}

static void
after_cleanup_target(Move *mv, PgJob *job)
{
	if (!job->ok) {
		mv_retry_forward(mv, mv_step_cleanup, job);
		return;
	}
	mv->polls = 0;
	mv_drop_source(mv);
}

static void
mv_step_cleanup(Move *mv)
{
	PgJob *job = mv_job(30000);
	char *sql;

	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	mv_add_drop_subscription(mv, job);
	sql = xasprintf("DROP TRIGGER IF EXISTS vx_move_apply ON vectron_shards.%s", mv->table);
	pgjob_add0(job, sql);
	free(sql);
	sql = xasprintf("DROP TABLE IF EXISTS vectron_shards.%s", mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_cleanup_target);
}

static void
after_rb_target(Move *mv, PgJob *job)
{
	if (!job->ok) {
		log_warning("move %lld: rollback on %s: %s; the adopt timer will retry",
					(long long) mv->id, mv->to.name, job->errmsg ? job->errmsg : "");
		mv_free(mv);
		return;
	}
	mv->polls = 0;
	mv_drop_source(mv);
}

static void
mv_rb_target(Move *mv)
{
	PgJob *job = mv_job(30000);
	char *sql;

	if (!mv->to.known) {
		pgjob_free(job);
		mv->polls = 0;
		mv_drop_source(mv);
		return;
	}
	pgjob_add0(job, "SET LOCAL client_min_messages = warning");
	mv_add_drop_subscription(mv, job);
	sql = xasprintf("DROP TABLE IF EXISTS vectron_shards.%s, vectron_shards.%s", mv->table,
					mv->marker);
	pgjob_add0(job, sql);
	free(sql);
	mv_submit(mv, mv_pool(&mv->to), job, after_rb_target);
}

static void
mv_rollback(Move *mv, const char *why)
{
	if (mv->switched) {
		/* past the switch there is no going back: finish */
		mv_retry_forward(mv, mv_step_cleanup, NULL);
		return;
	}
	log_warning("move %lld (%s %s -> %s): rolling back: %s", (long long) mv->id, mv->table,
				mv->from.name, mv->to.name, why);
	if (!mv->error)
		mv->error = xstrdup(why);
	mv->rolling_back = true;
	if (mv->timer)
		evtimer_del(mv->timer);
	if (mv->fence) {
		/* closing the session rolls the fence transaction back */
		workerconn_pool_drop(mv->fence_pool_id);
		mv->fence = NULL;
	}
	mv_record(mv, "rollback", mv_rb_target);
}

/* ---- adopting moves left running ---- */

static void adopt_arm(int ms);

/* How often to adopt and renew: well inside the lease. */
static int
adopt_period(void)
{
	return cf_move_lease_ms / 3 < 5000 ? cf_move_lease_ms / 3 : 5000;
}

static void
after_adopt(PgJob *job, void *arg)
{
	(void) arg;
	if (!job->ok) {
		log_debug("move adopt: %s", job->errmsg ? job->errmsg : "failed");
		pgjob_free(job);
		adopt_arm(adopt_period());
		return;
	}
	for (int i = 0; i < PQntuples(job->results[0]); i++) {
		PGresult *r = job->results[0];
		Move *mv = mv_new(atoll(PQgetvalue(r, i, 0)), atoll(PQgetvalue(r, i, 1)),
						  PQgetvalue(r, i, 2));
		char why[256];

		mv_fill_from_map(mv, atoi(PQgetvalue(r, i, 3)), atoi(PQgetvalue(r, i, 4)));
		mv->switched = strcmp(PQgetvalue(r, i, 5), "t") == 0;
		mv->sub_oid = PQgetisnull(r, i, 6) ? 0 : atoll(PQgetvalue(r, i, 6));
		if (mv->switched) {
			log_info("move %lld (%s): adopted after the switch (step %s); finishing",
					 (long long) mv->id, mv->table, PQgetvalue(r, i, 7));
			mv_record(mv, "drain", mv_step_drain);
		} else {
			snprintf(why, sizeof(why), "interrupted at step %s", PQgetvalue(r, i, 7));
			if (strcmp(PQgetvalue(r, i, 7), "rollback") == 0)
				mv->error = xstrdup(PQgetvalue(r, i, 8));
			mv_rollback(mv, why);
		}
	}
	pgjob_free(job);
	adopt_arm(adopt_period());
}

static void
adopt_tick(evutil_socket_t fd, short what, void *arg)
{
	PgJob *job = pgjob_new(after_adopt, NULL);
	ParamList p;
	StrBuf ids;

	(void) fd;
	(void) what;
	(void) arg;
	sb_init(&ids);
	sb_append(&ids, "{");
	for (Move *mv = moves; mv; mv = mv->next)
		sb_appendf(&ids, "%s%lld", mv == moves ? "" : ",", (long long) mv->id);
	sb_append(&ids, "}");
	snprintf(mv_owner, sizeof(mv_owner), "%d@%s:%d", cf_coordinator_id, cf_listen_addr,
			 http_server_port());
	params_init(&p);
	params_add(&p, mv_owner);
	params_add_owned(&p, sb_steal(&ids));
	params_add(&p, mv_boot);
	params_add_owned(&p, xasprintf("%d", cf_move_lease_ms));
	job->timeout_ms = 10000;
	/* ours from before this process started, or anyone's gone quiet (a move
	 * being begun here is not in `moves` yet, but was updated after boot) */
	pgjob_add(job,
			  "UPDATE vectron_meta.shard_move SET owner = $1, updated_at = now()\n"
			  "WHERE state = 'running' AND id <> ALL($2::bigint[])\n"
			  "  AND ((owner = $1 AND updated_at < $3::timestamptz)\n"
			  "       OR updated_at < now() - $4::int * interval '1 millisecond')\n"
			  "RETURNING id, shard_id, table_name, from_node, to_node, switched, sub_oid, step,\n"
			  "  coalesce(error, '')",
			  &p);
	/* the lease of our own moves: updated_at is renewed every tick, so a
	 * step that runs long (the initial copy of a large shard) is not taken
	 * for a dead coordinator's by the others' 60-second rule */
	{
		ParamList rp;

		params_init(&rp);
		params_add(&rp, p.v[0]);
		params_add(&rp, p.v[1]);
		pgjob_add(job,
				  "UPDATE vectron_meta.shard_move SET updated_at = now()\n"
				  "WHERE state = 'running' AND id = ANY($2::bigint[]) AND owner = $1",
				  &rp);
		params_free(&rp);
	}
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

static void
adopt_arm(int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	if (adopt_ev)
		evtimer_add(adopt_ev, &tv);
}

void
shardmove_start(struct event_base *base)
{
	uint64_t us = util_wall_us();
	time_t now = (time_t) (us / 1000000);
	struct tm tm;
	char sec[32];

	/* milliseconds: a crash and a restart can fall in one second */
	gmtime_r(&now, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(mv_boot, sizeof(mv_boot), "%s.%03dZ", sec, (int) (us / 1000 % 1000));
	mv_base = base;
	adopt_ev = evtimer_new(base, adopt_tick, NULL);
	adopt_arm(300);
}

void
shardmove_stop(void)
{
	if (adopt_ev) {
		event_free(adopt_ev);
		adopt_ev = NULL;
	}
}

/* ---- REST ---- */

typedef struct MoveReq {
	ShardMoveStarted started;
	ShardMoveDone done;
	void *arg;
	int64_t move_id;
	int64_t shard_id;
	int from_id, to_id;
	char table[64];
} MoveReq;

static void
move_started(void *arg, bool ok)
{
	MoveReq *mr = arg;
	Move *mv = mv_new(mr->move_id, mr->shard_id, mr->table);

	(void) ok;
	mv_fill_from_map(mv, mr->from_id, mr->to_id);
	mv->done = mr->done;
	mv->done_arg = mr->arg;
	mr->started(mr->arg, 202, NULL, NULL, mv->id, mv->from.name, mv->to.name);
	free(mr);
	mv_record(mv, "target_table", mv_step_target_table);
}

static void
move_begun(PgJob *job, void *arg)
{
	MoveReq *mr = arg;

	if (!job->ok) {
		static const struct {
			const char *sqlstate;
			int status;
			const char *code;
		} map[] = {{"VXM01", 404, "SHARD_NOT_FOUND"},
				   {"VXM02", 404, "NODE_NOT_FOUND"},
				   {"VXM03", 409, "NO_ACTIVE_PLACEMENT"},
				   {"VXM04", 409, "PLACEMENT_EXISTS"},
				   {"VXM05", 409, "NODE_DRAINING"},
				   {"23505", 409, "MOVE_IN_PROGRESS"}};
		size_t i;

		for (i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (strcmp(job->sqlstate, map[i].sqlstate) == 0)
				break;
		if (i < sizeof(map) / sizeof(map[0]))
			mr->started(mr->arg, map[i].status, map[i].code,
						strcmp(map[i].sqlstate, "23505") == 0
							? "another move of this shard is running"
							: (job->errmsg ? job->errmsg : ""),
						0, NULL, NULL);
		else
			mr->started(mr->arg, 503, "METADATA_UNAVAILABLE",
						job->errmsg ? job->errmsg : "metadata query failed", 0, NULL, NULL);
		pgjob_free(job);
		free(mr);
		return;
	}
	{
		PGresult *r = job->results[1];

		mr->move_id = atoll(PQgetvalue(r, 0, 0));
		mr->from_id = atoi(PQgetvalue(r, 0, 1));
		mr->to_id = atoi(PQgetvalue(r, 0, 2));
		util_strlcpy(mr->table, PQgetvalue(r, 0, 3), sizeof(mr->table));
	}
	pgjob_free(job);
	shardmap_reload(move_started, mr);
}

void
shardmove_begin(int64_t shard_id, const char *from, const char *to, const char *replace,
				ShardMoveStarted started, ShardMoveDone done, void *arg)
{
	MoveReq *mr = xcalloc(1, sizeof(MoveReq));
	PgJob *job;
	ParamList p;
	char sid[32];

	mr->started = started;
	mr->done = done;
	mr->arg = arg;
	mr->shard_id = shard_id;
	snprintf(sid, sizeof(sid), "%lld", (long long) shard_id);
	snprintf(mv_owner, sizeof(mv_owner), "%d@%s:%d", cf_coordinator_id, cf_listen_addr,
			 http_server_port());
	params_init(&p);
	params_add(&p, sid);
	params_add(&p, from);
	params_add(&p, to);
	params_add(&p, mv_owner);
	params_add(&p, replace);
	job = pgjob_new(move_begun, mr);
	job->timeout_ms = 10000;
	pgjob_add(job, "SELECT vectron_meta.move_begin($1::bigint, $2, $3, $4, $5)", &p);
	params_free(&p);
	params_init(&p);
	params_add(&p, sid);
	pgjob_add(job,
			  "SELECT id, from_node, to_node, table_name FROM vectron_meta.shard_move\n"
			  "WHERE shard_id = $1::bigint AND state = 'running'",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

static void
http_move_started(void *arg, int status, const char *code, const char *msg, int64_t move_id,
				  const char *from, const char *to)
{
	HttpRequest *req = arg;

	if (status != 202) {
		http_respond_error(req, status, code, "%s", msg ? msg : "");
		return;
	}
	http_respond_json(req, 202,
					  json_pack("{s:I,s:s,s:s,s:s,s:s}", "move_id", (json_int_t) move_id, "from",
								from, "to", to, "state", "running", "step", "begin"));
}

void
shardmove_handle_move(HttpRequest *req, const char *shard_id)
{
	json_t *b, *from, *to, *replace;
	char *end;
	long long sid = strtoll(shard_id, &end, 10);

	if (*end || sid <= 0) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "shard id must be a positive integer");
		return;
	}
	if (!(b = api_parse_body(req)))
		return;
	from = json_object_get(b, "from");
	to = json_object_get(b, "to");
	if (!json_is_string(from) || !util_valid_name(json_string_value(from)) ||
		!json_is_string(to) || !util_valid_name(json_string_value(to))) {
		json_decref(b);
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "from and to must be node names (^[a-z_][a-z0-9_]{0,62}$)");
		return;
	}
	if (strcmp(json_string_value(from), json_string_value(to)) == 0) {
		json_decref(b);
		http_respond_error(req, 400, "INVALID_ARGUMENT", "from and to must differ");
		return;
	}
	replace = json_object_get(b, "replace");
	if (replace && (!json_is_string(replace) || !util_valid_name(json_string_value(replace)) ||
					strcmp(json_string_value(replace), json_string_value(from)) == 0 ||
					strcmp(json_string_value(replace), json_string_value(to)) == 0)) {
		json_decref(b);
		http_respond_error(req, 400, "INVALID_ARGUMENT",
						   "replace must name a third node, the one whose placement is lost");
		return;
	}
	shardmove_begin(sid, json_string_value(from), json_string_value(to),
					replace ? json_string_value(replace) : NULL, http_move_started, NULL, req);
	json_decref(b);
}

static void
moves_listed(PgJob *job, void *arg)
{
	HttpRequest *req = arg;
	json_error_t je;
	json_t *j;

	if (!job->ok) {
		api_respond_worker_error(req, 503, "METADATA_UNAVAILABLE", job->errmsg, job->sqlstate,
								 "metadata");
		pgjob_free(job);
		return;
	}
	j = json_loads(PQgetvalue(job->results[0], 0, 0), 0, &je);
	pgjob_free(job);
	if (!j) {
		http_respond_error(req, 500, "INTERNAL", "bad move list");
		return;
	}
	if (json_is_array(j) && json_array_size(j) == 0 && strstr(req->path, "/moves/")) {
		json_decref(j);
		http_respond_error(req, 404, "MOVE_NOT_FOUND", "no such move");
		return;
	}
	if (strstr(req->path, "/moves/")) {
		http_respond_json(req, 200, json_incref(json_array_get(j, 0)));
		json_decref(j);
	} else
		http_respond_json(req, 200, json_pack("{s:o}", "moves", j));
}

void
shardmove_handle_list(HttpRequest *req, const char *move_id)
{
	PgJob *job = pgjob_new(moves_listed, req);
	ParamList p;
	char *end = NULL;

	if (move_id && (strtoll(move_id, &end, 10) <= 0 || *end)) {
		http_respond_error(req, 400, "INVALID_ARGUMENT", "move id must be a positive integer");
		pgjob_free(job);
		return;
	}
	params_init(&p);
	params_add(&p, move_id);
	job->timeout_ms = 10000;
	pgjob_add(job,
			  "SELECT coalesce(json_agg(json_build_object('id', m.id, 'shard_id', m.shard_id,\n"
			  "  'table', m.table_name, 'from', f.name, 'to', t.name, 'state', m.state,\n"
			  "  'step', m.step, 'switched', m.switched, 'rows_copied', m.rows_copied,\n"
			  "  'error', m.error, 'started_at', m.started_at, 'updated_at', m.updated_at,\n"
			  "  'finished_at', m.finished_at) ORDER BY m.id DESC), '[]')\n"
			  "FROM vectron_meta.shard_move m\n"
			  "LEFT JOIN vectron_meta.node f ON f.id = m.from_node\n"
			  "LEFT JOIN vectron_meta.node t ON t.id = m.to_node\n"
			  "WHERE $1::bigint IS NULL OR m.id = $1::bigint",
			  &p);
	params_free(&p);
	pgjob_submit(metadata_pool(), job);
}

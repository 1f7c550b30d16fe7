/*
 * health.c: periodic work (see health.h).  Every timer of the coordinator
 * lives here.  Node health: a `SELECT 1` per node each health_interval_ms
 * with a deadline of the same length; workerconn marks the node's pool up
 * or down from what its connections see, and reads skip nodes that are
 * down.  Cleanup: drop shard tables listed in vectron_meta.cleanup, and
 * roll back collections left in "creating" for more than ten minutes.
 * Repair: start the repair of a stale placement whose node is back, or
 * take over one whose lease expired (repair.c).  Tombstone GC: a pass
 * every tombstone_gc_interval seconds (gc.c).
 */
#include "health.h"

#include "config.h"
#include "gc.h"
#include "log.h"
#include "metadata.h"
#include "repair.h"
#include "shardmap.h"
#include "workerconn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event *hc_health_ev, *hc_poll_ev, *hc_cleanup_ev, *hc_gc_ev;
static bool hc_cleanup_running;

static void
arm(struct event *ev, int ms)
{
	struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

	evtimer_add(ev, &tv);
}

static void
health_probe_done(PgJob *job, void *arg)
{
	pgjob_free(job);
}

static void
health_tick(evutil_socket_t fd, short what, void *arg)
{
	ShardMap *m = shardmap_acquire();

	for (int i = 0; i < m->nnodes; i++) {
		const SmNode *n = &m->nodes[i];
		PgJob *job = pgjob_new(health_probe_done, NULL);

		job->timeout_ms = cf_health_interval_ms;
		pgjob_add0(job, "SELECT 1");
		pgjob_submit(workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname), job);
	}
	shardmap_release(m);
	/* keep the LISTEN connection for map changes open */
	workerconn_listener_keepalive(metadata_listener());
	arm(hc_health_ev, cf_health_interval_ms);
}

static void
poll_tick(evutil_socket_t fd, short what, void *arg)
{
	shardmap_poll();
	arm(hc_poll_ev, cf_map_poll_ms);
}

typedef struct CleanupItem {
	char id[32];
} CleanupItem;

static int hc_cleanup_pending;

static void
cleanup_row_done(PgJob *job, void *arg)
{
	pgjob_free(job);
	if (--hc_cleanup_pending == 0)
		hc_cleanup_running = false;
}

static void
cleanup_dropped(PgJob *job, void *arg)
{
	char *id = arg;

	if (job->ok) {
		PgJob *mj = pgjob_new(cleanup_row_done, NULL);
		ParamList p;

		params_init(&p);
		params_add(&p, id);
		pgjob_add(mj, "DELETE FROM vectron_meta.cleanup WHERE id = $1::bigint", &p);
		params_free(&p);
		pgjob_submit(metadata_pool(), mj);
	} else {
		log_debug("cleanup: %s; will retry", job->errmsg);
		if (--hc_cleanup_pending == 0)
			hc_cleanup_running = false;
	}
	free(id);
	pgjob_free(job);
}

/* A shard table name from the cleanup list: exactly c<digits>_s<digits>. */
static bool
valid_table_name(const char *t)
{
	const char *p = t;

	if (*p++ != 'c' || !(*p >= '0' && *p <= '9'))
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	if (*p++ != '_' || *p++ != 's' || !(*p >= '0' && *p <= '9'))
		return false;
	while (*p >= '0' && *p <= '9')
		p++;
	return *p == '\0' && strlen(t) < 60;
}

static void
cleanup_listed(PgJob *job, void *arg)
{
	ShardMap *m;
	PGresult *r;

	if (!job->ok || !job->results[1]) {
		pgjob_free(job);
		hc_cleanup_running = false;
		return;
	}
	r = job->results[1];
	m = shardmap_acquire();
	hc_cleanup_pending = 1;
	for (int i = 0; i < PQntuples(r); i++) {
		const SmNode *n = shardmap_node_by_id(m, atoi(PQgetvalue(r, i, 1)));
		const char *table = PQgetvalue(r, i, 2);
		PgJob *dj;
		char sql[160];

		if (!n || !valid_table_name(table))
			continue;
		snprintf(sql, sizeof(sql), "DROP TABLE IF EXISTS vectron_shards.%s", table);
		dj = pgjob_new(cleanup_dropped, xstrdup(PQgetvalue(r, i, 0)));
		dj->timeout_ms = 30000;
		pgjob_add0(dj, "SET LOCAL client_min_messages = warning");
		pgjob_add0(dj, sql);
		hc_cleanup_pending++;
		pgjob_submit(workerconn_pool_for_node(n->id, n->name, n->host, n->port, n->dbname), dj);
	}
	shardmap_release(m);
	pgjob_free(job);
	if (--hc_cleanup_pending == 0)
		hc_cleanup_running = false;
}

static void
cleanup_run(void)
{
	PgJob *job;

	if (hc_cleanup_running)
		return;
	hc_cleanup_running = true;
	job = pgjob_new(cleanup_listed, NULL);
	pgjob_add0(job,
			   "SELECT vectron_meta.drop_collection(id) FROM vectron_meta.collection "
			   "WHERE state = 'creating' AND created_at < now() - interval '10 minutes'");
	pgjob_add0(job, "SELECT id, node_id, table_name FROM vectron_meta.cleanup ORDER BY id LIMIT 100");
	pgjob_submit(metadata_pool(), job);
}

static void
cleanup_tick(evutil_socket_t fd, short what, void *arg)
{
	cleanup_run();
	repair_tick();
	arm(hc_cleanup_ev, cf_cleanup_interval_ms);
}

/* A tombstone GC pass every tombstone_gc_interval seconds (reloadable;
 * 0 turns it off, checked again every 5 s). */
static void
gc_tick(evutil_socket_t fd, short what, void *arg)
{
	if (cf_tombstone_gc_interval > 0) {
		gc_run(NULL, NULL);
		arm(hc_gc_ev, cf_tombstone_gc_interval * 1000);
	} else
		arm(hc_gc_ev, 5000);
}

void
health_kick_cleanup(void)
{
	cleanup_run();
}

void
health_start(struct event_base *base)
{
	hc_health_ev = evtimer_new(base, health_tick, NULL);
	hc_poll_ev = evtimer_new(base, poll_tick, NULL);
	hc_cleanup_ev = evtimer_new(base, cleanup_tick, NULL);
	hc_gc_ev = evtimer_new(base, gc_tick, NULL);
	arm(hc_health_ev, 10);
	arm(hc_poll_ev, cf_map_poll_ms);
	arm(hc_cleanup_ev, 100);
	arm(hc_gc_ev, cf_tombstone_gc_interval > 0 ? cf_tombstone_gc_interval * 1000 : 5000);
}

void
health_stop(void)
{
	if (hc_health_ev) {
		event_free(hc_health_ev);
		event_free(hc_poll_ev);
		event_free(hc_cleanup_ev);
		event_free(hc_gc_ev);
		hc_health_ev = hc_poll_ev = hc_cleanup_ev = hc_gc_ev = NULL;
	}
}

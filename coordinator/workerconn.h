/*
 * workerconn.h: pools of non-blocking libpq connections, one pool per
 * worker node (plus one for the metadata database), all driven by the one
 * event loop.
 *
 * The unit of work is a PgJob: a list of statements sent in one pipeline
 * (PQsendQueryParams each, then one PQpipelineSync), so they run in one
 * implicit transaction on the server and cost one round trip.  Per-request
 * settings go in with set_config(..., true) as the first statement.  The
 * job's callback runs once, when the Sync comes back, the connection
 * breaks, or the job's deadline passes.
 *
 * Cancelling: libpq 15's PQcancel blocks, so a job that is cancelled or
 * passes its deadline drops its connection instead.  Worker connections are
 * opened with client_connection_check_interval, so the worker notices the
 * closed socket and ends the query itself.
 */
#ifndef VX_WORKERCONN_H
#define VX_WORKERCONN_H

#include "util.h"

#include <event2/event.h>
#include <libpq-fe.h>

struct evdns_base;
typedef struct PgPool PgPool;
typedef struct PgConn PgConn;
typedef struct PgJob PgJob;
typedef void (*PgJobCallback)(PgJob *job, void *arg);

typedef struct PgStmt {
	char *sql;
	ParamList params;
	bool prepare;		/* run as a named statement prepared once per connection */
} PgStmt;

struct PgJob {
	int nstmts;
	int cap;
	PgStmt *stmts;
	PGresult **results;	/* one per statement, once done */
	bool ok;
	bool conn_error;	/* failed for a connection reason, not SQL */
	char sqlstate[6];
	char *errmsg;
	char node[64];		/* pool name, for error messages */
	int timeout_ms;		/* deadline from submission; 0: none */
	uint64_t sent_us;	/* util_now_us() when the pipeline went out */
	uint64_t done_us;	/* ... and when its Sync came back (0 if it did not) */
	PgJobCallback cb;
	void *arg;
	/* internal */
	PgPool *pool;
	PgConn *conn;
	struct event *timer;
	PgJob *qnext;
	int recv;
	bool queued;
	int nitems;			/* pipeline items sent: statements plus Prepare / DEALLOCATE */
	int *slots;			/* per item: statement index, -1 discard, <= -2 a Prepare */
};

void workerconn_init(struct event_base *base, struct evdns_base *dns);
struct event_base *workerconn_base(void);

/* The pool of a worker node, created on first use, updated if moved. */
PgPool *workerconn_pool_for_node(int node_id, const char *name, const char *host, int port,
								 const char *dbname);
/*
 * The metadata DSN with the pg_ssl* settings added as libpq keywords
 * (sslmode, sslrootcert, sslcert, sslkey) where the DSN does not name them
 * itself; URI or key=value in, key=value out (malloc'd).  NULL with err
 * filled when libpq cannot parse the DSN.
 */
char *workerconn_dsn_with_ssl(const char *dsn, char *err, size_t errlen);
/* A pool for a DSN (the metadata database). */
PgPool *workerconn_pool_dsn(const char *name, const char *dsn);

/*
 * A one-connection pool that LISTENs on channel (a fixed identifier) and
 * calls cb for each notification; it LISTENs again after reconnecting.
 */
/*
 * Called for each NOTIFY on a listener pool's channel, and once with an
 * empty payload each time the listener (re)connects and its LISTEN
 * succeeds, since notifications sent while it was not listening are lost.
 */
typedef void (*PgNotifyCallback)(const char *channel, const char *payload);
PgPool *workerconn_listener(const char *name, const char *dsn, const char *channel,
							PgNotifyCallback cb);
/* Make sure the listener pool is connected (call from a timer). */
void workerconn_listener_keepalive(PgPool *pool);

bool workerconn_pool_up(const PgPool *pool);
const char *workerconn_pool_name(const PgPool *pool);
/* Cap a pool's connections (1: every job runs on the same session). */
void workerconn_pool_set_max(PgPool *pool, int max_conns);

/* Connection counts of every pool (metrics, admin API). */
typedef struct WorkerconnPoolStats {
	const char *name;
	int node_id;		/* -1 for the metadata pools */
	bool up;
	int busy, idle, connecting, queued;
} WorkerconnPoolStats;
typedef void (*WorkerconnStatsCallback)(const WorkerconnPoolStats *st, void *arg);
void workerconn_pool_stats(WorkerconnStatsCallback cb, void *arg);

/* Forget pools of nodes that are no longer in the map (closes them). */
void workerconn_pool_drop(int node_id);

PgJob *pgjob_new(PgJobCallback cb, void *arg);
/* Add a statement; params are copied.  Returns the statement index. */
int pgjob_add(PgJob *job, const char *sql, const ParamList *params);
int pgjob_add0(PgJob *job, const char *sql);
/*
 * As pgjob_add, for a statement run often with the same text (a search's
 * prelude and shard query): each connection prepares it once, as a named
 * statement, and then only binds and executes it, so the worker skips
 * parsing and, once PostgreSQL settles on a generic plan, planning.  A
 * connection keeps at most 64 (WC_PREPARED_MAX) and then starts over with
 * a DEALLOCATE ALL in the pipeline.  A Prepare that fails (or is aborted
 * with its pipeline) is forgotten, so the next use prepares again.
 */
int pgjob_add_prepared(PgJob *job, const char *sql, const ParamList *params);
/* Queue the job on the pool; the callback runs later, never inside. */
void pgjob_submit(PgPool *pool, PgJob *job);
/* Stop a job that has not called back; its callback will not run. */
void pgjob_cancel(PgJob *job);
void pgjob_free(PgJob *job);

/* Close every connection (at exit). */
void workerconn_shutdown(void);

#endif

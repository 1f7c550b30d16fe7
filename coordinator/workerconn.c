/*
 * workerconn.c: libpq connection pools on the event loop (see workerconn.h).
 *
 * A connection moves WC_RESOLVING -> WC_CONNECTING -> WC_IDLE <-> WC_BUSY and
 * is freed when it breaks.  Its socket is watched for reading all the time
 * once connected (so a closed idle connection is noticed), and for writing
 * only while PQflush returns 1.  Jobs wait in a FIFO per pool; a pool opens
 * connections on demand up to pool_size.  Host names resolve with
 * evdns_getaddrinfo and libpq gets both host and hostaddr.
 *
 * TLS: worker connections get sslmode/sslrootcert/sslcert/sslkey from the
 * pg_ssl* settings as libpq keywords.  Since `host` stays the node's
 * registered name (hostaddr only saves the lookup), sslmode=verify-full
 * checks the worker's certificate against that name.  The metadata DSN
 * gets the same keywords once at start (workerconn_dsn_with_ssl).
 */
#include "workerconn.h"

#include "config.h"
#include "log.h"
#include "resolve.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdint.h>
#include <event2/dns.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

typedef enum WcState { WC_RESOLVING, WC_CONNECTING, WC_IDLE, WC_BUSY } WcState;

struct PgConn {
	PgPool *pool;
	PGconn *pg;
	WcState state;
	struct event *rev;		/* persistent read watch once connected */
	struct event *wev;		/* write watch, only while PQflush says 1 */
	struct event *cev;		/* one-shot watch while connecting */
	struct event *ctimer;	/* connect deadline */
	PgJob *job;
	char **prep;			/* SQL of the statements prepared here: "vx<i>" */
	int nprep;				/* entries used (NULL ones failed to prepare) */
	PgConn *next;
};

#define WC_PREPARED_MAX 64

struct PgPool {
	int node_id;
	char name[64];
	char *dsn;
	char host[256];
	char hostaddr[64];
	int port;
	char dbname[64];
	int nconns;
	PgConn *conns;
	PgJob *qhead, *qtail;
	bool up;
	bool resolving;
	int max_conns;			/* 0: pool_size */
	bool dropped;			/* node removed; kept so late jobs fail cleanly */
	char *dsn_hostaddr;		/* DSN pools: resolved hostaddr list (resolve.c) */
	bool dsn_resolved;
	char *listen_sql;		/* listener pools: LISTEN on each new connection */
	PgNotifyCallback notify_cb;
	PgPool *next;
};

static struct event_base *wc_base;
static struct evdns_base *wc_dns;
static PgPool *wc_pools;

static void conn_start(PgPool *pool);
static void prep_clear(PgConn *c);
static void conn_destroy(PgConn *c, const char *why);
static void conn_dispatch(PgConn *c);
static void conn_read_cb(evutil_socket_t fd, short what, void *arg);
static void conn_write_cb(evutil_socket_t fd, short what, void *arg);
static void job_fail(PgJob *job, bool conn_error, const char *sqlstate, const char *fmt, ...)
	VX_PRINTF(4, 5);

void
workerconn_init(struct event_base *base, struct evdns_base *dns)
{
	wc_base = base;
	wc_dns = dns;
}

struct event_base *
workerconn_base(void)
{
	return wc_base;
}

static PgPool *
pool_new(void)
{
	PgPool *p = xcalloc(1, sizeof(PgPool));

	p->up = true;
	p->next = wc_pools;
	wc_pools = p;
	return p;
}

PgPool *
workerconn_pool_for_node(int node_id, const char *name, const char *host, int port,
						 const char *dbname)
{
	PgPool *p;

	for (p = wc_pools; p; p = p->next)
		if (!p->dsn && p->node_id == node_id)
			break;
	if (p && (strcmp(p->host, host) || p->port != port || strcmp(p->dbname, dbname))) {
		/* the node moved: close idle connections, busy ones finish first */
		PgConn *c = p->conns, *n;

		for (; c; c = n) {
			n = c->next;
			if (c->state != WC_BUSY)
				conn_destroy(c, "node address changed");
		}
		p->hostaddr[0] = '\0';
	} else if (p)
		return p;
	if (!p) {
		p = pool_new();
		p->node_id = node_id;
	}
	util_strlcpy(p->name, name, sizeof(p->name));
	util_strlcpy(p->host, host, sizeof(p->host));
	util_strlcpy(p->dbname, dbname, sizeof(p->dbname));
	p->port = port;
	return p;
}

PgPool *
workerconn_pool_dsn(const char *name, const char *dsn)
{
	PgPool *p = pool_new();

	p->node_id = -1;
	util_strlcpy(p->name, name, sizeof(p->name));
	p->dsn = xstrdup(dsn);
	return p;
}

static void
keepalive_done(PgJob *job, void *arg)
{
	pgjob_free(job);
}

PgPool *
workerconn_listener(const char *name, const char *dsn, const char *channel, PgNotifyCallback cb)
{
	PgPool *p = workerconn_pool_dsn(name, dsn);

	p->max_conns = 1;
	p->listen_sql = xasprintf("LISTEN %s", channel);
	p->notify_cb = cb;
	return p;
}

void
workerconn_listener_keepalive(PgPool *pool)
{
	PgJob *job;

	if (pool->nconns > 0)
		return;
	/* any job opens the connection, which then LISTENs */
	job = pgjob_new(keepalive_done, NULL);
	pgjob_add0(job, "SELECT 1");
	pgjob_submit(pool, job);
}

bool
workerconn_pool_up(const PgPool *pool)
{
	return pool->up;
}

const char *
workerconn_pool_name(const PgPool *pool)
{
	return pool->name;
}

void
workerconn_pool_set_max(PgPool *pool, int max_conns)
{
	pool->max_conns = max_conns;
}

void
workerconn_pool_stats(WorkerconnStatsCallback cb, void *arg)
{
	for (PgPool *p = wc_pools; p; p = p->next) {
		WorkerconnPoolStats st = {p->name, p->node_id, p->up, 0, 0, 0, 0};

		for (PgConn *c = p->conns; c; c = c->next) {
			if (c->state == WC_BUSY)
				st.busy++;
			else if (c->state == WC_IDLE)
				st.idle++;
			else
				st.connecting++;
		}
		for (PgJob *q = p->qhead; q; q = q->qnext)
			st.queued++;
		cb(&st, arg);
	}
}

static void pool_drop_now(int node_id);

static void
pool_drop_cb(evutil_socket_t fd, short what, void *arg)
{
	pool_drop_now((int) (intptr_t) arg);
}

/* Dropping is deferred to the loop: callers may be inside a job callback
 * that runs on one of the pool's own connections. */
void
workerconn_pool_drop(int node_id)
{
	struct timeval zero = {0, 0};

	event_base_once(wc_base, -1, EV_TIMEOUT, pool_drop_cb, (void *) (intptr_t) node_id, &zero);
}

static void
pool_drop_now(int node_id)
{
	PgPool **pp;

	for (pp = &wc_pools; *pp; pp = &(*pp)->next) {
		PgPool *p = *pp;

		if (p->dsn || p->node_id != node_id)
			continue;
		while (p->qhead) {
			PgJob *j = p->qhead;

			job_fail(j, true, "08006", "node %s was removed", p->name);
		}
		while (p->conns)
			conn_destroy(p->conns, "node removed");
		*pp = p->next;
		/*
		 * Jobs submitted just before the drop may still hold the pool in
		 * their start event; the small struct is kept (never reused) so
		 * that they fail cleanly instead of touching freed memory.
		 */
		p->dropped = true;
		p->next = NULL;
		return;
	}
}

/* ---- jobs ---- */

PgJob *
pgjob_new(PgJobCallback cb, void *arg)
{
	PgJob *j = xcalloc(1, sizeof(PgJob));

	j->cb = cb;
	j->arg = arg;
	j->timeout_ms = cf_worker_timeout_ms;
	return j;
}

int
pgjob_add(PgJob *job, const char *sql, const ParamList *params)
{
	PgStmt *s;

	if (job->nstmts == job->cap) {
		job->cap = job->cap ? job->cap * 2 : 4;
		job->stmts = xrealloc(job->stmts, job->cap * sizeof(PgStmt));
	}
	s = &job->stmts[job->nstmts];
	s->sql = xstrdup(sql);
	params_init(&s->params);
	if (params)
		params_append(&s->params, params);
	return job->nstmts++;
}

int
pgjob_add0(PgJob *job, const char *sql)
{
	return pgjob_add(job, sql, NULL);
}

int
pgjob_add_prepared(PgJob *job, const char *sql, const ParamList *params)
{
	int i = pgjob_add(job, sql, params);

	job->stmts[i].prepare = true;
	return i;
}

static void
job_detach(PgJob *job)
{
	if (job->timer) {
		event_free(job->timer);
		job->timer = NULL;
	}
	if (job->queued) {
		PgPool *p = job->pool;
		PgJob **jp;

		for (jp = &p->qhead; *jp; jp = &(*jp)->qnext)
			if (*jp == job) {
				*jp = job->qnext;
				break;
			}
		p->qtail = NULL;
		for (PgJob *q = p->qhead; q; q = q->qnext)
			p->qtail = q;
		job->queued = false;
	}
	if (job->conn) {
		job->conn->job = NULL;
		job->conn = NULL;
	}
}

static void
job_finish(PgJob *job)
{
	job_detach(job);
	job->cb(job, job->arg);
}

static void
job_fail(PgJob *job, bool conn_error, const char *sqlstate, const char *fmt, ...)
{
	va_list ap;
	char msg[1024];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	job->ok = false;
	job->conn_error = conn_error;
	util_strlcpy(job->sqlstate, sqlstate, sizeof(job->sqlstate));
	free(job->errmsg);
	job->errmsg = xstrdup(msg);
	job_finish(job);
}

static void
job_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	PgJob *job = arg;
	PgConn *c = job->conn;

	log_warning("worker %s: query passed its deadline of %d ms", job->node, job->timeout_ms);
	job_detach(job);
	if (c)
		conn_destroy(c, "query deadline passed");
	job->ok = false;
	job->conn_error = true;
	util_strlcpy(job->sqlstate, "57014", sizeof(job->sqlstate));
	free(job->errmsg);
	job->errmsg = xasprintf("node %s: no answer within %d ms", job->node, job->timeout_ms);
	job->cb(job, job->arg);
}

static void
job_submit_later_cb(evutil_socket_t fd, short what, void *arg)
{
	PgJob *job = arg;
	PgPool *pool = job->pool;

	event_free(job->timer);
	job->timer = NULL;
	if (pool->dropped) {
		job_fail(job, true, "08006", "node %s was removed", pool->name);
		return;
	}
	/* a timeout of 0 means no deadline (an index build on a shard move) */
	if (job->timeout_ms > 0) {
		struct timeval tv = {job->timeout_ms / 1000, (job->timeout_ms % 1000) * 1000};

		job->timer = evtimer_new(wc_base, job_timeout_cb, job);
		evtimer_add(job->timer, &tv);
	}
	/* append to the queue, then give it to an idle connection if any */
	job->queued = true;
	job->qnext = NULL;
	if (pool->qtail)
		pool->qtail->qnext = job;
	else
		pool->qhead = job;
	pool->qtail = job;
	for (PgConn *c = pool->conns; c; c = c->next)
		if (c->state == WC_IDLE) {
			conn_dispatch(c);
			return;
		}
	{
		int pending = 0, queued = 0;

		for (PgConn *c = pool->conns; c; c = c->next)
			if (c->state == WC_RESOLVING || c->state == WC_CONNECTING)
				pending++;
		for (PgJob *q = pool->qhead; q; q = q->qnext)
			queued++;
		if (pool->nconns < (pool->max_conns ? pool->max_conns : cf_pool_size) && pending < queued)
			conn_start(pool);
	}
}

void
pgjob_submit(PgPool *pool, PgJob *job)
{
	struct timeval zero = {0, 0};

	job->pool = pool;
	util_strlcpy(job->node, pool->name, sizeof(job->node));
	/* start from the loop so that the callback never runs inside submit */
	job->timer = evtimer_new(wc_base, job_submit_later_cb, job);
	evtimer_add(job->timer, &zero);
}

void
pgjob_cancel(PgJob *job)
{
	PgConn *c = job->conn;

	job_detach(job);
	if (c)
		conn_destroy(c, "request cancelled");
}

void
pgjob_free(PgJob *job)
{
	if (!job)
		return;
	job_detach(job);
	for (int i = 0; i < job->nstmts; i++) {
		free(job->stmts[i].sql);
		params_free(&job->stmts[i].params);
		if (job->results && job->results[i])
			PQclear(job->results[i]);
	}
	free(job->stmts);
	free(job->slots);
	free(job->results);
	free(job->errmsg);
	free(job);
}

/* ---- connections ---- */

static void
conn_destroy(PgConn *c, const char *why)
{
	PgPool *p = c->pool;
	PgConn **cp;
	PgJob *job = c->job;

	log_debug("worker %s@%s:%d: connection closed: %s", p->name, p->host, p->port, why);
	for (cp = &p->conns; *cp; cp = &(*cp)->next)
		if (*cp == c) {
			*cp = c->next;
			break;
		}
	p->nconns--;
	if (c->rev)
		event_free(c->rev);
	if (c->wev)
		event_free(c->wev);
	if (c->cev)
		event_free(c->cev);
	if (c->ctimer)
		event_free(c->ctimer);
	if (c->pg)
		PQfinish(c->pg);
	c->job = NULL;
	prep_clear(c);
	free(c->prep);
	free(c);
	if (job) {
		job->conn = NULL;
		job_fail(job, true, "08006", "node %s: connection lost: %s", p->name, why);
	}
}

/* A connection attempt failed: mark the pool down and fail waiting jobs if
 * no other connection is left to serve them. */
static void
conn_connect_failed(PgConn *c, const char *why)
{
	PgPool *p = c->pool;
	char msg[512];

	snprintf(msg, sizeof(msg), "%s", why);
	if (p->up)
		log_warning("worker %s@%s:%d: cannot connect: %s", p->name, p->host, p->port, msg);
	p->up = false;
	if (p->dsn)
		p->dsn_resolved = false;	/* resolve again: the address may have moved */
	conn_destroy(c, msg);
	if (p->nconns == 0)
		while (p->qhead)
			job_fail(p->qhead, true, "08001", "node %s: cannot connect: %s", p->name, msg);
}

static void
listen_done(PgJob *job, void *arg)
{
	PgPool *p = arg;

	if (!job->ok)
		log_warning("%s: LISTEN failed: %s", job->node, job->errmsg);
	else if (p->notify_cb)
		/* notifications sent while we were not listening are lost: an empty
		 * payload tells the owner to re-check whatever it listens for */
		p->notify_cb(p->listen_sql + strlen("LISTEN "), "");
	pgjob_free(job);
}

static void
conn_notice(void *arg, const char *msg)
{
	PgPool *p = arg;

	log_debug("worker %s: %s", p->name, msg);
}

static void
conn_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn *c = arg;
	PostgresPollingStatusType st = PQconnectPoll(c->pg);
	short ev;

	if (c->cev) {
		event_free(c->cev);
		c->cev = NULL;
	}
	switch (st) {
	case PGRES_POLLING_OK:
		event_free(c->ctimer);
		c->ctimer = NULL;
		PQsetNoticeProcessor(c->pg, conn_notice, c->pool);
		if (PQsetnonblocking(c->pg, 1) != 0 || PQenterPipelineMode(c->pg) != 1) {
			conn_connect_failed(c, PQerrorMessage(c->pg));
			return;
		}
		if (!c->pool->up)
			log_info("worker %s@%s:%d: connected again", c->pool->name, c->pool->host,
					 c->pool->port);
		c->pool->up = true;
		c->state = WC_IDLE;
		c->rev = event_new(wc_base, PQsocket(c->pg), EV_READ | EV_PERSIST, conn_read_cb, c);
		event_add(c->rev, NULL);
		if (c->pool->listen_sql) {
			PgJob *lj = pgjob_new(listen_done, c->pool);

			pgjob_add0(lj, c->pool->listen_sql);
			pgjob_submit(c->pool, lj);
		}
		conn_dispatch(c);
		return;
	case PGRES_POLLING_FAILED: {
		char msg[512];
		char *nl;

		util_strlcpy(msg, PQerrorMessage(c->pg), sizeof(msg));
		if ((nl = strchr(msg, '\n')))
			*nl = '\0';
		conn_connect_failed(c, msg);
		return;
	}
	case PGRES_POLLING_READING:
		ev = EV_READ;
		break;
	default:
		ev = EV_WRITE;
		break;
	}
	c->cev = event_new(wc_base, PQsocket(c->pg), ev, conn_poll_cb, c);
	event_add(c->cev, NULL);
}

static void
conn_ctimeout_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn *c = arg;

	event_free(c->ctimer);
	c->ctimer = NULL;
	conn_connect_failed(c, "connect timeout");
}

/* Add the pg_ssl* settings that are set as libpq keywords; returns the new n. */
static int
ssl_keywords(const char **keys, const char **vals, int n)
{
	static const struct {
		const char *kw;
		char **setting;
	} map[] = {
		{"sslmode", &cf_pg_sslmode},
		{"sslrootcert", &cf_pg_sslrootcert},
		{"sslcert", &cf_pg_sslcert},
		{"sslkey", &cf_pg_sslkey},
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if ((*map[i].setting)[0]) {
			keys[n] = map[i].kw;
			vals[n++] = *map[i].setting;
		}
	return n;
}

/* Append a conninfo value in single quotes, escaping ' and \. */
static void
conninfo_quote(StrBuf *sb, const char *v)
{
	sb_append(sb, "'");
	for (; *v; v++) {
		if (*v == '\'' || *v == '\\')
			sb_append(sb, "\\");
		sb_appendn(sb, v, 1);
	}
	sb_append(sb, "'");
}

char *
workerconn_dsn_with_ssl(const char *dsn, char *err, size_t errlen)
{
	const char *keys[8], *vals[8];
	int n = ssl_keywords(keys, vals, 0);
	char *perr = NULL;
	PQconninfoOption *opts = PQconninfoParse(dsn, &perr), *o;
	StrBuf sb;

	if (!opts) {
		char *nl;

		snprintf(err, errlen, "metadata_dsn: %s", perr ? perr : "cannot parse");
		if ((nl = strchr(err, '\n')))
			*nl = '\0';
		PQfreemem(perr);
		return NULL;
	}
	sb_init(&sb);
	for (o = opts; o->keyword; o++) {
		if (!o->val)
			continue;
		if (sb.len)
			sb_append(&sb, " ");
		sb_append(&sb, o->keyword);
		sb_append(&sb, "=");
		conninfo_quote(&sb, o->val);
	}
	for (int i = 0; i < n; i++) {
		bool named = false;

		for (o = opts; o->keyword; o++)
			if (o->val && strcmp(o->keyword, keys[i]) == 0)
				named = true;
		if (named)
			continue;	/* the DSN's own choice wins */
		if (sb.len)
			sb_append(&sb, " ");
		sb_append(&sb, keys[i]);
		sb_append(&sb, "=");
		conninfo_quote(&sb, vals[i]);
	}
	PQconninfoFree(opts);
	return sb_steal(&sb);
}

static void
conn_begin_connect(PgConn *c)
{
	PgPool *p = c->pool;
	const char *keys[20], *vals[20];
	char port[16], opts[128];
	int n = 0;

	if (p->dsn) {
		keys[n] = "dbname";
		vals[n++] = p->dsn;
		if (p->dsn_hostaddr) {
			keys[n] = "hostaddr";
			vals[n++] = p->dsn_hostaddr;
		}
	} else {
		snprintf(port, sizeof(port), "%d", p->port);
		snprintf(opts, sizeof(opts), "-c client_connection_check_interval=1000");
		keys[n] = "host";
		vals[n++] = p->host;
		keys[n] = "hostaddr";
		vals[n++] = p->hostaddr;
		keys[n] = "port";
		vals[n++] = port;
		keys[n] = "dbname";
		vals[n++] = p->dbname;
		keys[n] = "user";
		vals[n++] = cf_worker_user;
		if (cf_worker_password[0]) {
			keys[n] = "password";
			vals[n++] = cf_worker_password;
		}
		keys[n] = "options";
		vals[n++] = opts;
		n = ssl_keywords(keys, vals, n);
	}
	keys[n] = "application_name";
	vals[n++] = "vectron-coordinator";
	keys[n] = NULL;
	vals[n] = NULL;
	c->state = WC_CONNECTING;
	c->pg = PQconnectStartParams(keys, vals, p->dsn ? 1 : 0);
	if (!c->pg || PQstatus(c->pg) == CONNECTION_BAD) {
		conn_connect_failed(c, c->pg ? PQerrorMessage(c->pg) : "out of memory");
		return;
	}
	{
		struct timeval tv = {cf_connect_timeout_ms / 1000, (cf_connect_timeout_ms % 1000) * 1000};

		c->ctimer = evtimer_new(wc_base, conn_ctimeout_cb, c);
		evtimer_add(c->ctimer, &tv);
	}
	c->cev = event_new(wc_base, PQsocket(c->pg), EV_WRITE, conn_poll_cb, c);
	event_add(c->cev, NULL);
}

static void
pool_dns_cb(int err, struct evutil_addrinfo *res, void *arg)
{
	PgPool *p = arg;

	p->resolving = false;
	if (err || !res) {
		char why[600];

		snprintf(why, sizeof(why), "cannot resolve %s: %s", p->host, evutil_gai_strerror(err));
		for (PgConn *c = p->conns, *n; c; c = n) {
			n = c->next;
			if (c->state == WC_RESOLVING)
				conn_connect_failed(c, why);
		}
		if (res)
			evutil_freeaddrinfo(res);
		return;
	}
	if (res->ai_family == AF_INET)
		inet_ntop(AF_INET, &((struct sockaddr_in *) res->ai_addr)->sin_addr, p->hostaddr,
				  sizeof(p->hostaddr));
	else
		inet_ntop(AF_INET6, &((struct sockaddr_in6 *) res->ai_addr)->sin6_addr, p->hostaddr,
				  sizeof(p->hostaddr));
	evutil_freeaddrinfo(res);
	for (PgConn *c = p->conns, *n; c; c = n) {
		n = c->next;
		if (c->state == WC_RESOLVING)
			conn_begin_connect(c);
	}
}

/* The DSN's host names are resolved (resolve.c): connect what waited. */
static void
pool_dsn_resolved(void *arg, const char *hostaddr, const char *err)
{
	PgPool *p = arg;

	p->resolving = false;
	free(p->dsn_hostaddr);
	p->dsn_hostaddr = hostaddr ? xstrdup(hostaddr) : NULL;
	p->dsn_resolved = hostaddr != NULL;
	for (PgConn *c = p->conns, *n; c; c = n) {
		n = c->next;
		if (c->state != WC_RESOLVING)
			continue;
		if (err)
			conn_connect_failed(c, err);
		else
			conn_begin_connect(c);
	}
}

static void
conn_start(PgPool *p)
{
	PgConn *c = xcalloc(1, sizeof(PgConn));
	unsigned char buf[sizeof(struct in6_addr)];

	c->pool = p;
	c->next = p->conns;
	p->conns = c;
	p->nconns++;
	c->state = WC_RESOLVING;
	if (p->dsn) {
		if (p->dsn_resolved)
			conn_begin_connect(c);
		else if (!p->resolving) {
			p->resolving = true;
			if (!resolve_conninfo(wc_base, wc_dns, p->dsn, pool_dsn_resolved, p)) {
				p->resolving = false;
				p->dsn_resolved = true;
				conn_begin_connect(c);
			}
		}
		return;
	}
	if (inet_pton(AF_INET, p->host, buf) == 1 || inet_pton(AF_INET6, p->host, buf) == 1)
		util_strlcpy(p->hostaddr, p->host, sizeof(p->hostaddr));
	if (p->hostaddr[0]) {
		conn_begin_connect(c);
		return;
	}
	if (!p->resolving) {
		struct evutil_addrinfo hints;

		memset(&hints, 0, sizeof(hints));
		hints.ai_family = AF_UNSPEC;
		hints.ai_socktype = SOCK_STREAM;
		p->resolving = true;
		evdns_getaddrinfo(wc_dns, p->host, NULL, &hints, pool_dns_cb, p);
	}
}

static void
conn_want_write(PgConn *c, bool on)
{
	if (on && !c->wev) {
		c->wev = event_new(wc_base, PQsocket(c->pg), EV_WRITE | EV_PERSIST, conn_write_cb, c);
		event_add(c->wev, NULL);
	} else if (!on && c->wev) {
		event_free(c->wev);
		c->wev = NULL;
	}
}

static void
conn_flush(PgConn *c)
{
	int r = PQflush(c->pg);

	if (r < 0) {
		conn_destroy(c, PQerrorMessage(c->pg));
		return;
	}
	conn_want_write(c, r == 1);
}

static void
prep_clear(PgConn *c)
{
	for (int i = 0; i < c->nprep; i++) {
		free(c->prep[i]);
		c->prep[i] = NULL;
	}
	c->nprep = 0;
}

/* The cache index of a statement prepared on c, or -1. */
static int
prep_find(PgConn *c, const char *sql)
{
	for (int i = 0; i < c->nprep; i++)
		if (c->prep[i] && strcmp(c->prep[i], sql) == 0)
			return i;
	return -1;
}

/*
 * Queue one statement in the connection's pipeline: as a named prepared
 * statement when asked for (preparing it first on this connection if
 * needed), else unnamed.  Binary parameters (a vector in its wire layout)
 * go with their lengths and format 1.  Records each pipeline item in
 * job->slots so that conn_collect knows which results are whose.
 */
static bool
stmt_send(PgConn *c, PgJob *job, int si)
{
	const PgStmt *s = &job->stmts[si];
	const ParamList *pl = &s->params;
	int fmts[16], *fmt = NULL, e = -1;
	char name[16];
	bool ok;

	if (s->prepare && (e = prep_find(c, s->sql)) < 0) {
		if (c->nprep == WC_PREPARED_MAX) {
			if (!PQsendQueryParams(c->pg, "DEALLOCATE ALL", 0, NULL, NULL, NULL, NULL, 0))
				return false;
			/* Prepares earlier in this pipeline no longer map to cache
			 * entries (their indices are about to be reused) */
			for (int k = 0; k < job->nitems; k++)
				if (job->slots[k] <= -2)
					job->slots[k] = -1;
			job->slots[job->nitems++] = -1;
			prep_clear(c);
		}
		if (!c->prep)
			c->prep = xcalloc(WC_PREPARED_MAX, sizeof(char *));
		e = c->nprep++;
		c->prep[e] = xstrdup(s->sql);
		snprintf(name, sizeof(name), "vx%d", e);
		if (!PQsendPrepare(c->pg, name, s->sql, pl->n, NULL))
			return false;
		job->slots[job->nitems++] = -2 - e;
	}
	if (params_any_binary(pl)) {
		fmt = pl->n <= 16 ? fmts : xmalloc(sizeof(int) * pl->n);
		for (int i = 0; i < pl->n; i++)
			fmt[i] = pl->len[i] >= 0 ? 1 : 0;
	}
	if (e >= 0) {
		snprintf(name, sizeof(name), "vx%d", e);
		ok = PQsendQueryPrepared(c->pg, name, pl->n, (const char *const *) pl->v,
								 fmt ? pl->len : NULL, fmt, 0);
	} else
		ok = PQsendQueryParams(c->pg, s->sql, pl->n, NULL, (const char *const *) pl->v,
							   fmt ? pl->len : NULL, fmt, 0);
	if (fmt && fmt != fmts)
		free(fmt);
	job->slots[job->nitems++] = si;
	return ok;
}

/* Give the next queued job, if any, to an idle connection and send it. */
static void
conn_dispatch(PgConn *c)
{
	PgPool *p = c->pool;
	PgJob *job = p->qhead;

	if (c->state != WC_IDLE || !job)
		return;
	p->qhead = job->qnext;
	if (!p->qhead)
		p->qtail = NULL;
	job->queued = false;
	job->qnext = NULL;
	job->conn = c;
	job->recv = 0;
	job->results = xcalloc(job->nstmts, sizeof(PGresult *));
	job->nitems = 0;
	job->slots = xrealloc(job->slots, sizeof(int) * (3 * job->nstmts + 1));
	c->job = job;
	c->state = WC_BUSY;
	for (int i = 0; i < job->nstmts; i++) {
		if (!stmt_send(c, job, i)) {
			conn_destroy(c, PQerrorMessage(c->pg));
			return;
		}
	}
	if (!PQpipelineSync(c->pg)) {
		conn_destroy(c, PQerrorMessage(c->pg));
		return;
	}
	job->sent_us = util_now_us();
	conn_flush(c);
}

/* Read what results are complete; finish the job at the pipeline's Sync. */
static void
conn_collect(PgConn *c)
{
	PgJob *job = c->job;
	bool failed = false;

	while (job && !PQisBusy(c->pg)) {
		PGresult *r = PQgetResult(c->pg);
		ExecStatusType st;

		if (!r) {
			job->recv++;
			if (job->recv > job->nitems + 1) {
				conn_destroy(c, "protocol confusion in pipeline");
				return;
			}
			continue;
		}
		st = PQresultStatus(r);
		if (st == PGRES_PIPELINE_SYNC) {
			PQclear(r);
			job->done_us = util_now_us();
			if (!job->errmsg) {
				job->ok = true;
				c->pool->up = true;
			}
			/* stay BUSY during the callback, so nothing it does can free c */
			job_finish(job);
			c->state = WC_IDLE;
			conn_dispatch(c);
			return;
		}
		if (st == PGRES_FATAL_ERROR && !job->errmsg) {
			const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
			const char *m = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);

			failed = true;
			util_strlcpy(job->sqlstate, ss ? ss : "XX000", sizeof(job->sqlstate));
			job->errmsg = xasprintf("node %s: %s", c->pool->name, m ? m : PQresultErrorMessage(r));
			job->conn_error = false;
			/* admin shutdown, crash and connection classes mean the node, not the SQL */
			if (ss && (strncmp(ss, "57P", 3) == 0 || strncmp(ss, "08", 2) == 0))
				job->conn_error = true;
		}
		{
			int slot = job->recv < job->nitems ? job->slots[job->recv] : -1;

			if (slot <= -2 && st != PGRES_COMMAND_OK && c->prep[-slot - 2]) {
				/* not prepared after all (error, or the pipeline aborted first) */
				free(c->prep[-slot - 2]);
				c->prep[-slot - 2] = NULL;
			}
			if (slot >= 0 && st != PGRES_PIPELINE_ABORTED) {
				if (job->results[slot])
					PQclear(job->results[slot]);
				job->results[slot] = r;
			} else
				PQclear(r);
		}
	}
	(void) failed;
}

static void
conn_read_cb(evutil_socket_t fd, short what, void *arg)
{
	PgConn *c = arg;

	if (!PQconsumeInput(c->pg)) {
		char msg[256];
		char *nl;

		util_strlcpy(msg, PQerrorMessage(c->pg), sizeof(msg));
		if ((nl = strchr(msg, '\n')))
			*nl = '\0';
		if (c->job)
			c->pool->up = false;
		conn_destroy(c, msg[0] ? msg : "server closed the connection");
		return;
	}
	if (c->pool->notify_cb) {
		PGnotify *n;
		PgNotifyCallback cb = c->pool->notify_cb;

		while ((n = PQnotifies(c->pg))) {
			cb(n->relname, n->extra);
			PQfreemem(n);
		}
	}
	if (c->state == WC_BUSY) {
		conn_collect(c);
		return;
	}
	/* idle: a notice or the server going away */
	if (PQstatus(c->pg) == CONNECTION_BAD)
		conn_destroy(c, "server closed the connection");
}

static void
conn_write_cb(evutil_socket_t fd, short what, void *arg)
{
	conn_flush(arg);
}

void
workerconn_shutdown(void)
{
	while (wc_pools) {
		PgPool *p = wc_pools;

		wc_pools = p->next;
		while (p->conns)
			conn_destroy(p->conns, "shutdown");
		free(p->dsn);
		free(p->listen_sql);
		free(p);
	}
}

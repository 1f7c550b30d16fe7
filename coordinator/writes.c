/*
 * writes.c: replicated writes with stale marking (see writes.h).
 */
#include "writes.h"

#include "config.h"
#include "log.h"
#include "metadata.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct WriteJob {
	WriteOp *w;
	PgJob *job;
	int n;
	int *shard_idx;
	int64_t *placement_id;
	struct WriteJob *next;
} WriteJob;

static int64_t wr_last_version;

int64_t
writes_next_version(void)
{
	int64_t us = (int64_t) util_wall_us();

	if (us <= wr_last_version)
		us = wr_last_version + 1;
	wr_last_version = us;
	return (us << 10) | (cf_coordinator_id & 1023);
}

static void
writes_finish(WriteOp *w)
{
	if (w->cancelled) {
		writes_free(w);
		return;
	}
	w->done(w, w->done_arg);
}

static void
stale_reloaded(void *arg, bool ok)
{
	writes_finish(arg);
}

static void
stale_marked(PgJob *job, void *arg)
{
	WriteOp *w = arg;

	w->meta_job = NULL;
	if (!job->ok) {
		w->ok = false;
		free(w->errmsg);
		w->errmsg = xasprintf("could not record failed placements as stale, so the write "
							  "is not acknowledged: %s", job->errmsg);
		snprintf(w->errcode, sizeof(w->errcode), "METADATA_UNAVAILABLE");
		pgjob_free(job);
		writes_finish(w);
		return;
	}
	pgjob_free(job);
	log_warning("marked %d placement(s) stale after failed writes", w->nstale);
	shardmap_reload(stale_reloaded, w);
}

/* All placement jobs are back: decide, mark stale, then call done. */
static void
writes_settle(WriteOp *w)
{
	w->ok = true;
	for (int i = 0; i < w->nshards; i++) {
		WriteShard *ws = &w->shards[i];

		if (!ws->touched)
			continue;
		if (ws->nok == 0 || (!w->mark_stale && ws->nfailed > 0)) {
			w->ok = false;
			if (!w->errmsg) {
				w->errmsg = xasprintf("shard %d: %s", ws->shard->index,
									  ws->errmsg ? ws->errmsg : "no writable placement");
				util_strlcpy(w->sqlstate, ws->sqlstate, sizeof(w->sqlstate));
				snprintf(w->errcode, sizeof(w->errcode), "%s",
						 ws->sql_error ? "WORKER_ERROR" : "SHARD_UNAVAILABLE");
			}
		}
	}
	if (w->mark_stale && w->nstale > 0) {
		StrBuf arr;
		ParamList p;

		sb_init(&arr);
		sb_append(&arr, "{");
		for (int i = 0; i < w->nstale; i++)
			sb_appendf(&arr, "%s%lld", i ? "," : "", (long long) w->stale[i]);
		sb_append(&arr, "}");
		params_init(&p);
		params_add(&p, arr.data);
		sb_free(&arr);
		w->meta_job = pgjob_new(stale_marked, w);
		pgjob_add(w->meta_job,
				  "UPDATE vectron_meta.placement SET state = 'stale' "
				  "WHERE id = ANY($1::bigint[]) AND state IN ('active', 'repairing')",
				  &p);
		pgjob_add0(w->meta_job, "SELECT vectron_meta.bump()");
		params_free(&p);
		pgjob_submit(metadata_pool(), w->meta_job);
		return;
	}
	writes_finish(w);
}

static void
write_job_done(PgJob *job, void *arg)
{
	WriteJob *wj = arg, **pp;
	WriteOp *w = wj->w;

	for (int j = 0; j < wj->n; j++) {
		WriteShard *ws = &w->shards[wj->shard_idx[j]];

		if (job->ok) {
			ws->nok++;
			if (!ws->res) {
				ws->res = job->results[j];
				job->results[j] = NULL;
				util_strlcpy(ws->node, job->node, sizeof(ws->node));
			}
		} else {
			ws->nfailed++;
			free(ws->errmsg);
			ws->errmsg = xstrdup(job->errmsg ? job->errmsg : "unknown error");
			util_strlcpy(ws->sqlstate, job->sqlstate, sizeof(ws->sqlstate));
			util_strlcpy(ws->node, job->node, sizeof(ws->node));
			ws->sql_error = !job->conn_error;
			w->stale = xrealloc(w->stale, sizeof(int64_t) * (w->nstale + 1));
			w->stale[w->nstale++] = wj->placement_id[j];
		}
	}
	for (pp = &w->jobs; *pp; pp = &(*pp)->next)
		if (*pp == wj) {
			*pp = wj->next;
			break;
		}
	pgjob_free(job);
	free(wj->shard_idx);
	free(wj->placement_id);
	free(wj);
	if (--w->inflight == 0)
		writes_settle(w);
}

static bool
placement_writable(const SmPlacement *p, bool include_all)
{
	return p->node && (include_all || p->state == SM_ACTIVE || p->state == SM_REPAIRING);
}

static void
writes_later_cb(evutil_socket_t fd, short what, void *arg)
{
	WriteOp *w = arg;

	if (--w->inflight == 0)
		writes_settle(w);
}

WriteOp *
writes_start(ShardMap *map, const SmCollection *c, const bool *touched, bool mark_stale,
			 bool include_all, WriteBuild build, void *build_arg, WriteDone done, void *done_arg)
{
	WriteOp *w = xcalloc(1, sizeof(WriteOp));
	int nn = map->nnodes;
	struct timeval zero = {0, 0};

	map->refcount++;
	w->map = map;
	w->coll = c;
	w->nshards = c->nshards;
	w->shards = xcalloc(c->nshards, sizeof(WriteShard));
	w->mark_stale = mark_stale;
	w->include_all = include_all;
	w->build = build;
	w->build_arg = build_arg;
	w->done = done;
	w->done_arg = done_arg;
	for (int i = 0; i < c->nshards; i++) {
		w->shards[i].shard = &c->shards[i];
		w->shards[i].touched = touched ? touched[i] : true;
	}
	/* hold one count until everything is submitted, released from the loop */
	w->inflight = 1;
	/* one job per node, with the statements of every shard placed there */
	for (int n = 0; n < nn; n++) {
		const SmNode *node = &map->nodes[n];
		WriteJob *wj = NULL;

		for (int i = 0; i < c->nshards; i++) {
			const SmShard *s = &c->shards[i];

			if (!w->shards[i].touched)
				continue;
			for (int p = 0; p < s->nplacements; p++) {
				StrBuf sql;
				ParamList params;

				if (s->placements[p].node != node ||
					!placement_writable(&s->placements[p], include_all))
					continue;
				if (!wj) {
					wj = xcalloc(1, sizeof(WriteJob));
					wj->w = w;
					wj->shard_idx = xmalloc(sizeof(int) * c->nshards);
					wj->placement_id = xmalloc(sizeof(int64_t) * c->nshards);
					wj->job = pgjob_new(write_job_done, wj);
				}
				sb_init(&sql);
				params_init(&params);
				build(build_arg, i, s, &sql, &params);
				pgjob_add(wj->job, sql.data, &params);
				sb_free(&sql);
				params_free(&params);
				wj->shard_idx[wj->n] = i;
				wj->placement_id[wj->n] = s->placements[p].id;
				wj->n++;
			}
		}
		if (wj) {
			wj->next = w->jobs;
			w->jobs = wj;
			w->inflight++;
			pgjob_submit(workerconn_pool_for_node(node->id, node->name, node->host, node->port,
												  node->dbname),
						 wj->job);
		}
	}
	event_base_once(workerconn_base(), -1, EV_TIMEOUT, writes_later_cb, w, &zero);
	return w;
}

void
writes_detach(WriteOp *w)
{
	w->cancelled = true;
}

void
writes_free(WriteOp *w)
{
	if (!w)
		return;
	for (int i = 0; i < w->nshards; i++) {
		if (w->shards[i].res)
			PQclear(w->shards[i].res);
		free(w->shards[i].errmsg);
	}
	free(w->shards);
	free(w->stale);
	free(w->errmsg);
	shardmap_release(w->map);
	free(w);
}

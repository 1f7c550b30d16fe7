/*
 * fanout.h: the read executor.  Runs one statement per shard on one
 * readable placement of each shard, one pipeline per worker node, and
 * retries a failed shard on another placement.  See the design comment in
 * fanout.c.
 */
#ifndef VX_FANOUT_H
#define VX_FANOUT_H

#include "shardmap.h"
#include "util.h"
#include "workerconn.h"

typedef struct Fanout Fanout;

typedef struct FanoutShard {
	const SmShard *shard;
	PGresult *res;		/* the shard statement's result when ok */
	bool ok;
	bool failed;		/* no placement left */
	bool sql_error;		/* the last failure was the SQL, not the node */
	char sqlstate[6];
	char *errmsg;
	char node[64];		/* the node that answered, or failed last */
	bool *tried;		/* per placement */
	double ms;			/* round trip of the answering (or last) attempt */
	double rtt_ms;		/* of which on the wire and the worker: pipeline sent -> Sync */
	int attempts;
} FanoutShard;

/* Build the statement of one shard into sql/params (params start empty). */
typedef void (*FanoutBuild)(void *arg, const SmShard *shard, StrBuf *sql, ParamList *params);
typedef void (*FanoutDone)(Fanout *f, void *arg);

struct Fanout {
	ShardMap *map;
	const SmCollection *coll;
	int nshards;
	FanoutShard *shards;
	char *prelude;		/* first statement of every pipeline, e.g. set_config */
	ParamList prelude_params;
	FanoutBuild build;
	void *build_arg;
	FanoutDone done;
	void *done_arg;
	int inflight;
	struct FanoutJob *jobs;
	int nfailed;
	unsigned flags;		/* FANOUT_* */
	bool finished;
	bool later_pending;
	bool cancelled;
};

/*
 * Start reading all shards of c (map is referenced for the duration).
 * prelude may be NULL.  done runs once, from the loop.
 */
Fanout *fanout_start(ShardMap *map, const SmCollection *c, const bool *touched,
					 const char *prelude,
					 const ParamList *prelude_params, FanoutBuild build, void *build_arg,
					 FanoutDone done, void *done_arg);
/*
 * As fanout_start, with flags.  FANOUT_PREPARED: the prelude and the shard
 * statements run as statements prepared once per worker connection (see
 * pgjob_add_prepared); for statement texts that repeat, not ad-hoc ones.
 */
#define FANOUT_PREPARED 1u
Fanout *fanout_start_flags(ShardMap *map, const SmCollection *c, const bool *touched,
						   const char *prelude, const ParamList *prelude_params,
						   FanoutBuild build, void *build_arg, FanoutDone done, void *done_arg,
						   unsigned flags);
/* Stop in-flight work (drops those connections); done will not run. */
void fanout_cancel(Fanout *f);
void fanout_free(Fanout *f);

/* Is this placement readable: active, on a known, non-draining node. */
bool fanout_placement_readable(const SmPlacement *p);

#endif

/*
 * shardmove.h: moving a shard placement to another node while reads and
 * writes go on, with PostgreSQL logical replication (see shardmove.c), and
 * finishing or rolling back moves that a stopped coordinator left running.
 */
#ifndef VX_SHARDMOVE_H
#define VX_SHARDMOVE_H

#include "http.h"

#include <event2/event.h>

/* Start the timer that adopts interrupted moves (after metadata_init). */
void shardmove_start(struct event_base *base);
void shardmove_stop(void);

/*
 * Begin a move.  With replace (a node name, or NULL) it is a re-replication:
 * from keeps its placement and replace's placement (its node gone for good)
 * is dropped at the switch instead.  started runs once: status 202 with the move id and node
 * names, or an HTTP status, stable code and message.  done (may be NULL)
 * runs when the move ends in this process: ok when it switched and
 * finished; error says why not (rolled back, or left to the adopt timer).
 */
typedef void (*ShardMoveStarted)(void *arg, int status, const char *code, const char *msg,
								 int64_t move_id, const char *from, const char *to);
typedef void (*ShardMoveDone)(void *arg, int64_t move_id, bool ok, const char *error);
void shardmove_begin(int64_t shard_id, const char *from, const char *to, const char *replace,
					 ShardMoveStarted started, ShardMoveDone done, void *arg);

/* POST /v1/admin/shards/{id}/move {"from","to"[,"replace"]}: 202 with the move id. */
void shardmove_handle_move(HttpRequest *req, const char *shard_id);
/* GET /v1/admin/moves and /v1/admin/moves/{id}. */
void shardmove_handle_list(HttpRequest *req, const char *move_id);

#endif

/*
 * health.h: the coordinator's timers, all in one place: node health checks,
 * the shard map version poll, and the cleanup pass (drop shard tables of
 * deleted collections on nodes that were down, and roll back collections
 * stuck in "creating" by a coordinator that died).
 */
#ifndef VX_HEALTH_H
#define VX_HEALTH_H

#include <event2/event.h>

void health_start(struct event_base *base);
void health_stop(void);
/* Run the cleanup pass soon. */
void health_kick_cleanup(void);

#endif

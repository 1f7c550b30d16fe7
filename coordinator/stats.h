/*
 * stats.h: cluster statistics for the admin API.
 *
 * Each coordinator writes its own one-minute figures (obs.c's window) to
 * vectron_meta.coordinator_stats every stats_report_ms; GET /v1/admin/stats
 * adds up the coordinators that reported within three periods and lists
 * each of them.  Point counts and sizes come from a scan of the workers:
 * one pipeline per node with an exact count and the table and index sizes
 * of every shard table the map places there, plus the node's version,
 * database size and connection count.
 */
#ifndef VX_STATS_H
#define VX_STATS_H

#include "http.h"

#include <event2/event.h>

/* Start the report timer (after metadata_init). */
void stats_start(struct event_base *base);
void stats_stop(void);

void stats_handle_stats(HttpRequest *req);
void stats_handle_collections(HttpRequest *req);
void stats_handle_nodes(HttpRequest *req);

#endif

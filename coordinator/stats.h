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
#include "shardmap.h"

#include <event2/event.h>

/* Start the report timer (after metadata_init). */
void stats_start(struct event_base *base);
void stats_stop(void);

void stats_handle_stats(HttpRequest *req);

/*
 * Scan the workers for the size (table + indexes) of every placement in
 * the current map; cb gets the map the scan used (referenced during the
 * call), the sizes (have = the node answered), and per map node whether it
 * answered.
 */
typedef struct StatsPlacementSize {
	int node_id;
	const char *table;
	long long bytes;
	bool have;
} StatsPlacementSize;
typedef void (*StatsSizesCallback)(void *arg, ShardMap *map, const StatsPlacementSize *sizes,
								   int n, const bool *node_ok);
void stats_placement_sizes(StatsSizesCallback cb, void *arg);
void stats_handle_collections(HttpRequest *req);
void stats_handle_nodes(HttpRequest *req);

#endif

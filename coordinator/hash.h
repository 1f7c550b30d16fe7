/*
 * hash.h: the fixed, documented hash of point ids, and shard ranges.
 *
 * A point id (a string of at most 256 bytes; a JSON integer id is first
 * written as its decimal string) hashes with 32-bit FNV-1a over its bytes:
 *   h = 2166136261; for each byte b: h = (h XOR b) * 16777619 (mod 2^32).
 * A collection with n shards gives shard i the range
 *   [ceil(i * 2^32 / n), ceil((i + 1) * 2^32 / n) - 1],
 * so shard(h) = floor(h * n / 2^32).  The ranges are stored in the metadata
 * (shard.hash_min/hash_max) and routing uses the stored ranges.
 */
#ifndef VX_HASH_H
#define VX_HASH_H

#include <stddef.h>
#include <stdint.h>

uint32_t hash_point_id(const char *id, size_t len);

/* The range of shard i of n, as defined above. */
void hash_shard_range(int i, int n, int64_t *min, int64_t *max);

/* Index of the range containing h, given ascending hash_min values. */
int hash_route(uint32_t h, const int64_t *mins, int n);

#endif

/*
 * hash.c: FNV-1a of point ids and hash-range routing (see hash.h).
 */
#include "hash.h"

uint32_t
hash_point_id(const char *id, size_t len)
{
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char) id[i];
		h *= 16777619u;
	}
	return h;
}

void
hash_shard_range(int i, int n, int64_t *min, int64_t *max)
{
	const int64_t space = INT64_C(4294967296);

	*min = (i * space + n - 1) / n;
	*max = ((i + 1) * space + n - 1) / n - 1;
}

int
hash_route(uint32_t h, const int64_t *mins, int n)
{
	int lo = 0, hi = n - 1;

	/* the last range whose min <= h */
	while (lo < hi) {
		int mid = (lo + hi + 1) / 2;

		if (mins[mid] <= (int64_t) h)
			lo = mid;
		else
			hi = mid - 1;
	}
	return lo;
}

/*
 * ratelimit.c: token buckets in a fixed-size chained hash table, with an
 * LRU list for eviction (see ratelimit.h).
 *
 * A bucket holds tokens (a double) and the time it was last refilled.  On
 * each take it is refilled by elapsed * rate, capped at burst; a new bucket
 * starts full.  The table has a power-of-two number of chains, at least
 * max_keys, so chains stay short; the hash is FNV-1a mixed with a per-
 * limiter seed.  The LRU list is most recent first: a take moves its bucket
 * to the front, eviction takes the tail, and the sweep drops every bucket that
 * has refilled (one untouched for burst/rate seconds), in O(buckets).
 */
#include "ratelimit.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Bucket {
	struct Bucket *chain;		/* next in the hash chain */
	struct Bucket *prev, *next;	/* LRU list, most recent first */
	uint64_t hash;
	uint64_t last_ms;
	double tokens;
	char key[];
} Bucket;

struct Ratelimit {
	double rate;				/* tokens per second */
	double burst;
	size_t max_keys;
	size_t nkeys;
	size_t nchains;				/* power of two */
	uint64_t seed;
	uint64_t evictions;
	Bucket **chains;
	Bucket *head, *tail;
};

static uint64_t
hash_key(uint64_t seed, const char *key, size_t len)
{
	uint64_t h = 1469598103934665603ULL ^ seed;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char) key[i];
		h *= 1099511628211ULL;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdULL;
	h ^= h >> 33;
	return h;
}

static bool
params_ok(double rate, double burst)
{
	return isfinite(rate) && isfinite(burst) && rate > 0 && burst >= 1;
}

Ratelimit *
ratelimit_new(double rate, double burst, size_t max_keys, char *err, size_t errlen)
{
	Ratelimit *rl;
	size_t n = 16;

	if (!params_ok(rate, burst) || max_keys < 1 || max_keys > ((size_t) 1 << 28)) {
		if (err && errlen)
			snprintf(err, errlen, "rate must be > 0, burst >= 1, max_keys 1..2^28");
		return NULL;
	}
	while (n < max_keys)
		n <<= 1;
	rl = calloc(1, sizeof(*rl));
	if (rl == NULL || (rl->chains = calloc(n, sizeof(Bucket *))) == NULL) {
		free(rl);
		if (err && errlen)
			snprintf(err, errlen, "out of memory");
		return NULL;
	}
	rl->rate = rate;
	rl->burst = burst;
	rl->max_keys = max_keys;
	rl->nchains = n;
	rl->seed = (uint64_t) (uintptr_t) rl * 0x9E3779B97F4A7C15ULL;
	return rl;
}

void
ratelimit_free(Ratelimit *rl)
{
	Bucket *b, *next;

	if (rl == NULL)
		return;
	for (b = rl->head; b; b = next) {
		next = b->next;
		free(b);
	}
	free(rl->chains);
	free(rl);
}

bool
ratelimit_configure(Ratelimit *rl, double rate, double burst)
{
	Bucket *b;

	if (!params_ok(rate, burst))
		return false;
	rl->rate = rate;
	rl->burst = burst;
	for (b = rl->head; b; b = b->next)
		if (b->tokens > burst)
			b->tokens = burst;
	return true;
}

static void
lru_unlink(Ratelimit *rl, Bucket *b)
{
	if (b->prev)
		b->prev->next = b->next;
	else
		rl->head = b->next;
	if (b->next)
		b->next->prev = b->prev;
	else
		rl->tail = b->prev;
	b->prev = b->next = NULL;
}

static void
lru_push_front(Ratelimit *rl, Bucket *b)
{
	b->prev = NULL;
	b->next = rl->head;
	if (rl->head)
		rl->head->prev = b;
	rl->head = b;
	if (rl->tail == NULL)
		rl->tail = b;
}

/* Unlink b from its chain and the LRU list and free it. */
static void
drop(Ratelimit *rl, Bucket *b)
{
	Bucket **pp = &rl->chains[b->hash & (rl->nchains - 1)];

	while (*pp != b)
		pp = &(*pp)->chain;
	*pp = b->chain;
	lru_unlink(rl, b);
	free(b);
	rl->nkeys--;
}

static void
refill(const Ratelimit *rl, Bucket *b, uint64_t now_ms)
{
	if (now_ms > b->last_ms) {
		b->tokens += (double) (now_ms - b->last_ms) * rl->rate / 1000.0;
		if (b->tokens > rl->burst)
			b->tokens = rl->burst;
		b->last_ms = now_ms;
	}
}

bool
ratelimit_take(Ratelimit *rl, const char *key, uint64_t now_ms, double cost, int *retry_after_s)
{
	size_t len = strnlen(key, RATELIMIT_KEY_MAX);
	uint64_t h = hash_key(rl->seed, key, len);
	Bucket *b;
	double missing, secs;

	if (!(cost >= 0) || !isfinite(cost))
		cost = 1;
	for (b = rl->chains[h & (rl->nchains - 1)]; b; b = b->chain)
		if (b->hash == h && strncmp(b->key, key, len) == 0 && b->key[len] == '\0')
			break;
	if (b == NULL) {
		if (rl->nkeys >= rl->max_keys) {
			Bucket *victim = rl->tail;

			refill(rl, victim, now_ms);
			if (victim->tokens < rl->burst)
				rl->evictions++;
			drop(rl, victim);
		}
		b = malloc(sizeof(Bucket) + len + 1);
		if (b == NULL) {
			/* out of memory: fail open rather than refuse everyone */
			return true;
		}
		memcpy(b->key, key, len);
		b->key[len] = '\0';
		b->hash = h;
		b->tokens = rl->burst;
		b->last_ms = now_ms;
		b->chain = rl->chains[h & (rl->nchains - 1)];
		rl->chains[h & (rl->nchains - 1)] = b;
		b->prev = b->next = NULL;
		lru_push_front(rl, b);
		rl->nkeys++;
	} else {
		lru_unlink(rl, b);
		lru_push_front(rl, b);
		refill(rl, b, now_ms);
	}
	if (b->tokens >= cost) {
		b->tokens -= cost;
		return true;
	}
	if (retry_after_s) {
		missing = cost - b->tokens;
		secs = ceil(missing / rl->rate);
		*retry_after_s = secs < 1 ? 1 : secs > 86400 ? 86400 : (int) secs;
	}
	return false;
}

size_t
ratelimit_sweep(Ratelimit *rl, uint64_t now_ms)
{
	size_t n = 0;
	Bucket *b = rl->tail, *prev;

	while (b) {
		prev = b->prev;
		refill(rl, b, now_ms);
		if (b->tokens >= rl->burst) {
			drop(rl, b);
			n++;
		}
		b = prev;
	}
	return n;
}

size_t
ratelimit_size(const Ratelimit *rl)
{
	return rl->nkeys;
}

uint64_t
ratelimit_evictions(const Ratelimit *rl)
{
	return rl->evictions;
}

/*
 * ratelimit.h: token buckets keyed by a string (an API key id, a client
 * IP), with one rate and burst per limiter, answering "allowed" or "retry
 * after N seconds".  Memory is bounded: at most max_keys buckets live, the
 * least recently used one is evicted when a new key needs room, and
 * ratelimit_sweep() drops buckets that have refilled (forgetting those
 * loses nothing).  Pure: the caller passes the time (CLOCK_MONOTONIC ms),
 * nothing here reads a clock or logs.  Not thread-safe; the coordinator
 * uses it from its event loop only.
 *
 * With several coordinators, each limits on its own: a client spread over N
 * coordinators by a load balancer gets up to N times the rate (see
 * docs/security.md).
 */
#ifndef VX_RATELIMIT_H
#define VX_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_WARN_UNUSED __attribute__((warn_unused_result))
/* Keys longer than this are cut (IPs and key ids are far shorter). */
#define RATELIMIT_KEY_MAX 128

typedef struct Ratelimit Ratelimit;

/*
 * A limiter refilling rate tokens per second up to burst, holding at most
 * max_keys buckets.  NULL with err filled on bad parameters (rate > 0,
 * burst >= 1, max_keys >= 1).
 */
Ratelimit *ratelimit_new(double rate, double burst, size_t max_keys, char *err,
						 size_t errlen) RATELIMIT_WARN_UNUSED;
void ratelimit_free(Ratelimit *rl);

/*
 * Change rate and burst (a config reload); existing buckets keep their
 * tokens, capped at the new burst.  False on bad values.
 */
bool ratelimit_configure(Ratelimit *rl, double rate, double burst) RATELIMIT_WARN_UNUSED;

/*
 * Take cost tokens (usually 1) from key's bucket at now_ms.  True when
 * allowed; otherwise *retry_after_s (may be NULL) is the whole number of
 * seconds, at least 1, after which the same request would be allowed (the
 * value of the Retry-After header).
 */
bool ratelimit_take(Ratelimit *rl, const char *key, uint64_t now_ms, double cost,
					int *retry_after_s) RATELIMIT_WARN_UNUSED;

/* Drop buckets that are full again at now_ms; returns how many. */
size_t ratelimit_sweep(Ratelimit *rl, uint64_t now_ms);

/* Live buckets, and buckets evicted while not yet full, since creation. */
size_t ratelimit_size(const Ratelimit *rl);
uint64_t ratelimit_evictions(const Ratelimit *rl);

#endif

/*
 * test_ratelimit.c: unit tests of coordinator/ratelimit.c: burst, refill,
 * Retry-After, independent keys, bounded memory with LRU eviction, sweep,
 * reconfiguration and a clock that goes backwards.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "tap.h"

int
main(void)
{
	char err[128];
	Ratelimit *rl;
	int i, allowed, retry = 0;
	uint64_t t = 1000000;

	ok(ratelimit_new(0, 10, 10, err, sizeof(err)) == NULL, "rate 0 refused");
	ok(ratelimit_new(1, 0.5, 10, err, sizeof(err)) == NULL, "burst < 1 refused");
	ok(ratelimit_new(1, 10, 0, err, sizeof(err)) == NULL, "max_keys 0 refused");

	/* 2 tokens per second, burst 5 */
	rl = ratelimit_new(2, 5, 100, err, sizeof(err));
	ok(rl != NULL, "limiter 2/s burst 5");
	for (allowed = 0, i = 0; i < 10; i++)
		allowed += ratelimit_take(rl, "key_a", t, 1, &retry);
	ok(allowed == 5, "a burst of 10 at once lets 5 through (%d)", allowed);
	ok(retry == 1, "Retry-After 1 s when 1 token is missing at 2/s (%d)", retry);
	ok(ratelimit_take(rl, "key_b", t, 1, &retry), "another key has its own bucket");
	ok(!ratelimit_take(rl, "key_a", t + 400, 1, &retry), "0.4 s later: 0.8 tokens, refused");
	ok(ratelimit_take(rl, "key_a", t + 500, 1, &retry), "0.5 s later: 1 token, allowed");
	for (allowed = 0, i = 0; i < 100; i++)
		allowed += ratelimit_take(rl, "key_a", t + 500 + (uint64_t) i * 100, 1, NULL);
	ok(allowed >= 19 && allowed <= 20, "steady 10 req/s for 9.9 s gets the rate, 2/s (%d)", allowed);
	ok(ratelimit_take(rl, "key_a", t + 60000, 5, NULL), "a minute later the bucket is full again (cost 5)");
	ok(!ratelimit_take(rl, "key_a", t + 60000, 5, &retry) && retry == 3,
	   "cost 5 on an empty bucket: Retry-After ceil(5/2) = 3 (%d)", retry);
	ok(!ratelimit_take(rl, "key_a", t + 50000, 1, &retry),
	   "clock going backwards gives no tokens");
	ok(ratelimit_configure(rl, 100, 50) && ratelimit_take(rl, "key_a", t + 61000, 40, NULL),
	   "reconfigured to 100/s burst 50");
	ok(!ratelimit_configure(rl, -1, 5), "bad reconfiguration refused");
	ratelimit_free(rl);

	/* bounded memory */
	rl = ratelimit_new(1, 3, 50, err, sizeof(err));
	for (i = 0; i < 10000; i++) {
		char key[32];

		snprintf(key, sizeof(key), "10.0.%d.%d", i / 256, i % 256);
		if (!ratelimit_take(rl, key, t + (uint64_t) i, 1, NULL))
			break;
	}
	ok(i == 10000 && ratelimit_size(rl) == 50, "10000 client IPs, never more than 50 buckets (%zu)",
	   ratelimit_size(rl));
	ok(ratelimit_evictions(rl) == 10000 - 50, "evicting non-full buckets is counted (%llu)",
	   (unsigned long long) ratelimit_evictions(rl));
	/* LRU: the most recent key survives eviction, its bucket state too */
	ok(ratelimit_take(rl, "hot", t + 20000, 3, NULL), "hot key drains its burst");
	for (i = 0; i < 49; i++) {
		char key[32];

		snprintf(key, sizeof(key), "cold%d", i);
		if (!ratelimit_take(rl, key, t + 20001, 1, NULL))
			printf("# cold refused\n");
	}
	ok(!ratelimit_take(rl, "hot", t + 20002, 1, NULL), "hot key still limited after 49 other keys");
	ok(ratelimit_sweep(rl, t + 20003) == 0, "sweep right away drops nothing (no bucket has refilled)");
	ok(ratelimit_sweep(rl, t + 30000) == 50 && ratelimit_size(rl) == 0,
	   "sweep after refill drops every bucket");
	ratelimit_free(rl);

	/* long keys are cut, and the cut key is one bucket */
	rl = ratelimit_new(1, 1, 10, err, sizeof(err));
	{
		char longkey[400];

		memset(longkey, 'x', sizeof(longkey) - 1);
		longkey[sizeof(longkey) - 1] = '\0';
		ok(ratelimit_take(rl, longkey, t, 1, NULL) && !ratelimit_take(rl, longkey, t, 1, NULL) &&
		   ratelimit_size(rl) == 1, "a 399-byte key is one bucket");
		longkey[300] = 'y';
		ok(!ratelimit_take(rl, longkey, t, 1, NULL), "keys equal in their first 128 bytes share it");
	}
	ok(ratelimit_take(rl, "", t, 1, NULL), "the empty key works");
	ratelimit_free(rl);
	return tap_done();
}

/*
 * test_password.c: unit tests of coordinator/password.c: blocking argon2id
 * hash and verify, parameters kept in the hash and needs_rehash, then the
 * pool on a real libevent loop: many concurrent hashes and verifications
 * with cheap parameters while a 5 ms timer keeps firing (the loop never
 * blocks), a callback that queues the next job, a full queue, and stop
 * with queued jobs cancelled.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "password.h"
#include "tap.h"

static const PasswordParams cheap = {1, 256, 1};
/* about 5-20 ms a hash, so 48 of them on 2 threads take a while */
static const PasswordParams medium = {1, 8192, 1};

static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* --- loop state ---------------------------------------------------------- */
#define NJOBS 48
static struct event_base *base;
static PasswordPool *pool;
static int ticks;
static double last_tick, max_gap;
static int hashes_ok, verifies_ok, mismatches_ok, chained_ok, cancelled, done_jobs;
static char hashes[NJOBS][PASSWORD_HASH_SIZE];
static int want_done;

static void
on_tick(evutil_socket_t fd, short what, void *arg)
{
	double t = now_ms();

	(void) fd;
	(void) what;
	(void) arg;
	if (ticks > 0 && t - last_tick > max_gap)
		max_gap = t - last_tick;
	last_tick = t;
	ticks++;
}

static void
maybe_exit(void)
{
	if (++done_jobs == want_done)
		event_base_loopexit(base, NULL);
}

static void
on_verify(PasswordStatus st, bool needs_rehash, void *arg)
{
	long i = (long) arg;

	if (i >= 1000) {
		/* the wrong password, on purpose */
		if (st == PASSWORD_MISMATCH && !needs_rehash)
			mismatches_ok++;
	} else if (st == PASSWORD_OK && !needs_rehash)
		verifies_ok++;
	maybe_exit();
}

static void
on_chained_verify(PasswordStatus st, bool needs_rehash, void *arg)
{
	(void) arg;
	if (st == PASSWORD_OK && needs_rehash)
		chained_ok++;
	maybe_exit();
}

static void
on_hash(PasswordStatus st, const char *encoded, void *arg)
{
	long i = (long) arg;
	char pw[32];

	if (st == PASSWORD_OK && encoded && strncmp(encoded, "$argon2id$v=19$m=8192,t=1,p=1$", 30) == 0) {
		hashes_ok++;
		snprintf(hashes[i], sizeof(hashes[i]), "%s", encoded);
	}
	/* queue the next job from inside a callback: verify, with "current" cheap params */
	snprintf(pw, sizeof(pw), "password-%ld", i);
	if (i == 0 && !password_verify_async(pool, pw, strlen(pw), encoded, &cheap, on_chained_verify, NULL))
		printf("# chained verify refused\n");
	maybe_exit();
}

static void
on_cancel_hash(PasswordStatus st, const char *encoded, void *arg)
{
	(void) encoded;
	(void) arg;
	if (st == PASSWORD_CANCELLED)
		cancelled++;
	else if (st == PASSWORD_OK)
		done_jobs++;
}

static void
on_timeout(evutil_socket_t fd, short what, void *arg)
{
	(void) fd;
	(void) what;
	(void) arg;
	printf("# loop timeout\n");
	event_base_loopexit(base, NULL);
}

int
main(void)
{
	char h1[PASSWORD_HASH_SIZE], h2[PASSWORD_HASH_SIZE], err[200];
	const char *pw = "correct horse battery staple";
	PasswordParams def = PASSWORD_DEFAULT_PARAMS;
	PasswordParams bad = {0, 256, 1};
	double t0, t1;
	int i;

	/* --- blocking ------------------------------------------------------- */
	ok(password_params_valid(&def, err, sizeof(err)), "default parameters are valid");
	ok(!password_params_valid(&bad, err, sizeof(err)), "t_cost 0 refused");
	bad = (PasswordParams) {1, 4, 1};
	ok(!password_params_valid(&bad, err, sizeof(err)), "m_cost below 8 KiB per lane refused");
	bad = (PasswordParams) {1, 2u * 1024 * 1024, 1};
	ok(!password_params_valid(&bad, err, sizeof(err)), "m_cost above 1 GiB refused");
	ok(password_hash(pw, strlen(pw), &cheap, h1, err, sizeof(err)), "hash with cheap parameters");
	ok(strncmp(h1, "$argon2id$v=19$m=256,t=1,p=1$", 29) == 0, "encoded argon2id with its parameters");
	ok(strstr(h1, pw) == NULL, "the hash does not contain the password");
	ok(password_hash(pw, strlen(pw), &cheap, h2, err, sizeof(err)) && strcmp(h1, h2) != 0,
	   "a second hash differs (random salt)");
	ok(password_verify(pw, strlen(pw), h1) == PASSWORD_OK, "verify: right password");
	ok(password_verify(pw, strlen(pw), h2) == PASSWORD_OK, "verify: right password, other salt");
	ok(password_verify("correct horse battery stapl", 27, h1) == PASSWORD_MISMATCH, "verify: wrong password");
	ok(password_verify("", 0, h1) == PASSWORD_MISMATCH, "verify: empty password");
	ok(password_verify(pw, strlen(pw), "$argon2id$garbage") == PASSWORD_ERROR, "verify: garbage hash");
	ok(password_verify(pw, strlen(pw), "") == PASSWORD_ERROR, "verify: empty hash");
	ok(password_verify(pw, strlen(pw), "$argon2id$v=19$m=4194304,t=1,p=1$c2FsdHNhbHRzYWx0$aGFzaA") ==
	   PASSWORD_ERROR, "verify: a stored hash asking for 4 GiB is refused");
	{
		char h3[PASSWORD_HASH_SIZE];
		char withnul[] = "abc\0def";

		ok(password_hash(withnul, 7, &cheap, h3, err, sizeof(err)) &&
		   password_verify(withnul, 7, h3) == PASSWORD_OK &&
		   password_verify("abc", 3, h3) == PASSWORD_MISMATCH,
		   "the whole byte string counts, NUL included");
	}
	{
		static char longpw[PASSWORD_MAX_LEN + 2];

		memset(longpw, 'x', sizeof(longpw) - 1);
		ok(!password_hash(longpw, PASSWORD_MAX_LEN + 1, &cheap, h2, err, sizeof(err)),
		   "password over %d bytes refused", PASSWORD_MAX_LEN);
	}
	ok(!password_needs_rehash(h1, &cheap), "no rehash needed with the same parameters");
	ok(password_needs_rehash(h1, &def), "rehash needed when parameters grew");
	ok(password_needs_rehash("$2b$10$bcrypt", &cheap), "rehash needed for a foreign hash");
	t0 = now_ms();
	ok(password_hash(pw, strlen(pw), &def, h2, err, sizeof(err)), "hash with the default parameters");
	t1 = now_ms();
	printf("# default parameters (m=%u KiB, t=%u, p=%u): %.0f ms a hash\n", def.m_cost_kib, def.t_cost,
		   def.parallelism, t1 - t0);
	ok(password_verify(pw, strlen(pw), h2) == PASSWORD_OK, "verify with the default parameters");

	/* --- the pool on a real loop ---------------------------------------- */
	base = event_base_new();
	ok(password_pool_start(base, 0, 0, err, sizeof(err)) == NULL, "a pool needs a thread");
	pool = password_pool_start(base, 2, 0, err, sizeof(err));
	ok(pool != NULL, "pool with 2 threads");
	{
		struct event *tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
		struct event *timeout = evtimer_new(base, on_timeout, NULL);
		struct timeval tv = {0, 5000}, tmo = {60, 0};
		int queued = 0;

		event_add(tick, &tv);
		event_add(timeout, &tmo);
		for (i = 0; i < NJOBS; i++) {
			char p[32];

			snprintf(p, sizeof(p), "password-%d", i);
			queued += password_hash_async(pool, p, strlen(p), &medium, on_hash, (void *) (long) i);
		}
		/* verify against hashes made up front (blocking, cheap) */
		for (i = 0; i < NJOBS; i++) {
			char p[32];
			static char pre[NJOBS][PASSWORD_HASH_SIZE];

			snprintf(p, sizeof(p), "verify-%d", i);
			if (!password_hash(p, strlen(p), &cheap, pre[i], err, sizeof(err)))
				printf("# prehash failed\n");
			queued += password_verify_async(pool, p, strlen(p), pre[i], &cheap, on_verify, (void *) (long) i);
			queued += password_verify_async(pool, "wrong", 5, pre[i], &cheap, on_verify, (void *) (long) (1000 + i));
		}
		ok(queued == 3 * NJOBS, "%d jobs queued without blocking", queued);
		ok(password_pool_pending(pool) == 3 * NJOBS, "pending counts them");
		want_done = 3 * NJOBS + 1;
		t0 = now_ms();
		event_base_dispatch(base);
		t1 = now_ms();
		printf("# %d jobs in %.0f ms, %d ticks, longest gap between ticks %.1f ms\n", want_done,
			   t1 - t0, ticks, max_gap);
		ok(hashes_ok == NJOBS, "all %d hashes delivered on the loop (%d)", NJOBS, hashes_ok);
		ok(verifies_ok == NJOBS, "all %d verifications matched (%d)", NJOBS, verifies_ok);
		ok(mismatches_ok == NJOBS, "all %d wrong passwords mismatched (%d)", NJOBS, mismatches_ok);
		ok(chained_ok == 1, "a job queued from a callback ran, and flagged the rehash");
		ok(password_pool_pending(pool) == 0, "nothing pending after the loop");
		ok(ticks >= (int) ((t1 - t0) / 5.0 / 4), "the 5 ms timer kept firing while hashing (%d ticks in %.0f ms)",
		   ticks, t1 - t0);
		ok(max_gap < 250, "the loop never stalled: longest gap %.1f ms", max_gap);
		{
			int distinct = 1, j;

			for (i = 0; i < NJOBS; i++)
				for (j = 0; j < i; j++)
					if (strcmp(hashes[i], hashes[j]) == 0)
						distinct = 0;
			ok(distinct, "the concurrent hashes are all distinct");
		}
		ok(password_verify("password-7", 10, hashes[7]) == PASSWORD_OK, "a pool hash verifies");
		event_free(tick);
		event_free(timeout);
	}
	ok(!password_hash_async(pool, "x", 1, &bad, on_hash, NULL), "bad parameters refused up front");
	ok(!password_verify_async(pool, "x", 1, NULL, NULL, on_verify, NULL), "no hash refused up front");
	password_pool_stop(pool);

	/* a bounded queue, and stop with queued jobs */
	pool = password_pool_start(base, 1, 4, err, sizeof(err));
	{
		int accepted = 0;

		done_jobs = 0;
		for (i = 0; i < 10; i++)
			accepted += password_hash_async(pool, "p", 1, &medium, on_cancel_hash, NULL);
		ok(accepted >= 4 && accepted <= 5, "a queue of 4 takes 4 or 5 jobs (one may be running): %d", accepted);
		password_pool_stop(pool);
		ok(cancelled + done_jobs == accepted && cancelled >= 3,
		   "stop calls every callback: %d cancelled, %d finished", cancelled, done_jobs);
	}
	event_base_free(base);

	/* the CLI helper: a password read from a stream, one newline dropped */
	{
		char in[] = "from-stdin-pw\n", h[PASSWORD_HASH_SIZE];
		FILE *f = fmemopen(in, strlen(in), "r");

		ok(f && password_hash_stream(f, &cheap, h, err, sizeof(err)) &&
		   password_verify("from-stdin-pw", 13, h) == PASSWORD_OK &&
		   password_verify("from-stdin-pw\n", 14, h) == PASSWORD_MISMATCH,
		   "password_hash_stream hashes stdin without its newline");
		if (f)
			fclose(f);
		in[0] = '\n';
		f = fmemopen(in, 1, "r");
		ok(f && !password_hash_stream(f, &cheap, h, err, sizeof(err)), "an empty password is refused");
		if (f)
			fclose(f);
	}
	return tap_done();
}

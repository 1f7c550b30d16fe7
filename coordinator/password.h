/*
 * password.h: argon2id password hashing (libargon2) off the event loop.
 *
 * A hash takes 50-200 ms by design, far too long for the coordinator's one
 * event loop, so hashing and verification run on a small fixed pool of
 * threads.  A finished job is put on a done list and the loop is woken
 * through an eventfd watched by a libevent event; the callback then runs on
 * the loop thread, so callers need no locking.  The queue is bounded: when
 * it is full the *_async calls return false and the caller answers 503,
 * which keeps a flood of logins from growing memory without limit.
 *
 * Parameters (time cost, memory in KiB, lanes) are stored in each encoded
 * hash ($argon2id$v=19$m=...,t=...,p=...$salt$hash), so they can be raised
 * later: password_needs_rehash() tells the login path to re-hash on the next
 * successful verification.  Tests use cheap parameters.
 */
#ifndef VX_PASSWORD_H
#define VX_PASSWORD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define PASSWORD_WARN_UNUSED __attribute__((warn_unused_result))

/* Longest password accepted, in bytes. */
#define PASSWORD_MAX_LEN 1024
/* Room for an encoded hash. */
#define PASSWORD_HASH_SIZE 160
/* Bounds on parameters, for config and for hashes read back. */
#define PASSWORD_MAX_M_KIB (1024 * 1024)
#define PASSWORD_MAX_T 16
#define PASSWORD_MAX_P 16

typedef struct PasswordParams {
	uint32_t t_cost;			/* passes */
	uint32_t m_cost_kib;		/* memory in KiB */
	uint32_t parallelism;		/* lanes (threads inside one hash) */
} PasswordParams;

/*
 * Defaults: 19 MiB, 2 passes, 1 lane (OWASP's argon2id minimum; 100-250 ms
 * on the 2-core CI machine).  Raise m_cost_kib where memory allows.
 */
#define PASSWORD_DEFAULT_PARAMS {2, 19456, 1}

typedef enum PasswordStatus {
	PASSWORD_OK = 0,			/* hashed, or the password matches */
	PASSWORD_MISMATCH,			/* verification: wrong password */
	PASSWORD_ERROR,				/* bad input or hash, out of memory */
	PASSWORD_CANCELLED			/* the pool stopped before the job ran */
} PasswordStatus;

/* Called on the loop thread.  encoded is valid only during the call. */
typedef void (*PasswordHashCb)(PasswordStatus st, const char *encoded, void *arg);
/* needs_rehash: the password matched but its hash uses other parameters. */
typedef void (*PasswordVerifyCb)(PasswordStatus st, bool needs_rehash, void *arg);

typedef struct PasswordPool PasswordPool;
struct event_base;

/* True when p is within bounds; else err filled. */
bool password_params_valid(const PasswordParams *p, char *err, size_t errlen) PASSWORD_WARN_UNUSED;

/*
 * Blocking versions, for the CLI and tests.  password_hash writes the
 * encoded hash to out (PASSWORD_HASH_SIZE bytes).
 */
bool password_hash(const char *password, size_t len, const PasswordParams *p, char *out,
				   char *err, size_t errlen) PASSWORD_WARN_UNUSED;
PasswordStatus password_verify(const char *password, size_t len, const char *encoded) PASSWORD_WARN_UNUSED;
/*
 * Hash a password read from in (at most PASSWORD_MAX_LEN bytes; one
 * trailing newline is dropped) into out, for `vectron-coordinator
 * --hash-password` and `vectron user create`.
 */
bool password_hash_stream(FILE *in, const PasswordParams *p, char *out, char *err,
						  size_t errlen) PASSWORD_WARN_UNUSED;
/* True when encoded is not an argon2id hash made with exactly p. */
bool password_needs_rehash(const char *encoded, const PasswordParams *p);

/*
 * Start threads (1..16) workers that post results to base; at most
 * max_queue jobs wait (0: 1024).  NULL with err filled on failure.
 */
PasswordPool *password_pool_start(struct event_base *base, int threads, int max_queue,
								  char *err, size_t errlen) PASSWORD_WARN_UNUSED;
/*
 * Stop the workers (waiting for running jobs), deliver finished results,
 * call the callbacks of jobs still queued with PASSWORD_CANCELLED, free the
 * pool.  Call from the loop thread, not from inside a pool callback.
 */
void password_pool_stop(PasswordPool *pool);

/*
 * Queue a hash of password (copied, wiped after use) with params p.  False
 * when the queue is full, the pool is stopping or the input is bad; the
 * callback is then never called.
 */
bool password_hash_async(PasswordPool *pool, const char *password, size_t len,
						 const PasswordParams *p, PasswordHashCb cb, void *arg) PASSWORD_WARN_UNUSED;
/*
 * Queue a verification of password against encoded; current (may be NULL)
 * are the parameters new hashes use, for needs_rehash.
 */
bool password_verify_async(PasswordPool *pool, const char *password, size_t len,
						   const char *encoded, const PasswordParams *current,
						   PasswordVerifyCb cb, void *arg) PASSWORD_WARN_UNUSED;

/* Jobs queued or running or waiting for their callback. */
int password_pool_pending(PasswordPool *pool);

#endif

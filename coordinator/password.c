/*
 * password.c: argon2id hashing on a thread pool that reports to a libevent
 * loop (see password.h).
 *
 * Structures: a PasswordPool holds a mutex, a condition variable for idle
 * workers, the FIFO of queued jobs, the list of finished jobs, and an
 * eventfd registered as a persistent read event on the loop's base.
 *
 * One request: the loop thread calls password_hash_async(), which copies the
 * password into a Job and appends it to the queue under the mutex, then
 * signals the condition.  A worker pops it, runs argon2 without the lock,
 * wipes the password copy, appends the job to the done list and writes 1 to
 * the eventfd.  On the loop, the event fires, drains the eventfd, takes the
 * whole done list under the mutex and runs each callback outside the lock,
 * so a callback may queue the next job.  libevent itself is only touched by
 * the loop thread, so it needs no evthread locking.
 */
#define _GNU_SOURCE
#include "password.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <argon2.h>
#include <event2/event.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#define SALT_LEN 16
#define HASH_LEN 32
#define MAX_THREADS 16
#define DEFAULT_MAX_QUEUE 1024

typedef enum JobKind {
	JOB_HASH,
	JOB_VERIFY
} JobKind;

typedef struct Job {
	struct Job *next;
	JobKind kind;
	char *password;				/* copy, wiped and freed after use */
	size_t pwlen;
	PasswordParams params;		/* hash: to use; verify: current, for rehash */
	bool have_params;
	char encoded[PASSWORD_HASH_SIZE];	/* verify: input; hash: output */
	PasswordStatus status;
	bool needs_rehash;
	PasswordHashCb hash_cb;
	PasswordVerifyCb verify_cb;
	void *arg;
} Job;

struct PasswordPool {
	struct event_base *base;
	struct event *ev;
	int efd;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	Job *q_head, *q_tail;		/* queued, FIFO */
	Job *d_head, *d_tail;		/* finished, FIFO */
	int queued;
	int pending;				/* queued + running + finished, not yet called back */
	int max_queue;
	bool stopping;
	int nthreads;
	pthread_t threads[MAX_THREADS];
};

static void
set_err(char *err, size_t errlen, const char *msg)
{
	if (err && errlen)
		snprintf(err, errlen, "%s", msg);
}

bool
password_params_valid(const PasswordParams *p, char *err, size_t errlen)
{
	if (p == NULL || p->t_cost < 1 || p->t_cost > PASSWORD_MAX_T || p->parallelism < 1 ||
		p->parallelism > PASSWORD_MAX_P || p->m_cost_kib < 8 * p->parallelism ||
		p->m_cost_kib > PASSWORD_MAX_M_KIB) {
		set_err(err, errlen, "argon2 parameters out of range (t 1..16, p 1..16, m 8p..1048576 KiB)");
		return false;
	}
	return true;
}

/* Read m, t and p back from an argon2id encoded hash. */
static bool
parse_params(const char *encoded, PasswordParams *p)
{
	unsigned m, t, par;
	int n = 0;

	if (encoded == NULL ||
		sscanf(encoded, "$argon2id$v=19$m=%u,t=%u,p=%u$%n", &m, &t, &par, &n) != 3 || n == 0)
		return false;
	p->m_cost_kib = m;
	p->t_cost = t;
	p->parallelism = par;
	return password_params_valid(p, NULL, 0);
}

bool
password_hash(const char *password, size_t len, const PasswordParams *p, char *out, char *err,
			  size_t errlen)
{
	unsigned char salt[SALT_LEN];
	int rc;

	if (password == NULL || len > PASSWORD_MAX_LEN) {
		set_err(err, errlen, "password too long");
		return false;
	}
	if (!password_params_valid(p, err, errlen))
		return false;
	if (argon2_encodedlen(p->t_cost, p->m_cost_kib, p->parallelism, SALT_LEN, HASH_LEN,
						  Argon2_id) > PASSWORD_HASH_SIZE) {
		set_err(err, errlen, "encoded hash too long");
		return false;
	}
	if (RAND_bytes(salt, sizeof(salt)) != 1) {
		set_err(err, errlen, "random generator failed");
		return false;
	}
	rc = argon2id_hash_encoded(p->t_cost, p->m_cost_kib, p->parallelism, password, len, salt,
							   SALT_LEN, HASH_LEN, out, PASSWORD_HASH_SIZE);
	if (rc != ARGON2_OK) {
		set_err(err, errlen, argon2_error_message(rc));
		return false;
	}
	return true;
}

PasswordStatus
password_verify(const char *password, size_t len, const char *encoded)
{
	PasswordParams p;
	int rc;

	if (password == NULL || len > PASSWORD_MAX_LEN || !parse_params(encoded, &p))
		return PASSWORD_ERROR;
	rc = argon2id_verify(encoded, password, len);
	if (rc == ARGON2_OK)
		return PASSWORD_OK;
	if (rc == ARGON2_VERIFY_MISMATCH)
		return PASSWORD_MISMATCH;
	return PASSWORD_ERROR;
}

bool
password_needs_rehash(const char *encoded, const PasswordParams *p)
{
	PasswordParams have;

	if (!parse_params(encoded, &have))
		return true;
	return have.t_cost != p->t_cost || have.m_cost_kib != p->m_cost_kib ||
		have.parallelism != p->parallelism;
}

static void
job_free(Job *j)
{
	if (j->password) {
		OPENSSL_cleanse(j->password, j->pwlen);
		free(j->password);
	}
	free(j);
}

static void
job_run(Job *j)
{
	if (j->kind == JOB_HASH)
		j->status = password_hash(j->password, j->pwlen, &j->params, j->encoded, NULL, 0)
			? PASSWORD_OK : PASSWORD_ERROR;
	else {
		j->status = password_verify(j->password, j->pwlen, j->encoded);
		j->needs_rehash = j->status == PASSWORD_OK && j->have_params &&
			password_needs_rehash(j->encoded, &j->params);
	}
	OPENSSL_cleanse(j->password, j->pwlen);
	free(j->password);
	j->password = NULL;
}

static void
job_callback(Job *j)
{
	if (j->kind == JOB_HASH)
		j->hash_cb(j->status, j->status == PASSWORD_OK ? j->encoded : NULL, j->arg);
	else
		j->verify_cb(j->status, j->needs_rehash, j->arg);
}

static void *
worker_main(void *varg)
{
	PasswordPool *pool = varg;

	for (;;) {
		Job *j;
		uint64_t one = 1;

		pthread_mutex_lock(&pool->mu);
		while (!pool->stopping && pool->q_head == NULL)
			pthread_cond_wait(&pool->cv, &pool->mu);
		if (pool->stopping) {
			pthread_mutex_unlock(&pool->mu);
			return NULL;
		}
		j = pool->q_head;
		pool->q_head = j->next;
		if (pool->q_head == NULL)
			pool->q_tail = NULL;
		pool->queued--;
		pthread_mutex_unlock(&pool->mu);

		job_run(j);

		pthread_mutex_lock(&pool->mu);
		j->next = NULL;
		if (pool->d_tail)
			pool->d_tail->next = j;
		else
			pool->d_head = j;
		pool->d_tail = j;
		pthread_mutex_unlock(&pool->mu);
		while (write(pool->efd, &one, sizeof(one)) < 0 && errno == EINTR)
			;
	}
}

/* Run the callbacks of every finished job (on the loop thread). */
static void
deliver(PasswordPool *pool)
{
	Job *list, *next;

	pthread_mutex_lock(&pool->mu);
	list = pool->d_head;
	pool->d_head = pool->d_tail = NULL;
	pthread_mutex_unlock(&pool->mu);
	for (; list; list = next) {
		next = list->next;
		pool->pending--;
		job_callback(list);
		job_free(list);
	}
}

static void
on_wakeup(evutil_socket_t fd, short what, void *arg)
{
	uint64_t n;

	(void) what;
	while (read(fd, &n, sizeof(n)) < 0 && errno == EINTR)
		;
	deliver(arg);
}

PasswordPool *
password_pool_start(struct event_base *base, int threads, int max_queue, char *err,
					size_t errlen)
{
	PasswordPool *pool;
	int i;

	if (base == NULL || threads < 1 || threads > MAX_THREADS || max_queue < 0) {
		set_err(err, errlen, "password pool needs a base and 1..16 threads");
		return NULL;
	}
	pool = calloc(1, sizeof(*pool));
	if (pool == NULL) {
		set_err(err, errlen, "out of memory");
		return NULL;
	}
	pool->base = base;
	pool->max_queue = max_queue ? max_queue : DEFAULT_MAX_QUEUE;
	pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (pool->efd < 0) {
		set_err(err, errlen, "eventfd failed");
		free(pool);
		return NULL;
	}
	pool->ev = event_new(base, pool->efd, EV_READ | EV_PERSIST, on_wakeup, pool);
	if (pool->ev == NULL || event_add(pool->ev, NULL) != 0) {
		set_err(err, errlen, "cannot watch the eventfd");
		if (pool->ev)
			event_free(pool->ev);
		close(pool->efd);
		free(pool);
		return NULL;
	}
	pthread_mutex_init(&pool->mu, NULL);
	pthread_cond_init(&pool->cv, NULL);
	for (i = 0; i < threads; i++) {
		if (pthread_create(&pool->threads[i], NULL, worker_main, pool) != 0) {
			set_err(err, errlen, "cannot start a password thread");
			pool->nthreads = i;
			password_pool_stop(pool);
			return NULL;
		}
	}
	pool->nthreads = threads;
	return pool;
}

void
password_pool_stop(PasswordPool *pool)
{
	Job *list, *next;
	int i;

	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->mu);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	for (i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	deliver(pool);
	list = pool->q_head;
	pool->q_head = pool->q_tail = NULL;
	for (; list; list = next) {
		next = list->next;
		list->status = PASSWORD_CANCELLED;
		list->needs_rehash = false;
		pool->pending--;
		job_callback(list);
		job_free(list);
	}
	event_free(pool->ev);
	close(pool->efd);
	pthread_mutex_destroy(&pool->mu);
	pthread_cond_destroy(&pool->cv);
	free(pool);
}

static bool
enqueue(PasswordPool *pool, Job *j)
{
	pthread_mutex_lock(&pool->mu);
	if (pool->stopping || pool->queued >= pool->max_queue) {
		pthread_mutex_unlock(&pool->mu);
		job_free(j);
		return false;
	}
	j->next = NULL;
	if (pool->q_tail)
		pool->q_tail->next = j;
	else
		pool->q_head = j;
	pool->q_tail = j;
	pool->queued++;
	pool->pending++;
	pthread_cond_signal(&pool->cv);
	pthread_mutex_unlock(&pool->mu);
	return true;
}

static Job *
job_new(JobKind kind, const char *password, size_t len)
{
	Job *j;

	if (password == NULL || len > PASSWORD_MAX_LEN)
		return NULL;
	j = calloc(1, sizeof(*j));
	if (j == NULL)
		return NULL;
	j->kind = kind;
	j->password = malloc(len + 1);
	if (j->password == NULL) {
		free(j);
		return NULL;
	}
	memcpy(j->password, password, len);
	j->password[len] = '\0';
	j->pwlen = len;
	return j;
}

bool
password_hash_async(PasswordPool *pool, const char *password, size_t len,
					const PasswordParams *p, PasswordHashCb cb, void *arg)
{
	Job *j;

	if (pool == NULL || cb == NULL || !password_params_valid(p, NULL, 0))
		return false;
	j = job_new(JOB_HASH, password, len);
	if (j == NULL)
		return false;
	j->params = *p;
	j->have_params = true;
	j->hash_cb = cb;
	j->arg = arg;
	return enqueue(pool, j);
}

bool
password_verify_async(PasswordPool *pool, const char *password, size_t len, const char *encoded,
					  const PasswordParams *current, PasswordVerifyCb cb, void *arg)
{
	Job *j;

	if (pool == NULL || cb == NULL || encoded == NULL ||
		strnlen(encoded, PASSWORD_HASH_SIZE) >= PASSWORD_HASH_SIZE)
		return false;
	j = job_new(JOB_VERIFY, password, len);
	if (j == NULL)
		return false;
	snprintf(j->encoded, sizeof(j->encoded), "%s", encoded);
	if (current) {
		j->params = *current;
		j->have_params = true;
	}
	j->verify_cb = cb;
	j->arg = arg;
	return enqueue(pool, j);
}

int
password_pool_pending(PasswordPool *pool)
{
	return pool->pending;
}

/*
 * The CLI helper (vectron-coordinator --hash-password): the password is
 * read from in, never from the command line, so it does not show in ps.
 */
bool
password_hash_stream(FILE *in, const PasswordParams *p, char *out, char *err, size_t errlen)
{
	char buf[PASSWORD_MAX_LEN + 2];
	size_t n = fread(buf, 1, sizeof(buf), in);
	bool ok;

	if (n > 0 && buf[n - 1] == '\n')
		n--;
	if (n > 0 && buf[n - 1] == '\r')
		n--;
	if (n == 0 || n > PASSWORD_MAX_LEN) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "the password on stdin must be 1 to %d bytes", PASSWORD_MAX_LEN);
		return false;
	}
	if (memchr(buf, '\0', n)) {
		OPENSSL_cleanse(buf, sizeof(buf));
		snprintf(err, errlen, "the password must not contain NUL bytes");
		return false;
	}
	ok = password_hash(buf, n, p, out, err, errlen);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok;
}

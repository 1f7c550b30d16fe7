/*
 * bench_kernels.c
 *	  Nanoseconds per distance of every kernel set (scalar, AVX2, AVX-512)
 *	  for every metric at 128, 784 and 1,536 dimensions, with the speedup
 *	  over the scalar reference, printed as a markdown table.
 *
 * Each measurement computes distances from one query to a pool of vectors
 * of about 24 KB, which stays in the L1 cache, so that it measures the
 * arithmetic and not the memory (--pool-kb 512 shows the L2-bound speed,
 * where at 784 dimensions AVX-512 gains little over AVX2).  It runs 100
 * rounds of about 1.5 ms and keeps the fastest: a round that short usually
 * runs without being preempted, so the minimum holds up on a machine busy
 * with other work.  Bit metrics
 * run on a 1-bit-per-dimension packing of the same vectors (784 dimensions
 * = 98 bytes), as binary_quantize produces.
 *
 *   bench/bench_kernels [--quick] [--dims 128,784,1536] [--pool-kb 24]
 */
#include "distance.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ROUNDS 100

/* Metrics, in table order. */
enum
{
	M_L2, M_IP, M_COSINE, M_L1, M_HAMMING, M_JACCARD, M_COUNT
};
static const char *const metric_label[M_COUNT] = {
	"L2 (squared)", "inner product", "cosine", "L1", "Hamming (bits)", "Jaccard (bits)"
};

static volatile double sink;	/* keeps results alive */
static int pool_kb = 24;		/* size of the vector pool, KB */
static int POOL;				/* vectors per pool, from pool_kb */

static double
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

/* One pass over the pool: POOL distances of metric m with kernel set k. */
static double
run_pass(const DistanceKernels *k, int m, const float *q, const float *pool, int dim,
		 const uint8_t *qb, const uint8_t *poolb, size_t nbytes)
{
	double		acc = 0;

	for (int i = 0; i < POOL; i++)
	{
		const float *v = pool + (size_t) i * dim;
		const uint8_t *vb = poolb + (size_t) i * nbytes;
		float		d,
					na,
					nb;
		uint64_t	a,
					o;

		switch (m)
		{
			case M_L2:
				acc += k->l2_squared(q, v, dim);
				break;
			case M_IP:
				acc += k->inner_product(q, v, dim);
				break;
			case M_COSINE:
				k->cosine_parts(q, v, dim, &d, &na, &nb);
				acc += distance_cosine_from_parts(d, na, nb);
				break;
			case M_L1:
				acc += k->l1(q, v, dim);
				break;
			case M_HAMMING:
				acc += (double) k->hamming(qb, vb, nbytes);
				break;
			case M_JACCARD:
				k->jaccard_parts(qb, vb, nbytes, &a, &o);
				acc += o ? 1.0 - (double) a / (double) o : 0.0;
				break;
		}
	}
	return acc;
}

/* Best-of-ROUNDS nanoseconds per distance for one kernel, metric, size. */
static double
measure(const DistanceKernels *k, int m, int dim, double budget_ns)
{
	float	   *q;
	float	   *pool;
	size_t		nbytes = ((size_t) dim + 7) / 8;
	uint8_t    *qb;
	uint8_t    *poolb;
	uint64_t	s = 12345;
	double		best = 1e30;

	/* enough vectors to fill pool_kb, at least 2 */
	POOL = (int) ((size_t) pool_kb * 1024 / (sizeof(float) * dim));
	if (POOL < 2)
		POOL = 2;
	q = malloc(sizeof(float) * dim);
	pool = malloc(sizeof(float) * dim * POOL);
	qb = calloc(nbytes, 1);
	poolb = calloc(nbytes * POOL, 1);

	if (!q || !pool || !qb || !poolb)
	{
		fprintf(stderr, "bench_kernels: out of memory\n");
		exit(1);
	}
	/* a fixed pseudo-random fill in [-0.5, 0.5): about half the bits set */
	for (int i = 0; i < dim * (POOL + 1); i++)
	{
		float		x;

		s = s * 6364136223846793005ULL + 1442695040888963407ULL;
		x = (float) ((double) (s >> 40) / (double) (1 << 24) - 0.5);
		if (i < dim)
			q[i] = x;
		else
			pool[i - dim] = x;
	}
	for (int j = 0; j < dim; j++)
		if (q[j] > 0)
			qb[j / 8] |= (uint8_t) (0x80 >> (j % 8));
	for (int i = 0; i < POOL; i++)
		for (int j = 0; j < dim; j++)
			if (pool[(size_t) i * dim + j] > 0)
				poolb[i * nbytes + j / 8] |= (uint8_t) (0x80 >> (j % 8));

	for (int r = 0; r < ROUNDS; r++)
	{
		double		t0 = now_ns(),
					t;
		long		passes = 0;

		do
		{
			for (int j = 0; j < 16; j++)
				sink += run_pass(k, m, q, pool, dim, qb, poolb, nbytes);
			passes += 16;
			t = now_ns() - t0;
		} while (t < budget_ns / ROUNDS);
		if (t / (passes * POOL) < best)
			best = t / (passes * POOL);
	}
	free(q);
	free(pool);
	free(qb);
	free(poolb);
	return best;
}

int
main(int argc, char **argv)
{
	int			dims[8] = {128, 784, 1536},
				ndims = 3;
	double		budget = 1.5e8;
	const DistanceKernels *sets[3];
	int			nsets = 0;

	for (int i = 1; i < argc; i++)
	{
		if (strcmp(argv[i], "--quick") == 0)
			budget = 3e7;
		else if (strcmp(argv[i], "--pool-kb") == 0 && i + 1 < argc)
		{
			pool_kb = atoi(argv[++i]);
			if (pool_kb < 1)
			{
				fprintf(stderr, "bench_kernels: bad --pool-kb\n");
				return 2;
			}
		}
		else if (strcmp(argv[i], "--dims") == 0 && i + 1 < argc)
		{
			char	   *p = argv[++i];

			ndims = 0;
			while (*p && ndims < 8)
			{
				dims[ndims] = (int) strtol(p, &p, 10);
				if (dims[ndims] <= 0)
				{
					fprintf(stderr, "bench_kernels: bad --dims list\n");
					return 2;
				}
				ndims++;
				if (*p == ',')
					p++;
			}
		}
		else
		{
			fprintf(stderr, "usage: bench_kernels [--quick] [--dims 128,784,1536] [--pool-kb 24]\n");
			return 2;
		}
	}

	sets[nsets++] = &distance_kernels_scalar;
	if (distance_cpu_has_avx2() && distance_kernels_avx2())
		sets[nsets++] = distance_kernels_avx2();
	if (distance_cpu_has_avx512() && distance_kernels_avx512())
		sets[nsets++] = distance_kernels_avx512();

	printf("Kernel sets on this CPU: ");
	for (int s = 0; s < nsets; s++)
		printf("%s%s", s ? ", " : "", sets[s]->name);
	printf(" (run-time choice: %s); pool %d KB\n\n", distance_select(NULL)->name, pool_kb);

	printf("| metric | dims |");
	for (int s = 0; s < nsets; s++)
		printf(" %s ns |", sets[s]->name);
	for (int s = 1; s < nsets; s++)
		printf(" %s speedup |", sets[s]->name);
	printf("\n|---|---:|");
	for (int s = 0; s < 2 * nsets - 1; s++)
		printf("---:|");
	printf("\n");

	for (int m = 0; m < M_COUNT; m++)
	{
		for (int d = 0; d < ndims; d++)
		{
			double		ns[3];

			for (int s = 0; s < nsets; s++)
				ns[s] = measure(sets[s], m, dims[d], budget);
			printf("| %s | %d |", metric_label[m], dims[d]);
			for (int s = 0; s < nsets; s++)
				printf(" %.1f |", ns[s]);
			for (int s = 1; s < nsets; s++)
				printf(" %.1fx |", ns[0] / ns[s]);
			printf("\n");
			fflush(stdout);
		}
	}
	return 0;
}

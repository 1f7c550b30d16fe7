/*
 * distance.c
 *	  Portable scalar distance kernels and run-time kernel selection.
 *
 * The scalar kernels are the reference the SIMD ones are tested against,
 * and the fallback on CPUs (or architectures) without AVX2.  They use four
 * accumulators so that compilers can keep several FMA chains in flight even
 * without explicit SIMD.
 */
#include "distance.h"

#include <math.h>
#include <string.h>

const DistanceKernels *distance_kernels = &distance_kernels_scalar;

static float
ScalarL2Squared(const float *a, const float *b, int n)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		float		d0 = a[i] - b[i];
		float		d1 = a[i + 1] - b[i + 1];
		float		d2 = a[i + 2] - b[i + 2];
		float		d3 = a[i + 3] - b[i + 3];

		s0 += d0 * d0;
		s1 += d1 * d1;
		s2 += d2 * d2;
		s3 += d3 * d3;
	}
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		s0 += d * d;
	}
	return (s0 + s1) + (s2 + s3);
}

static float
ScalarInnerProduct(const float *a, const float *b, int n)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		s0 += a[i] * b[i];
		s1 += a[i + 1] * b[i + 1];
		s2 += a[i + 2] * b[i + 2];
		s3 += a[i + 3] * b[i + 3];
	}
	for (; i < n; i++)
		s0 += a[i] * b[i];
	return (s0 + s1) + (s2 + s3);
}

static float
ScalarL1(const float *a, const float *b, int n)
{
	float		s0 = 0,
				s1 = 0,
				s2 = 0,
				s3 = 0;
	int			i = 0;

	for (; i + 4 <= n; i += 4)
	{
		s0 += fabsf(a[i] - b[i]);
		s1 += fabsf(a[i + 1] - b[i + 1]);
		s2 += fabsf(a[i + 2] - b[i + 2]);
		s3 += fabsf(a[i + 3] - b[i + 3]);
	}
	for (; i < n; i++)
		s0 += fabsf(a[i] - b[i]);
	return (s0 + s1) + (s2 + s3);
}

static void
ScalarCosineParts(const float *a, const float *b, int n,
				  float *dot, float *norm_a, float *norm_b)
{
	float		d0 = 0,
				d1 = 0,
				na0 = 0,
				na1 = 0,
				nb0 = 0,
				nb1 = 0;
	int			i = 0;

	for (; i + 2 <= n; i += 2)
	{
		d0 += a[i] * b[i];
		d1 += a[i + 1] * b[i + 1];
		na0 += a[i] * a[i];
		na1 += a[i + 1] * a[i + 1];
		nb0 += b[i] * b[i];
		nb1 += b[i + 1] * b[i + 1];
	}
	for (; i < n; i++)
	{
		d0 += a[i] * b[i];
		na0 += a[i] * a[i];
		nb0 += b[i] * b[i];
	}
	*dot = d0 + d1;
	*norm_a = na0 + na1;
	*norm_b = nb0 + nb1;
}

/* Load 8 bytes without alignment assumptions. */
static inline uint64_t
Load64(const uint8_t *p)
{
	uint64_t	v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static uint64_t
ScalarHamming(const uint8_t *a, const uint8_t *b, size_t nbytes)
{
	uint64_t	count = 0;
	size_t		i = 0;

	for (; i + 8 <= nbytes; i += 8)
		count += __builtin_popcountll(Load64(a + i) ^ Load64(b + i));
	for (; i < nbytes; i++)
		count += __builtin_popcount((unsigned) (a[i] ^ b[i]));
	return count;
}

static void
ScalarJaccardParts(const uint8_t *a, const uint8_t *b, size_t nbytes,
				   uint64_t *and_count, uint64_t *or_count)
{
	uint64_t	ac = 0,
				oc = 0;
	size_t		i = 0;

	for (; i + 8 <= nbytes; i += 8)
	{
		uint64_t	x = Load64(a + i),
					y = Load64(b + i);

		ac += __builtin_popcountll(x & y);
		oc += __builtin_popcountll(x | y);
	}
	for (; i < nbytes; i++)
	{
		ac += __builtin_popcount((unsigned) (a[i] & b[i]));
		oc += __builtin_popcount((unsigned) (a[i] | b[i]));
	}
	*and_count = ac;
	*or_count = oc;
}

const DistanceKernels distance_kernels_scalar = {
	.name = "scalar",
	.l2_squared = ScalarL2Squared,
	.inner_product = ScalarInnerProduct,
	.l1 = ScalarL1,
	.cosine_parts = ScalarCosineParts,
	.hamming = ScalarHamming,
	.jaccard_parts = ScalarJaccardParts,
};

const DistanceKernels *
distance_select(const char *prefer)
{
	const DistanceKernels *best = &distance_kernels_scalar;

	if (prefer != NULL && strcmp(prefer, "scalar") == 0)
		best = &distance_kernels_scalar;
	else if (prefer != NULL && strcmp(prefer, "avx2") == 0)
	{
		if (distance_cpu_has_avx2() && distance_kernels_avx2() != NULL)
			best = distance_kernels_avx2();
	}
	else if (distance_cpu_has_avx512() && distance_kernels_avx512() != NULL)
		best = distance_kernels_avx512();
	else if (distance_cpu_has_avx2() && distance_kernels_avx2() != NULL)
		best = distance_kernels_avx2();

	distance_kernels = best;
	return best;
}

double
distance_cosine_from_parts(float dot, float norm_a, float norm_b)
{
	double		similarity;

	/* zero norms give NaN, as pgvector does; callers decide what that means */
	similarity = (double) dot / sqrt((double) norm_a * (double) norm_b);

	/* keep within [-1, 1] against rounding */
	if (similarity > 1)
		similarity = 1.0;
	else if (similarity < -1)
		similarity = -1.0;

	return 1.0 - similarity;
}

/*
 * distance.h
 *	  Distance kernels for float vectors and bit strings.
 *
 * This module has no PostgreSQL dependency so that unit tests, the fuzzer,
 * the benchmarks and the data tool link it directly.  Kernels come in three
 * flavours: a portable scalar reference, AVX2+FMA and AVX-512F.  The best one
 * the running CPU supports is chosen once, at load time, by
 * distance_select(); a binary built anywhere runs on any x86-64 (and on other
 * architectures, the scalar kernels are the only ones compiled).
 *
 * All float kernels accumulate in float, four or more independent lanes at
 * a time, so their results differ from a sequential sum only by rounding.
 */
#ifndef VECTRON_DISTANCE_H
#define VECTRON_DISTANCE_H

#include <stddef.h>
#include <stdint.h>

typedef float (*DistanceFloatFn) (const float *a, const float *b, int n);

typedef struct DistanceKernels
{
	const char *name;			/* "scalar", "avx2", "avx512" */
	/* sum of squared differences (squared Euclidean distance) */
	DistanceFloatFn l2_squared;
	/* sum of products */
	DistanceFloatFn inner_product;
	/* sum of absolute differences */
	DistanceFloatFn l1;
	/* dot product and both squared norms in one pass, for cosine */
	void		(*cosine_parts) (const float *a, const float *b, int n,
								 float *dot, float *norm_a, float *norm_b);
	/* number of differing bits over nbytes bytes */
	uint64_t	(*hamming) (const uint8_t *a, const uint8_t *b, size_t nbytes);
	/* popcount(a & b) and popcount(a | b) over nbytes bytes, for Jaccard */
	void		(*jaccard_parts) (const uint8_t *a, const uint8_t *b, size_t nbytes,
								  uint64_t *and_count, uint64_t *or_count);
} DistanceKernels;

/* The kernels in use; set by distance_select(), never NULL after it. */
extern const DistanceKernels *distance_kernels;

/* The scalar reference, always available. */
extern const DistanceKernels distance_kernels_scalar;

/* The AVX2 and AVX-512 kernels, or NULL when not compiled for this target. */
extern const DistanceKernels *distance_kernels_avx2(void);
extern const DistanceKernels *distance_kernels_avx512(void);

/* True when the running CPU (and OS) support the named kernel set. */
extern int	distance_cpu_has_avx2(void);
extern int	distance_cpu_has_avx512(void);

/*
 * Pick the fastest kernel set the CPU supports.  "prefer" may name a set
 * ("scalar", "avx2", "avx512") to force it when supported; NULL means best.
 * Returns the chosen set.
 */
extern const DistanceKernels *distance_select(const char *prefer);

/* Cosine distance from its parts, as pgvector computes it (NaN for zero). */
extern double distance_cosine_from_parts(float dot, float norm_a, float norm_b);

#endif							/* VECTRON_DISTANCE_H */

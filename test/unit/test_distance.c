/*
 * test_distance.c
 *	  Every compiled kernel set (scalar, AVX2, AVX-512 where the CPU has
 *	  them) must agree with a plain double-precision reference, within float
 *	  tolerance, over random vectors of every length from 1 to 2,000.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "distance.h"
#include "tap.h"

#define MAXLEN 2000

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

/* splitmix64: a small seeded generator, so failures reproduce. */
static uint64_t
NextRandom(void)
{
	uint64_t	z = (rng_state += 0x9e3779b97f4a7c15ULL);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	return z ^ (z >> 31);
}

/* Uniform float in [-1, 1). */
static float
RandomFloat(void)
{
	return (float) ((NextRandom() >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* Relative-or-absolute closeness scaled by the magnitude of the terms. */
static int
Close(double got, double want, double scale)
{
	return fabs(got - want) <= 1e-5 * scale + 1e-6;
}

/* Check one kernel set over all lengths; returns the number of mismatches. */
static void
CheckKernels(const DistanceKernels *k)
{
	static float a[MAXLEN + 16],
				b[MAXLEN + 16];
	int			bad_l2 = 0,
				bad_ip = 0,
				bad_l1 = 0,
				bad_cos = 0,
				bad_ham = 0,
				bad_jac = 0;

	for (int n = 1; n <= MAXLEN; n++)
	{
		/* vary alignment: start at an odd offset half of the time */
		int			off = n & 1;
		float	   *x = a + off,
				   *y = b + off;
		double		l2 = 0,
					ip = 0,
					l1 = 0,
					na = 0,
					nb = 0,
					scale = 0;
		float		dot,
					fa,
					fb;

		for (int i = 0; i < n; i++)
		{
			x[i] = RandomFloat();
			y[i] = RandomFloat();
			l2 += ((double) x[i] - y[i]) * ((double) x[i] - y[i]);
			ip += (double) x[i] * y[i];
			l1 += fabs((double) x[i] - y[i]);
			na += (double) x[i] * x[i];
			nb += (double) y[i] * y[i];
			scale += fabs((double) x[i] * y[i]);
		}
		if (!Close(k->l2_squared(x, y, n), l2, l2))
			bad_l2++;
		if (!Close(k->inner_product(x, y, n), ip, scale))
			bad_ip++;
		if (!Close(k->l1(x, y, n), l1, l1))
			bad_l1++;
		k->cosine_parts(x, y, n, &dot, &fa, &fb);
		if (!Close(dot, ip, scale) || !Close(fa, na, na) || !Close(fb, nb, nb))
			bad_cos++;

		/* bits: reuse the floats' bytes as n-byte strings */
		{
			const uint8_t *p = (const uint8_t *) x,
					   *q = (const uint8_t *) y;
			uint64_t	h = 0,
						ac = 0,
						oc = 0,
						kac,
						koc;

			for (int i = 0; i < n; i++)
			{
				h += __builtin_popcount((unsigned) (p[i] ^ q[i]));
				ac += __builtin_popcount((unsigned) (p[i] & q[i]));
				oc += __builtin_popcount((unsigned) (p[i] | q[i]));
			}
			if (k->hamming(p, q, n) != h)
				bad_ham++;
			k->jaccard_parts(p, q, n, &kac, &koc);
			if (kac != ac || koc != oc)
				bad_jac++;
		}
	}
	ok(bad_l2 == 0, "%s l2_squared matches reference for n=1..%d (%d bad)", k->name, MAXLEN, bad_l2);
	ok(bad_ip == 0, "%s inner_product matches reference (%d bad)", k->name, bad_ip);
	ok(bad_l1 == 0, "%s l1 matches reference (%d bad)", k->name, bad_l1);
	ok(bad_cos == 0, "%s cosine_parts matches reference (%d bad)", k->name, bad_cos);
	ok(bad_ham == 0, "%s hamming matches reference (%d bad)", k->name, bad_ham);
	ok(bad_jac == 0, "%s jaccard_parts matches reference (%d bad)", k->name, bad_jac);
}

int
main(void)
{
	const DistanceKernels *best;
	float		zero[3] = {0, 0, 0},
				one[3] = {1, 1, 1};

	CheckKernels(&distance_kernels_scalar);
	if (distance_cpu_has_avx2() && distance_kernels_avx2())
		CheckKernels(distance_kernels_avx2());
	else
		printf("# skipping avx2: CPU lacks it\n");
	if (distance_cpu_has_avx512() && distance_kernels_avx512())
		CheckKernels(distance_kernels_avx512());
	else
		printf("# skipping avx512: CPU lacks it\n");

	best = distance_select(NULL);
	ok(best != NULL && distance_kernels == best, "distance_select picks a set (%s)", best->name);
	ok(distance_select("scalar") == &distance_kernels_scalar, "scalar can be forced");
	distance_select(NULL);

	/* cosine of a zero vector is NaN, as in pgvector; identical is 0 */
	{
		float		d,
					na,
					nb;

		distance_kernels->cosine_parts(zero, one, 3, &d, &na, &nb);
		ok(isnan(distance_cosine_from_parts(d, na, nb)), "cosine with a zero vector is NaN");
		distance_kernels->cosine_parts(one, one, 3, &d, &na, &nb);
		ok(fabs(distance_cosine_from_parts(d, na, nb)) < 1e-7, "cosine of identical vectors is 0");
	}
	return done_testing();
}

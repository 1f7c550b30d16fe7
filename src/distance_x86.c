/*
 * distance_x86.c
 *	  AVX2+FMA and AVX-512F distance kernels, compiled with per-function
 *	  target attributes so that the rest of the build needs no -m flags and
 *	  the binary runs on any x86-64.  distance_select() calls them only after
 *	  CPUID (and XGETBV, for the OS's register saving) says they are safe.
 *
 * Each float kernel keeps four independent vector accumulators, so four FMA
 * chains are in flight; with one accumulator the loop is bound by FMA
 * latency rather than throughput (see docs/benchmarks.md for the numbers).
 */
#include "distance.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))

#include <cpuid.h>
#include <immintrin.h>

#define TARGET_AVX2 __attribute__((target("avx2,fma,popcnt")))
#define TARGET_AVX512 __attribute__((target("avx512f,avx2,fma,popcnt")))

/* ---- CPU detection ---------------------------------------------------- */

/* XCR0 bits the OS must have enabled for the register state in use. */
static unsigned long long
ReadXcr0(void)
{
	unsigned int eax,
				edx;

	__asm__ volatile ("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
	return ((unsigned long long) edx << 32) | eax;
}

int
distance_cpu_has_avx2(void)
{
	unsigned int a,
				b,
				c,
				d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	/* OSXSAVE, AVX and FMA in leaf 1 */
	if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_FMA) || !(c & bit_POPCNT))
		return 0;
	if ((ReadXcr0() & 0x6) != 0x6)	/* XMM and YMM state */
		return 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b & bit_AVX2) != 0;
}

int
distance_cpu_has_avx512(void)
{
	unsigned int a,
				b,
				c,
				d;

	if (!distance_cpu_has_avx2())
		return 0;
	if ((ReadXcr0() & 0xe6) != 0xe6)	/* opmask, ZMM_Hi256, Hi16_ZMM */
		return 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b & bit_AVX512F) != 0;
}

/* ---- AVX2 ------------------------------------------------------------- */

TARGET_AVX2 static inline float
HorizontalSum256(__m256 v)
{
	__m128		lo = _mm256_castps256_ps128(v);
	__m128		hi = _mm256_extractf128_ps(v, 1);
	__m128		s = _mm_add_ps(lo, hi);

	s = _mm_add_ps(s, _mm_movehl_ps(s, s));
	s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
	return _mm_cvtss_f32(s);
}

TARGET_AVX2 static float
Avx2L2Squared(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps();
	int			i = 0;
	float		tail = 0;

	for (; i + 32 <= n; i += 32)
	{
		__m256		d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
		__m256		d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
		__m256		d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
		__m256		d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));

		s0 = _mm256_fmadd_ps(d0, d0, s0);
		s1 = _mm256_fmadd_ps(d1, d1, s1);
		s2 = _mm256_fmadd_ps(d2, d2, s2);
		s3 = _mm256_fmadd_ps(d3, d3, s3);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256		d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));

		s0 = _mm256_fmadd_ps(d, d, s0);
	}
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		tail += d * d;
	}
	s0 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
	return HorizontalSum256(s0) + tail;
}

TARGET_AVX2 static float
Avx2InnerProduct(const float *a, const float *b, int n)
{
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps();
	int			i = 0;
	float		tail = 0;

	for (; i + 32 <= n; i += 32)
	{
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
		s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
		s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
		s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
	for (; i < n; i++)
		tail += a[i] * b[i];
	s0 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
	return HorizontalSum256(s0) + tail;
}

TARGET_AVX2 static float
Avx2L1(const float *a, const float *b, int n)
{
	const __m256 signmask = _mm256_set1_ps(-0.0f);
	__m256		s0 = _mm256_setzero_ps(),
				s1 = _mm256_setzero_ps(),
				s2 = _mm256_setzero_ps(),
				s3 = _mm256_setzero_ps();
	int			i = 0;
	float		tail = 0;

	for (; i + 32 <= n; i += 32)
	{
		s0 = _mm256_add_ps(s0, _mm256_andnot_ps(signmask, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
		s1 = _mm256_add_ps(s1, _mm256_andnot_ps(signmask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8))));
		s2 = _mm256_add_ps(s2, _mm256_andnot_ps(signmask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16))));
		s3 = _mm256_add_ps(s3, _mm256_andnot_ps(signmask, _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24))));
	}
	for (; i + 8 <= n; i += 8)
		s0 = _mm256_add_ps(s0, _mm256_andnot_ps(signmask, _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i))));
	for (; i < n; i++)
	{
		float		d = a[i] - b[i];

		tail += d < 0 ? -d : d;
	}
	s0 = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
	return HorizontalSum256(s0) + tail;
}

TARGET_AVX2 static void
Avx2CosineParts(const float *a, const float *b, int n,
				float *dot, float *norm_a, float *norm_b)
{
	__m256		d0 = _mm256_setzero_ps(),
				d1 = _mm256_setzero_ps(),
				na0 = _mm256_setzero_ps(),
				na1 = _mm256_setzero_ps(),
				nb0 = _mm256_setzero_ps(),
				nb1 = _mm256_setzero_ps();
	int			i = 0;
	float		td = 0,
				ta = 0,
				tb = 0;

	for (; i + 16 <= n; i += 16)
	{
		__m256		x0 = _mm256_loadu_ps(a + i),
					y0 = _mm256_loadu_ps(b + i),
					x1 = _mm256_loadu_ps(a + i + 8),
					y1 = _mm256_loadu_ps(b + i + 8);

		d0 = _mm256_fmadd_ps(x0, y0, d0);
		d1 = _mm256_fmadd_ps(x1, y1, d1);
		na0 = _mm256_fmadd_ps(x0, x0, na0);
		na1 = _mm256_fmadd_ps(x1, x1, na1);
		nb0 = _mm256_fmadd_ps(y0, y0, nb0);
		nb1 = _mm256_fmadd_ps(y1, y1, nb1);
	}
	for (; i + 8 <= n; i += 8)
	{
		__m256		x = _mm256_loadu_ps(a + i),
					y = _mm256_loadu_ps(b + i);

		d0 = _mm256_fmadd_ps(x, y, d0);
		na0 = _mm256_fmadd_ps(x, x, na0);
		nb0 = _mm256_fmadd_ps(y, y, nb0);
	}
	for (; i < n; i++)
	{
		td += a[i] * b[i];
		ta += a[i] * a[i];
		tb += b[i] * b[i];
	}
	*dot = HorizontalSum256(_mm256_add_ps(d0, d1)) + td;
	*norm_a = HorizontalSum256(_mm256_add_ps(na0, na1)) + ta;
	*norm_b = HorizontalSum256(_mm256_add_ps(nb0, nb1)) + tb;
}

/* Load 8 bytes without alignment assumptions. */
static inline uint64_t
Load64(const uint8_t *p)
{
	uint64_t	v;

	__builtin_memcpy(&v, p, sizeof(v));
	return v;
}

/* Hardware popcount over 64-bit words; four counters for throughput. */
TARGET_AVX2 static uint64_t
PopcntHamming(const uint8_t *a, const uint8_t *b, size_t nbytes)
{
	uint64_t	c0 = 0,
				c1 = 0,
				c2 = 0,
				c3 = 0;
	size_t		i = 0;

	for (; i + 32 <= nbytes; i += 32)
	{
		c0 += _mm_popcnt_u64(Load64(a + i) ^ Load64(b + i));
		c1 += _mm_popcnt_u64(Load64(a + i + 8) ^ Load64(b + i + 8));
		c2 += _mm_popcnt_u64(Load64(a + i + 16) ^ Load64(b + i + 16));
		c3 += _mm_popcnt_u64(Load64(a + i + 24) ^ Load64(b + i + 24));
	}
	for (; i + 8 <= nbytes; i += 8)
		c0 += _mm_popcnt_u64(Load64(a + i) ^ Load64(b + i));
	for (; i < nbytes; i++)
		c0 += _mm_popcnt_u32((unsigned) (a[i] ^ b[i]));
	return c0 + c1 + c2 + c3;
}

TARGET_AVX2 static void
PopcntJaccardParts(const uint8_t *a, const uint8_t *b, size_t nbytes,
				   uint64_t *and_count, uint64_t *or_count)
{
	uint64_t	ac = 0,
				oc = 0;
	size_t		i = 0;

	for (; i + 8 <= nbytes; i += 8)
	{
		uint64_t	x = Load64(a + i),
					y = Load64(b + i);

		ac += _mm_popcnt_u64(x & y);
		oc += _mm_popcnt_u64(x | y);
	}
	for (; i < nbytes; i++)
	{
		ac += _mm_popcnt_u32((unsigned) (a[i] & b[i]));
		oc += _mm_popcnt_u32((unsigned) (a[i] | b[i]));
	}
	*and_count = ac;
	*or_count = oc;
}

static const DistanceKernels Avx2Kernels = {
	.name = "avx2",
	.l2_squared = Avx2L2Squared,
	.inner_product = Avx2InnerProduct,
	.l1 = Avx2L1,
	.cosine_parts = Avx2CosineParts,
	.hamming = PopcntHamming,
	.jaccard_parts = PopcntJaccardParts,
};

const DistanceKernels *
distance_kernels_avx2(void)
{
	return &Avx2Kernels;
}

/* ---- AVX-512F --------------------------------------------------------- */

/* Mask selecting the first r (< 16) lanes. */
TARGET_AVX512 static inline __mmask16
TailMask(int r)
{
	return (__mmask16) ((1u << r) - 1);
}

TARGET_AVX512 static float
Avx512L2Squared(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps(),
				s1 = _mm512_setzero_ps(),
				s2 = _mm512_setzero_ps(),
				s3 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		__m512		d0 = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));
		__m512		d1 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16));
		__m512		d2 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32));
		__m512		d3 = _mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48));

		s0 = _mm512_fmadd_ps(d0, d0, s0);
		s1 = _mm512_fmadd_ps(d1, d1, s1);
		s2 = _mm512_fmadd_ps(d2, d2, s2);
		s3 = _mm512_fmadd_ps(d3, d3, s3);
	}
	for (; i + 16 <= n; i += 16)
	{
		__m512		d = _mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));

		s0 = _mm512_fmadd_ps(d, d, s0);
	}
	if (i < n)
	{
		__mmask16	m = TailMask(n - i);
		__m512		d = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i));

		s1 = _mm512_fmadd_ps(d, d, s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET_AVX512 static float
Avx512InnerProduct(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps(),
				s1 = _mm512_setzero_ps(),
				s2 = _mm512_setzero_ps(),
				s3 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
		s1 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16), s1);
		s2 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32), s2);
		s3 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48), s3);
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_fmadd_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i), s0);
	if (i < n)
	{
		__mmask16	m = TailMask(n - i);

		s1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i), s1);
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET_AVX512 static float
Avx512L1(const float *a, const float *b, int n)
{
	__m512		s0 = _mm512_setzero_ps(),
				s1 = _mm512_setzero_ps(),
				s2 = _mm512_setzero_ps(),
				s3 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 64 <= n; i += 64)
	{
		s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
		s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 16), _mm512_loadu_ps(b + i + 16))));
		s2 = _mm512_add_ps(s2, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 32), _mm512_loadu_ps(b + i + 32))));
		s3 = _mm512_add_ps(s3, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i + 48), _mm512_loadu_ps(b + i + 48))));
	}
	for (; i + 16 <= n; i += 16)
		s0 = _mm512_add_ps(s0, _mm512_abs_ps(_mm512_sub_ps(_mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i))));
	if (i < n)
	{
		__mmask16	m = TailMask(n - i);

		s1 = _mm512_add_ps(s1, _mm512_abs_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(m, a + i), _mm512_maskz_loadu_ps(m, b + i))));
	}
	return _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
}

TARGET_AVX512 static void
Avx512CosineParts(const float *a, const float *b, int n,
				  float *dot, float *norm_a, float *norm_b)
{
	__m512		d0 = _mm512_setzero_ps(),
				d1 = _mm512_setzero_ps(),
				na0 = _mm512_setzero_ps(),
				na1 = _mm512_setzero_ps(),
				nb0 = _mm512_setzero_ps(),
				nb1 = _mm512_setzero_ps();
	int			i = 0;

	for (; i + 32 <= n; i += 32)
	{
		__m512		x0 = _mm512_loadu_ps(a + i),
					y0 = _mm512_loadu_ps(b + i),
					x1 = _mm512_loadu_ps(a + i + 16),
					y1 = _mm512_loadu_ps(b + i + 16);

		d0 = _mm512_fmadd_ps(x0, y0, d0);
		d1 = _mm512_fmadd_ps(x1, y1, d1);
		na0 = _mm512_fmadd_ps(x0, x0, na0);
		na1 = _mm512_fmadd_ps(x1, x1, na1);
		nb0 = _mm512_fmadd_ps(y0, y0, nb0);
		nb1 = _mm512_fmadd_ps(y1, y1, nb1);
	}
	for (; i < n; i += 16)
	{
		__mmask16	m = (n - i >= 16) ? (__mmask16) 0xffff : TailMask(n - i);
		__m512		x = _mm512_maskz_loadu_ps(m, a + i),
					y = _mm512_maskz_loadu_ps(m, b + i);

		d0 = _mm512_fmadd_ps(x, y, d0);
		na0 = _mm512_fmadd_ps(x, x, na0);
		nb0 = _mm512_fmadd_ps(y, y, nb0);
	}
	*dot = _mm512_reduce_add_ps(_mm512_add_ps(d0, d1));
	*norm_a = _mm512_reduce_add_ps(_mm512_add_ps(na0, na1));
	*norm_b = _mm512_reduce_add_ps(_mm512_add_ps(nb0, nb1));
}

static const DistanceKernels Avx512Kernels = {
	.name = "avx512",
	.l2_squared = Avx512L2Squared,
	.inner_product = Avx512InnerProduct,
	.l1 = Avx512L1,
	.cosine_parts = Avx512CosineParts,
	.hamming = PopcntHamming,
	.jaccard_parts = PopcntJaccardParts,
};

const DistanceKernels *
distance_kernels_avx512(void)
{
	return &Avx512Kernels;
}

#else							/* not x86-64 */

int
distance_cpu_has_avx2(void)
{
	return 0;
}

int
distance_cpu_has_avx512(void)
{
	return 0;
}

const DistanceKernels *
distance_kernels_avx2(void)
{
	return NULL;
}

const DistanceKernels *
distance_kernels_avx512(void)
{
	return NULL;
}

#endif

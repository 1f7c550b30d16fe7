/*
 * hnswquant.c
 *	  High-dimension values of the HNSW index: an SQ8 code in the element
 *	  and a lower bound of the true distance for scans.
 *
 * An element must fit one page, so a vector of HNSW_QUANT_MIN_DIMS or more
 * dimensions is stored as one byte per dimension (x ~ offset + scale *
 * code) plus the exact size of what the code loses (L2 and L1 norms of
 * x - dequant(x), rounded up).  The value keeps the VectorData header; the
 * reserved `unused` field carries HNSW_QUANT_TAG, which no vector value
 * has (vector input always zeroes it).  Build, insert and VACUUM compare
 * dequantized vectors.  Scans keep the query in full precision and rank
 * elements by a LOWER BOUND of the true distance (triangle inequality for
 * l2 and l1, Cauchy-Schwarz for inner product and cosine), returned with
 * xs_recheckorderby: PostgreSQL's IndexNextWithReorder recomputes the
 * distance from the heap row and reorders, so results come out in exact
 * distance order whatever the code's quality.  The bound includes a slack
 * for float rounding: a value above the exact distance is an ERROR there.
 */
#include "hnsw.h"

#include <math.h>

#include "utils/memutils.h"

#include "distance.h"
#include "vector.h"

#define HNSW_QUANT_TAG		0x5138

typedef struct HnswQuantData
{
	int32		vl_len_;
	int16		dim;
	int16		tag;			/* HNSW_QUANT_TAG */
	float		offset;
	float		scale;
	float		resid2;			/* >= ||x - dequant(x)||_2 */
	float		resid1;			/* >= ||x - dequant(x)||_1 */
	uint8		code[FLEXIBLE_ARRAY_MEMBER];
} HnswQuantData;

/* Dequantization buffers (two: both sides of a distance can be codes) */
static VectorData *qbuf[2];

/* Size of a level-0 element holding the full vector of dims dimensions */
#define FULL_ELEMENT_SIZE(m, dims) \
	HnswElementSize((m), 0, offsetof(VectorData, x) + sizeof(float) * (Size) (dims))

/*
 * True when the value is an SQ8 code.  The dimension guard is the least
 * that can be a code at any m: a full vector of fewer dimensions fits a
 * level-0 element even at m = HNSW_MAX_M.
 */
bool
HnswQuantIs(const char *value)
{
	const HnswQuantData *q = (const HnswQuantData *) value;

	return q->tag == HNSW_QUANT_TAG &&
		(q->dim >= HNSW_QUANT_MIN_DIMS ||
		 FULL_ELEMENT_SIZE(HNSW_MAX_M, q->dim) > HNSW_MAX_TUPLE_SIZE);
}

/* True for the kinds whose values are float vectors. */
static bool
VectorKind(HnswKind kind)
{
	return kind == HNSW_KIND_L2 || kind == HNSW_KIND_IP || kind == HNSW_KIND_COSINE ||
		kind == HNSW_KIND_L1 || kind == HNSW_KIND_MIPS;
}

/*
 * True when values of this kind and size are stored as codes: from
 * HNSW_QUANT_MIN_DIMS dimensions, and below that whenever the full vector
 * would not fit a level-0 element at the index's m (1,971-2,000 dimensions
 * at m = 16, fewer at larger m), so that every dimension up to 4,096 is
 * indexable at any m.  Both sides agree: the element size depends only on
 * m and dims, which all elements of an index share.
 */
bool
HnswQuantWanted(HnswSupport *support, int dims)
{
	if (!VectorKind(support->kind))
		return false;
	return dims >= HNSW_QUANT_MIN_DIMS ||
		FULL_ELEMENT_SIZE(Max(support->m, HNSW_MIN_M), dims) > HNSW_MAX_TUPLE_SIZE;
}

/* Returns the SQ8 code of a full vector (palloc'd). */
char *
HnswQuantize(const char *value)
{
	const VectorData *v = (const VectorData *) value;
	HnswQuantData *q;
	float		lo = v->x[0],
				hi = v->x[0],
				scale;
	double		r2 = 0,
				r1 = 0;
	int			i;

	for (i = 1; i < v->dim; i++)
	{
		lo = Min(lo, v->x[i]);
		hi = Max(hi, v->x[i]);
	}
	scale = (hi - lo) / 255.0f;
	if (!(scale > 0) || isinf(scale))
		scale = 1.0f;
	q = palloc0(offsetof(HnswQuantData, code) + v->dim);
	SET_VARSIZE(q, offsetof(HnswQuantData, code) + v->dim);
	q->dim = v->dim;
	q->tag = HNSW_QUANT_TAG;
	q->offset = lo;
	q->scale = scale;
	for (i = 0; i < v->dim; i++)
	{
		double		c = rint(((double) v->x[i] - lo) / scale);
		float		back;

		c = Max(0, Min(255, c));
		q->code[i] = (uint8) c;
		back = lo + scale * (float) q->code[i];
		r2 += ((double) v->x[i] - back) * ((double) v->x[i] - back);
		r1 += fabs((double) v->x[i] - back);
	}
	q->resid2 = (float) (sqrt(r2) * (1 + 1e-5) + 1e-7);
	q->resid1 = (float) (r1 * (1 + 1e-5) + 1e-7);
	return (char *) q;
}

/* Dequantizes a code into buffer slot (0 or 1) and returns it. */
static const char *
Dequantize(const char *value, int slot)
{
	const HnswQuantData *q = (const HnswQuantData *) value;
	VectorData *v;
	int			i;

	if (qbuf[slot] == NULL)
		qbuf[slot] = MemoryContextAlloc(TopMemoryContext,
										offsetof(VectorData, x) + sizeof(float) * PG_INT16_MAX);
	v = qbuf[slot];
	SET_VARSIZE(v, offsetof(VectorData, x) + sizeof(float) * q->dim);
	v->dim = q->dim;
	v->unused = 0;
	for (i = 0; i < q->dim; i++)
		v->x[i] = q->offset + q->scale * (float) q->code[i];
	return (const char *) v;
}

/* Squared norm of a stored vector value, code or not. */
double
HnswValueNormSq(const char *value)
{
	const VectorData *v;

	if (HnswQuantIs(value))
		value = Dequantize(value, 0);
	v = (const VectorData *) value;
	return distance_kernels->inner_product(v->x, v->x, v->dim);
}

/*
 * Distance when a or b is a code.  In a scan (support->scanBound, a the
 * full query, b a code) it is a lower bound of the true distance, in the
 * kind's units (for l2 a signed square: sign(lb) * lb^2); otherwise the
 * distance between the dequantized vectors.
 */
float
HnswQuantDistance(HnswSupport *support, const char *a, const char *b)
{
	const HnswQuantData *qb = (const HnswQuantData *) b;
	double		d,
				qn,
				xn,
				lb;

	if (!support->scanBound || HnswQuantIs(a) || !HnswQuantIs(b))
	{
		if (HnswQuantIs(a))
			a = Dequantize(a, 0);
		if (HnswQuantIs(b))
			b = Dequantize(b, 1);
		return HnswDistance(support, a, b);
	}
	b = Dequantize(b, 1);
	d = HnswDistance(support, a, b);
	switch (support->kind)
	{
		case HNSW_KIND_L2:
			lb = sqrt(Max(d, 0)) * (1 - 1e-3) - qb->resid2 - 1e-6;
			return (float) (lb >= 0 ? lb * lb : -(lb * lb));
		case HNSW_KIND_L1:
			return (float) (d * (1 - 1e-3) - qb->resid1 - 1e-6);
		default:
			/* IP, COSINE: |q.x - q.x'| <= |q| |x - x'| */
			qn = sqrt(HnswValueNormSq(a));
			xn = sqrt(HnswValueNormSq(b));
			return (float) (d - qn * qb->resid2 - 1e-3 * qn * (xn + qb->resid2) - 1e-6);
	}
}

/*
 * Converts a scan's lower bound (kind units) into the units of the ORDER
 * BY operator: <-> is the Euclidean distance, <=> 1 - cosine, <#> and <+>
 * are the kind's own units.  Rounded down to float8.
 */
double
HnswQuantOrderValue(HnswSupport *support, float dist)
{
	double		v = dist;

	switch (support->kind)
	{
		case HNSW_KIND_L2:
			v = v >= 0 ? sqrt(v) : -sqrt(-v);
			break;
		case HNSW_KIND_COSINE:
			v = 1.0 + v;
			break;
		default:
			break;
	}
	return v - 1e-6 * (fabs(v) + 1e-6);
}

/*
 * vector.c
 *	  The vector type: text and binary I/O, typmod, distance functions,
 *	  element-wise arithmetic, comparison (for the btree opclass) and the
 *	  small utility functions (dims, norm, normalize, subvector, quantize).
 *
 * Distances call the SIMD kernels chosen at load time by DistanceInit (see
 * distance.h).  Every user error is reported with ereport and a SQLSTATE:
 * 22P02 malformed text, 22P03 bad binary data, 22000 dimension mismatch and
 * non-finite values, 22003 overflow, 54000 too many dimensions, 22023 bad
 * typmod or arguments.
 */
#include "vectron.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "lib/stringinfo.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/varbit.h"

#include "distance.h"
#include "vector.h"
#include "vector_parse.h"

/* GUC: force a kernel set (for tests and benchmarks); empty means best. */
static char *vectron_kernels = NULL;

/* Assign hook for vectron.kernels: reselect the kernels. */
static void
AssignKernels(const char *newval, void *extra)
{
	distance_select((newval != NULL && newval[0] != '\0') ? newval : NULL);
}

void
DistanceInit(void)
{
	distance_select(NULL);
	DefineCustomStringVariable("vectron.kernels",
							   "Forces a distance kernel set (scalar, avx2 or avx512).",
							   "Empty selects the fastest set the CPU supports. "
							   "A set the CPU lacks falls back to the best available.",
							   &vectron_kernels,
							   "",
							   PGC_USERSET, 0,
							   NULL, AssignKernels, NULL);
	MarkGUCPrefixReserved("vectron");
}

Vector
InitVector(int dim)
{
	int			size = VECTOR_SIZE(dim);
	Vector		result = (Vector) palloc0(size);

	SET_VARSIZE(result, size);
	result->dim = dim;
	return result;
}

void
CheckVectorDim(int dim)
{
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	if (dim > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
}

void
CheckVectorTypmod(int dim, int32 typmod)
{
	if (typmod != -1 && typmod != dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", typmod, dim)));
}

void
CheckVectorSameDims(Vector a, Vector b)
{
	if (a->dim != b->dim)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different vector dimensions %d and %d", a->dim, b->dim)));
}

void
CheckVectorElements(const float *x, int dim)
{
	for (int i = 0; i < dim; i++)
	{
		if (isnan(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("NaN not allowed in vector")));
		if (isinf(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in vector")));
	}
}

/* Report a failed text parse with the SQLSTATE that fits. */
static void
ReportParseError(VectorParseStatus st, const char *str, const char *pos)
{
	switch (st)
	{
		case VP_EMPTY:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("vector must have at least 1 dimension")));
			break;
		case VP_TOO_MANY:
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("vector cannot have more than %d dimensions", VECTOR_MAX_DIM)));
			break;
		case VP_NAN:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("NaN not allowed in vector")));
			break;
		case VP_INFINITE:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("infinite value not allowed in vector")));
			break;
		case VP_OUT_OF_RANGE:
			ereport(ERROR,
					(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
					 errmsg("\"%.*s\" is out of range for type vector",
							(int) strcspn(pos, ",] \t\n\r\f\v"), pos)));
			break;
		default:
			{
				/* the details pgvector gives, so client-visible text matches */
				const char *lead = str;

				while (*lead == ' ' || *lead == '\t' || *lead == '\n' ||
					   *lead == '\r' || *lead == '\f' || *lead == '\v')
					lead++;
				if (*lead != '[')
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid input syntax for type vector: \"%s\"", str),
							 errdetail("Vector contents must start with \"[\".")));
				if (pos > str && *pos != '\0' && strchr(str, ']') != NULL &&
					strchr(str, ']') < pos)
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
							 errmsg("invalid input syntax for type vector: \"%s\"", str),
							 errdetail("Junk after closing right brace.")));
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("invalid input syntax for type vector: \"%s\"", str)));
			}
	}
}

PG_FUNCTION_INFO_V1(vector_in);
/* Text input: '[1,2,3]', checked against the typmod. */
Datum
vector_in(PG_FUNCTION_ARGS)
{
	char	   *str = PG_GETARG_CSTRING(0);
	int32		typmod = PG_GETARG_INT32(2);
	/* every element but the last takes at least two characters ("1,") */
	size_t		maxn = strlen(str) / 2 + 1;
	float		stackbuf[2048];
	float	   *buf = stackbuf;
	int			dim;
	const char *pos;
	VectorParseStatus st;
	Vector		result;

	if (maxn > VECTOR_MAX_DIM + 1)
		maxn = VECTOR_MAX_DIM + 1;
	if (maxn > lengthof(stackbuf))
		buf = palloc(sizeof(float) * maxn);
	st = vector_parse_text(str, buf, Min((int) maxn, VECTOR_MAX_DIM), &dim, &pos);
	if (st == VP_TOO_MANY && (int) maxn <= VECTOR_MAX_DIM)
		elog(ERROR, "vector text bound of %zu elements exceeded", maxn);
	if (st != VP_OK)
		ReportParseError(st, str, pos);

	CheckVectorTypmod(dim, typmod);
	result = InitVector(dim);
	memcpy(result->x, buf, sizeof(float) * dim);
	if (buf != stackbuf)
		pfree(buf);
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_out);
/* Text output with the shortest text that reads back to the same float. */
Datum
vector_out(PG_FUNCTION_ARGS)
{
	Vector		vec = PG_GETARG_VECTOR_P(0);
	int			dim = vec->dim;
	char	   *buf;
	char	   *p;

	/* each float needs at most FLOAT_SHORTEST_DECIMAL_LEN - 1 chars + ',' */
	buf = palloc(FLOAT_SHORTEST_DECIMAL_LEN * dim + 3);
	p = buf;
	*p++ = '[';
	for (int i = 0; i < dim; i++)
	{
		if (i > 0)
			*p++ = ',';
		p += float_to_shortest_decimal_bufn(vec->x[i], p);
	}
	*p++ = ']';
	*p = '\0';
	PG_FREE_IF_COPY(vec, 0);
	PG_RETURN_CSTRING(buf);
}

PG_FUNCTION_INFO_V1(vector_typmod_in);
/* typmod: vector(n) with 1 <= n <= VECTOR_MAX_DIM. */
Datum
vector_typmod_in(PG_FUNCTION_ARGS)
{
	ArrayType  *ta = PG_GETARG_ARRAYTYPE_P(0);
	int32	   *tl;
	int			n;

	tl = ArrayGetIntegerTypmods(ta, &n);
	if (n != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid type modifier")));
	if (*tl < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector must be at least 1")));
	if (*tl > VECTOR_MAX_DIM)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimensions for type vector cannot exceed %d", VECTOR_MAX_DIM)));
	PG_RETURN_INT32(*tl);
}

PG_FUNCTION_INFO_V1(vector_typmod_out);
/* typmod output: "(n)". */
Datum
vector_typmod_out(PG_FUNCTION_ARGS)
{
	int32		typmod = PG_GETARG_INT32(0);

	if (typmod < 0)
		PG_RETURN_CSTRING(pstrdup(""));
	PG_RETURN_CSTRING(psprintf("(%d)", typmod));
}

PG_FUNCTION_INFO_V1(vector_recv);
/* Binary input in pgvector's layout: int16 dim, int16 0, float4 x dim. */
Datum
vector_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int32		typmod = PG_GETARG_INT32(2);
	const uint8_t *data = (const uint8_t *) buf->data + buf->cursor;
	size_t		len = buf->len - buf->cursor;
	VectorParseStatus st;
	int			dim;
	Vector		result;

	st = vector_decode_binary(data, len, NULL, VECTOR_MAX_DIM, &dim);
	if (st == VP_OK)
	{
		result = InitVector(dim);
		st = vector_decode_binary(data, len, result->x, VECTOR_MAX_DIM, &dim);
	}
	switch (st)
	{
		case VP_OK:
			break;
		case VP_EMPTY:
		case VP_TOO_MANY:
		case VP_NAN:
		case VP_INFINITE:
			ReportParseError(st, "", "");
			break;
		case VP_BAD_HEADER:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary data for type vector"),
					 errdetail("The reserved field after the dimension count must be 0.")));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
					 errmsg("invalid binary data for type vector"),
					 errdetail("Expected 4 header bytes and 4 bytes per dimension, got %zu bytes.", len)));
	}
	CheckVectorTypmod(dim, typmod);
	buf->cursor = buf->len;
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_send);
/* Binary output in pgvector's layout. */
Datum
vector_send(PG_FUNCTION_ARGS)
{
	Vector		vec = PG_GETARG_VECTOR_P(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint16(&buf, vec->dim);
	pq_sendint16(&buf, 0);
	for (int i = 0; i < vec->dim; i++)
		pq_sendfloat4(&buf, vec->x[i]);
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(vector);
/* Cast vector to vector(n): check the dimension count. */
Datum
vector(PG_FUNCTION_ARGS)
{
	Vector		vec = PG_GETARG_VECTOR_P(0);
	int32		typmod = PG_GETARG_INT32(1);

	CheckVectorTypmod(vec->dim, typmod);
	PG_RETURN_VECTOR_P(vec);
}

/* ---- distances -------------------------------------------------------- */

PG_FUNCTION_INFO_V1(l2_distance);
/* Euclidean distance. */
Datum
l2_distance(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	CheckVectorSameDims(a, b);
	PG_RETURN_FLOAT8(sqrt((double) distance_kernels->l2_squared(a->x, b->x, a->dim)));
}

PG_FUNCTION_INFO_V1(vector_l2_squared_distance);
/* Squared Euclidean distance (the index's internal l2 ordering). */
Datum
vector_l2_squared_distance(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	CheckVectorSameDims(a, b);
	PG_RETURN_FLOAT8((double) distance_kernels->l2_squared(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(inner_product);
/* Inner product. */
Datum
inner_product(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	CheckVectorSameDims(a, b);
	PG_RETURN_FLOAT8((double) distance_kernels->inner_product(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(vector_negative_inner_product);
/* Negative inner product: smaller is closer, for the <#> operator. */
Datum
vector_negative_inner_product(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	CheckVectorSameDims(a, b);
	PG_RETURN_FLOAT8(-(double) distance_kernels->inner_product(a->x, b->x, a->dim));
}

PG_FUNCTION_INFO_V1(cosine_distance);
/* Cosine distance, 1 - cos(a, b); NaN when either vector is zero. */
Datum
cosine_distance(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	float		dot,
				na,
				nb;

	CheckVectorSameDims(a, b);
	distance_kernels->cosine_parts(a->x, b->x, a->dim, &dot, &na, &nb);
	PG_RETURN_FLOAT8(distance_cosine_from_parts(dot, na, nb));
}

PG_FUNCTION_INFO_V1(vector_spherical_distance);
/* Angle-based distance on normalized vectors, in [0, 1]. */
Datum
vector_spherical_distance(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	double		dot;

	CheckVectorSameDims(a, b);
	dot = (double) distance_kernels->inner_product(a->x, b->x, a->dim);
	if (dot > 1)
		dot = 1;
	else if (dot < -1)
		dot = -1;
	PG_RETURN_FLOAT8(acos(dot) / M_PI);
}

PG_FUNCTION_INFO_V1(l1_distance);
/* Manhattan (taxicab) distance. */
Datum
l1_distance(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	CheckVectorSameDims(a, b);
	PG_RETURN_FLOAT8((double) distance_kernels->l1(a->x, b->x, a->dim));
}

/* ---- utilities -------------------------------------------------------- */

PG_FUNCTION_INFO_V1(vector_dims);
/* Number of dimensions. */
Datum
vector_dims(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);

	PG_RETURN_INT32(a->dim);
}

PG_FUNCTION_INFO_V1(vector_norm);
/* Euclidean norm, accumulated in double. */
Datum
vector_norm(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	double		norm = 0.0;

	for (int i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];
	PG_RETURN_FLOAT8(sqrt(norm));
}

PG_FUNCTION_INFO_V1(l2_normalize);
/* Scale to unit Euclidean norm; a zero vector is returned unchanged. */
Datum
l2_normalize(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		result = InitVector(a->dim);
	double		norm = 0;

	for (int i = 0; i < a->dim; i++)
		norm += (double) a->x[i] * (double) a->x[i];
	norm = sqrt(norm);
	if (norm > 0)
	{
		/* |x / norm| <= 1, so no element can overflow */
		for (int i = 0; i < a->dim; i++)
			result->x[i] = a->x[i] / norm;
	}
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(subvector);
/* Elements start..start+count-1 (1-based), clipped to the vector. */
Datum
subvector(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	int32		start = PG_GETARG_INT32(1);
	int32		count = PG_GETARG_INT32(2);
	int64		end = (int64) start + count;
	int			dim;
	Vector		result;

	if (count < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	if (start < 1)
		start = 1;
	if (end > (int64) a->dim + 1)
		end = a->dim + 1;
	dim = (int) (end - start);
	if (dim < 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("vector must have at least 1 dimension")));
	result = InitVector(dim);
	memcpy(result->x, a->x + (start - 1), sizeof(float) * dim);
	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(binary_quantize);
/* One bit per element: 1 where the element is positive. */
Datum
binary_quantize(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	int			len = VARBITTOTALLEN(a->dim);
	VarBit	   *result = (VarBit *) palloc0(len);
	bits8	   *r;

	SET_VARSIZE(result, len);
	VARBITLEN(result) = a->dim;
	r = VARBITS(result);
	for (int i = 0; i < a->dim; i++)
	{
		if (a->x[i] > 0)
			r[i / 8] |= (bits8) (0x80 >> (i % 8));
	}
	PG_RETURN_VARBIT_P(result);
}

/* ---- arithmetic -------------------------------------------------------- */

/* Make the result of an element-wise operation and reject overflow. */
static Vector
FinishArithmetic(Vector result)
{
	for (int i = 0; i < result->dim; i++)
	{
		if (isinf(result->x[i]))
			float_overflow_error();
	}
	return result;
}

PG_FUNCTION_INFO_V1(vector_add);
/* Element-wise sum. */
Datum
vector_add(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	Vector		result;

	CheckVectorSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] + b->x[i];
	PG_RETURN_VECTOR_P(FinishArithmetic(result));
}

PG_FUNCTION_INFO_V1(vector_sub);
/* Element-wise difference. */
Datum
vector_sub(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	Vector		result;

	CheckVectorSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
		result->x[i] = a->x[i] - b->x[i];
	PG_RETURN_VECTOR_P(FinishArithmetic(result));
}

PG_FUNCTION_INFO_V1(vector_mul);
/* Element-wise product; underflow to zero is an error as for float4. */
Datum
vector_mul(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	Vector		result;

	CheckVectorSameDims(a, b);
	result = InitVector(a->dim);
	for (int i = 0; i < a->dim; i++)
	{
		result->x[i] = a->x[i] * b->x[i];
		if (result->x[i] == 0 && !(a->x[i] == 0 || b->x[i] == 0))
			float_underflow_error();
	}
	PG_RETURN_VECTOR_P(FinishArithmetic(result));
}

PG_FUNCTION_INFO_V1(vector_concat);
/* Concatenation a || b. */
Datum
vector_concat(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);
	Vector		result;

	CheckVectorDim((int) a->dim + (int) b->dim);
	result = InitVector(a->dim + b->dim);
	memcpy(result->x, a->x, sizeof(float) * a->dim);
	memcpy(result->x + a->dim, b->x, sizeof(float) * b->dim);
	PG_RETURN_VECTOR_P(result);
}

/* ---- comparison (btree) ------------------------------------------------ */

/*
 * Total order: element by element, then by dimension count, so that vectors
 * of different lengths compare (a prefix sorts first) and sorting, DISTINCT
 * and UNIQUE work on mixed columns.
 */
static int
VectorCompare(Vector a, Vector b)
{
	int			n = Min(a->dim, b->dim);

	for (int i = 0; i < n; i++)
	{
		if (a->x[i] < b->x[i])
			return -1;
		if (a->x[i] > b->x[i])
			return 1;
	}
	if (a->dim < b->dim)
		return -1;
	if (a->dim > b->dim)
		return 1;
	return 0;
}

#define VECTOR_CMP_FUNC(name, expr) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	Vector		a = PG_GETARG_VECTOR_P(0); \
	Vector		b = PG_GETARG_VECTOR_P(1); \
	int			c = VectorCompare(a, b); \
	PG_RETURN_BOOL(expr); \
}

VECTOR_CMP_FUNC(vector_lt, c < 0)
VECTOR_CMP_FUNC(vector_le, c <= 0)
VECTOR_CMP_FUNC(vector_eq, c == 0)
VECTOR_CMP_FUNC(vector_ne, c != 0)
VECTOR_CMP_FUNC(vector_ge, c >= 0)
VECTOR_CMP_FUNC(vector_gt, c > 0)

PG_FUNCTION_INFO_V1(vector_cmp);
/* btree support function 1. */
Datum
vector_cmp(PG_FUNCTION_ARGS)
{
	Vector		a = PG_GETARG_VECTOR_P(0);
	Vector		b = PG_GETARG_VECTOR_P(1);

	PG_RETURN_INT32(VectorCompare(a, b));
}

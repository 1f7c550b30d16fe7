/*
 * vector_agg.c
 *	  avg(vector) and sum(vector), parallel-safe.
 *
 * The transition state is a double precision[] of 1 + dim elements: the row
 * count, then the running sums, accumulated in double so long sums do not
 * drift.  vector_combine merges two partial states from parallel workers.
 * sum uses vector_add directly as its transition function.
 */
#include "vectron.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/float.h"

#include "vector.h"

/*
 * Borrow the state's values.  The state can come from SQL (the functions are
 * callable), so a malformed one is a user error, named by the function.
 */
static double *
StateValues(ArrayType *state, int *n, const char *fname)
{
	if (ARR_NDIM(state) != 1 || ARR_DIMS(state)[0] < 1 || ARR_HASNULL(state) ||
		ARR_ELEMTYPE(state) != FLOAT8OID)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("%s: expected state array", fname)));
	*n = ARR_DIMS(state)[0];
	if (*n - 1 > VECTOR_MAX_DIM)
		CheckVectorDim(*n - 1);
	return (double *) ARR_DATA_PTR(state);
}

/* ereport unless two dimension counts agree, in pgvector's words. */
static void
CheckStateDims(int expected, int got)
{
	if (expected != got)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("expected %d dimensions, not %d", expected, got)));
}

/* Build a state array from count and sums. */
static ArrayType *
MakeState(double *vals, int n)
{
	Datum	   *d = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		d[i] = Float8GetDatum(vals[i]);
	return construct_array(d, n, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE);
}

PG_FUNCTION_INFO_V1(vector_accum);
/* Add one vector to the state. */
Datum
vector_accum(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	Vector		v = PG_GETARG_VECTOR_P(1);
	int			n;
	double	   *sv = StateValues(state, &n, "vector_accum");
	double	   *out;

	if (n == 1)
	{
		/* first row: the state is {0} */
		out = palloc0(sizeof(double) * (v->dim + 1));
		n = v->dim + 1;
	}
	else
	{
		CheckStateDims(n - 1, v->dim);
		out = palloc(sizeof(double) * n);
		memcpy(out, sv, sizeof(double) * n);
	}
	out[0] = sv[0] + 1;
	for (int i = 0; i < v->dim; i++)
	{
		out[i + 1] += v->x[i];
		if (isinf(out[i + 1]))
			float_overflow_error();
	}
	PG_RETURN_ARRAYTYPE_P(MakeState(out, n));
}

PG_FUNCTION_INFO_V1(vector_combine);
/* Merge two partial states. */
Datum
vector_combine(PG_FUNCTION_ARGS)
{
	ArrayType  *s1 = PG_GETARG_ARRAYTYPE_P(0);
	ArrayType  *s2 = PG_GETARG_ARRAYTYPE_P(1);
	int			n1,
				n2;
	double	   *v1 = StateValues(s1, &n1, "vector_combine");
	double	   *v2 = StateValues(s2, &n2, "vector_combine");
	double	   *out;

	if (n1 == 1)
		PG_RETURN_ARRAYTYPE_P(MakeState(v2, n2));
	if (n2 == 1)
		PG_RETURN_ARRAYTYPE_P(MakeState(v1, n1));
	CheckStateDims(n1 - 1, n2 - 1);
	out = palloc(sizeof(double) * n1);
	for (int i = 0; i < n1; i++)
	{
		out[i] = v1[i] + v2[i];
		if (isinf(out[i]))
			float_overflow_error();
	}
	PG_RETURN_ARRAYTYPE_P(MakeState(out, n1));
}

PG_FUNCTION_INFO_V1(vector_avg);
/* Final function: sums / count, or NULL when no rows. */
Datum
vector_avg(PG_FUNCTION_ARGS)
{
	ArrayType  *state = PG_GETARG_ARRAYTYPE_P(0);
	int			n;
	double	   *sv = StateValues(state, &n, "vector_avg");
	Vector		result;

	/* no rows: SQL's avg of nothing is NULL */
	if (sv[0] == 0)
		PG_RETURN_NULL();
	CheckVectorDim(n - 1);
	result = InitVector(n - 1);
	for (int i = 1; i < n; i++)
	{
		result->x[i - 1] = (float) (sv[i] / sv[0]);
		if (isinf(result->x[i - 1]))
			float_overflow_error();
	}
	PG_RETURN_VECTOR_P(result);
}

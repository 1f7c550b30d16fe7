/*
 * vector_cast.c
 *	  Casts between vector and PostgreSQL arrays.
 *
 * integer[], real[], double precision[] and numeric[] cast to vector by
 * assignment (checking the typmod, NULLs and finite values); vector casts to
 * real[] implicitly.  The type module itself knows nothing of arrays.
 */
#include "vectron.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"

#include "vector.h"

/* Convert one array element to float, rejecting out-of-range values. */
static float
ElementToFloat(Datum d, Oid elemtype)
{
	double		v;

	switch (elemtype)
	{
		case INT4OID:
			return (float) DatumGetInt32(d);
		case FLOAT4OID:
			return DatumGetFloat4(d);
		case FLOAT8OID:
			v = DatumGetFloat8(d);
			break;
		case NUMERICOID:
			v = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, d));
			break;
		default:
			ereport(ERROR,
					(errcode(ERRCODE_DATA_EXCEPTION),
					 errmsg("unsupported array type %s", format_type_be(elemtype))));
	}
	/* values beyond float4 become infinite, which CheckVectorElements rejects */
	return (float) v;
}

PG_FUNCTION_INFO_V1(array_to_vector);
/* Cast integer[], real[], double precision[] or numeric[] to vector(typmod). */
Datum
array_to_vector(PG_FUNCTION_ARGS)
{
	ArrayType  *array = PG_GETARG_ARRAYTYPE_P(0);
	int32		typmod = PG_GETARG_INT32(1);
	Oid			elemtype = ARR_ELEMTYPE(array);
	int16		typlen;
	bool		typbyval;
	char		typalign;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	Vector		result;

	if (ARR_NDIM(array) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("array must be 1-D")));
	if (ARR_HASNULL(array) && array_contains_nulls(array))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("array must not contain nulls")));

	get_typlenbyvalalign(elemtype, &typlen, &typbyval, &typalign);
	deconstruct_array(array, elemtype, typlen, typbyval, typalign,
					  &elems, &nulls, &n);

	CheckVectorDim(n);
	CheckVectorTypmod(n, typmod);

	result = InitVector(n);
	for (int i = 0; i < n; i++)
		result->x[i] = ElementToFloat(elems[i], elemtype);
	CheckVectorElements(result->x, n);

	PG_RETURN_VECTOR_P(result);
}

PG_FUNCTION_INFO_V1(vector_to_float4);
/* Cast vector to real[]. */
Datum
vector_to_float4(PG_FUNCTION_ARGS)
{
	Vector		vec = PG_GETARG_VECTOR_P(0);
	Datum	   *d = palloc(sizeof(Datum) * vec->dim);

	for (int i = 0; i < vec->dim; i++)
		d[i] = Float4GetDatum(vec->x[i]);
	PG_RETURN_POINTER(construct_array(d, vec->dim, FLOAT4OID, sizeof(float4),
									  true, TYPALIGN_INT));
}

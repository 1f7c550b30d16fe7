/*
 * bitvec.c
 *	  Hamming and Jaccard distances on PostgreSQL's bit type, for binary
 *	  quantized vectors (see binary_quantize in vector.c).  The popcount
 *	  kernels come from distance.h.
 */
#include "vectron.h"

#include "utils/varbit.h"

#include "distance.h"

/* ereport unless two bit strings have the same length. */
static void
CheckSameBitLength(VarBit *a, VarBit *b)
{
	if (VARBITLEN(a) != VARBITLEN(b))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_EXCEPTION),
				 errmsg("different bit lengths %u and %u", VARBITLEN(a), VARBITLEN(b))));
}

PG_FUNCTION_INFO_V1(hamming_distance);
/* Number of differing bits. */
Datum
hamming_distance(PG_FUNCTION_ARGS)
{
	VarBit	   *a = PG_GETARG_VARBIT_P(0);
	VarBit	   *b = PG_GETARG_VARBIT_P(1);

	CheckSameBitLength(a, b);
	PG_RETURN_FLOAT8((double) distance_kernels->hamming(VARBITS(a), VARBITS(b),
														 VARBITBYTES(a)));
}

PG_FUNCTION_INFO_V1(jaccard_distance);
/* 1 - |a AND b| / |a OR b|; 1 when no bit is set in either, as pgvector. */
Datum
jaccard_distance(PG_FUNCTION_ARGS)
{
	VarBit	   *a = PG_GETARG_VARBIT_P(0);
	VarBit	   *b = PG_GETARG_VARBIT_P(1);
	uint64_t	and_count,
				or_count;

	CheckSameBitLength(a, b);
	distance_kernels->jaccard_parts(VARBITS(a), VARBITS(b), VARBITBYTES(a),
									&and_count, &or_count);
	if (or_count == 0)
		PG_RETURN_FLOAT8(1.0);
	PG_RETURN_FLOAT8(1.0 - (double) and_count / (double) or_count);
}

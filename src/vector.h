/*
 * vector.h
 *	  The vector type: a varlena holding dimension count and float4 values.
 *
 * The in-memory and on-disk layout matches pgvector's so that a heap written
 * by one can be read by the other's binary I/O: int32 varlena header, int16
 * dimensions, int16 unused (always 0), then dim float4 values.
 */
#ifndef VECTRON_VECTOR_H
#define VECTRON_VECTOR_H

#include "vectron.h"

#define VECTOR_MAX_DIM 16000

#define VECTOR_SIZE(_dim)		(offsetof(VectorData, x) + sizeof(float) * (_dim))
#define DatumGetVector(x)		((Vector) PG_DETOAST_DATUM(x))
#define PG_GETARG_VECTOR_P(x)	DatumGetVector(PG_GETARG_DATUM(x))
#define PG_RETURN_VECTOR_P(x)	PG_RETURN_POINTER(x)

typedef struct VectorData
{
	int32		vl_len_;		/* varlena header (do not touch directly!) */
	int16		dim;			/* number of dimensions */
	int16		unused;			/* reserved for future use, always zero */
	float		x[FLEXIBLE_ARRAY_MEMBER];
} VectorData;

typedef VectorData *Vector;

/* Allocate a zeroed vector of dim dimensions in the current context. */
extern Vector InitVector(int dim);

/* ereport unless dim is within 1..VECTOR_MAX_DIM. */
extern void CheckVectorDim(int dim);

/* ereport unless the vector's dimension count matches the typmod (-1 = any). */
extern void CheckVectorTypmod(int dim, int32 typmod);

/* ereport unless two vectors have the same number of dimensions. */
extern void CheckVectorSameDims(Vector a, Vector b);

/* ereport unless every element is finite (no NaN, no infinity). */
extern void CheckVectorElements(const float *x, int dim);

#endif							/* VECTRON_VECTOR_H */

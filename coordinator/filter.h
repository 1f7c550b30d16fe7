/*
 * filter.h: payload filters to parameterised SQL on jsonb.
 *
 * A filter is {"must":[...],"should":[...],"must_not":[...]}; a condition is
 *   {"key":"a.b","match":<scalar>}            payload->'a'->'b' @> value
 *   {"key":"k","range":{"gt|gte|lt|lte":num}} numeric comparisons
 *   {"key":"k","any":[v1,v2,...]}             matches any value
 *   a nested filter.
 * must = all, should = at least one, must_not = none.  Every key segment and
 * value becomes a parameter; the SQL text only ever holds fixed fragments,
 * the column name `payload` and $n placeholders.
 */
#ifndef VX_FILTER_H
#define VX_FILTER_H

#include "util.h"

#include <jansson.h>

#define FILTER_MAX_DEPTH 8
#define FILTER_MAX_CONDITIONS 256

/*
 * Append the SQL boolean expression for filter to sql, adding parameters to
 * params.  Returns false with a message naming the field on bad input.
 */
bool filter_to_sql(json_t *filter, StrBuf *sql, ParamList *params, char *err,
				   size_t errlen) VX_WARN_UNUSED;

#endif

/*
 * fuzz_request.h: what fuzz_request.c and its stubs share.
 */
#ifndef FUZZ_REQUEST_H
#define FUZZ_REQUEST_H

#include "util.h"

/* Answers sent for the current request, and the last status. */
extern int fz_answers;
extern int fz_last_status;

/* Invariants of a statement built from a request (aborts on a violation). */
void fz_check_sql(const char *sql, const ParamList *params);

#endif

/*
 * tap.h
 *	  A tiny TAP producer for the C unit tests: ok(cond, fmt, ...) prints
 *	  "ok N - what" or "not ok N - what", done_testing() prints the plan and
 *	  returns the exit status.
 */
#ifndef VECTRON_TAP_H
#define VECTRON_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int	tap_count = 0;
static int	tap_failed = 0;

/* Record one test case; returns cond. */
__attribute__((format(printf, 2, 3)))
static int
ok(int cond, const char *fmt, ...)
{
	va_list		ap;

	tap_count++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_count);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	return cond;
}

/* Print the plan; returns the process exit status. */
static int
done_testing(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed ? 1 : 0;
}

#endif

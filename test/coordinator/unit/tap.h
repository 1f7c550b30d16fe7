/*
 * tap.h: the tiny TAP harness of the coordinator's auth and metrics unit
 * tests.  ok() prints "ok N - what" or "not ok N - what"; tap_done()
 * prints the plan and returns the exit status.
 */
#ifndef VX_TAP_H
#define VX_TAP_H

#include <stdarg.h>
#include <stdio.h>

static int tap_n = 0;
static int tap_failed = 0;

__attribute__((format(printf, 2, 3))) static int
ok(int cond, const char *fmt, ...)
{
	va_list ap;

	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	return cond;
}

static int
tap_done(void)
{
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}

#endif

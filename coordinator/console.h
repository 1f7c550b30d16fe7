/*
 * console.h: the management console's static files (console/), compiled in
 * by embed_console.py and served under /console/.
 */
#ifndef VX_CONSOLE_H
#define VX_CONSOLE_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

typedef struct ConsoleAsset
{
	const char *name;			/* file name under /console/ */
	const char *ctype;
	const char *data;
	size_t		len;
} ConsoleAsset;

extern const ConsoleAsset console_assets[];

/* Serve GET /console, /console/ and /console/<file>; false if the path is
 * not the console's. */
bool		console_route(HttpRequest *req, char **segs, int n);

#endif

/*
 * vectron.c
 *	  Module entry point: the magic block and _PG_init, which calls each
 *	  subsystem's init in turn and nothing else.
 */
#include "vectron.h"

PG_MODULE_MAGIC;

PGDLLEXPORT void _PG_init(void);

/* Called once per backend when the library is loaded. */
void
_PG_init(void)
{
	DistanceInit();
	HnswInit();
}

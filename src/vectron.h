/*
 * vectron.h
 *	  Common include for every extension source file.
 *
 * PostgreSQL 15 marks PGDLLEXPORT empty on ELF platforms, so with
 * -fvisibility=hidden the fmgr entry points would vanish from the dynamic
 * symbol table.  We redefine it here, after postgres.h and fmgr.h, so that
 * PG_FUNCTION_INFO_V1, PG_MODULE_MAGIC and _PG_init stay exported while
 * every other symbol is hidden.
 */
#ifndef VECTRON_H
#define VECTRON_H

#include "postgres.h"
#include "fmgr.h"

#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))

/* Each subsystem's start-up hook, called from _PG_init in vectron.c. */
extern void DistanceInit(void);
extern void HnswInit(void);

#endif							/* VECTRON_H */

/*
 * vectron.h
 *	  Common include for every extension source file.
 *
 * PostgreSQL 15 marks PGDLLEXPORT empty on ELF platforms, so with
 * -fvisibility=hidden the fmgr entry points would vanish from the dynamic
 * symbol table.  We redefine it here, after postgres.h and fmgr.h, so that
 * PG_FUNCTION_INFO_V1, PG_MODULE_MAGIC and _PG_init stay exported while
 * every other symbol is hidden.  PG_FUNCTION_INFO_V1 is redefined for the
 * same reason.
 */
#ifndef VECTRON_H
#define VECTRON_H

#include "postgres.h"
#include "fmgr.h"

#undef PGDLLEXPORT
#define PGDLLEXPORT __attribute__((visibility("default")))

/* PG15's macro exports only pg_finfo_*; export the function itself too. */
#undef PG_FUNCTION_INFO_V1
#define PG_FUNCTION_INFO_V1(funcname) \
extern PGDLLEXPORT Datum funcname(PG_FUNCTION_ARGS); \
extern PGDLLEXPORT const Pg_finfo_record *CppConcat(pg_finfo_,funcname)(void); \
const Pg_finfo_record * \
CppConcat(pg_finfo_,funcname) (void) \
{ \
	static const Pg_finfo_record my_finfo = { 1 }; \
	return &my_finfo; \
} \
extern int no_such_variable

/* Each subsystem's start-up hook, called from _PG_init in vectron.c. */
extern void DistanceInit(void);
extern void HnswInit(void);

#endif							/* VECTRON_H */

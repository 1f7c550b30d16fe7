/*
 * config.c: the settings table, and parsing of the config file, environment
 * and flags.  The file format is `name = value` per line; `#` starts a
 * comment; values may be double-quoted.  The first load fails hard with
 * file:line; a SIGHUP reload that fails keeps the old values (see main.c).
 */
#include "config.h"

#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *cf_listen_addr;
int cf_listen_port;
char *cf_metadata_dsn;
int cf_coordinator_id;
int cf_max_body_bytes;
int cf_pool_size;
int cf_worker_timeout_ms;
int cf_connect_timeout_ms;
int cf_health_interval_ms;
int cf_map_poll_ms;
int cf_cleanup_interval_ms;
int cf_drain_timeout_ms;
char *cf_worker_user;
char *cf_worker_password;
char *cf_log_level;
char *cf_log_format;
int cf_max_batch_points;

typedef enum ConfigType { CF_INT, CF_STR } ConfigType;

typedef struct ConfigItem {
	const char *name;
	ConfigType type;
	void *var;
	bool reloadable;
	const char *def;
	int min, max;	/* CF_INT bounds */
} ConfigItem;

static const ConfigItem config_items[] = {
	{"listen_addr", CF_STR, &cf_listen_addr, false, "127.0.0.1"},
	{"listen_port", CF_INT, &cf_listen_port, false, "8080", 0, 65535},
	{"metadata_dsn", CF_STR, &cf_metadata_dsn, false, ""},
	{"coordinator_id", CF_INT, &cf_coordinator_id, false, "0", 0, 1023},
	{"max_body_bytes", CF_INT, &cf_max_body_bytes, true, "67108864", 1024, INT_MAX},
	{"pool_size", CF_INT, &cf_pool_size, true, "8", 1, 256},
	{"worker_timeout_ms", CF_INT, &cf_worker_timeout_ms, true, "30000", 10, 3600000},
	{"connect_timeout_ms", CF_INT, &cf_connect_timeout_ms, true, "3000", 10, 600000},
	{"health_interval_ms", CF_INT, &cf_health_interval_ms, true, "2000", 50, 3600000},
	{"map_poll_ms", CF_INT, &cf_map_poll_ms, true, "1000", 50, 3600000},
	{"cleanup_interval_ms", CF_INT, &cf_cleanup_interval_ms, true, "5000", 50, 3600000},
	{"drain_timeout_ms", CF_INT, &cf_drain_timeout_ms, true, "10000", 0, 3600000},
	{"worker_user", CF_STR, &cf_worker_user, false, "postgres"},
	{"worker_password", CF_STR, &cf_worker_password, false, ""},
	{"log_level", CF_STR, &cf_log_level, true, "info"},
	{"log_format", CF_STR, &cf_log_format, true, "text"},
	{"max_batch_points", CF_INT, &cf_max_batch_points, true, "10000", 1, 1000000},
};
#define N_ITEMS (sizeof(config_items) / sizeof(config_items[0]))

static const ConfigItem *
config_find(const char *name)
{
	for (size_t i = 0; i < N_ITEMS; i++)
		if (strcmp(config_items[i].name, name) == 0)
			return &config_items[i];
	return NULL;
}

/* Check a value against the item's type and extra rules, then store it. */
static bool config_dry_run;

/* Validate a value and, unless in the dry-run pass, store it. */
static bool
config_store(const ConfigItem *it, const char *value, char *why, size_t whylen)
{
	if (it->type == CF_INT) {
		char *end;
		long v;

		errno = 0;
		v = strtol(value, &end, 10);
		if (errno || end == value || *end || v < it->min || v > it->max) {
			snprintf(why, whylen, "%s must be an integer between %d and %d, not \"%s\"",
					 it->name, it->min, it->max, value);
			return false;
		}
		if (!config_dry_run)
			*(int *) it->var = (int) v;
		return true;
	}
	if (strcmp(it->name, "log_level") == 0) {
		LogLevel l;

		if (!log_parse_level(value, &l)) {
			snprintf(why, whylen, "log_level must be debug, info, warning or error, not \"%s\"",
					 value);
			return false;
		}
	}
	if (strcmp(it->name, "log_format") == 0 && strcmp(value, "text") != 0 &&
		strcmp(value, "json") != 0) {
		snprintf(why, whylen, "log_format must be text or json, not \"%s\"", value);
		return false;
	}
	if (config_dry_run)
		return true;
	free(*(char **) it->var);
	*(char **) it->var = xstrdup(value);
	return true;
}

void
config_set_defaults(void)
{
	char why[256];

	for (size_t i = 0; i < N_ITEMS; i++)
		if (!config_store(&config_items[i], config_items[i].def, why, sizeof(why))) {
			fprintf(stderr, "bad default: %s\n", why);
			abort();
		}
}

bool
config_set(const char *name, const char *value, const char *origin, bool reload, char *err,
		   size_t errlen)
{
	const ConfigItem *it = config_find(name);
	char why[512];

	if (!it) {
		snprintf(err, errlen, "%s: unknown setting \"%s\"", origin, name);
		return false;
	}
	if (reload && !it->reloadable) {
		/* compare and ignore silently when unchanged */
		return true;
	}
	if (!config_store(it, value, why, sizeof(why))) {
		snprintf(err, errlen, "%s: %s", origin, why);
		return false;
	}
	return true;
}

static char *
trim(char *s)
{
	char *e;

	while (isspace((unsigned char) *s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char) e[-1]))
		*--e = '\0';
	return s;
}

static bool config_parse_pass(const char *text, const char *fname, bool reload, char *err,
							  size_t errlen);

/*
 * Two passes: the first only validates, so that a bad file changes nothing
 * (a failed SIGHUP reload keeps every old value).
 */
bool
config_parse_text(const char *text, const char *fname, bool reload, char *err, size_t errlen)
{
	bool ok;

	config_dry_run = true;
	ok = config_parse_pass(text, fname, reload, err, errlen);
	config_dry_run = false;
	return ok && config_parse_pass(text, fname, reload, err, errlen);
}

static bool
config_parse_pass(const char *text, const char *fname, bool reload, char *err, size_t errlen)
{
	char *copy = xstrdup(text), *line, *save = NULL;
	int lineno = 0;
	bool ok = true;
	const char *p = copy;

	(void) p;
	/* strtok_r would skip empty lines and so miscount; split by hand */
	line = copy;
	while (line && ok) {
		char *nl = strchr(line, '\n'), *eq, *name, *value, origin[512];

		if (nl)
			*nl = '\0';
		lineno++;
		snprintf(origin, sizeof(origin), "%s:%d", fname, lineno);
		/* strip comments outside quotes */
		{
			bool inq = false;

			for (char *c = line; *c; c++) {
				if (*c == '"')
					inq = !inq;
				else if (*c == '#' && !inq) {
					*c = '\0';
					break;
				}
			}
		}
		name = trim(line);
		if (*name) {
			eq = strchr(name, '=');
			if (!eq) {
				snprintf(err, errlen, "%s: expected \"name = value\"", origin);
				ok = false;
				break;
			}
			*eq = '\0';
			value = trim(eq + 1);
			name = trim(name);
			if (*value == '"') {
				size_t n = strlen(value);

				if (n < 2 || value[n - 1] != '"') {
					snprintf(err, errlen, "%s: unterminated quoted value", origin);
					ok = false;
					break;
				}
				value[n - 1] = '\0';
				value++;
			}
			if (!config_set(name, value, origin, reload, err, errlen))
				ok = false;
		}
		line = nl ? nl + 1 : NULL;
	}
	(void) save;
	free(copy);
	return ok;
}

bool
config_load_file(const char *path, bool reload, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	StrBuf sb;
	char buf[4096];
	size_t n;
	bool ok;

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_appendn(&sb, buf, n);
	fclose(f);
	ok = config_parse_text(sb.data, path, reload, err, errlen);
	sb_free(&sb);
	return ok;
}

bool
config_validate_file(const char *path, char *err, size_t errlen)
{
	FILE *f = fopen(path, "r");
	StrBuf sb;
	char buf[4096];
	size_t n;
	bool ok;

	if (!f) {
		snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
		return false;
	}
	sb_init(&sb);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		sb_appendn(&sb, buf, n);
	fclose(f);
	config_dry_run = true;
	ok = config_parse_pass(sb.data, path, false, err, errlen);
	config_dry_run = false;
	sb_free(&sb);
	return ok;
}

void
config_reset_reloadable(void)
{
	char why[256];

	for (size_t i = 0; i < N_ITEMS; i++)
		if (config_items[i].reloadable && !config_store(&config_items[i], config_items[i].def, why,
														  sizeof(why)))
			abort();
}

bool
config_apply_env(char *err, size_t errlen)
{
	for (size_t i = 0; i < N_ITEMS; i++) {
		char envname[128], origin[160];
		const char *v;
		size_t j;

		snprintf(envname, sizeof(envname), "VECTRON_%s", config_items[i].name);
		for (j = 8; envname[j]; j++)
			envname[j] = toupper((unsigned char) envname[j]);
		v = getenv(envname);
		if (!v)
			continue;
		snprintf(origin, sizeof(origin), "environment %s", envname);
		if (!config_set(config_items[i].name, v, origin, false, err, errlen))
			return false;
	}
	return true;
}

void
config_dump(void)
{
	for (size_t i = 0; i < N_ITEMS; i++) {
		const ConfigItem *it = &config_items[i];

		if (it->type == CF_INT)
			printf("%-22s %d\n", it->name, *(int *) it->var);
		else if (strcmp(it->name, "worker_password") == 0)
			printf("%-22s %s\n", it->name, "(hidden)");
		else
			printf("%-22s %s\n", it->name, *(char **) it->var);
	}
}

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
int cf_slow_query_ms;
int cf_slow_log_size;
int cf_stats_report_ms;
int cf_tombstone_gc_interval;
int cf_tombstone_retention;
int cf_repair_lease_ms;
int cf_move_lease_ms;
char *cf_resolv_conf;
char *cf_auth;
char *cf_auth_signing_key;
char *cf_auth_signing_kid;
char *cf_auth_verify_keys;
char *cf_auth_issuer;
char *cf_auth_audience;
char *cf_auth_pepper;
int cf_auth_argon2_t;
int cf_auth_argon2_m_kib;
int cf_auth_argon2_p;
int cf_auth_hash_threads;
char *cf_auth_registration;
char *cf_auth_bootstrap_admin_email;
char *cf_auth_bootstrap_admin_password;
int cf_auth_login_ttl_s;
int cf_auth_sdk_ttl_s;
int cf_auth_refresh_ttl_s;
int cf_auth_reset_ttl_s;
int cf_auth_rate_ip;
int cf_auth_rate_ip_burst;
int cf_auth_rate_key;
int cf_auth_rate_key_burst;
int cf_auth_cache_poll_ms;
int cf_auth_metrics_public;
char *cf_auth_admin_allow;
char *cf_tls_cert_file;
char *cf_tls_key_file;
char *cf_tls_ca_file;
char *cf_tls_client_auth;
char *cf_tls_ciphers;
char *cf_pg_sslmode;
char *cf_pg_sslrootcert;
char *cf_pg_sslcert;
char *cf_pg_sslkey;

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
	{"slow_query_ms", CF_INT, &cf_slow_query_ms, true, "500", 0, 3600000},
	{"slow_log_size", CF_INT, &cf_slow_log_size, true, "50", 0, 1000},
	{"stats_report_ms", CF_INT, &cf_stats_report_ms, true, "5000", 100, 3600000},
	/* operations: tombstone GC (seconds; interval 0 = off) and repair leases (gc.c, repair.c) */
	{"tombstone_gc_interval", CF_INT, &cf_tombstone_gc_interval, true, "300", 0, 86400},
	{"tombstone_retention", CF_INT, &cf_tombstone_retention, true, "3600", 1, 31536000},
	{"repair_lease_ms", CF_INT, &cf_repair_lease_ms, true, "30000", 500, 3600000},
	{"move_lease_ms", CF_INT, &cf_move_lease_ms, true, "60000", 3000, 3600000},
	{"resolv_conf", CF_STR, &cf_resolv_conf, false, ""},
	/* auth: see docs/security.md; key specs are file:/path, env:NAME or literal:... */
	{"auth", CF_STR, &cf_auth, false, "off"},
	{"auth_signing_key", CF_STR, &cf_auth_signing_key, false, ""},
	{"auth_signing_kid", CF_STR, &cf_auth_signing_kid, false, "k1"},
	{"auth_verify_keys", CF_STR, &cf_auth_verify_keys, false, ""},
	{"auth_issuer", CF_STR, &cf_auth_issuer, false, "vectron"},
	{"auth_audience", CF_STR, &cf_auth_audience, false, "vectron-api"},
	{"auth_pepper", CF_STR, &cf_auth_pepper, false, ""},
	{"auth_argon2_t", CF_INT, &cf_auth_argon2_t, false, "2", 1, 16},
	{"auth_argon2_m_kib", CF_INT, &cf_auth_argon2_m_kib, false, "19456", 8, 1048576},
	{"auth_argon2_p", CF_INT, &cf_auth_argon2_p, false, "1", 1, 16},
	{"auth_hash_threads", CF_INT, &cf_auth_hash_threads, false, "2", 1, 16},
	{"auth_registration", CF_STR, &cf_auth_registration, false, "admin"},
	{"auth_bootstrap_admin_email", CF_STR, &cf_auth_bootstrap_admin_email, false, ""},
	{"auth_bootstrap_admin_password", CF_STR, &cf_auth_bootstrap_admin_password, false, ""},
	{"auth_login_ttl_s", CF_INT, &cf_auth_login_ttl_s, false, "900", 10, 86400},
	{"auth_sdk_ttl_s", CF_INT, &cf_auth_sdk_ttl_s, false, "900", 10, 86400},
	{"auth_refresh_ttl_s", CF_INT, &cf_auth_refresh_ttl_s, false, "2592000", 60, 31536000},
	{"auth_reset_ttl_s", CF_INT, &cf_auth_reset_ttl_s, false, "3600", 60, 604800},
	{"auth_rate_ip", CF_INT, &cf_auth_rate_ip, false, "200", 1, 1000000},
	{"auth_rate_ip_burst", CF_INT, &cf_auth_rate_ip_burst, false, "400", 1, 1000000},
	{"auth_rate_key", CF_INT, &cf_auth_rate_key, false, "100", 1, 1000000},
	{"auth_rate_key_burst", CF_INT, &cf_auth_rate_key_burst, false, "200", 1, 1000000},
	{"auth_cache_poll_ms", CF_INT, &cf_auth_cache_poll_ms, false, "1000", 50, 60000},
	{"auth_metrics_public", CF_INT, &cf_auth_metrics_public, false, "0", 0, 1},
	{"auth_admin_allow", CF_STR, &cf_auth_admin_allow, false, ""},
	/*
	 * TLS: see docs/security.md.  HTTPS is on when tls_cert_file is set; the
	 * files are re-read on SIGHUP (turning HTTPS on or off needs a restart).
	 * pg_ssl* become libpq's sslmode/sslrootcert/sslcert/sslkey for worker
	 * and metadata connections; empty leaves libpq's default (prefer).
	 */
	{"tls_cert_file", CF_STR, &cf_tls_cert_file, true, ""},
	{"tls_key_file", CF_STR, &cf_tls_key_file, true, ""},
	{"tls_ca_file", CF_STR, &cf_tls_ca_file, true, ""},
	{"tls_client_auth", CF_STR, &cf_tls_client_auth, true, "none"},
	{"tls_ciphers", CF_STR, &cf_tls_ciphers, true,
	 "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
	 "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
	 "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"},
	{"pg_sslmode", CF_STR, &cf_pg_sslmode, false, ""},
	{"pg_sslrootcert", CF_STR, &cf_pg_sslrootcert, false, ""},
	{"pg_sslcert", CF_STR, &cf_pg_sslcert, false, ""},
	{"pg_sslkey", CF_STR, &cf_pg_sslkey, false, ""},
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
	if ((strcmp(it->name, "auth") == 0 && strcmp(value, "on") != 0 &&
		 strcmp(value, "off") != 0) ||
		(strcmp(it->name, "auth_registration") == 0 && strcmp(value, "open") != 0 &&
		 strcmp(value, "admin") != 0)) {
		snprintf(why, whylen, "%s must be %s, not \"%s\"", it->name,
				 it->name[4] ? "open or admin" : "on or off", value);
		return false;
	}
	if (strcmp(it->name, "tls_client_auth") == 0 && strcmp(value, "none") != 0 &&
		strcmp(value, "optional") != 0 && strcmp(value, "require") != 0) {
		snprintf(why, whylen, "tls_client_auth must be none, optional or require, not \"%s\"",
				 value);
		return false;
	}
	if (strcmp(it->name, "pg_sslmode") == 0 && value[0] && strcmp(value, "disable") != 0 &&
		strcmp(value, "allow") != 0 && strcmp(value, "prefer") != 0 &&
		strcmp(value, "require") != 0 && strcmp(value, "verify-ca") != 0 &&
		strcmp(value, "verify-full") != 0) {
		snprintf(why, whylen,
				 "pg_sslmode must be disable, allow, prefer, require, verify-ca or verify-full, "
				 "not \"%s\"", value);
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
		else if (strcmp(it->name, "worker_password") == 0 ||
				 strcmp(it->name, "auth_signing_key") == 0 || strcmp(it->name, "auth_pepper") == 0 ||
				 strcmp(it->name, "auth_bootstrap_admin_password") == 0)
			printf("%-22s %s\n", it->name, "(hidden)");
		else
			printf("%-22s %s\n", it->name, *(char **) it->var);
	}
}

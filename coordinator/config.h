/*
 * config.h: every setting of the coordinator, in one table (config.c).
 * Sources, later ones winning: built-in defaults, the config file,
 * VECTRON_<NAME> environment variables, --name=value flags.
 */
#ifndef VX_CONFIG_H
#define VX_CONFIG_H

#include "util.h"

extern char *cf_listen_addr;
extern int cf_listen_port;
extern char *cf_metadata_dsn;
extern int cf_coordinator_id;
extern int cf_max_body_bytes;
extern int cf_pool_size;
extern int cf_worker_timeout_ms;
extern int cf_connect_timeout_ms;
extern int cf_health_interval_ms;
extern int cf_map_poll_ms;
extern int cf_cleanup_interval_ms;
extern int cf_drain_timeout_ms;
extern char *cf_worker_user;
extern char *cf_worker_password;
extern char *cf_log_level;
extern char *cf_log_format;
extern int cf_max_batch_points;
extern int cf_slow_query_ms;
extern int cf_slow_log_size;
extern int cf_stats_report_ms;
extern int cf_tombstone_gc_interval;	/* seconds, 0 = off */
extern int cf_tombstone_retention;	/* seconds */
extern int cf_repair_lease_ms;
extern int cf_move_lease_ms;
extern char *cf_resolv_conf;	/* "": the system's /etc/resolv.conf */
/* auth (issue 5; authz.c, api_auth.c) */
extern char *cf_auth;
extern char *cf_auth_signing_key;
extern char *cf_auth_signing_kid;
extern char *cf_auth_verify_keys;
extern char *cf_auth_issuer;
extern char *cf_auth_audience;
extern char *cf_auth_pepper;
extern int cf_auth_argon2_t;
extern int cf_auth_argon2_m_kib;
extern int cf_auth_argon2_p;
extern int cf_auth_hash_threads;
extern char *cf_auth_registration;
extern char *cf_auth_bootstrap_admin_email;
extern char *cf_auth_bootstrap_admin_password;
extern int cf_auth_login_ttl_s;
extern int cf_auth_sdk_ttl_s;
extern int cf_auth_refresh_ttl_s;
extern int cf_auth_reset_ttl_s;
extern int cf_auth_rate_ip;
extern int cf_auth_rate_ip_burst;
extern int cf_auth_rate_key;
extern int cf_auth_rate_key_burst;
extern int cf_auth_cache_poll_ms;
extern int cf_auth_metrics_public;
extern char *cf_auth_admin_allow;
/* TLS (issue 5): HTTPS for clients (http.c), libpq SSL to workers and metadata */
extern char *cf_tls_cert_file;
extern char *cf_tls_key_file;
extern char *cf_tls_ca_file;
extern char *cf_tls_client_auth;
extern char *cf_tls_ciphers;
extern char *cf_pg_sslmode;
extern char *cf_pg_sslrootcert;
extern char *cf_pg_sslcert;
extern char *cf_pg_sslkey;

/* Reset every setting to its default. */
void config_set_defaults(void);

/*
 * Parse config text (from file `fname`, for messages).  On error fills
 * err with "fname:line: message" and returns false.  With reload set,
 * settings that cannot be reloaded are left alone (with a warning in err).
 */
bool config_parse_text(const char *text, const char *fname, bool reload,
					   char *err, size_t errlen) VX_WARN_UNUSED;
bool config_load_file(const char *path, bool reload, char *err, size_t errlen) VX_WARN_UNUSED;

/* Check a file without applying anything. */
bool config_validate_file(const char *path, char *err, size_t errlen) VX_WARN_UNUSED;
/* Put every reloadable setting back to its default (before a reload). */
void config_reset_reloadable(void);

/* Set one setting by name from a string; the origin names it in errors. */
bool config_set(const char *name, const char *value, const char *origin, bool reload,
				char *err, size_t errlen) VX_WARN_UNUSED;

/* Apply VECTRON_<NAME> environment variables. */
bool config_apply_env(char *err, size_t errlen) VX_WARN_UNUSED;

/* Print every setting and its value (for --help / debugging). */
void config_dump(void);

#endif

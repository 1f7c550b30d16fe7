/*
 * main.c: start-up, signals and the event loop of vectron-coordinator.
 *
 *   vectron-coordinator [-c FILE] [--name=value ...]
 *
 * Settings come from defaults, then FILE, then VECTRON_<NAME> environment
 * variables, then flags.  At start: check the config, migrate the metadata
 * schema, load the shard map, listen, run.  SIGHUP reloads the file (only
 * reloadable settings change; a bad file keeps the old values).  SIGTERM and
 * SIGINT stop accepting, let in-flight requests finish (up to
 * drain_timeout_ms), then exit 0.
 */
#include "api.h"
#include "authz.h"
#include "config.h"
#include "health.h"
#include "http.h"
#include "log.h"
#include "metadata.h"
#include "resolve.h"
#include "obs.h"
#include "shardmap.h"
#include "shardmove.h"
#include "stats.h"
#include "tls.h"
#include "workerconn.h"

#include <event2/dns.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static struct event_base *base;
static const char *config_path;
static char **flag_argv;
static int flag_argc;
static bool stopping;

static void
usage(void)
{
	printf("usage: vectron-coordinator [-c FILE] [--name=value ...]\n"
		   "       vectron-coordinator --print-config [...]\n"
		   "       vectron-coordinator --hash-password [-c FILE] < password   (argon2id, auth_argon2_*)\n"
		   "\nsettings:\n");
	config_set_defaults();
	config_dump();
}

/* Apply --name=value flags; false with a message. */
static bool
apply_flags(char *err, size_t errlen)
{
	for (int i = 0; i < flag_argc; i++) {
		char name[128], *eq;
		const char *a = flag_argv[i];

		if (strncmp(a, "--", 2) != 0 || !(eq = strchr(a, '='))) {
			snprintf(err, errlen, "argument \"%s\": expected --name=value", a);
			return false;
		}
		snprintf(name, sizeof(name), "%.*s", (int) (eq - a - 2), a + 2);
		for (char *p = name; *p; p++)
			if (*p == '-')
				*p = '_';
		if (!config_set(name, eq + 1, "command line", false, err, errlen))
			return false;
	}
	return true;
}

/*
 * NOTIFY vectron_map: another coordinator changed the map.  The payload is
 * the new version; an empty one (the listener just connected) forces a check.
 */
static void
on_map_notify(const char *channel, const char *payload)
{
	if (atoll(payload) != shardmap_version())
		shardmap_poll();
}

static void
drained(void)
{
	log_info("all requests answered; exiting");
	event_base_loopexit(base, NULL);
}

static void
drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	log_warning("drain timeout: exiting with %d request(s) in flight", http_inflight());
	event_base_loopexit(base, NULL);
}

static void
sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
	struct timeval tv = {cf_drain_timeout_ms / 1000, (cf_drain_timeout_ms % 1000) * 1000};

	if (stopping)
		return;
	stopping = true;
	log_info("signal %d: draining %d in-flight request(s)", (int) sig, http_inflight());
	health_stop();
	stats_stop();
	shardmove_stop();
	event_base_once(base, -1, EV_TIMEOUT, drain_timeout_cb, NULL, &tv);
	http_server_drain(drained);
}

static void
sighup_cb(evutil_socket_t sig, short what, void *arg)
{
	char err[1024];

	if (!config_path) {
		log_info("SIGHUP: no config file to reload");
		return;
	}
	/*
	 * Check the whole file first, so that a mistake changes nothing; then
	 * rebuild the reloadable settings from defaults, file, environment and
	 * flags (a line removed from the file goes back to its default).
	 */
	if (!config_validate_file(config_path, err, sizeof(err))) {
		log_warning("SIGHUP: reload failed, keeping the old settings: %s", err);
		return;
	}
	config_reset_reloadable();
	if (!config_load_file(config_path, true, err, sizeof(err)) ||
		!config_apply_env(err, sizeof(err)) || !apply_flags(err, sizeof(err)))
		log_error("SIGHUP: reload failed after validation: %s", err);
	log_configure(cf_log_level, cf_log_format);
	tls_server_reload();
	log_info("SIGHUP: configuration reloaded from %s", config_path);
}

int
main(int argc, char **argv)
{
	char err[2048];
	struct evdns_base *dns;
	struct event *sigterm, *sigint, *sighup;
	bool print_config = false, hash_password = false;
	char *meta_dsn;

	signal(SIGPIPE, SIG_IGN);
	config_set_defaults();
	flag_argv = xcalloc(argc + 1, sizeof(char *));
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			config_path = argv[++i];
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage();
			return 0;
		} else if (strcmp(argv[i], "--print-config") == 0)
			print_config = true;
		else if (strcmp(argv[i], "--hash-password") == 0)
			hash_password = true;
		else
			flag_argv[flag_argc++] = argv[i];
	}
	if ((config_path && !config_load_file(config_path, false, err, sizeof(err))) ||
		!config_apply_env(err, sizeof(err)) || !apply_flags(err, sizeof(err))) {
		fprintf(stderr, "vectron-coordinator: %s\n", err);
		return 2;
	}
	if (print_config) {
		config_dump();
		return 0;
	}
	if (hash_password) {
		/* `vectron user create`: an argon2id hash with this config's parameters */
		PasswordParams pp = {(uint32_t) cf_auth_argon2_t, (uint32_t) cf_auth_argon2_m_kib,
							 (uint32_t) cf_auth_argon2_p};
		char hash[PASSWORD_HASH_SIZE];

		if (!password_hash_stream(stdin, &pp, hash, err, sizeof(err))) {
			fprintf(stderr, "vectron-coordinator: %s\n", err);
			return 2;
		}
		printf("%s\n", hash);
		return 0;
	}
	log_configure(cf_log_level, cf_log_format);
	obs_init();
	if (!cf_metadata_dsn[0]) {
		fprintf(stderr, "vectron-coordinator: metadata_dsn is not set\n");
		return 2;
	}
	/* TLS: a bad certificate, key or CA file stops the start, naming the path */
	if (!tls_server_init(err, sizeof(err))) {
		log_write(LOG_FATAL, NULL, "%s", err);
		return 2;
	}
	/* the metadata DSN with the pg_ssl* settings as libpq keywords */
	if (!(meta_dsn = workerconn_dsn_with_ssl(cf_metadata_dsn, err, sizeof(err)))) {
		log_write(LOG_FATAL, NULL, "%s", err);
		return 2;
	}
	/* blocking work happens here, before the loop serves anything */
	if (!metadata_migrate(meta_dsn, err, sizeof(err)) ||
		!shardmap_load_initial(meta_dsn, err, sizeof(err))) {
		log_write(LOG_FATAL, NULL, "%s", err);
		return 1;
	}
	base = event_base_new();
	dns = resolve_dns_new(base);
	workerconn_init(base, dns);
	metadata_init(meta_dsn, on_map_notify);
	if (!authz_start(base, meta_dsn, err, sizeof(err))) {
		log_write(LOG_FATAL, NULL, "%s", err);
		return 1;
	}
	if (!http_server_start(base, cf_listen_addr, cf_listen_port, api_handle, api_headers,
						   err, sizeof(err))) {
		log_write(LOG_FATAL, NULL, "%s", err);
		return 1;
	}
	sigterm = evsignal_new(base, SIGTERM, sigterm_cb, NULL);
	sigint = evsignal_new(base, SIGINT, sigterm_cb, NULL);
	sighup = evsignal_new(base, SIGHUP, sighup_cb, NULL);
	event_add(sigterm, NULL);
	event_add(sigint, NULL);
	event_add(sighup, NULL);
	health_start(base);
	stats_start(base);
	shardmove_start(base);
	log_info("vectron-coordinator %d listening on %s:%d%s (metadata schema v%d, map version %lld)",
			 cf_coordinator_id, cf_listen_addr, http_server_port(),
			 tls_server_enabled() ? " (HTTPS)" : "", metadata_schema_version(),
			 (long long) shardmap_version());
	event_base_dispatch(base);
	health_stop();
	stats_stop();
	shardmove_stop();
	authz_stop();
	workerconn_shutdown();
	event_free(sigterm);
	event_free(sigint);
	event_free(sighup);
	evdns_base_free(dns, 0);
	event_base_free(base);
	tls_server_shutdown();
	free(meta_dsn);
	log_info("stopped");
	return 0;
}

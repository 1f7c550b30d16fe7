/*
 * log.c: one line per event on stderr, text or JSON.
 */
#include "log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

LogLevel log_min_level = LOG_INFO;
static bool log_json = false;

static const char *const level_names[] = {"debug", "info", "warning", "error", "fatal"};

bool
log_parse_level(const char *s, LogLevel *out)
{
	for (int i = 0; i <= LOG_FATAL; i++)
		if (strcmp(s, level_names[i]) == 0) {
			*out = (LogLevel) i;
			return true;
		}
	return false;
}

/* Apply the configured level and format; unknown values were refused earlier. */
void
log_configure(const char *level, const char *format)
{
	LogLevel l;

	if (level && log_parse_level(level, &l))
		log_min_level = l;
	log_json = format && strcmp(format, "json") == 0;
}

void
log_write(LogLevel level, const char *reqid, const char *fmt, ...)
{
	char msg[4096], ts[64];
	struct timeval tv;
	struct tm tm;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	gettimeofday(&tv, NULL);
	gmtime_r(&tv.tv_sec, &tm);
	snprintf(ts, sizeof(ts), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
			 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
			 (int) (tv.tv_usec / 1000));
	if (log_json) {
		json_t *o = json_pack("{s:s,s:s,s:s}", "time", ts, "level", level_names[level],
							  "msg", msg);
		char *s;

		if (reqid)
			json_object_set_new(o, "request_id", json_string(reqid));
		s = json_dumps(o, JSON_COMPACT);
		fprintf(stderr, "%s\n", s);
		free(s);
		json_decref(o);
	} else
		fprintf(stderr, "%s %s [%s] %s\n", ts, level_names[level], reqid ? reqid : "-", msg);
	fflush(stderr);
}

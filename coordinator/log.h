/*
 * log.h: leveled logging.  Each line carries time, level, request id and
 * message; JSON lines are an option (log_format = json).  The level is
 * checked before anything is formatted.
 */
#ifndef VX_LOG_H
#define VX_LOG_H

#include "util.h"

typedef enum LogLevel {
	LOG_DEBUG = 0,
	LOG_INFO,
	LOG_WARNING,
	LOG_ERROR,
	LOG_FATAL
} LogLevel;

extern LogLevel log_min_level;

void log_configure(const char *level, const char *format);
bool log_parse_level(const char *s, LogLevel *out);
void log_write(LogLevel level, const char *reqid, const char *fmt, ...) VX_PRINTF(3, 4);

#define vx_log(lvl, reqid, ...) \
	do { \
		if ((lvl) >= log_min_level) \
			log_write((lvl), (reqid), __VA_ARGS__); \
	} while (0)
#define log_debug(...) vx_log(LOG_DEBUG, NULL, __VA_ARGS__)
#define log_info(...) vx_log(LOG_INFO, NULL, __VA_ARGS__)
#define log_warning(...) vx_log(LOG_WARNING, NULL, __VA_ARGS__)
#define log_error(...) vx_log(LOG_ERROR, NULL, __VA_ARGS__)

#endif

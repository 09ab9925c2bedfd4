/*
 * SPDX-License-Identifier: MIT
 *
 * Leveled logging to stderr.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"

static enum log_level cur_level = LOG_LEVEL_INFO;
static int use_journal;

void
log_init(enum log_level level, int journal)
{
	cur_level = level;
	use_journal = journal;
}

void
log_set_level(enum log_level level)
{
	cur_level = level;
}

enum log_level
log_get_level(void)
{
	return cur_level;
}

int
log_level_parse(const char *s, enum log_level *ret)
{
	static const char *const names[] = {"error", "warn", "info", "debug"};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (strcmp(s, names[i]) == 0) {
			*ret = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void __attribute__((format(printf, 3, 0)))
vlog(enum log_level level, const char *suffix, const char *fmt, va_list ap)
{
	static const int prio[] = {3, 4, 6, 7};
	static const char *const tag[] = {"error", "warn", "info", "debug"};
	char msg[1024];

	if (level > cur_level)
		return;
	(void)vsnprintf(msg, sizeof(msg), fmt, ap);
	if (use_journal) {
		(void)fprintf(stderr, "<%d>%s%s%s\n", prio[level], msg,
		    suffix ? ": " : "", suffix ? suffix : "");
	} else {
		struct timespec ts;
		struct tm tm;
		char when[32];

		(void)clock_gettime(CLOCK_REALTIME, &ts);
		(void)gmtime_r(&ts.tv_sec, &tm);
		(void)strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
		(void)fprintf(stderr, "%s.%03ldZ m8tesd %s: %s%s%s\n", when,
		    ts.tv_nsec / 1000000, tag[level], msg, suffix ? ": " : "",
		    suffix ? suffix : "");
	}
}

#define DEFINE_LOG(name, level)                                                \
	void name(const char *fmt, ...)                                        \
	{                                                                      \
		va_list ap;                                                    \
		va_start(ap, fmt);                                             \
		vlog(level, NULL, fmt, ap);                                    \
		va_end(ap);                                                    \
	}

DEFINE_LOG(log_error, LOG_LEVEL_ERROR)
DEFINE_LOG(log_warn, LOG_LEVEL_WARN)
DEFINE_LOG(log_info, LOG_LEVEL_INFO)
DEFINE_LOG(log_debug, LOG_LEVEL_DEBUG)

int
log_warnc(int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(LOG_LEVEL_WARN, strerror(r < 0 ? -r : r), fmt, ap);
	va_end(ap);
	return r;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Logging to stderr (the journal under systemd) with a level filter. Lines
 * carry a syslog-style <N> prefix when stderr is the journal. Nothing that
 * could hold the API key is ever passed here: callers log method names,
 * statuses and paths, never headers or bodies.
 */
#ifndef M8_LOG_H
#define M8_LOG_H

enum log_level {
	LOG_LEVEL_ERROR,
	LOG_LEVEL_WARN,
	LOG_LEVEL_INFO,
	LOG_LEVEL_DEBUG,
};

void log_init(enum log_level level, int journal);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info" or "debug"; -EINVAL otherwise. */
int log_level_parse(const char *s, enum log_level *ret);

void log_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Logs at warn level with strerror(-r) appended and returns r. */
int log_warnc(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif

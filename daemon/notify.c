/*
 * SPDX-License-Identifier: MIT
 *
 * sd_notify glue. The messages are formatted here, with STATUS= text cut
 * to NOTIFY_MAX_STATUS bytes and kept on one line, and sent with
 * sd_notify(0, ...) so the environment stays as systemd set it (hooks the
 * daemon starts must not inherit NOTIFY_SOCKET is the caller's concern:
 * it clears the environment of children). No logging.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <systemd/sd-daemon.h>

#include "notify.h"

static int send_msg(const char *head, const char *status);

/* Sends head ("READY=1", ...; may be "") and an optional STATUS= line. */
static int
send_msg(const char *head, const char *status)
{
	char msg[NOTIFY_MAX_STATUS + 128];
	size_t n;
	int k;

	k = snprintf(msg, sizeof(msg), "%s%s", head,
	    head[0] != '\0' && status != NULL ? "\n" : "");
	if (k < 0 || (size_t)k >= sizeof(msg) - NOTIFY_MAX_STATUS - 8)
		return -EINVAL;
	if (status != NULL) {
		n = (size_t)k + strlen("STATUS=");
		(void)snprintf(msg + k, sizeof(msg) - (size_t)k, "STATUS=%.*s",
		    NOTIFY_MAX_STATUS, status);
		for (char *p = msg + n; *p != '\0'; p++)
			if (*p == '\n' || *p == '\r')
				*p = ' ';
	}
	return sd_notify(0, msg);
}

int
notify_ready(const char *status)
{
	return send_msg("READY=1", status);
}

int
notify_status(const char *fmt, ...)
{
	char status[NOTIFY_MAX_STATUS + 1];
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(status, sizeof(status), fmt, ap);
	va_end(ap);
	return send_msg("", status);
}

int
notify_reloading(const char *status)
{
	struct timespec ts;
	char head[64];

	if (clock_gettime(CLOCK_MONOTONIC, &ts) == -1)
		return -errno;
	(void)snprintf(head, sizeof(head), "RELOADING=1\nMONOTONIC_USEC=%llu",
	    (unsigned long long)ts.tv_sec * 1000000ull +
	        (unsigned long long)ts.tv_nsec / 1000);
	return send_msg(head, status);
}

int
notify_stopping(const char *status)
{
	return send_msg("STOPPING=1", status);
}

int
notify_watchdog(void)
{
	return sd_notify(0, "WATCHDOG=1");
}

int
notify_watchdog_enabled(uint64_t *ret_usec)
{
	uint64_t usec = 0;
	int r;

	r = sd_watchdog_enabled(0, &usec);
	if (r > 0)
		*ret_usec = usec;
	return r;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Telling systemd how the daemon is doing (sd_notify(3)): ready, status
 * text, reloading, stopping and watchdog keep-alives. Every call is a
 * no-op returning 0 when NOTIFY_SOCKET is unset (not under systemd, or
 * not Type=notify), so callers need not check where they run. The only
 * user of libsystemd. Nothing here logs; a failed send is returned.
 */
#ifndef M8_NOTIFY_H
#define M8_NOTIFY_H

#include <stdint.h>

/* Longest STATUS= text sent; longer text is cut. */
#define NOTIFY_MAX_STATUS 256

/*
 * Each returns > 0 when the message was sent, 0 when there is no one to
 * tell, or -errno. status may be NULL (no STATUS= line); newlines in it
 * are sent as spaces.
 */

/* READY=1: start-up, or a reload, is complete. */
int notify_ready(const char *status);

/* STATUS=: a one-line state for "systemctl status". */
int notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * RELOADING=1 with MONOTONIC_USEC= (the clock now, as systemd's
 * Type=notify-reload wants): send it before reloading the configuration,
 * then notify_ready when done, whether the reload worked or not.
 */
int notify_reloading(const char *status);

/* STOPPING=1: shutting down. */
int notify_stopping(const char *status);

/* WATCHDOG=1: the loop is alive. */
int notify_watchdog(void);

/*
 * Whether systemd expects keep-alives from this process (WatchdogSec=):
 * returns 1 with the watchdog timeout in *ret_usec, 0 when not, or
 * -errno for a malformed WATCHDOG_USEC. Send notify_watchdog at least
 * every *ret_usec / 2.
 */
int notify_watchdog_enabled(uint64_t *ret_usec);

#endif

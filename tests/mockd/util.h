/*
 * SPDX-License-Identifier: MIT
 *
 * Small helpers for m8tes-mockd: percent-decoding, UTF-8 validation,
 * base64, random tokens, timestamps and interruptible sleeps. No state of
 * its own except the stop flag that ends every sleep early.
 */
#ifndef MOCKD_UTIL_H
#define MOCKD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/*
 * Percent-decode len bytes of src into a new NUL-terminated string; with
 * plus, '+' becomes a space (form encoding). Malformed escapes are kept
 * literally. Returns 0 or -ENOMEM; *ret_len (optional) gets the length.
 */
int util_decode(const char *src, size_t len, bool plus, char **ret,
    size_t *ret_len);

/* True if p[0..len) is valid UTF-8 without NUL bytes. */
bool util_utf8_valid(const uint8_t *p, size_t len);

/* Standard base64 of p[0..len), NUL-terminated; NULL on ENOMEM. */
char *util_base64(const uint8_t *p, size_t len);

/* Write n random lowercase hex digits and a NUL into buf (n + 1 bytes). */
void util_randhex(char *buf, size_t n);

/* Format t as "2026-01-01T00:00:00Z" into buf (at least 21 bytes). */
void util_iso(time_t t, char *buf, size_t len);

/*
 * Parse an ISO 8601 date-time ("YYYY-MM-DDTHH:MM[:SS[.frac]]" with "Z",
 * "+hh:mm" or no zone, meaning UTC). Returns 0 or -EINVAL.
 */
int util_parse_iso(const char *s, time_t *ret);

/* Parse a whole decimal integer; returns 0 or -EINVAL / -ERANGE. */
int util_parse_ll(const char *s, long long *ret);

/* Milliseconds on the monotonic clock. */
uint64_t util_now_ms(void);
/* Microseconds on the monotonic clock. */
uint64_t util_now_us(void);

#endif

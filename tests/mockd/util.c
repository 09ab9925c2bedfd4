/*
 * SPDX-License-Identifier: MIT
 *
 * Byte-level helpers shared by the mock's modules. Nothing here knows about
 * HTTP or JSON; everything is pure apart from the random source and clocks.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "util.h"

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int
util_decode(const char *src, size_t len, bool plus, char **ret, size_t *ret_len)
{
	char *out;
	size_t i, o = 0;

	out = malloc(len + 1);
	if (out == NULL)
		return -ENOMEM;
	for (i = 0; i < len; i++) {
		int hi, lo;

		if (src[i] == '%' && i + 2 < len) {
			hi = hexval((unsigned char)src[i + 1]);
			lo = hexval((unsigned char)src[i + 2]);
			if (hi >= 0 && lo >= 0) {
				out[o++] = (char)(hi << 4 | lo);
				i += 2;
				continue;
			}
		}
		if (plus && src[i] == '+')
			out[o++] = ' ';
		else
			out[o++] = src[i];
	}
	out[o] = '\0';
	*ret = out;
	if (ret_len != NULL)
		*ret_len = o;
	return 0;
}

bool
util_utf8_valid(const uint8_t *p, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t c = p[i];
		size_t n, k;
		uint32_t cp;

		if (c == 0)
			return false;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0) {
			n = 1;
			cp = c & 0x1f;
		} else if ((c & 0xf0) == 0xe0) {
			n = 2;
			cp = c & 0x0f;
		} else if ((c & 0xf8) == 0xf0) {
			n = 3;
			cp = c & 0x07;
		} else
			return false;
		if (i + n >= len)
			return false;
		for (k = 1; k <= n; k++) {
			if ((p[i + k] & 0xc0) != 0x80)
				return false;
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		/* Overlong forms, surrogates and values past U+10FFFF. */
		if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) ||
		    (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
		    (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += n + 1;
	}
	return true;
}

char *
util_base64(const uint8_t *p, size_t len)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char *out, *o;
	size_t i;

	out = malloc((len + 2) / 3 * 4 + 1);
	if (out == NULL)
		return NULL;
	o = out;
	for (i = 0; i + 2 < len; i += 3) {
		uint32_t v =
		    (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = tab[v >> 6 & 63];
		*o++ = tab[v & 63];
	}
	if (i < len) {
		uint32_t v = (uint32_t)p[i] << 16;

		if (i + 1 < len)
			v |= (uint32_t)p[i + 1] << 8;
		*o++ = tab[v >> 18 & 63];
		*o++ = tab[v >> 12 & 63];
		*o++ = (char)(i + 1 < len ? tab[v >> 6 & 63] : '=');
		*o++ = '=';
	}
	*o = '\0';
	return out;
}

void
util_randhex(char *buf, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	uint8_t rnd[64];
	size_t i;

	while (n > 0) {
		size_t chunk = n < sizeof(rnd) ? n : sizeof(rnd);

		if (getrandom(rnd, chunk, 0) != (ssize_t)chunk) {
			/* No entropy source: fall back to rand(), a mock only.
			 */
			for (i = 0; i < chunk; i++)
				rnd[i] = (uint8_t)rand();
		}
		for (i = 0; i < chunk; i++)
			*buf++ = hex[rnd[i] & 15];
		n -= chunk;
	}
	*buf = '\0';
}

void
util_iso(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		(void)snprintf(buf, len, "1970-01-01T00:00:00Z");
}

int
util_parse_iso(const char *s, time_t *ret)
{
	struct tm tm;
	const char *p;
	long off = 0;
	time_t t;

	memset(&tm, 0, sizeof(tm));
	p = strptime(s, "%Y-%m-%dT%H:%M", &tm);
	if (p == NULL)
		p = strptime(s, "%Y-%m-%d %H:%M", &tm);
	if (p == NULL)
		return -EINVAL;
	if (*p == ':') {
		p = strptime(p, ":%S", &tm);
		if (p == NULL)
			return -EINVAL;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
	}
	if (*p == 'Z' || *p == 'z')
		p++;
	else if (*p == '+' || *p == '-') {
		const char *z = p + 1;

		/* "+hh:mm" exactly. */
		if (!isdigit((unsigned char)z[0]) ||
		    !isdigit((unsigned char)z[1]) || z[2] != ':' ||
		    !isdigit((unsigned char)z[3]) ||
		    !isdigit((unsigned char)z[4]))
			return -EINVAL;
		off = ((z[0] - '0') * 10L + (z[1] - '0')) * 3600 +
		    ((z[3] - '0') * 10L + (z[4] - '0')) * 60;
		if (*p == '-')
			off = -off;
		p += 6;
	}
	if (*p != '\0')
		return -EINVAL;
	t = timegm(&tm);
	if (t == (time_t)-1)
		return -EINVAL;
	*ret = t - off;
	return 0;
}

int
util_parse_ll(const char *s, long long *ret)
{
	char *end;
	long long v;

	if (s == NULL || *s == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0' || end == s)
		return -EINVAL;
	*ret = v;
	return 0;
}

uint64_t
util_now_us(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

uint64_t
util_now_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

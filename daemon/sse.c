/*
 * SPDX-License-Identifier: MIT
 *
 * The SSE parser: a byte-at-a-time line machine that keeps only the data
 * lines of the current frame, UTF-8 repair and trimming, and a strict JSON
 * check in front of cJSON; the object parsed is handed to sse_norm.c, which
 * turns it into an event of the AI-SDK vocabulary. Behaviour follows the
 * Python SDK's parser (upstream-api.md §6.2), except where that parser
 * would crash or split lines on characters other than \n and \r; such
 * frames degrade to "skipped" or pass through. Nothing here does I/O, logs
 * or keeps global state.
 */
#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sse.h"
#include "sse_int.h"

/* Where the current line is (struct sse_parser.state). */
enum {
	SSE_ST_PREFIX, /* matching "data:" at the start of a line */
	SSE_ST_SPACE,  /* after "data:", skipping spaces */
	SSE_ST_DATA,   /* in a data line's value */
	SSE_ST_IGNORE, /* in any other line, up to its end */
};

#define SSE_BUF_MIN 256
/* A frame buffer grown past this is freed after its frame. */
#define SSE_BUF_KEEP ((size_t)64 * 1024)
/* Some cJSON 1.7 releases read at most 63 characters of a number. */
#define SSE_MAX_NUMBER 63

_Static_assert(SSE_MAX_DEPTH <= CJSON_NESTING_LIMIT,
    "SSE_MAX_DEPTH must not exceed what cJSON parses");

static const char sse_data_prefix[] = "data:";

static const char *const sse_failure_types[] = {
    "sdk_error",
    "AGENT_RUNNER_DIED",
    "RUNNER_LIFECYCLE_ERROR",
    "SANDBOX_BOOT_TIMEOUT",
    "SANDBOX_QUOTA_EXHAUSTED",
    "SANDBOX_UNAVAILABLE",
    "SNAPSHOT_VERSION_MISMATCH",
};

static int frame_append(struct sse_parser *p, const char *s, size_t n);
static int frame_end(struct sse_parser *p, sse_event_cb cb, void *arg);
static int frame_parse(struct sse_parser *p, sse_event_cb cb, void *arg);
static int line_end(struct sse_parser *p, sse_event_cb cb, void *arg);
static int utf8_fix(const char *s, size_t n, char **ret, size_t *ret_len);
static size_t utf8_seq(const uint8_t *s, size_t n, size_t *ret_bad);
static void trim(const char **s, size_t *n);
static bool json_object_valid(const char *s, size_t n, bool *ret_long);

void
sse_init(struct sse_parser *p, size_t max_frame_bytes)
{
	assert(max_frame_bytes > 0 && max_frame_bytes <= SIZE_MAX / 4);
	*p = (struct sse_parser){
	    .max_frame = max_frame_bytes,
	    .state = SSE_ST_PREFIX,
	};
}

void
sse_done(struct sse_parser *p)
{
	if (p == NULL)
		return;
	assert(!p->busy);
	free(p->buf);
	p->buf = NULL;
	p->len = 0;
	p->cap = 0;
}

/* The "data:" prefix, one byte at a time; c is not a line end. */
static int
feed_prefix(struct sse_parser *p, uint8_t c)
{
	if (c != (uint8_t)sse_data_prefix[p->prefix]) {
		p->state = SSE_ST_IGNORE;
		return 0;
	}
	if (++p->prefix < sizeof(sse_data_prefix) - 1)
		return 0;
	p->state = SSE_ST_SPACE;
	/* A data line: joined to the previous one with \n. */
	if (!p->have_data) {
		p->have_data = true;
		return 0;
	}
	return frame_append(p, "\n", 1);
}

/*
 * Consumes the start of buf[0..len) (len > 0): one byte, or the rest of a
 * line's value up to its end. *ret_used is how much (0 when only the
 * state changed).
 */
static int
feed_some(struct sse_parser *p, const uint8_t *buf, size_t len, sse_event_cb cb,
    void *arg, size_t *ret_used)
{
	uint8_t c = buf[0];
	bool after_cr = p->cr;
	size_t j;

	*ret_used = 1;
	p->cr = false;
	if (c == '\n' && after_cr)
		return 0;
	if (c == '\n' || c == '\r') {
		p->cr = c == '\r';
		return line_end(p, cb, arg);
	}
	switch (p->state) {
	case SSE_ST_PREFIX:
		return feed_prefix(p, c);
	case SSE_ST_SPACE:
		/* The value starts at the first byte not a space. */
		if (c != ' ') {
			p->state = SSE_ST_DATA;
			*ret_used = 0;
		}
		return 0;
	default:
		for (j = 1; j < len && buf[j] != '\n' && buf[j] != '\r'; j++)
			continue;
		*ret_used = j;
		if (p->state != SSE_ST_DATA)
			return 0;
		return frame_append(p, (const char *)buf, j);
	}
}

int
sse_feed(struct sse_parser *p, const uint8_t *buf, size_t len, sse_event_cb cb,
    void *arg)
{
	size_t i = 0, used;
	int r;

	assert(!p->busy);
	assert(buf != NULL || len == 0);
	if (p->error < 0)
		return p->error;
	while (i < len) {
		r = feed_some(p, buf + i, len - i, cb, arg, &used);
		if (r < 0) {
			p->error = r;
			return r;
		}
		i += used;
	}
	return 0;
}

int
sse_finish(struct sse_parser *p, sse_event_cb cb, void *arg)
{
	int r;

	assert(!p->busy);
	if (p->error < 0)
		return p->error;
	/* A last line without its line end is still a line, never blank. */
	p->state = SSE_ST_PREFIX;
	p->prefix = 0;
	p->cr = false;
	r = frame_end(p, cb, arg);
	if (r < 0)
		p->error = r;
	return r;
}

bool
sse_type_is_terminal_failure(const char *type)
{
	size_t i;

	if (type == NULL)
		return false;
	for (i = 0; i < sizeof(sse_failure_types) / sizeof(*sse_failure_types);
	     i++)
		if (strcmp(type, sse_failure_types[i]) == 0)
			return true;
	return false;
}

bool
sse_type_is_terminal(const char *type)
{
	if (type == NULL)
		return false;
	return strcmp(type, "done") == 0 || strcmp(type, "cancelled") == 0 ||
	    sse_type_is_terminal_failure(type);
}

/* Ends the current line; a blank one ends the frame. */
static int
line_end(struct sse_parser *p, sse_event_cb cb, void *arg)
{
	bool blank = p->state == SSE_ST_PREFIX && p->prefix == 0;

	p->state = SSE_ST_PREFIX;
	p->prefix = 0;
	if (!blank)
		return 0;
	return frame_end(p, cb, arg);
}

/* Appends to the frame's data, or starts discarding it past the cap. */
static int
frame_append(struct sse_parser *p, const char *s, size_t n)
{
	size_t ncap;
	char *nbuf;

	if (p->oversize || n == 0)
		return 0;
	if (n > p->max_frame - p->len) {
		p->oversize = true;
		p->stats.dropped_oversize++;
		p->len = 0;
		return 0;
	}
	if (p->len + n + 1 > p->cap) {
		ncap = p->cap > 0 ? p->cap : SSE_BUF_MIN;
		while (ncap < p->len + n + 1 && ncap <= p->max_frame)
			ncap *= 2;
		if (ncap > p->max_frame + 1)
			ncap = p->max_frame + 1;
		nbuf = realloc(p->buf, ncap);
		if (nbuf == NULL)
			return -ENOMEM;
		p->buf = nbuf;
		p->cap = ncap;
	}
	memcpy(p->buf + p->len, s, n);
	p->len += n;
	return 0;
}

static int
frame_end(struct sse_parser *p, sse_event_cb cb, void *arg)
{
	int r = 0;

	if (p->have_data && !p->oversize)
		r = frame_parse(p, cb, arg);
	p->len = 0;
	p->have_data = false;
	p->oversize = false;
	if (p->cap > SSE_BUF_KEEP) {
		free(p->buf);
		p->buf = NULL;
		p->cap = 0;
	}
	return r;
}

/*
 * Parses a JSON payload into *ret_json, the normalised event, or NULL when
 * the frame is skipped or dropped (and counted). Returns 0 or -ENOMEM.
 */
static int
frame_json(struct sse_parser *p, const char *s, size_t n, cJSON **ret_json,
    unsigned *ret_flags)
{
	bool long_number;
	cJSON *json = NULL;
	int r;

	if (!json_object_valid(s, n, &long_number)) {
		p->stats.skipped_invalid++;
		goto out;
	}
	/*
	 * The check accepts only what cJSON parses, except long numbers in
	 * the cJSON releases that cannot read them: NULL is OOM, or that.
	 */
	json = cJSON_ParseWithLengthOpts(s, n, NULL, false);
	if (json == NULL && !long_number)
		return -ENOMEM;
	if (json == NULL) {
		p->stats.skipped_invalid++;
		goto out;
	}
	r = sse_normalise(json, ret_flags);
	if (r <= 0) {
		cJSON_Delete(json);
		json = NULL;
		if (r < 0)
			return r;
		p->stats.dropped_system++;
	}
out:
	*ret_json = json;
	return 0;
}

/* Turns the frame's data into at most one event for cb. */
static int
frame_parse(struct sse_parser *p, sse_event_cb cb, void *arg)
{
	struct sse_event ev = {0};
	const char *s = p->buf;
	char *fixed = NULL;
	size_t n = p->len;
	cJSON *json = NULL;
	unsigned flags = 0;
	int r;

	r = utf8_fix(s, n, &fixed, &n);
	if (r < 0)
		return r;
	if (fixed != NULL)
		s = fixed;
	trim(&s, &n);
	if (n == 0)
		goto out;
	p->stats.frames++;
	if (n == 6 && memcmp(s, "[DONE]", 6) == 0) {
		json = sse_done_event();
		r = json != NULL ? 0 : -ENOMEM;
		flags = SSE_EVENT_DONE_BRACKET;
	} else {
		r = frame_json(p, s, n, &json, &flags);
	}
	if (json == NULL)
		goto out;
	ev.json = json;
	ev.type = cJSON_GetObjectItemCaseSensitive(json, "type")->valuestring;
	ev.flags = flags;
	p->stats.events++;
	p->busy = true;
	r = cb(&ev, arg);
	p->busy = false;
	json = ev.json;

out:
	cJSON_Delete(json);
	free(fixed);
	return r < 0 ? r : 0;
}

/*
 * UTF-8: the stream is UTF-8; each maximal invalid subpart becomes U+FFFD,
 * as Python's decode(errors="replace") does, so every event holds valid
 * UTF-8.
 */

/*
 * Returns the length of the valid sequence at s, or 0 with *ret_bad set to
 * the length of the maximal invalid subpart there (>= 1).
 */
static size_t
utf8_seq(const uint8_t *s, size_t n, size_t *ret_bad)
{
	uint8_t c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		need = 1;
	} else if (c >= 0xe0 && c <= 0xef) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else {
		*ret_bad = 1;
		return 0;
	}
	for (i = 1; i <= need; i++) {
		if (i >= n || s[i] < lo || s[i] > hi) {
			*ret_bad = i;
			return 0;
		}
		lo = 0x80;
		hi = 0xbf;
	}
	return need + 1;
}

/*
 * Returns 0 with *ret NULL when s[0..n) is valid UTF-8, else 0 with *ret a
 * new NUL-terminated copy with the replacements (at most 3n bytes) and
 * *ret_len its length; -ENOMEM.
 */
static int
utf8_fix(const char *s, size_t n, char **ret, size_t *ret_len)
{
	const uint8_t *u = (const uint8_t *)s;
	size_t i = 0, k, bad, out = 0;
	char *copy;

	*ret = NULL;
	for (k = 1; i < n && k > 0; i += k)
		k = utf8_seq(u + i, n - i, &bad);
	if (k > 0)
		return 0;
	copy = malloc(3 * n + 1);
	if (copy == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i += k) {
		k = utf8_seq(u + i, n - i, &bad);
		if (k > 0) {
			memcpy(copy + out, s + i, k);
			out += k;
		} else {
			memcpy(copy + out, "\xef\xbf\xbd", 3);
			out += 3;
			k = bad;
		}
	}
	copy[out] = '\0';
	*ret = copy;
	*ret_len = out;
	return 0;
}

/*
 * Whitespace as Python's str.strip() sees it (str.isspace), in UTF-8:
 * \t-\r, \x1c-\x1f, space, U+0085, U+00A0, U+1680, U+2000-U+200A, U+2028,
 * U+2029, U+202F, U+205F, U+3000. Returns the length of the one that starts
 * (at_end false) or ends (at_end true) s[0..n), or 0.
 */
static size_t
ws_len(const uint8_t *s, size_t n, bool at_end)
{
	const uint8_t *q;
	uint8_t c;

	if (n == 0)
		return 0;
	c = at_end ? s[n - 1] : s[0];
	if ((c >= 0x09 && c <= 0x0d) || (c >= 0x1c && c <= 0x20))
		return 1;
	if (n >= 2) {
		q = at_end ? s + n - 2 : s;
		if (q[0] == 0xc2 && (q[1] == 0x85 || q[1] == 0xa0))
			return 2;
	}
	if (n >= 3) {
		q = at_end ? s + n - 3 : s;
		if ((q[0] == 0xe1 && q[1] == 0x9a && q[2] == 0x80) ||
		    (q[0] == 0xe2 && q[1] == 0x80 &&
		        (q[2] <= 0x8a || q[2] == 0xa8 || q[2] == 0xa9 ||
		            q[2] == 0xaf)) ||
		    (q[0] == 0xe2 && q[1] == 0x81 && q[2] == 0x9f) ||
		    (q[0] == 0xe3 && q[1] == 0x80 && q[2] == 0x80))
			return 3;
	}
	return 0;
}

static void
trim(const char **s, size_t *n)
{
	const uint8_t *u = (const uint8_t *)*s;
	size_t k;

	for (k = ws_len(u, *n, false); k > 0; k = ws_len(u, *n, false)) {
		u += k;
		*n -= k;
	}
	for (k = ws_len(u, *n, true); k > 0; k = ws_len(u, *n, true))
		*n -= k;
	*s = (const char *)u;
}

/*
 * A strict JSON check (RFC 8259, as Python's json.loads: no BOM, no control
 * characters in strings, nothing after the value) that also refuses what
 * cJSON 1.7 cannot parse: nesting past SSE_MAX_DEPTH and unpaired UTF-16
 * surrogate escapes (which Python accepts). The value must be an object.
 * Whatever passes is parsed by cJSON unless memory runs out, or unless
 * *ret_long says it has a number longer than SSE_MAX_NUMBER characters.
 * Iterative; no recursion.
 */

static bool
json_hex4(const char *s, size_t n, size_t i, unsigned *ret)
{
	unsigned v = 0;
	size_t k;
	char c;

	if (n - i < 4)
		return false;
	for (k = 0; k < 4; k++) {
		c = s[i + k];
		v <<= 4;
		if (c >= '0' && c <= '9')
			v |= (unsigned)(c - '0');
		else if (c >= 'a' && c <= 'f')
			v |= (unsigned)(c - 'a' + 10);
		else if (c >= 'A' && c <= 'F')
			v |= (unsigned)(c - 'A' + 10);
		else
			return false;
	}
	*ret = v;
	return true;
}

/* s[*k] follows a backslash; on success *k is past the escape. */
static bool
json_escape(const char *s, size_t n, size_t *k)
{
	unsigned u, lo;

	if (*k >= n)
		return false;
	if (s[*k] != '\0' && strchr("\"\\/bfnrt", s[*k]) != NULL) {
		(*k)++;
		return true;
	}
	if (s[*k] != 'u' || !json_hex4(s, n, *k + 1, &u))
		return false;
	*k += 5;
	if (u >= 0xdc00 && u <= 0xdfff)
		return false;
	if (u < 0xd800 || u > 0xdbff)
		return true;
	/* A high surrogate: the low one must follow. */
	if (n - *k < 6 || s[*k] != '\\' || s[*k + 1] != 'u' ||
	    !json_hex4(s, n, *k + 2, &lo) || lo < 0xdc00 || lo > 0xdfff)
		return false;
	*k += 6;
	return true;
}

/* s[*i] is the opening quote; on success *i is past the closing one. */
static bool
json_string(const char *s, size_t n, size_t *i)
{
	size_t k = *i + 1;
	uint8_t c;

	for (;;) {
		if (k >= n)
			return false;
		c = (uint8_t)s[k++];
		if (c == '"')
			break;
		if (c < 0x20)
			return false;
		if (c == '\\' && !json_escape(s, n, &k))
			return false;
	}
	*i = k;
	return true;
}

/* The end of the digits from k (k itself when there are none). */
static size_t
json_digits(const char *s, size_t n, size_t k)
{
	while (k < n && s[k] >= '0' && s[k] <= '9')
		k++;
	return k;
}

static bool
json_number(const char *s, size_t n, size_t *i, bool *ret_long)
{
	size_t k = *i, e;

	if (k < n && s[k] == '-')
		k++;
	e = k < n && s[k] == '0' ? k + 1 : json_digits(s, n, k);
	if (e == k)
		return false;
	k = e;
	if (k < n && s[k] == '.') {
		e = json_digits(s, n, k + 1);
		if (e == k + 1)
			return false;
		k = e;
	}
	if (k < n && (s[k] == 'e' || s[k] == 'E')) {
		k++;
		if (k < n && (s[k] == '+' || s[k] == '-'))
			k++;
		e = json_digits(s, n, k);
		if (e == k)
			return false;
		k = e;
	}
	if (k - *i > SSE_MAX_NUMBER)
		*ret_long = true;
	*i = k;
	return true;
}

static bool
json_word(const char *s, size_t n, size_t *i, const char *w)
{
	size_t len = strlen(w);

	if (n - *i < len || memcmp(s + *i, w, len) != 0)
		return false;
	*i += len;
	return true;
}

static size_t
json_ws(const char *s, size_t n, size_t i)
{
	while (i < n &&
	    (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r'))
		i++;
	return i;
}

enum {
	JS_FAIL = -1,   /* not valid */
	JS_VALUE,       /* a value is next */
	JS_AFTER_VALUE, /* a value ended */
	JS_FIRST_KEY,   /* after '{': a key or '}' */
	JS_KEY,         /* after ',' in an object: a key */
	JS_FIRST_VALUE, /* after '[': a value or ']' */
};

/* The checker's state. */
struct sse_jv {
	const char *s;
	size_t n;
	size_t i;                   /* next byte */
	size_t depth;               /* open containers */
	bool is_obj[SSE_MAX_DEPTH]; /* per open container: object or array */
	bool long_number;
};

/* After a value inside a container: ',' or its close. */
static int
jv_after_value(struct sse_jv *v)
{
	bool obj = v->is_obj[v->depth - 1];
	char c;

	if (v->i >= v->n)
		return JS_FAIL;
	c = v->s[v->i++];
	if (c == ',')
		return obj ? JS_KEY : JS_VALUE;
	if (c != (obj ? '}' : ']'))
		return JS_FAIL;
	v->depth--;
	return JS_AFTER_VALUE;
}

/* A key and its colon. */
static int
jv_key(struct sse_jv *v)
{
	if (v->s[v->i] != '"' || !json_string(v->s, v->n, &v->i))
		return JS_FAIL;
	v->i = json_ws(v->s, v->n, v->i);
	if (v->i >= v->n || v->s[v->i] != ':')
		return JS_FAIL;
	v->i++;
	return JS_VALUE;
}

/* A value: a container opens, or a whole scalar is read. */
static int
jv_value(struct sse_jv *v)
{
	char c = v->s[v->i];
	bool ok;

	if (c == '{' || c == '[') {
		if (v->depth == SSE_MAX_DEPTH)
			return JS_FAIL;
		v->is_obj[v->depth++] = c == '{';
		v->i++;
		return c == '{' ? JS_FIRST_KEY : JS_FIRST_VALUE;
	}
	if (c == '"')
		ok = json_string(v->s, v->n, &v->i);
	else if (c == 't')
		ok = json_word(v->s, v->n, &v->i, "true");
	else if (c == 'f')
		ok = json_word(v->s, v->n, &v->i, "false");
	else if (c == 'n')
		ok = json_word(v->s, v->n, &v->i, "null");
	else
		ok = json_number(v->s, v->n, &v->i, &v->long_number);
	return ok ? JS_AFTER_VALUE : JS_FAIL;
}

static bool
json_object_valid(const char *s, size_t n, bool *ret_long)
{
	struct sse_jv v = {.s = s, .n = n};
	int st = JS_VALUE;

	*ret_long = false;
	if (n == 0 || s[0] != '{')
		return false;
	while (st != JS_FAIL) {
		v.i = json_ws(s, n, v.i);
		if (st == JS_AFTER_VALUE && v.depth == 0)
			break;
		if (st == JS_AFTER_VALUE) {
			st = jv_after_value(&v);
		} else if (v.i >= n) {
			st = JS_FAIL;
		} else if ((st == JS_FIRST_KEY && s[v.i] == '}') ||
		    (st == JS_FIRST_VALUE && s[v.i] == ']')) {
			v.i++;
			v.depth--;
			st = JS_AFTER_VALUE;
		} else if (st == JS_FIRST_KEY || st == JS_KEY) {
			st = jv_key(&v);
		} else {
			st = jv_value(&v);
		}
	}
	*ret_long = v.long_number;
	return st != JS_FAIL && v.i == n;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * libFuzzer target for sse and runacc. The input is one SSE stream. It is
 * parsed three ways - in one feed, in two feeds cut at a point taken from
 * the first byte, and one byte per feed - and the three must give the same
 * events, counters and accumulated result; every event must keep the
 * parser's promises (a unique string "type", string deltas, valid UTF-8,
 * JSON that parses back); nothing may fail, as no allocation fails here;
 * and replaying the stream after runacc_reset() must give the same result.
 * The last byte's low bit picks a tiny frame cap, so that the oversize
 * path is reached. Built with -DM8_FUZZ_REPLAY instead, main() runs every
 * file of the directories (or files) named on the command line through the
 * target: the seed corpus as a plain test.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runacc.h"
#include "sse.h"

#define FUZZ_BYTEWISE_MAX 8192 /* longer inputs skip the 1-byte feeds */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	struct runacc acc;
	char *log; /* every event, printed, one per line */
	size_t len;
	size_t cap;
	struct sse_stats stats;
};

static void
log_add(struct run *r, const char *s, size_t n)
{
	if (r->len + n + 1 > r->cap) {
		r->cap = (r->len + n + 1) * 2;
		r->log = realloc(r->log, r->cap);
		if (r->log == NULL)
			abort();
	}
	memcpy(r->log + r->len, s, n);
	r->len += n;
	r->log[r->len] = '\0';
}

static bool
utf8_valid(const uint8_t *s, size_t n)
{
	size_t i = 0, k, need;
	uint8_t c, lo, hi;

	while (i < n) {
		c = s[i];
		lo = 0x80;
		hi = 0xbf;
		if (c < 0x80)
			need = 0;
		else if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3;
		else
			return false;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
		else if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
		for (k = 1; k <= need; k++) {
			if (i + k >= n || s[i + k] < lo || s[i + k] > hi)
				return false;
			lo = 0x80;
			hi = 0xbf;
		}
		i += need + 1;
	}
	return true;
}

/* How many members of obj are named key; *ret_last the last one. */
static int
members(const cJSON *obj, const char *key, const cJSON **ret_last)
{
	const cJSON *c;
	int n = 0;

	*ret_last = NULL;
	for (c = obj->child; c != NULL; c = c->next) {
		if (c->string != NULL && strcmp(c->string, key) == 0) {
			n++;
			*ret_last = c;
		}
	}
	return n;
}

static void
check_event(const struct sse_event *ev)
{
	static const char *const delta_types[] = {
	    "text-delta",
	    "reasoning-delta",
	    "thinking-delta",
	    "plan-delta",
	    "tool-call-delta",
	    "tool-result-delta",
	};
	const cJSON *t, *d;
	size_t i;

	if (!cJSON_IsObject(ev->json) || members(ev->json, "type", &t) != 1 ||
	    !cJSON_IsString(t) || t->valuestring != ev->type)
		abort();
	if (strcmp(ev->type, "ping") == 0)
		abort();
	if ((ev->flags & SSE_EVENT_DONE_BRACKET) != 0 &&
	    (strcmp(ev->type, "done") != 0 ||
	        cJSON_GetArraySize(ev->json) != 1))
		abort();
	for (i = 0; i < sizeof(delta_types) / sizeof(*delta_types); i++)
		if (strcmp(ev->type, delta_types[i]) == 0 &&
		    (members(ev->json, "delta", &d) != 1 || !cJSON_IsString(d)))
			abort();
	if ((ev->flags & SSE_EVENT_TRANSLATED) != 0 &&
	    (members(ev->json, "native", &d) != 1 || !cJSON_IsString(d)))
		abort();
}

static int
fuzz_cb(struct sse_event *ev, void *arg)
{
	struct run *r = arg;
	char *s, flags[16];
	cJSON *back;
	int n;

	check_event(ev);
	s = cJSON_PrintUnformatted(ev->json);
	if (s == NULL)
		abort();
	if (!utf8_valid((const uint8_t *)s, strlen(s)))
		abort();
	back = cJSON_Parse(s);
	if (back == NULL)
		abort();
	cJSON_Delete(back);
	n = snprintf(flags, sizeof(flags), "%u|", ev->flags);
	log_add(r, flags, (size_t)n);
	log_add(r, s, strlen(s));
	log_add(r, "\n", 1);
	cJSON_free(s);
	if (runacc_feed(&r->acc, ev->json) != 0)
		abort();
	return 0;
}

/* Feeds data cut at cuts[0..ncuts) (ascending), then finishes. */
static void
run_cuts(struct run *r, const uint8_t *data, size_t size, const size_t *cuts,
    size_t ncuts, size_t max)
{
	struct sse_parser p;
	size_t i, at = 0, to;

	sse_init(&p, max);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : size;
		if (sse_feed(&p, data + at, to - at, fuzz_cb, r) != 0)
			abort();
		at = to;
	}
	if (sse_finish(&p, fuzz_cb, r) != 0)
		abort();
	r->stats = p.stats;
	if (p.cap > max + 1)
		abort();
	sse_done(&p);
}

static void
run_bytewise(struct run *r, const uint8_t *data, size_t size, size_t max)
{
	struct sse_parser p;
	size_t i;

	sse_init(&p, max);
	for (i = 0; i < size; i++)
		if (sse_feed(&p, data + i, 1, fuzz_cb, r) != 0)
			abort();
	if (sse_finish(&p, fuzz_cb, r) != 0)
		abort();
	r->stats = p.stats;
	sse_done(&p);
}

static char *
result_text(const struct runacc *a)
{
	cJSON *res = runacc_result(a);
	char *s;

	if (res == NULL)
		abort();
	s = cJSON_PrintUnformatted(res);
	cJSON_Delete(res);
	if (s == NULL)
		abort();
	return s;
}

static void
same(const struct run *a, const struct run *b)
{
	char *ra, *rb;

	if ((a->log == NULL) != (b->log == NULL) ||
	    (a->log != NULL && strcmp(a->log, b->log) != 0))
		abort();
	if (memcmp(&a->stats, &b->stats, sizeof(a->stats)) != 0)
		abort();
	ra = result_text(&a->acc);
	rb = result_text(&b->acc);
	if (strcmp(ra, rb) != 0)
		abort();
	cJSON_free(ra);
	cJSON_free(rb);
}

static void
run_done(struct run *r)
{
	runacc_done(&r->acc);
	free(r->log);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run one = {0}, two = {0}, bytes = {0};
	size_t max, cut;
	char *before, *after;

	max = size > 0 && (data[size - 1] & 1) != 0 ? 48 : 64 * 1024;
	cut = size > 0 ? (size_t)data[0] * size / 256 : 0;
	runacc_init(&one.acc);
	runacc_init(&two.acc);
	runacc_init(&bytes.acc);

	run_cuts(&one, data, size, NULL, 0, max);
	run_cuts(&two, data, size, &cut, 1, max);
	same(&one, &two);
	if (size <= FUZZ_BYTEWISE_MAX) {
		run_bytewise(&bytes, data, size, max);
		same(&one, &bytes);
	}

	/* A re-attach replays the stream into a reset accumulator. */
	before = result_text(&one.acc);
	runacc_reset(&one.acc);
	free(one.log);
	one.log = NULL;
	one.len = one.cap = 0;
	run_cuts(&one, data, size, NULL, 0, max);
	after = result_text(&one.acc);
	if (strcmp(before, after) != 0)
		abort();
	cJSON_free(before);
	cJSON_free(after);

	run_done(&one);
	run_done(&two);
	run_done(&bytes);
	return 0;
}

#ifdef M8_FUZZ_REPLAY
#include <dirent.h>
#include <sys/stat.h>

static int
replay_file(const char *path)
{
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0, n;
	FILE *f = fopen(path, "rb");

	if (f == NULL) {
		(void)fprintf(stderr, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	do {
		if (len == cap) {
			cap = cap > 0 ? cap * 2 : 4096;
			buf = realloc(buf, cap);
			if (buf == NULL)
				abort();
		}
		n = fread(buf + len, 1, cap - len, f);
		len += n;
	} while (n > 0);
	if (ferror(f)) {
		(void)fprintf(stderr, "%s: read error\n", path);
		(void)fclose(f);
		free(buf);
		return -1;
	}
	(void)fclose(f);
	(void)LLVMFuzzerTestOneInput(buf, len);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dirent *de;
	struct stat st;
	char path[4096];
	int i, files = 0, bad = 0;
	DIR *d;

	for (i = 1; i < argc; i++) {
		if (stat(argv[i], &st) == -1) {
			(void)fprintf(stderr, "%s: %s\n", argv[i],
			    strerror(errno));
			bad++;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad += replay_file(argv[i]) < 0;
			files++;
			continue;
		}
		d = opendir(argv[i]);
		if (d == NULL) {
			(void)fprintf(stderr, "%s: %s\n", argv[i],
			    strerror(errno));
			bad++;
			continue;
		}
		while ((de = readdir(d)) != NULL) {
			if (de->d_name[0] == '.')
				continue;
			(void)snprintf(path, sizeof(path), "%s/%s", argv[i],
			    de->d_name);
			if (stat(path, &st) == -1 || !S_ISREG(st.st_mode))
				continue;
			bad += replay_file(path) < 0;
			files++;
		}
		(void)closedir(d);
	}
	printf("%d inputs replayed, %d unreadable\n", files, bad);
	return files > 0 && bad == 0 ? 0 : 1;
}
#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for sse: one case per framing rule of upstream-api.md §6.2,
 * each Claude-native translation of §6.3, the limits, and the proof that
 * how the stream is cut into feeds never changes the events.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sse.h"
#include "t.h"

/* Every event as "<flags>|<json>\n", in order. */
struct coll {
	char *log;
	size_t len;
	size_t cap;
	int fail_at; /* return -ECANCELED at this event (1-based); 0: never */
	int n;
	cJSON *taken; /* an array of the events taken, when not NULL */
};

static void
coll_add(struct coll *c, const char *s)
{
	size_t n = strlen(s);

	if (c->len + n + 1 > c->cap) {
		c->cap = (c->len + n + 1) * 2;
		c->log = realloc(c->log, c->cap);
		if (c->log == NULL)
			abort();
	}
	memcpy(c->log + c->len, s, n + 1);
	c->len += n;
}

static int
coll_cb(struct sse_event *ev, void *arg)
{
	struct coll *c = arg;
	char flags[8], *s;

	c->n++;
	if (c->fail_at == c->n)
		return -ECANCELED;
	if (strcmp(ev->type,
	        cJSON_GetObjectItemCaseSensitive(ev->json, "type")
	            ->valuestring) != 0)
		abort();
	snprintf(flags, sizeof(flags), "%u|", ev->flags);
	coll_add(c, flags);
	s = cJSON_PrintUnformatted(ev->json);
	if (s == NULL)
		return -ENOMEM; /* only under allocation_failure_is_enomem */
	coll_add(c, s);
	coll_add(c, "\n");
	cJSON_free(s);
	if (c->taken != NULL) {
		cJSON_AddItemToArray(c->taken, ev->json);
		ev->json = NULL;
	}
	return 0;
}

static const char *
coll_log(const struct coll *c)
{
	return c->log != NULL ? c->log : "";
}

static int
feed_str(struct sse_parser *p, const char *s, struct coll *c)
{
	return sse_feed(p, (const uint8_t *)s, strlen(s), coll_cb, c);
}

/*
 * Feeds in[0..len) cut at the offsets cuts[0..ncuts) (ascending), then
 * finishes. Returns the log (caller frees); *ret_stats the counters.
 */
static char *
run_cuts(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    size_t max, struct sse_stats *ret_stats)
{
	struct sse_parser p;
	struct coll c = {0};
	size_t i, at = 0, to;

	sse_init(&p, max);
	for (i = 0; i <= ncuts; i++) {
		to = i < ncuts ? cuts[i] : len;
		if (sse_feed(&p, (const uint8_t *)in + at, to - at, coll_cb,
		        &c) != 0)
			abort();
		at = to;
	}
	if (sse_finish(&p, coll_cb, &c) != 0)
		abort();
	if (ret_stats != NULL)
		*ret_stats = p.stats;
	sse_done(&p);
	coll_add(&c, "");
	return c.log;
}

static char *
run1(const char *in, size_t max, struct sse_stats *ret_stats)
{
	return run_cuts(in, strlen(in), NULL, 0, max, ret_stats);
}

#define MAX SSE_MAX_FRAME_DEFAULT

/* Asserts the events of a whole stream fed in one piece. */
#define ASSERT_EVENTS(in, want)                                                \
	do {                                                                   \
		char *got_ = run1((in), MAX, NULL);                            \
		int ok_ = strcmp(got_, (want)) == 0;                           \
		if (!ok_)                                                      \
			printf("  got:\n%s  want:\n%s", got_, (want));         \
		free(got_);                                                    \
		ASSERT(ok_);                                                   \
	} while (0)

static bool
stats_eq(const struct sse_stats *a, const struct sse_stats *b)
{
	return a->frames == b->frames && a->events == b->events &&
	    a->skipped_invalid == b->skipped_invalid &&
	    a->dropped_system == b->dropped_system &&
	    a->dropped_oversize == b->dropped_oversize;
}

/*
 * A stream using every framing rule at once: CRLF, CR and LF, comments,
 * other fields, a multi-line data frame with multibyte UTF-8, a translated
 * frame, invalid JSON, a keep-alive, a system frame, both done forms, an
 * oversize frame (with max 200) and a last frame without a line end.
 */
static const char big_stream[] =
    ": keep-alive\r\n"
    "\r\n"
    "data: {\"type\": \"metadata\", \"payload\": {\"run_id\": 42}}\r\n"
    "\r\n"
    "event: message\n"
    "id: 7\n"
    "retry: 10\n"
    "data: {\"type\":\"text-delta\",\n"
    "data:   \"delta\":\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\"}\n"
    "\n"
    "data:{\"type\":\"content_block_delta\",\"id\":\"b1\","
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"!\"}}\r"
    "\r"
    ": a comment\n"
    "data: not json\n"
    "\n"
    "data: {\"type\":\"x\",\"pad\":\""
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "0123456789012345678901234567890123456789012345678901234567890123456789"
    "\"}\n"
    "\n"
    "data: {\"type\":\"ping\"}\n\n"
    "data: {\"type\":\"system\",\"subtype\":\"init\"}\r\n\r\n"
    "data: {\"type\":\"done\",\"stop_reason\":\"end_turn\"}\n\n"
    "data: [DONE]\n\n"
    "data: {\"type\":\"last\"}";

static const char big_want[] =
    "0|{\"type\":\"metadata\",\"payload\":{\"run_id\":42}}\n"
    "0|{\"type\":\"text-delta\",\"delta\":\"h\xc3\xa9llo \xe2\x82\xac "
    "\xf0\x9f\x98\x80\"}\n"
    "2|{\"type\":\"text-delta\",\"id\":\"b1\",\"delta\":\"!\","
    "\"native\":\"content_block_delta\"}\n"
    "0|{\"type\":\"keep-alive\"}\n"
    "0|{\"type\":\"done\",\"stop_reason\":\"end_turn\"}\n"
    "1|{\"type\":\"done\"}\n"
    "0|{\"type\":\"last\"}\n";

#define BIG_MAX 200

TEST(big_stream_one_shot)
{
	struct sse_stats st;
	char *got = run1(big_stream, BIG_MAX, &st);

	ASSERT_STREQ(got, big_want);
	free(got);
	ASSERT_EQ(st.frames, 9);
	ASSERT_EQ(st.events, 7);
	ASSERT_EQ(st.skipped_invalid, 1);
	ASSERT_EQ(st.dropped_system, 1);
	ASSERT_EQ(st.dropped_oversize, 1);
}

TEST(split_one_byte_at_a_time)
{
	size_t len = strlen(big_stream), cuts[sizeof(big_stream)], i;
	struct sse_stats st, st1;
	char *got, *one = run1(big_stream, BIG_MAX, &st1);

	for (i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	got = run_cuts(big_stream, len, cuts, len - 1, BIG_MAX, &st);
	ASSERT_STREQ(got, one);
	ASSERT(stats_eq(&st, &st1));
	free(got);
	free(one);
}

TEST(split_every_two_way)
{
	size_t len = strlen(big_stream), cut;
	struct sse_stats st, st1;
	char *got, *one = run1(big_stream, BIG_MAX, &st1);
	bool ok = true;

	for (cut = 0; cut <= len && ok; cut++) {
		got = run_cuts(big_stream, len, &cut, 1, BIG_MAX, &st);
		ok = strcmp(got, one) == 0 && stats_eq(&st, &st1);
		if (!ok)
			printf("  cut at %zu:\n%s", cut, got);
		free(got);
	}
	free(one);
	ASSERT(ok);
}

TEST(split_random_pieces)
{
	size_t len = strlen(big_stream), cuts[64], n, i, k;
	uint32_t seed = 12345;
	struct sse_stats st, st1;
	char *got, *one = run1(big_stream, BIG_MAX, &st1);
	bool ok = true;

	for (k = 0; k < 2000 && ok; k++) {
		/* Up to 64 ascending cuts from a fixed LCG. */
		n = 0;
		for (i = 0; i < len && n < 64; i++) {
			seed = seed * 1103515245u + 12345u;
			if ((seed >> 16) % 11 == 0)
				cuts[n++] = i;
		}
		got = run_cuts(big_stream, len, cuts, n, BIG_MAX, &st);
		ok = strcmp(got, one) == 0 && stats_eq(&st, &st1);
		free(got);
	}
	free(one);
	ASSERT(ok);
}

TEST(line_endings_lf_crlf_cr)
{
	static const char want[] = "0|{\"type\":\"a\"}\n0|{\"type\":\"b\"}\n";

	ASSERT_EVENTS("data: {\"type\":\"a\"}\n\ndata: {\"type\":\"b\"}\n\n",
	    want);
	ASSERT_EVENTS(
	    "data: {\"type\":\"a\"}\r\n\r\ndata: {\"type\":\"b\"}\r\n\r\n",
	    want);
	ASSERT_EVENTS("data: {\"type\":\"a\"}\r\rdata: {\"type\":\"b\"}\r\r",
	    want);
	/* Mixed in one stream. */
	ASSERT_EVENTS("data: {\"type\":\"a\"}\r\n\ndata: {\"type\":\"b\"}\r\r",
	    want);
	/* \n\r is two line ends: a blank line. */
	ASSERT_EVENTS("data: {\"type\":\"a\"}\n\rdata: {\"type\":\"b\"}\n\r",
	    want);
}

TEST(cr_lf_across_feeds_is_one_line_end)
{
	/* Two data lines of one frame; \r|\n as two ends would cut it. */
	static const char in[] =
	    "data: {\"type\":\r\ndata: \"x\"}\r\n\r\ndata: {\"type\":\"y\"}\r"
	    "\n\r\n";
	static const char want[] = "0|{\"type\":\"x\"}\n0|{\"type\":\"y\"}\n";
	size_t cuts[2], len = strlen(in);
	struct sse_stats st;
	char *got;

	/* "...:\r" | "\ndata..." */
	cuts[0] = (size_t)(strchr(in, '\r') - in) + 1;
	ASSERT(in[cuts[0] - 1] == '\r' && in[cuts[0]] == '\n');
	got = run_cuts(in, len, cuts, 1, MAX, &st);
	ASSERT_STREQ(got, want);
	ASSERT_EQ(st.skipped_invalid, 0);
	free(got);
	/* The \r alone in a feed. */
	cuts[1] = cuts[0];
	cuts[0]--;
	got = run_cuts(in, len, cuts, 2, MAX, &st);
	ASSERT_STREQ(got, want);
	free(got);
	/* "...\"y\"}\r" | "\n\r\n": the frame ends at the second \r\n. */
	cuts[0] = (size_t)(strstr(in, "\"y\"}\r") - in) + 5;
	ASSERT(in[cuts[0] - 1] == '\r' && in[cuts[0]] == '\n');
	got = run_cuts(in, len, cuts, 1, MAX, &st);
	ASSERT_STREQ(got, want);
	ASSERT_EQ(st.events, 2);
	free(got);
	/* Whereas \r and \n in one feed, the other way round, are two ends:
	 * the blank line cuts the first frame in two invalid halves. */
	got = run1("data: {\"type\":\n\rdata: \"x\"}\n\n", MAX, &st);
	ASSERT_STREQ(got, "");
	ASSERT_EQ(st.skipped_invalid, 2);
	free(got);
}

TEST(comments_and_keepalives)
{
	struct sse_stats st;
	char *got;

	/* A comment-only frame is no event at all. */
	got = run1(": keep-alive\n\n: ping\r\n\r\n", MAX, &st);
	ASSERT_STREQ(got, "");
	ASSERT_EQ(st.frames, 0);
	free(got);
	/* Comments inside a frame are skipped; the data lines still join. */
	ASSERT_EVENTS(": c1\ndata: {\"type\":\n:c2\ndata: \"t\"}\n: c3\n\n",
	    "0|{\"type\":\"t\"}\n");
	/* JSON keep-alives, both names, come out as keep-alive. */
	ASSERT_EVENTS("data: {\"type\":\"ping\",\"n\":1}\n\n"
	              "data: {\"type\":\"keep-alive\"}\n\n",
	    "0|{\"type\":\"keep-alive\",\"n\":1}\n"
	    "0|{\"type\":\"keep-alive\"}\n");
}

TEST(only_exact_data_lines)
{
	/* " data:" and "Data:" are not data lines; "data:" needs no space;
	 * all spaces after the colon go, a tab does not (trimmed later). */
	ASSERT_EVENTS(" data: {\"type\":\"no\"}\n"
	              "Data: {\"type\":\"no\"}\n"
	              "event: data\n"
	              "data:{\"type\":\"yes\"}\n\n",
	    "0|{\"type\":\"yes\"}\n");
	ASSERT_EVENTS("data:     {\"type\":\"sp\"}\n\n",
	    "0|{\"type\":\"sp\"}\n");
	ASSERT_EVENTS("data:\t{\"type\":\"tab\"}\n\n",
	    "0|{\"type\":\"tab\"}\n");
	/* A line that is only "dat" at EOF is not data. */
	ASSERT_EVENTS("dat", "");
}

TEST(blank_means_empty)
{
	struct sse_stats st;
	char *got;

	/* A line of spaces does not end a frame (the SDK tests == ""). */
	got = run1("data: {\"type\":\n   \ndata: \"a\"}\n\n", MAX, &st);
	ASSERT_STREQ(got, "0|{\"type\":\"a\"}\n");
	free(got);
	/* An empty or blank payload is no frame. */
	got = run1("data:\n\ndata:   \n\ndata:\ndata: \n\n", MAX, &st);
	ASSERT_STREQ(got, "");
	ASSERT_EQ(st.frames, 0);
	ASSERT_EQ(st.skipped_invalid, 0);
	free(got);
}

TEST(multi_line_data_joined_with_newline)
{
	struct sse_stats st;
	char *got;

	ASSERT_EVENTS("data: {\"type\":\ndata: \"text-delta\",\ndata: "
	              "\"delta\":\"a b\"}\n\n",
	    "0|{\"type\":\"text-delta\",\"delta\":\"a b\"}\n");
	/* Joined with "" this would be 12; with \n it is invalid. */
	got = run1("data: {\"type\":\"n\",\"n\":1\ndata: 2}\n\n", MAX, &st);
	ASSERT_STREQ(got, "");
	ASSERT_EQ(st.skipped_invalid, 1);
	free(got);
	/* An empty data line adds a \n too: "[DONE]\n" trims to [DONE]. */
	ASSERT_EVENTS("data: [DONE]\ndata:\n\n", "1|{\"type\":\"done\"}\n");
	got = run1("data: [DO\ndata: NE]\n\n", MAX, &st);
	ASSERT_STREQ(got, "");
	ASSERT_EQ(st.skipped_invalid, 1);
	free(got);
}

TEST(done_forms)
{
	ASSERT_EVENTS("data: [DONE]\n\n", "1|{\"type\":\"done\"}\n");
	ASSERT_EVENTS("data:    [DONE]   \t\n\n", "1|{\"type\":\"done\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"done\",\"stop_reason\":\"end_turn\","
	              "\"completion_state\":\"complete\"}\n\n",
	    "0|{\"type\":\"done\",\"stop_reason\":\"end_turn\","
	    "\"completion_state\":\"complete\"}\n");
	/* Both, as the server may send (§13). */
	ASSERT_EVENTS("data: {\"type\":\"done\"}\n\ndata: [DONE]\n\n",
	    "0|{\"type\":\"done\"}\n1|{\"type\":\"done\"}\n");
	/* Not the sentinel. */
	ASSERT_EVENTS("data: [done]\n\ndata: [DONE] x\n\n", "");
}

TEST(invalid_json_skipped_stream_continues)
{
	static const char *const bad[] = {
	    "not json",
	    "{\"type\":\"a\"",
	    "{\"type\":\"a\"} trailing",
	    "{\"type\":\"a\"}{\"type\":\"b\"}",
	    "{'type':'a'}",
	    "{\"type\":\"a\",}",
	    "{\"type\":\"a\" \"b\":1}",
	    "{\"n\":01}",
	    "{\"n\":+1}",
	    "{\"n\":.5}",
	    "{\"n\":1.}",
	    "{\"n\":1e}",
	    "{\"n\":NaN}",
	    "{\"n\":Infinity}",
	    "{\"s\":\"a\tb\"}",
	    "{\"s\":\"\\x\"}",
	    "{\"s\":\"\\u12\"}",
	    "{\"s\":\"\\ud800\"}",
	    "{\"s\":\"\\udc00\\ud800\"}",
	    "{\"n\":tru}",
	    "\xef\xbb\xbf{\"type\":\"bom\"}",
	};
	struct sse_stats st;
	char in[512], *got;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		snprintf(in, sizeof(in),
		    "data: %s\n\ndata: {\"type\":\"ok\"}\n\n", bad[i]);
		got = run1(in, MAX, &st);
		if (strcmp(got, "0|{\"type\":\"ok\"}\n") != 0 ||
		    st.skipped_invalid != 1) {
			printf("  %s -> %s", bad[i], got);
			free(got);
			T_FAIL("bad payload %zu not skipped", i);
		}
		free(got);
	}
}

TEST(valid_json_edge_cases)
{
	/* Escapes, a surrogate pair, 63-digit numbers, nesting, literals. */
	ASSERT_EVENTS("data: {\"type\":\"e\",\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t"
	              "\\u00e9\\ud83d\\ude00\"}\n\n",
	    "0|{\"type\":\"e\",\"s\":\"\\\"\\\\/\\b\\f\\n\\r\\t\xc3\xa9"
	    "\xf0\x9f\x98\x80\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"n\",\"a\":[-0,0.5,1e3,-2.5E-3,true,"
	              "false,null,{},[]]}\n\n",
	    "0|{\"type\":\"n\",\"a\":[-0,0.5,1000,-0.0025,true,false,null,{},"
	    "[]]}\n");
	ASSERT_EVENTS(
	    "data: {\"type\":\"n\",\"n\":"
	    "123456789012345678901234567890123456789012345678901234567890123}"
	    "\n\n",
	    "0|{\"type\":\"n\",\"n\":1.2345678901234569e+62}\n");
}

TEST(long_numbers_as_cjson_reads_them)
{
	static const char num[] =
	    "{\"n\":12345678901234567890123456789012345678901234567890123456789"
	    "01234567890}";
	cJSON *probe = cJSON_Parse(num);
	struct sse_stats st;
	char in[256], *got;

	/* Parsed when the linked cJSON can, else skipped; never -ENOMEM. */
	snprintf(in, sizeof(in), "data: %s\n\n", num);
	got = run1(in, MAX, &st);
	if (probe != NULL) {
		ASSERT_STREQ(got,
		    "0|{\"type\":\"unknown\",\"n\":1.2345678901234567e+69}\n");
	} else {
		ASSERT_STREQ(got, "");
		ASSERT_EQ(st.skipped_invalid, 1);
	}
	free(got);
	cJSON_Delete(probe);
}

TEST(nesting_limit)
{
	char in[2 * SSE_MAX_DEPTH + 64], *got;
	struct sse_stats st;
	size_t i, n;

	/* SSE_MAX_DEPTH levels in all (the object counts): accepted. */
	n = (size_t)snprintf(in, sizeof(in), "data: {\"type\":\"deep\",\"a\":");
	for (i = 0; i < SSE_MAX_DEPTH - 1; i++)
		in[n++] = '[';
	for (i = 0; i < SSE_MAX_DEPTH - 1; i++)
		in[n++] = ']';
	memcpy(in + n, "}\n\n", 4);
	got = run1(in, MAX, &st);
	ASSERT_EQ(st.events, 1);
	free(got);
	/* One more: skipped. */
	n = (size_t)snprintf(in, sizeof(in), "data: {\"type\":\"deep\",\"a\":");
	for (i = 0; i < SSE_MAX_DEPTH; i++)
		in[n++] = '[';
	for (i = 0; i < SSE_MAX_DEPTH; i++)
		in[n++] = ']';
	memcpy(in + n, "}\n\n", 4);
	got = run1(in, MAX, &st);
	ASSERT_EQ(st.events, 0);
	ASSERT_EQ(st.skipped_invalid, 1);
	free(got);
}

TEST(non_object_skipped)
{
	struct sse_stats st;
	char *got;

	got = run1("data: [1,2]\n\ndata: 42\n\ndata: \"str\"\n\ndata: null\n\n"
	           "data: true\n\ndata: {\"type\":\"ok\"}\n\n",
	    MAX, &st);
	ASSERT_STREQ(got, "0|{\"type\":\"ok\"}\n");
	ASSERT_EQ(st.skipped_invalid, 5);
	ASSERT_EQ(st.frames, 6);
	free(got);
}

TEST(subtype_init_success_dropped)
{
	struct sse_stats st;
	char *got;

	got = run1("data: {\"type\":\"system\",\"subtype\":\"init\"}\n\n"
	           "data: {\"type\":\"result\",\"subtype\":\"success\"}\n\n"
	           "data: {\"subtype\":\"init\"}\n\n"
	           "data: {\"type\":\"system\",\"subtype\":\"other\"}\n\n"
	           "data: {\"type\":\"system\",\"subtype\":1}\n\n",
	    MAX, &st);
	ASSERT_STREQ(got,
	    "0|{\"type\":\"system\",\"subtype\":\"other\"}\n"
	    "0|{\"type\":\"system\",\"subtype\":1}\n");
	ASSERT_EQ(st.dropped_system, 3);
	ASSERT_EQ(st.events, 2);
	free(got);
}

TEST(type_missing_or_not_string)
{
	ASSERT_EVENTS("data: {\"a\":1}\n\n",
	    "0|{\"type\":\"unknown\",\"a\":1}\n");
	ASSERT_EVENTS("data: {\"a\":1,\"type\":5}\n\n",
	    "0|{\"type\":\"unknown\",\"a\":1}\n");
	ASSERT_EVENTS("data: {}\n\n", "0|{\"type\":\"unknown\"}\n");
	/* Unnamed types keep their name; the last duplicate wins. */
	ASSERT_EVENTS("data: {\"type\":\"RUNNER_DIAG\",\"x\":[]}\n\n",
	    "0|{\"type\":\"RUNNER_DIAG\",\"x\":[]}\n");
	ASSERT_EVENTS("data: {\"type\":\"a\",\"x\":1,\"type\":\"text-delta\","
	              "\"delta\":\"d\"}\n\n",
	    "0|{\"x\":1,\"type\":\"text-delta\",\"delta\":\"d\"}\n");
}

TEST(delta_fields_normalised)
{
	ASSERT_EVENTS("data: {\"type\":\"text-delta\"}\n\n",
	    "0|{\"type\":\"text-delta\",\"delta\":\"\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"text-delta\",\"delta\":7}\n\n",
	    "0|{\"type\":\"text-delta\",\"delta\":\"\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"text-delta\",\"delta\":\"a\","
	              "\"delta\":\"b\"}\n\n",
	    "0|{\"type\":\"text-delta\",\"delta\":\"b\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"reasoning-delta\",\"text\":\"r\"}\n\n",
	    "0|{\"type\":\"reasoning-delta\",\"text\":\"r\",\"delta\":\"r\"}"
	    "\n");
	ASSERT_EVENTS("data: {\"type\":\"thinking-delta\",\"delta\":\"\","
	              "\"text\":\"t\"}\n\n",
	    "0|{\"type\":\"thinking-delta\",\"text\":\"t\",\"delta\":\"t\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"plan-delta\",\"plan\":\"p\"}\n\n",
	    "0|{\"type\":\"plan-delta\",\"plan\":\"p\",\"delta\":\"p\"}\n");
	ASSERT_EVENTS(
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"t\","
	    "\"delta\":\"{}\"}\n\n",
	    "0|{\"type\":\"tool-call-delta\",\"toolCallId\":\"t\","
	    "\"delta\":\"{}\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"todo-update\",\"tool_call_id\":\"t\","
	              "\"todos\":[{\"id\":1},2,\"x\",{\"id\":2}]}\n\n",
	    "0|{\"type\":\"todo-update\",\"tool_call_id\":\"t\","
	    "\"toolCallId\":\"t\",\"todos\":[{\"id\":1},{\"id\":2}]}\n");
	ASSERT_EVENTS("data: {\"type\":\"todo-update\",\"toolCallId\":\"u\","
	              "\"todos\":5}\n\n",
	    "0|{\"type\":\"todo-update\",\"toolCallId\":\"u\",\"todos\":[]}\n");
}

/* Claude-native translations (§6.3), each input -> exact event. */
static const char *const xlat[][2] = {
    {"{\"type\":\"content_block_delta\",\"id\":\"b\",\"delta\":{\"type\":"
     "\"text_delta\",\"text\":\"hi\"}}",
        "2|{\"type\":\"text-delta\",\"id\":\"b\",\"delta\":\"hi\","
        "\"native\":\"content_block_delta\"}\n"},
    {"{\"type\":\"content_block_delta\",\"id\":\"b\",\"delta\":{\"type\":"
     "\"thinking_delta\",\"text\":\"hm\"}}",
        "2|{\"type\":\"thinking-delta\",\"id\":\"b\",\"delta\":\"hm\","
        "\"native\":\"content_block_delta\"}\n"},
    {"{\"type\":\"content_block_delta\",\"id\":\"b\",\"delta\":{\"type\":"
     "\"plan_delta\",\"text\":\"1.\"}}",
        "2|{\"type\":\"plan-delta\",\"id\":\"b\",\"delta\":\"1.\","
        "\"native\":\"content_block_delta\"}\n"},
    {"{\"type\":\"content_block_delta\",\"id\":\"toolu_1\",\"delta\":{"
     "\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"q\\\":\"}}",
        "2|{\"type\":\"tool-call-delta\",\"id\":\"toolu_1\",\"toolCallId\":"
        "\"toolu_1\",\"delta\":\"{\\\"q\\\":\",\"native\":"
        "\"content_block_delta\"}\n"},
    {"{\"type\":\"content_block_delta\",\"delta\":{\"type\":\"other\"}}",
        "0|{\"type\":\"content_block_delta\",\"delta\":{\"type\":"
        "\"other\"}}\n"},
    {"{\"type\":\"content_block_delta\",\"delta\":\"str\"}",
        "0|{\"type\":\"content_block_delta\",\"delta\":\"str\"}\n"},
    {"{\"type\":\"content_block_start\",\"id\":\"b\",\"content_block\":{"
     "\"type\":\"text\"}}",
        "2|{\"type\":\"text-start\",\"content_block\":{\"type\":\"text\"},"
        "\"id\":\"b\",\"native\":\"content_block_start\"}\n"},
    {"{\"type\":\"content_block_start\",\"content_block\":{\"type\":"
     "\"thinking\",\"id\":\"c\"}}",
        "2|{\"type\":\"thinking-start\",\"content_block\":{\"type\":"
        "\"thinking\",\"id\":\"c\"},\"id\":\"c\",\"native\":"
        "\"content_block_start\"}\n"},
    {"{\"type\":\"content_block_start\",\"block_type\":\"plan\"}",
        "2|{\"type\":\"plan-start\",\"block_type\":\"plan\",\"id\":null,"
        "\"native\":\"content_block_start\"}\n"},
    {"{\"type\":\"content_block_start\",\"id\":\"toolu_2\","
     "\"content_block\":{\"type\":\"tool_use\",\"name\":\"gmail\"}}",
        "2|{\"type\":\"tool-call-start\",\"id\":\"toolu_2\",\"content_block\":"
        "{\"type\":\"tool_use\",\"name\":\"gmail\"},\"toolCallId\":\"toolu_2\","
        "\"toolName\":\"gmail\",\"native\":\"content_block_start\"}\n"},
    {"{\"type\":\"content_block_start\",\"name\":\"web\",\"content_block\":"
     "{\"type\":\"tool_use\",\"id\":\"toolu_3\"}}",
        "2|{\"type\":\"tool-call-start\",\"name\":\"web\",\"content_block\":"
        "{\"type\":\"tool_use\",\"id\":\"toolu_3\"},\"toolCallId\":"
        "\"toolu_3\",\"toolName\":\"web\",\"native\":"
        "\"content_block_start\"}\n"},
    {"{\"type\":\"content_block_start\",\"content_block\":{\"type\":"
     "\"image\"}}",
        "0|{\"type\":\"content_block_start\",\"content_block\":{\"type\":"
        "\"image\"}}\n"},
    {"{\"type\":\"content_block_stop\",\"index\":0}",
        "0|{\"type\":\"content_block_stop\",\"index\":0}\n"},
    {"{\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\"}}",
        "2|{\"type\":\"message-start\",\"message\":{\"id\":\"msg_1\"},"
        "\"messageId\":\"msg_1\",\"native\":\"message_start\"}\n"},
    {"{\"type\":\"message_stop\",\"message_id\":\"msg_1\"}",
        "2|{\"type\":\"message-end\",\"message_id\":\"msg_1\",\"messageId\":"
        "\"msg_1\",\"native\":\"message_stop\"}\n"},
    {"{\"type\":\"message_complete\"}",
        "2|{\"type\":\"message-end\",\"messageId\":null,\"native\":"
        "\"message_complete\"}\n"},
    {"{\"type\":\"message_delta\",\"id\":\"m\",\"delta\":{\"text\":\"x\"}}",
        "2|{\"type\":\"text-delta\",\"id\":\"m\",\"delta\":\"x\",\"native\":"
        "\"message_delta\"}\n"},
    {"{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}",
        "0|{\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"}}\n"},
    {"{\"type\":\"tool_use\",\"id\":\"toolu_4\",\"name\":\"bash\","
     "\"input\":{}}",
        "2|{\"type\":\"tool-call-start\",\"id\":\"toolu_4\",\"name\":\"bash\","
        "\"input\":{},\"toolCallId\":\"toolu_4\",\"toolName\":\"bash\","
        "\"native\":\"tool_use\"}\n"},
    {"{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_4\",\"content\":"
     "[{\"type\":\"text\",\"text\":\"ok\"}],\"is_error\":false}",
        "2|{\"type\":\"tool-result-end\",\"tool_use_id\":\"toolu_4\","
        "\"is_error\":false,\"toolCallId\":\"toolu_4\",\"result\":[{\"type\":"
        "\"text\",\"text\":\"ok\"}],\"native\":\"tool_result\"}\n"},
    {"{\"type\":\"tool_result\",\"id\":\"toolu_5\",\"result\":\"r\"}",
        "2|{\"type\":\"tool-result-end\",\"id\":\"toolu_5\",\"result\":\"r\","
        "\"toolCallId\":\"toolu_5\",\"native\":\"tool_result\"}\n"},
    {"{\"type\":\"tool_result\",\"id\":\"toolu_6\",\"content\":null,"
     "\"result\":\"r\"}",
        "2|{\"type\":\"tool-result-end\",\"id\":\"toolu_6\",\"toolCallId\":"
        "\"toolu_6\",\"result\":null,\"native\":\"tool_result\"}\n"},
    {"{\"type\":\"tool_result\"}",
        "2|{\"type\":\"tool-result-end\",\"toolCallId\":null,\"result\":null,"
        "\"native\":\"tool_result\"}\n"},
};

TEST(claude_native_translations)
{
	char in[1024], *got;
	size_t i;

	for (i = 0; i < sizeof(xlat) / sizeof(*xlat); i++) {
		snprintf(in, sizeof(in), "data: %s\n\n", xlat[i][0]);
		got = run1(in, MAX, NULL);
		if (strcmp(got, xlat[i][1]) != 0) {
			printf("  in:   %s\n  got:  %s  want: %s", xlat[i][0],
			    got, xlat[i][1]);
			free(got);
			T_FAIL("translation %zu", i);
		}
		free(got);
	}
}

TEST(oversize_frame_discarded_next_parsed)
{
	static const char frame_a[] = "data: {\"type\":\"a\",\"pad\":\"";
	static const char pad_b[] = "{\"type\":\"b\",\"pad\":\"";
	static const char pad_c[] = "{\"type\":\"c\",\"pad\":\"";
	static const char x43[] = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	struct sse_parser p;
	struct coll c = {0};
	char line[100], frame[256], want[256];
	int i;

	sse_init(&p, 64);
	ASSERT_OK(sse_feed(&p, (const uint8_t *)frame_a, strlen(frame_a),
	    coll_cb, &c));
	memset(line, 'x', sizeof(line));
	/* 10 KB of one frame, in pieces: the buffer never passes the cap. */
	for (i = 0; i < 100; i++) {
		ASSERT_OK(sse_feed(&p, (const uint8_t *)line, sizeof(line),
		    coll_cb, &c));
		ASSERT(p.cap <= 64 + 1);
		ASSERT(p.len <= 64);
	}
	ASSERT_OK(feed_str(&p, "\"}\ndata: more\n\n", &c));
	ASSERT_EQ(p.stats.dropped_oversize, 1);
	ASSERT_EQ(p.stats.frames, 0);
	/* Exactly 64 bytes of data is within the cap. */
	snprintf(frame, sizeof(frame), "data: %s%.43s\"}\n\n", pad_b, x43);
	ASSERT_EQ(strlen(frame) - 8, 64);
	ASSERT_OK(feed_str(&p, frame, &c));
	snprintf(want, sizeof(want), "0|%s%.43s\"}\n", pad_b, x43);
	ASSERT_STREQ(coll_log(&c), want);
	/* 56 + 8 bytes in two lines: 65 with the joining \n, over the cap. */
	snprintf(frame, sizeof(frame),
	    "data: %s%.37s\ndata: xxxxxx\"}\n\ndata: {\"type\":\"d\"}\n\n",
	    pad_c, x43);
	ASSERT_OK(feed_str(&p, frame, &c));
	ASSERT_EQ(p.stats.dropped_oversize, 2);
	ASSERT_EQ(p.stats.frames, 2);
	snprintf(want, sizeof(want), "0|%s%.43s\"}\n0|{\"type\":\"d\"}\n",
	    pad_b, x43);
	ASSERT_STREQ(coll_log(&c), want);
	sse_done(&p);
	free(c.log);
}

TEST(non_data_lines_cost_no_memory)
{
	struct sse_parser p;
	struct coll c = {0};
	char line[4096];
	int i;

	sse_init(&p, 16);
	memset(line, 'e', sizeof(line));
	ASSERT_OK(feed_str(&p, ": ", &c));
	for (i = 0; i < 256; i++)
		ASSERT_OK(sse_feed(&p, (const uint8_t *)line, sizeof(line),
		    coll_cb, &c));
	ASSERT(p.buf == NULL);
	ASSERT_OK(feed_str(&p, "\ndata: {\"type\":\"k\"}\n\n", &c));
	ASSERT_EQ(p.stats.dropped_oversize, 0);
	ASSERT_STREQ(coll_log(&c), "0|{\"type\":\"k\"}\n");
	sse_done(&p);
	free(c.log);
}

TEST(eof_mid_frame_is_a_final_frame)
{
	ASSERT_EVENTS("data: {\"type\":\"a\"}", "0|{\"type\":\"a\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"a\"}\n", "0|{\"type\":\"a\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"a\"}\r", "0|{\"type\":\"a\"}\n");
	ASSERT_EVENTS("data: {\"type\":\ndata: \"b\"}", "0|{\"type\":\"b\"}\n");
	ASSERT_EVENTS("data: [DONE]", "1|{\"type\":\"done\"}\n");
	ASSERT_EVENTS("data: {\"type\":\"a\"}\n\n: bye",
	    "0|{\"type\":\"a\"}\n");
	ASSERT_EVENTS("", "");
}

TEST(finish_resets_for_a_new_stream)
{
	struct sse_parser p;
	struct coll c = {0};

	sse_init(&p, MAX);
	ASSERT_OK(feed_str(&p, "data: {\"type\":\"a\"}\r", &c));
	ASSERT_OK(sse_finish(&p, coll_cb, &c));
	/* The \r ended the old stream: this \n is a blank line, no more. */
	ASSERT_OK(feed_str(&p, "\ndata: {\"type\":\"b\"}\n\n", &c));
	ASSERT_OK(sse_finish(&p, coll_cb, &c));
	ASSERT_STREQ(coll_log(&c), "0|{\"type\":\"a\"}\n0|{\"type\":\"b\"}\n");
	ASSERT_EQ(p.stats.events, 2);
	sse_done(&p);
	sse_done(&p);
	free(c.log);
}

TEST(utf8_split_inside_a_character)
{
	/* 2-, 3- and 4-byte characters; cut inside each of them. */
	static const char in[] = "data: {\"type\":\"text-delta\",\"delta\":"
	                         "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"
	                         "\n\n";
	static const char want[] = "0|{\"type\":\"text-delta\",\"delta\":"
	                           "\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}"
	                           "\n";
	const char *start = strstr(in, "\xc3");
	size_t base = (size_t)(start - in), k, cut;
	char *got;

	for (k = 1; k < 9; k++) {
		cut = base + k;
		got = run_cuts(in, strlen(in), &cut, 1, MAX, NULL);
		ASSERT_STREQ(got, want);
		free(got);
	}
}

TEST(invalid_utf8_replaced)
{
	/* A stray continuation byte, a truncated 3-byte sequence, an
	 * overlong 0xc0, a surrogate 0xed 0xa0 0x80: each maximal invalid
	 * part becomes one U+FFFD. */
	ASSERT_EVENTS("data: {\"type\":\"t\",\"s\":\"a\x80"
	              "b\xe2\x82"
	              "c\xc0\xaf"
	              "d\xed\xa0\x80\"}\n\n",
	    "0|{\"type\":\"t\",\"s\":\"a\xef\xbf\xbd"
	    "b\xef\xbf\xbd"
	    "c\xef\xbf\xbd\xef\xbf\xbd"
	    "d\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}\n");
	/* Outside strings it stays invalid JSON. */
	ASSERT_EVENTS("data: {\"type\":\"t\"}\xff\n\n", "");
}

TEST(unicode_whitespace_trimmed)
{
	/* U+00A0 and U+3000 around the payload, as Python's strip(). */
	ASSERT_EVENTS("data: \xc2\xa0[DONE]\xe3\x80\x80\n\n",
	    "1|{\"type\":\"done\"}\n");
	ASSERT_EVENTS("data: \x1c{\"type\":\"a\"}\xe2\x80\xa8\n\n",
	    "0|{\"type\":\"a\"}\n");
}

TEST(callback_error_stops_and_sticks)
{
	static const char in[] = "data: {\"type\":\"a\"}\n\n"
	                         "data: {\"type\":\"b\"}\n\n"
	                         "data: {\"type\":\"c\"}\n\n";
	struct sse_parser p;
	struct coll c = {.fail_at = 2};

	sse_init(&p, MAX);
	ASSERT_EQ(sse_feed(&p, (const uint8_t *)in, strlen(in), coll_cb, &c),
	    -ECANCELED);
	ASSERT_EQ(c.n, 2);
	ASSERT_EQ(sse_feed(&p, (const uint8_t *)in, strlen(in), coll_cb, &c),
	    -ECANCELED);
	ASSERT_EQ(sse_finish(&p, coll_cb, &c), -ECANCELED);
	ASSERT_EQ(c.n, 2);
	ASSERT_STREQ(coll_log(&c), "0|{\"type\":\"a\"}\n");
	sse_done(&p);
	free(c.log);
}

TEST(callback_may_take_the_event)
{
	struct sse_parser p;
	struct coll c = {0};
	const cJSON *e;

	c.taken = cJSON_CreateArray();
	sse_init(&p, MAX);
	ASSERT_OK(
	    feed_str(&p, "data: {\"type\":\"a\"}\n\ndata: [DONE]\n\n", &c));
	sse_done(&p);
	ASSERT_EQ(cJSON_GetArraySize(c.taken), 2);
	e = cJSON_GetArrayItem(c.taken, 1);
	ASSERT_STREQ(cJSON_GetObjectItemCaseSensitive(e, "type")->valuestring,
	    "done");
	cJSON_Delete(c.taken);
	free(c.log);
}

TEST(terminal_types)
{
	static const char *const failures[] = {
	    "sdk_error",
	    "AGENT_RUNNER_DIED",
	    "RUNNER_LIFECYCLE_ERROR",
	    "SANDBOX_BOOT_TIMEOUT",
	    "SANDBOX_QUOTA_EXHAUSTED",
	    "SANDBOX_UNAVAILABLE",
	    "SNAPSHOT_VERSION_MISMATCH",
	};
	size_t i;

	for (i = 0; i < sizeof(failures) / sizeof(*failures); i++) {
		ASSERT(sse_type_is_terminal_failure(failures[i]));
		ASSERT(sse_type_is_terminal(failures[i]));
	}
	ASSERT(sse_type_is_terminal("done"));
	ASSERT(sse_type_is_terminal("cancelled"));
	ASSERT(!sse_type_is_terminal_failure("done"));
	ASSERT(!sse_type_is_terminal_failure("cancelled"));
	ASSERT(!sse_type_is_terminal_failure("error"));
	ASSERT(!sse_type_is_terminal("error"));
	ASSERT(!sse_type_is_terminal("mcp_error"));
	ASSERT(!sse_type_is_terminal("rate_limit"));
	ASSERT(!sse_type_is_terminal("sdk_error "));
	ASSERT(!sse_type_is_terminal(NULL));
	ASSERT(!sse_type_is_terminal_failure(NULL));
}

/* cJSON allocations failing after a countdown. */
static long oom_countdown = -1;

static void *
oom_malloc(size_t n)
{
	if (oom_countdown == 0)
		return NULL;
	if (oom_countdown > 0)
		oom_countdown--;
	return malloc(n);
}

TEST(allocation_failure_is_enomem)
{
	static const char in[] =
	    "data: {\"type\":\"metadata\",\"payload\":{\"run_id\":1}}\n\n"
	    "data: {\"type\":\"content_block_start\",\"id\":\"t\","
	    "\"content_block\":{\"type\":\"tool_use\",\"name\":\"n\"}}\n\n"
	    "data: {\"type\":\"tool_result\",\"tool_use_id\":\"t\","
	    "\"content\":[1]}\n\n"
	    "data: {\"type\":\"todo-update\",\"tool_call_id\":\"t\","
	    "\"todos\":[{},1]}\n\n"
	    "data: {\"type\":\"ping\"}\n\n"
	    "data: [DONE]\n\n";
	cJSON_Hooks hooks = {.malloc_fn = oom_malloc, .free_fn = free};
	char *want = run1(in, MAX, NULL);
	struct sse_parser p;
	struct coll c;
	long n;
	int r = -ENOMEM, fails = 0;

	for (n = 0; r == -ENOMEM && n < 10000; n++) {
		c = (struct coll){0};
		sse_init(&p, MAX);
		cJSON_InitHooks(&hooks);
		oom_countdown = n;
		r = sse_feed(&p, (const uint8_t *)in, strlen(in), coll_cb, &c);
		oom_countdown = -1;
		cJSON_InitHooks(NULL);
		if (r == -ENOMEM) {
			fails++;
			ASSERT_EQ(sse_finish(&p, coll_cb, &c), -ENOMEM);
		} else {
			ASSERT_EQ(r, 0);
			ASSERT_STREQ(coll_log(&c), want);
		}
		sse_done(&p);
		free(c.log);
	}
	ASSERT(fails > 10);
	ASSERT_EQ(r, 0);
	free(want);
}

int
main(void)
{
	RUN(big_stream_one_shot);
	RUN(split_one_byte_at_a_time);
	RUN(split_every_two_way);
	RUN(split_random_pieces);
	RUN(line_endings_lf_crlf_cr);
	RUN(cr_lf_across_feeds_is_one_line_end);
	RUN(comments_and_keepalives);
	RUN(only_exact_data_lines);
	RUN(blank_means_empty);
	RUN(multi_line_data_joined_with_newline);
	RUN(done_forms);
	RUN(invalid_json_skipped_stream_continues);
	RUN(valid_json_edge_cases);
	RUN(long_numbers_as_cjson_reads_them);
	RUN(nesting_limit);
	RUN(non_object_skipped);
	RUN(subtype_init_success_dropped);
	RUN(type_missing_or_not_string);
	RUN(delta_fields_normalised);
	RUN(claude_native_translations);
	RUN(oversize_frame_discarded_next_parsed);
	RUN(non_data_lines_cost_no_memory);
	RUN(eof_mid_frame_is_a_final_frame);
	RUN(finish_resets_for_a_new_stream);
	RUN(utf8_split_inside_a_character);
	RUN(invalid_utf8_replaced);
	RUN(unicode_whitespace_trimmed);
	RUN(callback_error_stops_and_sticks);
	RUN(callback_may_take_the_event);
	RUN(terminal_types);
	RUN(allocation_failure_is_enomem);
	return t_done();
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for runacc, fed through the real sse parser: text, reasoning
 * and plan, tool calls, errors and terminal failures, run id, usage, stop
 * reason, reset and the caps. Results are compared as exact JSON text.
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
#include "t.h"

static int
acc_cb(struct sse_event *ev, void *arg)
{
	return runacc_feed(arg, ev->json);
}

/* Feeds a whole SSE stream to a; returns sse's result. */
static int
feed_stream(struct runacc *a, const char *s)
{
	struct sse_parser p;
	int r;

	sse_init(&p, SSE_MAX_FRAME_DEFAULT);
	r = sse_feed(&p, (const uint8_t *)s, strlen(s), acc_cb, a);
	if (r == 0)
		r = sse_finish(&p, acc_cb, a);
	sse_done(&p);
	return r;
}

/* Feeds one event given as JSON text, bypassing sse. */
static int
feed_json(struct runacc *a, const char *json)
{
	cJSON *ev = cJSON_Parse(json);
	int r;

	if (ev == NULL)
		abort();
	r = runacc_feed(a, ev);
	cJSON_Delete(ev);
	return r;
}

/* The result as compact JSON text; caller frees. */
static char *
result_str(const struct runacc *a)
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

/* A member of the result, as compact JSON text; caller frees. */
static char *
result_member(const struct runacc *a, const char *key)
{
	cJSON *res = runacc_result(a);
	char *s;

	if (res == NULL)
		abort();
	s = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(res, key));
	cJSON_Delete(res);
	if (s == NULL)
		abort();
	return s;
}

#define ASSERT_MEMBER(a, key, want)                                            \
	do {                                                                   \
		char *got_ = result_member((a), (key));                        \
		int ok_ = strcmp(got_, (want)) == 0;                           \
		if (!ok_)                                                      \
			printf("  %s: got %s\n  want %s\n", (key), got_,       \
			    (want));                                           \
		free(got_);                                                    \
		ASSERT(ok_);                                                   \
	} while (0)

/* The wire example of upstream-api.md §6.2. */
static const char wire_example[] =
    "data: {\"type\": \"metadata\", \"payload\": {\"run_id\": 42}}\n\n"
    "data: {\"type\": \"text-start\", \"id\": \"txt_1\"}\n\n"
    "data: {\"type\": \"text-delta\", \"id\": \"txt_1\", \"delta\": \"Hello "
    "world\"}\n\n"
    "data: {\"type\": \"text-end\", \"id\": \"txt_1\"}\n\n"
    "data: {\"type\": \"tool-call-start\", \"toolCallId\": \"toolu_2\", "
    "\"toolName\": \"gmail\"}\n\n"
    "data: {\"type\": \"tool-call-delta\", \"toolCallId\": \"toolu_2\", "
    "\"delta\": \"{}\"}\n\n"
    "data: {\"type\": \"tool-call-end\", \"toolCallId\": \"toolu_2\"}\n\n"
    "data: {\"type\": \"tool-result-end\", \"toolCallId\": \"toolu_2\", "
    "\"result\": null}\n\n"
    "data: [DONE]\n\n";

static const char wire_result[] =
    "{\"run_id\":42,\"text\":\"Hello world\",\"reasoning\":\"\",\"plan\":\"\","
    "\"errors\":[],\"has_errors\":false,\"stop_reason\":null,"
    "\"finished\":true,\"truncated\":false,\"tool_calls\":[{\"id\":"
    "\"toolu_2\",\"name\":\"gmail\",\"arguments\":\"{}\",\"result\":null,"
    "\"completed\":true,\"todos\":null}],\"usage\":null}";

TEST(wire_example_result)
{
	struct runacc a;
	int64_t id = 0;
	char *s;

	runacc_init(&a);
	ASSERT_EQ(runacc_run_id(&a, &id), -ENODATA);
	ASSERT(!runacc_finished(&a));
	ASSERT_OK(feed_stream(&a, wire_example));
	s = result_str(&a);
	ASSERT_STREQ(s, wire_result);
	free(s);
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 42);
	ASSERT(runacc_finished(&a));
	runacc_done(&a);
}

TEST(empty_result)
{
	struct runacc a;
	char *s;

	runacc_init(&a);
	s = result_str(&a);
	ASSERT_STREQ(s,
	    "{\"run_id\":null,\"text\":\"\",\"reasoning\":\"\","
	    "\"plan\":\"\",\"errors\":[],\"has_errors\":false,"
	    "\"stop_reason\":null,\"finished\":false,"
	    "\"truncated\":false,\"tool_calls\":[],\"usage\":null}");
	free(s);
	runacc_done(&a);
	runacc_done(&a);
}

TEST(text_from_every_source)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"text-delta\",\"delta\":\"a\"}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":"
	    "\"text_delta\",\"text\":\"b\"}}\n\n"
	    "data: {\"type\":\"message_delta\",\"delta\":{\"text\":\"c\"}}\n\n"
	    "data: {\"type\":\"text-delta\"}\n\n"
	    "data: {\"type\":\"text-delta\",\"delta\":\"\xc3\xa9\\n\"}\n\n"
	    "data: {\"type\":\"reasoning-delta\",\"delta\":\"not text\"}\n\n"
	    "data: {\"type\":\"text-end\"}\n\n"));
	ASSERT_MEMBER(&a, "text", "\"abc\xc3\xa9\\n\"");
	ASSERT_MEMBER(&a, "finished", "false");
	runacc_done(&a);
}

TEST(reasoning_and_plan_boundaries)
{
	struct runacc a;

	runacc_init(&a);
	/* A boundary on an empty buffer adds nothing; after a part not
	 * ending in \n it adds one; after "" too (the SDK looks at the last
	 * part, not at the text). */
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"reasoning-start\"}\n\n"
	    "data: {\"type\":\"reasoning-delta\",\"delta\":\"a\"}\n\n"
	    "data: {\"type\":\"reasoning-end\"}\n\n"
	    "data: {\"type\":\"thinking-start\"}\n\n"
	    "data: {\"type\":\"thinking-delta\",\"text\":\"b\\n\"}\n\n"
	    "data: {\"type\":\"thinking-end\"}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":"
	    "\"thinking_delta\",\"text\":\"c\"}}\n\n"
	    "data: {\"type\":\"content_block_start\",\"content_block\":{"
	    "\"type\":\"thinking\"}}\n\n"
	    "data: {\"type\":\"reasoning-delta\",\"delta\":\"\"}\n\n"
	    "data: {\"type\":\"reasoning-end\"}\n\n"
	    "data: {\"type\":\"plan-end\"}\n\n"
	    "data: {\"type\":\"plan-delta\",\"plan\":\"1. x\"}\n\n"
	    "data: {\"type\":\"plan-start\"}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"delta\":{\"type\":"
	    "\"plan_delta\",\"text\":\"2. y\"}}\n\n"
	    "data: {\"type\":\"plan-delta\",\"text\":\"!\"}\n\n"));
	ASSERT_MEMBER(&a, "reasoning", "\"a\\nb\\nc\\n\\n\"");
	ASSERT_MEMBER(&a, "plan", "\"1. x\\n2. y!\"");
	ASSERT_MEMBER(&a, "text", "\"\"");
	runacc_done(&a);
}

TEST(tool_calls_lifecycle)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    /* Deltas and ends for unknown ids are ignored. */
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"x\","
	    "\"delta\":\"lost\"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"x\","
	    "\"delta\":\"lost\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"x\","
	    "\"result\":1}\n\n"
	    /* t1: arguments in pieces, result from deltas (end says null). */
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"t1\","
	    "\"toolName\":\"search\"}\n\n"
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"t1\","
	    "\"delta\":\"{\\\"q\\\":\"}\n\n"
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"t1\","
	    "\"delta\":\"\\\"c\\\"}\"}\n\n"
	    "data: {\"type\":\"tool-result-start\",\"toolCallId\":\"t1\"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"t1\","
	    "\"delta\":\"r1 \"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"t1\","
	    "\"delta\":\"r2\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"t1\","
	    "\"result\":null}\n\n"
	    /* t2: created by its end; result from tool-result-end. */
	    "data: {\"type\":\"tool-call-end\",\"toolCallId\":\"t2\"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"t2\","
	    "\"delta\":\"ignored\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"t2\","
	    "\"result\":{\"ok\":true}}\n\n"
	    /* t3: created by tool-result-start, never completed. */
	    "data: {\"type\":\"tool-result-start\",\"toolCallId\":\"t3\"}\n\n"
	    /* t4: todos, with the snake_case id; non-objects dropped. */
	    "data: {\"type\":\"todo-update\",\"tool_call_id\":\"t4\","
	    "\"todos\":[{\"id\":\"1\",\"content\":\"c\",\"status\":"
	    "\"pending\"},7]}\n\n"
	    /* A start without an id is ignored. */
	    "data: {\"type\":\"tool-call-start\",\"toolName\":\"n\"}\n\n"
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"\"}\n\n"
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":5}\n\n"));
	ASSERT_MEMBER(&a, "tool_calls",
	    "[{\"id\":\"t1\",\"name\":\"search\",\"arguments\":"
	    "\"{\\\"q\\\":\\\"c\\\"}\",\"result\":\"r1 r2\",\"completed\":true,"
	    "\"todos\":null},"
	    "{\"id\":\"t2\",\"name\":null,\"arguments\":\"\",\"result\":{"
	    "\"ok\":"
	    "true},\"completed\":true,\"todos\":null},"
	    "{\"id\":\"t3\",\"name\":null,\"arguments\":\"\",\"result\":null,"
	    "\"completed\":false,\"todos\":null},"
	    "{\"id\":\"t4\",\"name\":null,\"arguments\":\"\",\"result\":null,"
	    "\"completed\":false,\"todos\":[{\"id\":\"1\",\"content\":\"c\","
	    "\"status\":\"pending\"}]}]");
	runacc_done(&a);
}

TEST(tool_call_start_again_resets_in_place)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"a\","
	    "\"toolName\":\"one\"}\n\n"
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"b\"}\n\n"
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"a\","
	    "\"delta\":\"old\"}\n\n"
	    "data: {\"type\":\"tool-call-end\",\"toolCallId\":\"a\"}\n\n"
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"a\","
	    "\"toolName\":\"two\"}\n\n"
	    "data: {\"type\":\"tool-call-delta\",\"toolCallId\":\"a\","
	    "\"delta\":\"new\"}\n\n"));
	ASSERT_MEMBER(&a, "tool_calls",
	    "[{\"id\":\"a\",\"name\":\"two\",\"arguments\":\"new\",\"result\":"
	    "null,\"completed\":false,\"todos\":null},{\"id\":\"b\",\"name\":"
	    "null,\"arguments\":\"\",\"result\":null,\"completed\":false,"
	    "\"todos\":null}]");
	runacc_done(&a);
}

TEST(tool_results_falsy_and_snapshots)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    /* A falsy result falls back to the deltas, even later ones. */
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"f\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"f\","
	    "\"result\":0}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"f\","
	    "\"delta\":\"late\"}\n\n"
	    /* null with deltas so far: a snapshot of them. */
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"s\"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"s\","
	    "\"delta\":\"early\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"s\"}\n\n"
	    "data: {\"type\":\"tool-result-delta\",\"toolCallId\":\"s\","
	    "\"delta\":\"+late\"}\n\n"
	    /* Empty result and no deltas: null. */
	    "data: {\"type\":\"tool-call-start\",\"toolCallId\":\"e\"}\n\n"
	    "data: {\"type\":\"tool-result-end\",\"toolCallId\":\"e\","
	    "\"result\":\"\"}\n\n"));
	ASSERT_MEMBER(&a, "tool_calls",
	    "[{\"id\":\"f\",\"name\":null,\"arguments\":\"\",\"result\":"
	    "\"late\",\"completed\":true,\"todos\":null},"
	    "{\"id\":\"s\",\"name\":null,\"arguments\":\"\",\"result\":"
	    "\"early\",\"completed\":true,\"todos\":null},"
	    "{\"id\":\"e\",\"name\":null,\"arguments\":\"\",\"result\":null,"
	    "\"completed\":true,\"todos\":null}]");
	runacc_done(&a);
}

TEST(tool_calls_from_claude_native_frames)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"content_block_start\",\"id\":\"toolu_1\","
	    "\"content_block\":{\"type\":\"tool_use\",\"name\":\"bash\"}}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"id\":\"toolu_1\","
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
	    "\"{\\\"cmd\\\":\"}}\n\n"
	    "data: {\"type\":\"content_block_delta\",\"id\":\"toolu_1\","
	    "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
	    "\"\\\"ls\\\"}\"}}\n\n"
	    "data: {\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\","
	    "\"content\":[{\"type\":\"text\",\"text\":\"a.txt\"}]}\n\n"
	    "data: "
	    "{\"type\":\"tool_use\",\"id\":\"toolu_2\",\"name\":\"web\"}\n\n"
	    "data: {\"type\":\"tool_result\",\"id\":\"toolu_2\",\"result\":"
	    "\"page\"}\n\n"));
	ASSERT_MEMBER(&a, "tool_calls",
	    "[{\"id\":\"toolu_1\",\"name\":\"bash\",\"arguments\":"
	    "\"{\\\"cmd\\\":\\\"ls\\\"}\",\"result\":[{\"type\":\"text\","
	    "\"text\":\"a.txt\"}],\"completed\":true,\"todos\":null},"
	    "{\"id\":\"toolu_2\",\"name\":\"web\",\"arguments\":\"\","
	    "\"result\":"
	    "\"page\",\"completed\":true,\"todos\":null}]");
	runacc_done(&a);
}

TEST(errors_and_terminal_failures)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"error\",\"error\":\"boom\",\"error_code\":"
	    "\"x\"}\n\n"
	    "data: {\"type\":\"error\"}\n\n"
	    "data: {\"type\":\"error\",\"error\":null}\n\n"
	    "data: {\"type\":\"error\",\"error\":{\"code\":1}}\n\n"
	    "data: {\"type\":\"error\",\"error\":\"\"}\n\n"
	    /* Not failures: the run goes on. */
	    "data: {\"type\":\"mcp_error\",\"error\":\"mcp down\"}\n\n"
	    "data: {\"type\":\"rate_limit\",\"message\":\"slow\"}\n\n"));
	ASSERT_MEMBER(&a, "errors",
	    "[\"boom\",\"Unknown error\",\"Unknown error\","
	    "\"{\\\"code\\\":1}\",\"\"]");
	ASSERT_MEMBER(&a, "has_errors", "true");
	ASSERT(!runacc_finished(&a));
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"SANDBOX_BOOT_TIMEOUT\",\"error\":\"no boot\","
	    "\"message\":\"m\"}\n\n"
	    "data: {\"type\":\"AGENT_RUNNER_DIED\",\"error\":\"\",\"message\":"
	    "\"oom\"}\n\n"
	    "data: {\"type\":\"sdk_error\"}\n\n"
	    "data: "
	    "{\"type\":\"SANDBOX_QUOTA_EXHAUSTED\",\"error\":{\"a\":1}}\n\n"
	    "data: {\"type\":\"RUNNER_LIFECYCLE_ERROR\",\"message\":\"r\"}\n\n"
	    "data: {\"type\":\"SANDBOX_UNAVAILABLE\",\"error\":\"u\"}\n\n"
	    "data: {\"type\":\"SNAPSHOT_VERSION_MISMATCH\",\"message\":"
	    "\"v\"}\n\n"));
	ASSERT_MEMBER(&a, "errors",
	    "[\"boom\",\"Unknown error\",\"Unknown error\","
	    "\"{\\\"code\\\":1}\",\"\","
	    "\"SANDBOX_BOOT_TIMEOUT: no boot\",\"AGENT_RUNNER_DIED: oom\","
	    "\"sdk_error: sdk_error\","
	    "\"SANDBOX_QUOTA_EXHAUSTED: {\\\"a\\\":1}\","
	    "\"RUNNER_LIFECYCLE_ERROR: r\",\"SANDBOX_UNAVAILABLE: u\","
	    "\"SNAPSHOT_VERSION_MISMATCH: v\"]");
	ASSERT(runacc_finished(&a));
	ASSERT_MEMBER(&a, "finished", "true");
	runacc_done(&a);
}

TEST(cancelled_finishes_without_error)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a, "data: {\"type\":\"cancelled\"}\n\n"));
	ASSERT(runacc_finished(&a));
	ASSERT_MEMBER(&a, "has_errors", "false");
	ASSERT_MEMBER(&a, "errors", "[]");
	runacc_done(&a);
}

TEST(run_id_flat_nested_and_strings)
{
	struct runacc a;
	int64_t id = 0;

	runacc_init(&a);
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":7}"));
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 7);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"payload\":{\"run_id\":8},\"run_id\":1}"));
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 8);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"payload\":{\"run_id\":"
	    "\" 9000000000 \"}}"));
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 9000000000LL);
	/* A payload that is not an object: the frame is the payload. */
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"payload\":\"x\",\"run_id\":\"+10\"}"));
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 10);
	/* Not run ids: kept as was. */
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":1.5}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":\"12a\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":\"\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":null}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":true}"));
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"run_id\":"
	    "\"99999999999999999999\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"run_id\":1e300}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"payload\":{}}"));
	ASSERT_OK(runacc_run_id(&a, &id));
	ASSERT_EQ(id, 10);
	ASSERT_MEMBER(&a, "run_id", "10");
	/* Other types never set it. */
	ASSERT_OK(feed_json(&a, "{\"type\":\"done\",\"run_id\":11}"));
	ASSERT_MEMBER(&a, "run_id", "10");
	runacc_done(&a);
}

TEST(usage_is_the_last_metadata_usage)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"payload\":{\"usage\":"
	    "{\"input_tokens\":1}}}"));
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"usage\":{\"input_tokens\":2}}"));
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"metadata\",\"payload\":{\"run_id\":"
	    "1}}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"metadata\",\"usage\":5}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"run_metrics\",\"usage\":{}}"));
	ASSERT_MEMBER(&a, "usage", "{\"input_tokens\":2}");
	runacc_done(&a);
}

TEST(stop_reason_from_done_and_run_metrics)
{
	struct runacc a;

	runacc_init(&a);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"run_metrics\",\"stop_reason\":\"max_tokens\"}"));
	ASSERT_MEMBER(&a, "stop_reason", "\"max_tokens\"");
	ASSERT(!runacc_finished(&a));
	ASSERT_OK(feed_json(&a, "{\"type\":\"done\",\"stop_reason\":null}"));
	ASSERT_MEMBER(&a, "stop_reason", "\"max_tokens\"");
	ASSERT_OK(
	    feed_json(&a, "{\"type\":\"done\",\"stop_reason\":\"end_turn\"}"));
	ASSERT_MEMBER(&a, "stop_reason", "\"end_turn\"");
	ASSERT(runacc_finished(&a));
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"message_delta\",\"stop_reason\":\"other\"}"));
	ASSERT_MEMBER(&a, "stop_reason", "\"end_turn\"");
	runacc_done(&a);
}

TEST(ignored_events)
{
	struct runacc a;
	cJSON *arr = cJSON_CreateArray();
	char *s;

	runacc_init(&a);
	ASSERT_OK(runacc_feed(&a, arr));
	ASSERT_OK(feed_json(&a, "{\"delta\":\"x\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":7,\"delta\":\"x\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"keep-alive\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"RUNNER_DIAG\",\"error\":\"x\"}"));
	ASSERT_OK(feed_json(&a, "{\"type\":\"text-delta\",\"delta\":5}"));
	s = result_str(&a);
	ASSERT_STREQ(s,
	    "{\"run_id\":null,\"text\":\"\",\"reasoning\":\"\","
	    "\"plan\":\"\",\"errors\":[],\"has_errors\":false,"
	    "\"stop_reason\":null,\"finished\":false,"
	    "\"truncated\":false,\"tool_calls\":[],\"usage\":null}");
	free(s);
	cJSON_Delete(arr);
	runacc_done(&a);
}

TEST(reset_then_replay_gives_the_same_result)
{
	struct runacc a;
	char *s;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a, wire_example));
	ASSERT_OK(feed_stream(&a,
	    "data: {\"type\":\"error\",\"error\":\"e\"}\n\n"
	    "data: {\"type\":\"metadata\",\"payload\":{\"usage\":{}}}\n\n"));
	runacc_reset(&a);
	s = result_str(&a);
	ASSERT_STREQ(s,
	    "{\"run_id\":null,\"text\":\"\",\"reasoning\":\"\","
	    "\"plan\":\"\",\"errors\":[],\"has_errors\":false,"
	    "\"stop_reason\":null,\"finished\":false,"
	    "\"truncated\":false,\"tool_calls\":[],\"usage\":null}");
	free(s);
	/* A re-attach replays history: no doubled text or tool calls. */
	ASSERT_OK(feed_stream(&a, wire_example));
	s = result_str(&a);
	ASSERT_STREQ(s, wire_result);
	free(s);
	runacc_done(&a);
}

TEST(text_cap_cuts_at_a_character)
{
	const size_t mib = 1024 * 1024;
	struct runacc a;
	cJSON *big, *ev;
	char *chunk;
	size_t i;

	chunk = malloc(mib + 1);
	ASSERT(chunk != NULL);
	memset(chunk, 'a', mib);
	chunk[mib] = '\0';
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "type", "text-delta");
	big = cJSON_AddStringToObject(ev, "delta", chunk);
	ASSERT(big != NULL);
	runacc_init(&a);
	for (i = 0; i < RUNACC_MAX_TEXT / mib - 1; i++)
		ASSERT_OK(runacc_feed(&a, ev));
	/* One byte short of the cap, then "é€": the é does not fit. */
	chunk[mib - 1] = '\0';
	cJSON_DeleteItemFromObjectCaseSensitive(ev, "delta");
	cJSON_AddStringToObject(ev, "delta", chunk);
	ASSERT_OK(runacc_feed(&a, ev));
	ASSERT(!a.truncated);
	ASSERT_EQ(a.text.len, RUNACC_MAX_TEXT - 1);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"text-delta\",\"delta\":\"\xc3\xa9\xe2\x82\xac\"}"));
	ASSERT(a.truncated);
	ASSERT_EQ(a.text.len, RUNACC_MAX_TEXT - 1);
	/* Full: even a byte that would fit is dropped now. */
	ASSERT_OK(feed_json(&a, "{\"type\":\"text-delta\",\"delta\":\"b\"}"));
	ASSERT_EQ(a.text.len, RUNACC_MAX_TEXT - 1);
	ASSERT_EQ(strlen(a.text.data), RUNACC_MAX_TEXT - 1);
	ASSERT(a.text.data[a.text.len - 1] == 'a');
	ASSERT(a.text.cap <= RUNACC_MAX_TEXT + 1);
	ASSERT_MEMBER(&a, "truncated", "true");
	/* Other buffers are separate. */
	ASSERT_OK(feed_json(&a, "{\"type\":\"plan-delta\",\"delta\":\"p\"}"));
	ASSERT_MEMBER(&a, "plan", "\"p\"");
	runacc_done(&a);
	cJSON_Delete(ev);
	free(chunk);
}

TEST(tool_count_cap)
{
	struct runacc a;
	const cJSON *calls, *last;
	cJSON *res;
	char ev[128];
	int i;

	runacc_init(&a);
	for (i = 0; i < RUNACC_MAX_TOOLS + 5; i++) {
		snprintf(ev, sizeof(ev),
		    "{\"type\":\"tool-call-start\",\"toolCallId\":\"t%d\"}", i);
		ASSERT_OK(feed_json(&a, ev));
	}
	ASSERT_EQ(a.ntools, RUNACC_MAX_TOOLS);
	ASSERT(a.truncated);
	/* Known calls still take deltas; new ones are not created. */
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"tool-call-delta\",\"toolCallId\":"
	    "\"t1023\",\"delta\":\"d\"}"));
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"tool-call-end\",\"toolCallId\":"
	    "\"t1024\"}"));
	ASSERT_EQ(a.ntools, RUNACC_MAX_TOOLS);
	res = runacc_result(&a);
	ASSERT(res != NULL);
	calls = cJSON_GetObjectItemCaseSensitive(res, "tool_calls");
	ASSERT_EQ(cJSON_GetArraySize(calls), RUNACC_MAX_TOOLS);
	last = cJSON_GetArrayItem(calls, RUNACC_MAX_TOOLS - 1);
	ASSERT_STREQ(
	    cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(last, "id")),
	    "t1023");
	ASSERT_STREQ(cJSON_GetStringValue(
	                 cJSON_GetObjectItemCaseSensitive(last, "arguments")),
	    "d");
	cJSON_Delete(res);
	runacc_done(&a);
}

TEST(tool_bytes_cap)
{
	const size_t mib = 1024 * 1024;
	struct runacc a;
	cJSON *ev, *res;
	const char *args;
	char *chunk;
	size_t i;

	chunk = malloc(mib + 1);
	ASSERT(chunk != NULL);
	memset(chunk, 'j', mib);
	chunk[mib] = '\0';
	runacc_init(&a);
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"tool-call-start\",\"toolCallId\":\"t\"}"));
	ev = cJSON_CreateObject();
	cJSON_AddStringToObject(ev, "type", "tool-call-delta");
	cJSON_AddStringToObject(ev, "toolCallId", "t");
	cJSON_AddStringToObject(ev, "delta", chunk);
	for (i = 0; i < RUNACC_MAX_TOOL_BYTES / mib + 1; i++)
		ASSERT_OK(runacc_feed(&a, ev));
	ASSERT(a.truncated);
	ASSERT(a.tool_bytes <= RUNACC_MAX_TOOL_BYTES);
	/* 63 whole deltas fit next to the id's byte. */
	res = runacc_result(&a);
	ASSERT(res != NULL);
	args = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(
	    cJSON_GetArrayItem(
	        cJSON_GetObjectItemCaseSensitive(res, "tool_calls"), 0),
	    "arguments"));
	ASSERT(args != NULL && strlen(args) == RUNACC_MAX_TOOL_BYTES - mib);
	cJSON_Delete(res);
	/* A later tool-call-start frees the call's share again. */
	ASSERT_OK(feed_json(&a,
	    "{\"type\":\"tool-call-start\",\"toolCallId\":\"t\"}"));
	ASSERT_EQ(a.tool_bytes, 1);
	runacc_done(&a);
	cJSON_Delete(ev);
	free(chunk);
}

TEST(error_caps)
{
	struct runacc a;
	char ev[8192], *long_msg;
	int i;

	runacc_init(&a);
	for (i = 0; i < RUNACC_MAX_ERRORS + 3; i++)
		ASSERT_OK(
		    feed_json(&a, "{\"type\":\"error\",\"error\":\"e\"}"));
	ASSERT_EQ(a.nerrors, RUNACC_MAX_ERRORS);
	ASSERT(a.truncated);
	runacc_reset(&a);
	/* 5000 bytes of message: cut to 4096 with the prefix. */
	long_msg = malloc(5001);
	ASSERT(long_msg != NULL);
	memset(long_msg, 'm', 5000);
	long_msg[5000] = '\0';
	snprintf(ev, sizeof(ev), "{\"type\":\"sdk_error\",\"error\":\"%s\"}",
	    long_msg);
	ASSERT_OK(feed_json(&a, ev));
	ASSERT_EQ(a.nerrors, 1);
	ASSERT_EQ(strlen(a.errors[0]), RUNACC_MAX_ERROR_LEN);
	ASSERT(strncmp(a.errors[0], "sdk_error: mmm", 14) == 0);
	ASSERT(a.truncated);
	free(long_msg);
	runacc_done(&a);
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

TEST(allocation_failure_never_corrupts)
{
	cJSON_Hooks hooks = {.malloc_fn = oom_malloc, .free_fn = free};
	struct runacc a;
	cJSON *res;
	char *want, *got;
	long n;
	int r, done = 0;

	runacc_init(&a);
	ASSERT_OK(feed_stream(&a, wire_example));
	want = result_str(&a);
	runacc_done(&a);
	for (n = 0; n < 10000 && !done; n++) {
		runacc_init(&a);
		/* Parse outside the countdown: only runacc's cJSON use fails.
		 */
		cJSON_InitHooks(&hooks);
		oom_countdown = n;
		r = feed_stream(&a, wire_example);
		res = r == 0 ? runacc_result(&a) : NULL;
		oom_countdown = -1;
		cJSON_InitHooks(NULL);
		if (r < 0)
			ASSERT_EQ(r, -ENOMEM);
		if (res != NULL) {
			got = cJSON_PrintUnformatted(res);
			ASSERT_STREQ(got, want);
			cJSON_free(got);
			cJSON_Delete(res);
			done = 1;
		}
		/* Whatever failed, the accumulator still builds a result. */
		res = runacc_result(&a);
		ASSERT(res != NULL);
		cJSON_Delete(res);
		runacc_done(&a);
	}
	ASSERT(done);
	ASSERT(n > 10);
	free(want);
}

int
main(void)
{
	RUN(wire_example_result);
	RUN(empty_result);
	RUN(text_from_every_source);
	RUN(reasoning_and_plan_boundaries);
	RUN(tool_calls_lifecycle);
	RUN(tool_call_start_again_resets_in_place);
	RUN(tool_results_falsy_and_snapshots);
	RUN(tool_calls_from_claude_native_frames);
	RUN(errors_and_terminal_failures);
	RUN(cancelled_finishes_without_error);
	RUN(run_id_flat_nested_and_strings);
	RUN(usage_is_the_last_metadata_usage);
	RUN(stop_reason_from_done_and_run_metrics);
	RUN(ignored_events);
	RUN(reset_then_replay_gives_the_same_result);
	RUN(text_cap_cuts_at_a_character);
	RUN(tool_count_cap);
	RUN(tool_bytes_cap);
	RUN(error_caps);
	RUN(allocation_failure_never_corrupts);
	return t_done();
}

/*
 * SPDX-License-Identifier: MIT
 *
 * What the SSE parser's JSON object becomes: an event of the AI-SDK
 * vocabulary (upstream-api.md §6.3). Claude-native frames are translated
 * (content_block_*, message_*, tool_use, tool_result), "ping" becomes
 * "keep-alive", the delta fields of the AI-SDK types are made strings and
 * todo-update gets its toolCallId and a list of objects; system frames are
 * dropped. sse.h documents the result. The framing, the UTF-8 and the JSON
 * check are sse.c's. No I/O, no logging, no global state.
 */
#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "sdkjson.h"
#include "sse.h"
#include "sse_int.h"

static int
add_const(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL)
		return -ENOMEM;
	if (!cJSON_AddItemToObjectCS(obj, key, item)) {
		cJSON_Delete(item);
		return -ENOMEM;
	}
	return 0;
}

/* The event of a "data: [DONE]" frame; NULL on OOM. */
cJSON *
sse_done_event(void)
{
	cJSON *json = cJSON_CreateObject();

	if (json != NULL &&
	    add_const(json, "type", cJSON_CreateStringReference("done")) < 0) {
		cJSON_Delete(json);
		json = NULL;
	}
	return json;
}

/*
 * Normalisation. Members are read as Python reads a dict built from the
 * JSON, the last of duplicate keys winning; the members the event
 * guarantees ("type" and the delta fields) are left unique, so a consumer
 * reading the first match sees the same value.
 */

static bool
str_is(const cJSON *v, const char *s)
{
	return cJSON_IsString(v) && strcmp(v->valuestring, s) == 0;
}

/* Deletes every member named key except keep. */
static void
delete_all_but(cJSON *obj, const char *key, const cJSON *keep)
{
	cJSON *c, *next;

	for (c = obj->child; c != NULL; c = next) {
		next = c->next;
		if (keep != NULL && c == keep)
			continue;
		if (c->string != NULL && strcmp(c->string, key) == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(obj, c));
	}
}

/*
 * Sets obj[key] to item, replacing every member of that name; key must be
 * a string constant. Consumes item, also on failure; NULL item is -ENOMEM.
 */
static int
put(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL)
		return -ENOMEM;
	delete_all_but(obj, key, NULL);
	return add_const(obj, key, item);
}

/* Sets obj[key] to a copy of v, or to null when v is NULL. */
static int
put_copy(cJSON *obj, const char *key, const cJSON *v)
{
	return put(obj, key,
	    v != NULL ? cJSON_Duplicate(v, true) : cJSON_CreateNull());
}

/* Sets obj[key] to v when v is a string, else to "". */
static int
put_str(cJSON *obj, const char *key, const cJSON *v)
{
	const char *str = v != NULL && cJSON_IsString(v) ? v->valuestring : "";

	return put(obj, key, cJSON_CreateString(str));
}

/* Makes "type" one string member, first in the object, equal to type. */
static int
put_type(cJSON *ev, const char *type)
{
	cJSON *t = sdkjson_last(ev, "type"), *item;

	if (cJSON_IsString(t)) {
		delete_all_but(ev, "type", t);
		if (strcmp(t->valuestring, type) == 0)
			return 0;
		return cJSON_SetValuestring(t, type) != NULL ? 0 : -ENOMEM;
	}
	delete_all_but(ev, "type", NULL);
	item = cJSON_CreateStringReference(type);
	if (add_const(ev, "type", item) < 0)
		return -ENOMEM;
	(void)cJSON_DetachItemViaPointer(ev, item);
	(void)cJSON_InsertItemInArray(ev, 0, item);
	return 0;
}

/*
 * Gives a translated frame its AI-SDK type and "native", unless r, the
 * result of the translation so far, is an error.
 */
static int
retype(cJSON *ev, int r, const char *native, const char *type,
    unsigned *ret_flags)
{
	if (r < 0)
		return r;
	r = put(ev, "native", cJSON_CreateStringReference(native));
	if (r < 0)
		return r;
	*ret_flags |= SSE_EVENT_TRANSLATED;
	return put_type(ev, type);
}

/*
 * Makes "delta" the first non-empty string among the members named in keys
 * (NULL-terminated), or "". Untouched when it already is, and unique.
 */
static int
norm_delta(cJSON *ev, const char *const *keys)
{
	const cJSON *v = NULL, *d = sdkjson_last(ev, "delta");
	size_t i;

	for (i = 0; keys[i] != NULL; i++) {
		v = sdkjson_last(ev, keys[i]);
		if (cJSON_IsString(v) && v->valuestring[0] != '\0')
			break;
		v = NULL;
	}
	if (v == NULL && cJSON_IsString(d) && d->valuestring[0] == '\0')
		v = d;
	if (v == d && d != NULL) {
		delete_all_but(ev, "delta", d);
		return 0;
	}
	return put_str(ev, "delta", v);
}

static int
norm_todo(cJSON *ev)
{
	const cJSON *id = sdkjson_last(ev, "toolCallId");
	cJSON *todos = sdkjson_last(ev, "todos"), *c, *next;
	int r;

	if (!sdkjson_truthy(id))
		id = sdkjson_last(ev, "tool_call_id");
	r = put_copy(ev, "toolCallId", id);
	if (r < 0)
		return r;
	if (!cJSON_IsArray(todos))
		return put(ev, "todos", cJSON_CreateArray());
	for (c = todos->child; c != NULL; c = next) {
		next = c->next;
		if (!cJSON_IsObject(c))
			cJSON_Delete(cJSON_DetachItemViaPointer(todos, c));
	}
	return put(ev, "todos", cJSON_DetachItemViaPointer(ev, todos));
}

/* content_block_delta: text/thinking/plan deltas and tool input. */
static int
xlat_block_delta(cJSON *ev, unsigned *ret_flags)
{
	const cJSON *d = sdkjson_last(ev, "delta");
	const cJSON *dt = sdkjson_last(d, "type");
	const char *type;
	int r;

	if (str_is(dt, "input_json_delta")) {
		r = put_copy(ev, "toolCallId", sdkjson_last(ev, "id"));
		if (r == 0)
			r = put_str(ev, "delta",
			    sdkjson_last(d, "partial_json"));
		type = "tool-call-delta";
	} else {
		if (str_is(dt, "text_delta"))
			type = "text-delta";
		else if (str_is(dt, "thinking_delta"))
			type = "thinking-delta";
		else if (str_is(dt, "plan_delta"))
			type = "plan-delta";
		else
			return put_type(ev, "content_block_delta");
		r = put_str(ev, "delta", sdkjson_last(d, "text"));
	}
	return retype(ev, r, "content_block_delta", type, ret_flags);
}

/* content_block_start: text/thinking/plan/tool_use starts. */
static int
xlat_block_start(cJSON *ev, unsigned *ret_flags)
{
	const cJSON *b = sdkjson_last(ev, "content_block");
	const cJSON *bt = sdkjson_last(b, "type"), *id, *name;
	const char *type;
	int r;

	if (!sdkjson_truthy(bt))
		bt = sdkjson_last(ev, "block_type");
	id = sdkjson_last(ev, "id");
	if (!sdkjson_truthy(id))
		id = sdkjson_last(b, "id");
	if (str_is(bt, "tool_use")) {
		name = sdkjson_last(b, "name");
		if (!sdkjson_truthy(name))
			name = sdkjson_last(ev, "name");
		r = put_copy(ev, "toolCallId", id);
		if (r == 0)
			r = put_copy(ev, "toolName", name);
		type = "tool-call-start";
	} else {
		if (str_is(bt, "text"))
			type = "text-start";
		else if (str_is(bt, "thinking"))
			type = "thinking-start";
		else if (str_is(bt, "plan"))
			type = "plan-start";
		else
			return put_type(ev, "content_block_start");
		r = put_copy(ev, "id", id);
	}
	return retype(ev, r, "content_block_start", type, ret_flags);
}

/* tool_result: the end of a tool call, with its result. */
static int
xlat_tool_result(cJSON *ev, unsigned *ret_flags)
{
	const cJSON *id = sdkjson_last(ev, "tool_use_id");
	cJSON *content = sdkjson_last(ev, "content");
	int r;

	if (!sdkjson_truthy(id))
		id = sdkjson_last(ev, "id");
	r = put_copy(ev, "toolCallId", id);
	if (r == 0 && content != NULL)
		r = put(ev, "result", cJSON_DetachItemViaPointer(ev, content));
	else if (r == 0 && sdkjson_last(ev, "result") == NULL)
		r = put(ev, "result", cJSON_CreateNull());
	return retype(ev, r, "tool_result", "tool-result-end", ret_flags);
}

/*
 * Translates a Claude-native frame (§6.3). Returns 0 (translated, or a
 * variant passed through), 1 (not a Claude-native type) or -ENOMEM. type
 * points into ev, so only string constants go to retype().
 */
static int
xlat_claude(cJSON *ev, const char *type, unsigned *ret_flags)
{
	const cJSON *text;
	int r;

	if (strcmp(type, "content_block_delta") == 0)
		return xlat_block_delta(ev, ret_flags);
	if (strcmp(type, "content_block_start") == 0)
		return xlat_block_start(ev, ret_flags);
	if (strcmp(type, "tool_result") == 0)
		return xlat_tool_result(ev, ret_flags);
	if (strcmp(type, "message_start") == 0) {
		r = put_copy(ev, "messageId",
		    sdkjson_last(sdkjson_last(ev, "message"), "id"));
		return retype(ev, r, "message_start", "message-start",
		    ret_flags);
	}
	if (strcmp(type, "message_stop") == 0) {
		r = put_copy(ev, "messageId", sdkjson_last(ev, "message_id"));
		return retype(ev, r, "message_stop", "message-end", ret_flags);
	}
	if (strcmp(type, "message_complete") == 0) {
		r = put_copy(ev, "messageId", sdkjson_last(ev, "message_id"));
		return retype(ev, r, "message_complete", "message-end",
		    ret_flags);
	}
	if (strcmp(type, "message_delta") == 0) {
		text = sdkjson_last(sdkjson_last(ev, "delta"), "text");
		if (!cJSON_IsString(text))
			return put_type(ev, "message_delta");
		r = put_str(ev, "delta", text);
		return retype(ev, r, "message_delta", "text-delta", ret_flags);
	}
	if (strcmp(type, "tool_use") == 0) {
		r = put_copy(ev, "toolCallId", sdkjson_last(ev, "id"));
		if (r == 0)
			r = put_copy(ev, "toolName", sdkjson_last(ev, "name"));
		return retype(ev, r, "tool_use", "tool-call-start", ret_flags);
	}
	return 1;
}

/* Returns 1 (deliver ev), 0 (a system frame: drop it) or -ENOMEM. */
int
sse_normalise(cJSON *ev, unsigned *ret_flags)
{
	static const char *const k_delta[] = {"delta", NULL};
	static const char *const k_reasoning[] = {"delta", "text", NULL};
	static const char *const k_plan[] = {"delta", "text", "plan", NULL};
	const cJSON *sub = sdkjson_last(ev, "subtype"), *t;
	const char *type;
	int r;

	if (str_is(sub, "init") || str_is(sub, "success"))
		return 0;
	t = sdkjson_last(ev, "type");
	type = cJSON_IsString(t) ? t->valuestring : "unknown";
	r = xlat_claude(ev, type, ret_flags);
	if (r != 1)
		return r < 0 ? r : 1;
	if (strcmp(type, "ping") == 0)
		return put_type(ev, "keep-alive") < 0 ? -ENOMEM : 1;
	/* Leaves type valid: the string is unchanged or constant. */
	if (put_type(ev, type) < 0)
		return -ENOMEM;
	if (strcmp(type, "text-delta") == 0 ||
	    strcmp(type, "tool-call-delta") == 0 ||
	    strcmp(type, "tool-result-delta") == 0)
		r = norm_delta(ev, k_delta);
	else if (strcmp(type, "reasoning-delta") == 0 ||
	    strcmp(type, "thinking-delta") == 0)
		r = norm_delta(ev, k_reasoning);
	else if (strcmp(type, "plan-delta") == 0)
		r = norm_delta(ev, k_plan);
	else if (strcmp(type, "todo-update") == 0)
		r = norm_todo(ev);
	else
		r = 0;
	return r < 0 ? r : 1;
}

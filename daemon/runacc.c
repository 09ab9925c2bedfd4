/*
 * SPDX-License-Identifier: MIT
 *
 * The run accumulator, following the Python SDK's StreamAccumulator event
 * by event (upstream-api.md §6.5), with caps on everything it keeps. Tool
 * results and todos are kept as printed JSON, so their size is known and
 * counted; runacc_result() parses them back. Members of an event are read
 * as Python reads a dict built from its JSON: the last duplicate wins.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "runacc.h"
#include "sdkjson.h"
#include "sse.h"

struct runacc_tool {
	char *id;
	char *name;               /* NULL: not a string */
	struct runacc_buf args;   /* concatenated tool-call-delta */
	struct runacc_buf chunks; /* concatenated tool-result-delta */
	char *result;             /* printed JSON of the result, or NULL */
	char *todos;              /* printed JSON array, or NULL */
	bool completed;
	size_t bytes; /* this call's share of tool_bytes */
};

#define RUNACC_BUF_MIN 64

static void buf_init(struct runacc_buf *b, size_t max);
static void buf_free(struct runacc_buf *b);
static int buf_append(struct runacc_buf *b, const char *s, size_t n);
static size_t utf8_cut(const char *s, size_t n, size_t max);
static int feed_tool(struct runacc *a, const char *type, const cJSON *ev);

void
runacc_init(struct runacc *a)
{
	*a = (struct runacc){0};
	buf_init(&a->text, RUNACC_MAX_TEXT);
	buf_init(&a->reasoning, RUNACC_MAX_REASONING);
	buf_init(&a->plan, RUNACC_MAX_PLAN);
}

static void
tool_clear(struct runacc *a, struct runacc_tool *t)
{
	free(t->name);
	cJSON_free(t->result);
	cJSON_free(t->todos);
	buf_free(&t->args);
	buf_free(&t->chunks);
	t->name = t->result = t->todos = NULL;
	t->completed = false;
	a->tool_bytes -= t->bytes - strlen(t->id);
	t->bytes = strlen(t->id);
}

void
runacc_done(struct runacc *a)
{
	size_t i;

	if (a == NULL)
		return;
	buf_free(&a->text);
	buf_free(&a->reasoning);
	buf_free(&a->plan);
	free(a->stop_reason);
	for (i = 0; i < a->nerrors; i++)
		free(a->errors[i]);
	free(a->errors);
	for (i = 0; i < a->ntools; i++) {
		tool_clear(a, &a->tools[i]);
		free(a->tools[i].id);
	}
	free(a->tools);
	cJSON_Delete(a->usage);
	*a = (struct runacc){0};
}

void
runacc_reset(struct runacc *a)
{
	runacc_done(a);
	runacc_init(a);
}

int
runacc_run_id(const struct runacc *a, int64_t *ret_run_id)
{
	if (!a->has_run_id)
		return -ENODATA;
	*ret_run_id = a->run_id;
	return 0;
}

bool
runacc_finished(const struct runacc *a)
{
	return a->finished;
}

static void
buf_init(struct runacc_buf *b, size_t max)
{
	*b = (struct runacc_buf){.max = max};
}

static void
buf_free(struct runacc_buf *b)
{
	free(b->data);
	buf_init(b, b->max);
}

static const char *
buf_str(const struct runacc_buf *b)
{
	return b->data != NULL ? b->data : "";
}

/*
 * Appends s[0..n) as one part. Past the cap, appends the part of s that
 * fits (whole UTF-8 characters) and returns -ENOBUFS; nothing is appended
 * after that. -ENOMEM leaves b unchanged.
 */
static int
buf_append(struct runacc_buf *b, const char *s, size_t n)
{
	size_t want, ncap, room = b->max - b->len;
	bool full = n > room;
	char *nd;

	if (b->full)
		return n > 0 ? -ENOBUFS : 0;
	if (full)
		n = utf8_cut(s, n, room);
	if (b->len + n + 1 > b->cap) {
		want = b->len + n + 1;
		ncap = b->cap > 0 ? b->cap : RUNACC_BUF_MIN;
		while (ncap < want)
			ncap = ncap > SIZE_MAX / 2 ? want : ncap * 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		nd = realloc(b->data, ncap);
		if (nd == NULL)
			return -ENOMEM;
		b->data = nd;
		b->cap = ncap;
	}
	memcpy(b->data + b->len, s, n);
	b->len += n;
	b->data[b->len] = '\0';
	b->parts = true;
	b->last_nl = n > 0 && s[n - 1] == '\n';
	if (full) {
		b->full = true;
		return -ENOBUFS;
	}
	return 0;
}

/* The longest prefix of s[0..n), at most max, not ending inside a char. */
static size_t
utf8_cut(const char *s, size_t n, size_t max)
{
	if (n <= max)
		return n;
	while (max > 0 && ((uint8_t)s[max] & 0xc0) == 0x80)
		max--;
	return max;
}

static const char *
get_str(const cJSON *obj, const char *key)
{
	const cJSON *v = sdkjson_last(obj, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Appends a delta to a text buffer; hitting the cap only marks a. */
static int
add_text(struct runacc *a, struct runacc_buf *b, const cJSON *ev)
{
	const char *d = get_str(ev, "delta");
	int r;

	if (d == NULL)
		d = "";
	r = buf_append(b, d, strlen(d));
	if (r == -ENOBUFS) {
		a->truncated = true;
		return 0;
	}
	return r;
}

/* -start/-end of reasoning or plan: a \n unless the last part ended so. */
static int
add_boundary(struct runacc *a, struct runacc_buf *b)
{
	int r;

	if (!b->parts || b->last_nl)
		return 0;
	r = buf_append(b, "\n", 1);
	if (r == -ENOBUFS) {
		a->truncated = true;
		return 0;
	}
	return r;
}

/* Appends an error, cut to RUNACC_MAX_ERROR_LEN; -ENOMEM. */
static int
add_error(struct runacc *a, const char *prefix, const char *msg)
{
	size_t plen = prefix != NULL ? strlen(prefix) + 2 : 0;
	size_t mlen = strlen(msg), n;
	char **ne, *e;

	if (a->nerrors == RUNACC_MAX_ERRORS) {
		a->truncated = true;
		return 0;
	}
	if (plen + mlen > RUNACC_MAX_ERROR_LEN) {
		a->truncated = true;
		if (plen > RUNACC_MAX_ERROR_LEN)
			plen = 0; /* a type that long is not worth keeping */
		mlen = utf8_cut(msg, mlen, RUNACC_MAX_ERROR_LEN - plen);
	}
	n = plen + mlen;
	e = malloc(n + 1);
	if (e == NULL)
		return -ENOMEM;
	if (plen > 0) {
		memcpy(e, prefix, plen - 2);
		memcpy(e + plen - 2, ": ", 2);
	}
	memcpy(e + plen, msg, mlen);
	e[n] = '\0';
	/* Grows by one: at most RUNACC_MAX_ERRORS, and errors are rare. */
	ne = realloc(a->errors, (a->nerrors + 1) * sizeof(*ne));
	if (ne == NULL) {
		free(e);
		return -ENOMEM;
	}
	a->errors = ne;
	a->errors[a->nerrors++] = e;
	return 0;
}

/* Adds the string v, or the JSON text of another value, to errors. */
static int
add_error_value(struct runacc *a, const char *prefix, const cJSON *v)
{
	char *printed;
	int r;

	if (cJSON_IsString(v))
		return add_error(a, prefix, v->valuestring);
	printed = cJSON_PrintUnformatted(v);
	if (printed == NULL)
		return -ENOMEM;
	r = add_error(a, prefix, printed);
	cJSON_free(printed);
	return r;
}

static int
feed_failure(struct runacc *a, const char *type, const cJSON *ev)
{
	const cJSON *v = sdkjson_last(ev, "error");

	if (!sdkjson_truthy(v))
		v = sdkjson_last(ev, "message");
	if (!sdkjson_truthy(v))
		return add_error(a, type, type);
	return add_error_value(a, type, v);
}

/* An integer, or a string of decimal digits, into *ret; else false. */
static bool
parse_run_id(const cJSON *v, int64_t *ret)
{
	const char *s;
	int64_t n = 0;
	bool neg = false;
	size_t i = 0;
	double d;

	if (cJSON_IsNumber(v)) {
		d = v->valuedouble;
		/* Integers a double holds exactly; not 42.5. */
		if (!(d >= -9007199254740992.0 && d <= 9007199254740992.0) ||
		    (double)(int64_t)d < d || (double)(int64_t)d > d)
			return false;
		*ret = (int64_t)d;
		return true;
	}
	if (!cJSON_IsString(v))
		return false;
	/* As Python's int(str): blanks around, a sign, digits. */
	s = v->valuestring;
	while (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))
		i++;
	if (s[i] == '+' || s[i] == '-')
		neg = s[i++] == '-';
	if (s[i] < '0' || s[i] > '9')
		return false;
	for (; s[i] >= '0' && s[i] <= '9'; i++) {
		if (n > (INT64_MAX - (s[i] - '0')) / 10)
			return false;
		n = n * 10 + (s[i] - '0');
	}
	while (s[i] == ' ' || (s[i] >= '\t' && s[i] <= '\r'))
		i++;
	if (s[i] != '\0')
		return false;
	*ret = neg ? -n : n;
	return true;
}

static int
feed_metadata(struct runacc *a, const cJSON *ev)
{
	const cJSON *payload = sdkjson_last(ev, "payload"), *usage;
	cJSON *copy;
	int64_t id;

	/* A flat frame is its own payload ("type" is never looked up). */
	if (!cJSON_IsObject(payload))
		payload = ev;
	if (parse_run_id(sdkjson_last(payload, "run_id"), &id)) {
		a->run_id = id;
		a->has_run_id = true;
	}
	usage = sdkjson_last(payload, "usage");
	if (cJSON_IsObject(usage)) {
		copy = cJSON_Duplicate(usage, true);
		if (copy == NULL)
			return -ENOMEM;
		cJSON_Delete(a->usage);
		a->usage = copy;
	}
	return 0;
}

static int
set_stop_reason(struct runacc *a, const cJSON *ev)
{
	const char *s = get_str(ev, "stop_reason");
	char *copy;

	if (s == NULL)
		return 0;
	copy = strdup(s);
	if (copy == NULL)
		return -ENOMEM;
	free(a->stop_reason);
	a->stop_reason = copy;
	return 0;
}

int
runacc_feed(struct runacc *a, const cJSON *ev)
{
	const char *type = get_str(ev, "type");
	const cJSON *err;

	if (type == NULL)
		return 0;
	if (sse_type_is_terminal(type))
		a->finished = true;
	if (strcmp(type, "text-delta") == 0)
		return add_text(a, &a->text, ev);
	if (strcmp(type, "reasoning-delta") == 0 ||
	    strcmp(type, "thinking-delta") == 0)
		return add_text(a, &a->reasoning, ev);
	if (strcmp(type, "reasoning-start") == 0 ||
	    strcmp(type, "reasoning-end") == 0 ||
	    strcmp(type, "thinking-start") == 0 ||
	    strcmp(type, "thinking-end") == 0)
		return add_boundary(a, &a->reasoning);
	if (strcmp(type, "plan-delta") == 0)
		return add_text(a, &a->plan, ev);
	if (strcmp(type, "plan-start") == 0 || strcmp(type, "plan-end") == 0)
		return add_boundary(a, &a->plan);
	if (strcmp(type, "metadata") == 0)
		return feed_metadata(a, ev);
	if (strcmp(type, "error") == 0) {
		err = sdkjson_last(ev, "error");
		if (err == NULL || cJSON_IsNull(err))
			return add_error(a, NULL, "Unknown error");
		return add_error_value(a, NULL, err);
	}
	if (sse_type_is_terminal_failure(type))
		return feed_failure(a, type, ev);
	if (strcmp(type, "done") == 0 || strcmp(type, "run_metrics") == 0)
		return set_stop_reason(a, ev);
	return feed_tool(a, type, ev);
}

/*
 * Tool calls.
 */

static struct runacc_tool *
tool_find(struct runacc *a, const char *id)
{
	size_t i;

	if (a->tool_hint < a->ntools &&
	    strcmp(a->tools[a->tool_hint].id, id) == 0)
		return &a->tools[a->tool_hint];
	for (i = 0; i < a->ntools; i++) {
		if (strcmp(a->tools[i].id, id) == 0) {
			a->tool_hint = i;
			return &a->tools[i];
		}
	}
	return NULL;
}

/* Reserves n bytes of RUNACC_MAX_TOOL_BYTES for t; false when full. */
static bool
tool_reserve(struct runacc *a, struct runacc_tool *t, size_t n)
{
	if (n > RUNACC_MAX_TOOL_BYTES - a->tool_bytes) {
		a->truncated = true;
		return false;
	}
	a->tool_bytes += n;
	if (t != NULL)
		t->bytes += n;
	return true;
}

static void
tool_unreserve(struct runacc *a, struct runacc_tool *t, size_t n)
{
	a->tool_bytes -= n;
	t->bytes -= n;
}

/* The call id, created if needed; NULL at a cap (*ret_r 0) or OOM. */
static struct runacc_tool *
tool_get(struct runacc *a, const char *id, bool create, int *ret_r)
{
	struct runacc_tool *t = tool_find(a, id), *nt;
	size_t ncap, len = strlen(id);

	*ret_r = 0;
	if (t != NULL || !create)
		return t;
	if (a->ntools == RUNACC_MAX_TOOLS || !tool_reserve(a, NULL, len)) {
		a->truncated = true;
		return NULL;
	}
	/* Doubling from 8: grows when ntools is a power of two >= 8. */
	if (a->ntools < 8 ? a->ntools == 0
	                  : (a->ntools & (a->ntools - 1)) == 0) {
		ncap = a->ntools < 8 ? 8 : a->ntools * 2;
		nt = realloc(a->tools, ncap * sizeof(*nt));
		if (nt == NULL)
			goto fail;
		a->tools = nt;
	}
	t = &a->tools[a->ntools];
	*t = (struct runacc_tool){.id = strdup(id), .bytes = len};
	if (t->id == NULL)
		goto fail;
	buf_init(&t->args, SIZE_MAX - 1);
	buf_init(&t->chunks, SIZE_MAX - 1);
	a->tool_hint = a->ntools++;
	return t;

fail:
	a->tool_bytes -= len;
	*ret_r = -ENOMEM;
	return NULL;
}

/* Appends to args or chunks within the shared cap. */
static int
tool_append(struct runacc *a, struct runacc_tool *t, struct runacc_buf *b,
    const cJSON *ev)
{
	const char *d = get_str(ev, "delta");
	size_t n;
	int r;

	if (d == NULL)
		d = "";
	n = strlen(d);
	if (!tool_reserve(a, t, n))
		return 0;
	r = buf_append(b, d, n);
	if (r < 0)
		tool_unreserve(a, t, n);
	return r;
}

/*
 * Replaces *slot by the printed JSON of v (NULL: nothing), within the cap.
 * *slot is allocated by cJSON: freed with cJSON_free().
 */
static int
tool_set_json(struct runacc *a, struct runacc_tool *t, char **slot,
    const cJSON *v)
{
	char *printed = NULL;
	size_t n = 0;

	if (v != NULL) {
		printed = cJSON_PrintUnformatted(v);
		if (printed == NULL)
			return -ENOMEM;
		n = strlen(printed);
	}
	if (*slot != NULL)
		tool_unreserve(a, t, strlen(*slot));
	cJSON_free(*slot);
	*slot = NULL;
	if (!tool_reserve(a, t, n)) {
		cJSON_free(printed);
		return 0;
	}
	*slot = printed;
	return 0;
}

static int
tool_result_end(struct runacc *a, struct runacc_tool *t, const cJSON *ev)
{
	const cJSON *res = sdkjson_last(ev, "result");
	cJSON *snap;
	int r;

	t->completed = true;
	if (sdkjson_truthy(res))
		return tool_set_json(a, t, &t->result, res);
	/* None: a snapshot of the result deltas so far, when any. */
	if ((res == NULL || cJSON_IsNull(res)) && t->chunks.len > 0) {
		snap = cJSON_CreateString(buf_str(&t->chunks));
		if (snap == NULL)
			return -ENOMEM;
		r = tool_set_json(a, t, &t->result, snap);
		cJSON_Delete(snap);
		return r;
	}
	/* Falsy: the result falls back to the deltas when built. */
	return tool_set_json(a, t, &t->result, NULL);
}

static int
tool_todos(struct runacc *a, struct runacc_tool *t, const cJSON *ev)
{
	const cJSON *todos = sdkjson_last(ev, "todos"), *c;
	cJSON *list, *copy;
	int r;

	list = cJSON_CreateArray();
	if (list == NULL)
		return -ENOMEM;
	if (cJSON_IsArray(todos)) {
		for (c = todos->child; c != NULL; c = c->next) {
			if (!cJSON_IsObject(c))
				continue;
			copy = cJSON_Duplicate(c, true);
			if (copy == NULL || !cJSON_AddItemToArray(list, copy)) {
				cJSON_Delete(copy);
				cJSON_Delete(list);
				return -ENOMEM;
			}
		}
	}
	r = tool_set_json(a, t, &t->todos, list);
	cJSON_Delete(list);
	return r;
}

static int
feed_tool(struct runacc *a, const char *type, const cJSON *ev)
{
	struct runacc_tool *t;
	const char *id, *name;
	bool start, create;
	int r;

	start = strcmp(type, "tool-call-start") == 0;
	create = start || strcmp(type, "tool-result-start") == 0 ||
	    strcmp(type, "tool-call-end") == 0 ||
	    strcmp(type, "todo-update") == 0;
	if (!create && strcmp(type, "tool-call-delta") != 0 &&
	    strcmp(type, "tool-result-delta") != 0 &&
	    strcmp(type, "tool-result-end") != 0)
		return 0;
	id = get_str(ev, "toolCallId");
	if ((id == NULL || *id == '\0') && strcmp(type, "todo-update") == 0)
		id = get_str(ev, "tool_call_id");
	if (id == NULL || *id == '\0')
		return 0;
	t = tool_get(a, id, create, &r);
	if (t == NULL)
		return r;
	if (start) {
		tool_clear(a, t);
		name = get_str(ev, "toolName");
		if (name == NULL || !tool_reserve(a, t, strlen(name)))
			return 0;
		t->name = strdup(name);
		if (t->name == NULL) {
			tool_unreserve(a, t, strlen(name));
			return -ENOMEM;
		}
		return 0;
	}
	if (strcmp(type, "tool-call-delta") == 0)
		return tool_append(a, t, &t->args, ev);
	if (strcmp(type, "tool-result-delta") == 0)
		return tool_append(a, t, &t->chunks, ev);
	if (strcmp(type, "tool-result-end") == 0)
		return tool_result_end(a, t, ev);
	if (strcmp(type, "tool-call-end") == 0)
		t->completed = true;
	else if (strcmp(type, "todo-update") == 0)
		return tool_todos(a, t, ev);
	return 0;
}

/*
 * The result.
 */

/* Adds item under the constant key; consumes item; false on OOM. */
static bool
put(cJSON *obj, const char *key, cJSON *item)
{
	if (item == NULL)
		return false;
	if (!cJSON_AddItemToObjectCS(obj, key, item)) {
		cJSON_Delete(item);
		return false;
	}
	return true;
}

static cJSON *
str_or_null(const char *s)
{
	return s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull();
}

/* Parses JSON this module printed: NULL means out of memory. */
static cJSON *
parsed_or_null(const char *s)
{
	return s != NULL ? cJSON_Parse(s) : cJSON_CreateNull();
}

/* Its result if truthy, else its result deltas if any, else null. */
static cJSON *
tool_result_json(const struct runacc_tool *t)
{
	if (t->result != NULL)
		return cJSON_Parse(t->result);
	if (t->chunks.len > 0)
		return cJSON_CreateString(t->chunks.data);
	return cJSON_CreateNull();
}

static cJSON *
tool_json(const struct runacc_tool *t)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (!put(o, "id", cJSON_CreateString(t->id)) ||
	    !put(o, "name", str_or_null(t->name)) ||
	    !put(o, "arguments", cJSON_CreateString(buf_str(&t->args))) ||
	    !put(o, "result", tool_result_json(t)) ||
	    !put(o, "completed", cJSON_CreateBool(t->completed)) ||
	    !put(o, "todos", parsed_or_null(t->todos))) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

cJSON *
runacc_result(const struct runacc *a)
{
	cJSON *o, *errors, *tools, *item;
	size_t i;

	o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	if (!put(o, "run_id",
	        a->has_run_id ? cJSON_CreateNumber((double)a->run_id)
	                      : cJSON_CreateNull()) ||
	    !put(o, "text", cJSON_CreateString(buf_str(&a->text))) ||
	    !put(o, "reasoning", cJSON_CreateString(buf_str(&a->reasoning))) ||
	    !put(o, "plan", cJSON_CreateString(buf_str(&a->plan))) ||
	    !put(o, "errors", cJSON_CreateArray()))
		goto fail;
	errors = cJSON_GetObjectItemCaseSensitive(o, "errors");
	for (i = 0; i < a->nerrors; i++) {
		item = cJSON_CreateString(a->errors[i]);
		if (item == NULL || !cJSON_AddItemToArray(errors, item)) {
			cJSON_Delete(item);
			goto fail;
		}
	}
	if (!put(o, "has_errors", cJSON_CreateBool(a->nerrors > 0)) ||
	    !put(o, "stop_reason", str_or_null(a->stop_reason)) ||
	    !put(o, "finished", cJSON_CreateBool(a->finished)) ||
	    !put(o, "truncated", cJSON_CreateBool(a->truncated)) ||
	    !put(o, "tool_calls", cJSON_CreateArray()))
		goto fail;
	tools = cJSON_GetObjectItemCaseSensitive(o, "tool_calls");
	for (i = 0; i < a->ntools; i++) {
		item = tool_json(&a->tools[i]);
		if (item == NULL || !cJSON_AddItemToArray(tools, item)) {
			cJSON_Delete(item);
			goto fail;
		}
	}
	if (!put(o, "usage",
	        a->usage != NULL ? cJSON_Duplicate(a->usage, true)
	                         : cJSON_CreateNull()))
		goto fail;
	return o;

fail:
	cJSON_Delete(o);
	return NULL;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * Request decoding and reply envelopes of the local protocol.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "codec.h"

bool
codec_utf8_valid(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < len) {
		unsigned char c = p[i];
		size_t n;
		uint32_t cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xC2 && c <= 0xDF) {
			n = 1;
			cp = c & 0x1F;
		} else if (c >= 0xE0 && c <= 0xEF) {
			n = 2;
			cp = c & 0x0F;
		} else if (c >= 0xF0 && c <= 0xF4) {
			n = 3;
			cp = c & 0x07;
		} else {
			return false;
		}
		if (len - i <= n)
			return false;
		for (size_t k = 1; k <= n; k++) {
			if ((p[i + k] & 0xC0) != 0x80)
				return false;
			cp = (cp << 6) | (p[i + k] & 0x3F);
		}
		if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
		    cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
			return false;
		i += n + 1;
	}
	return true;
}

int
codec_json_depth(const char *p, size_t len, int limit)
{
	int depth = 0, max = 0;
	bool in_str = false;

	for (size_t i = 0; i < len; i++) {
		char c = p[i];

		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
			continue;
		}
		if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				max = depth;
			if (max > limit)
				return max;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return max;
}

static int
fail(const char **ret_code, const char *code, char *err, size_t errlen,
    const char *msg)
{
	*ret_code = code;
	(void)snprintf(err, errlen, "%s", msg);
	return -EINVAL;
}

int
codec_request_parse(const char *line, size_t len, struct codec_request *req,
    const char **ret_code, char *err, size_t errlen)
{
	const cJSON *m, *v;

	memset(req, 0, sizeof(*req));
	if (len > PROTO_MAX_LINE)
		return fail(ret_code, E_LINE_TOO_LONG, err, errlen,
		    "line longer than the protocol limit");
	if (!codec_utf8_valid(line, len))
		return fail(ret_code, E_INVALID_UTF8, err, errlen,
		    "line is not valid UTF-8");
	if (codec_json_depth(line, len, PROTO_MAX_DEPTH) > PROTO_MAX_DEPTH)
		return fail(ret_code, E_TOO_DEEP, err, errlen,
		    "JSON nested too deeply");
	req->root = cJSON_ParseWithLength(line, len);
	if (req->root == NULL)
		return fail(ret_code, E_PARSE, err, errlen,
		    "line is not valid JSON");
	if (!cJSON_IsObject(req->root))
		return fail(ret_code, E_INVALID_REQUEST, err, errlen,
		    "request must be a JSON object");

	v = cJSON_GetObjectItemCaseSensitive(req->root, "jsonrpc");
	req->jsonrpc = cJSON_IsString(v) && strcmp(v->valuestring, "2.0") == 0;
	v = cJSON_GetObjectItemCaseSensitive(req->root, "id");
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!(cJSON_IsNumber(v) ||
			(cJSON_IsString(v) &&
			    strlen(v->valuestring) <= PROTO_MAX_ID)))
			return fail(ret_code, E_INVALID_REQUEST, err, errlen,
			    "\"id\" must be a number or a short string");
		req->id = v;
	}
	m = cJSON_GetObjectItemCaseSensitive(req->root, "method");
	if (!cJSON_IsString(m) || m->valuestring[0] == '\0' ||
	    strlen(m->valuestring) > PROTO_MAX_METHOD)
		return fail(ret_code, E_INVALID_REQUEST, err, errlen,
		    "\"method\" must be a non-empty string");
	v = cJSON_GetObjectItemCaseSensitive(req->root, "params");
	if (v != NULL && !cJSON_IsNull(v)) {
		if (!cJSON_IsObject(v))
			return fail(ret_code, E_INVALID_PARAMS, err, errlen,
			    "\"params\" must be an object");
		req->params = v;
	}
	req->method = m->valuestring;
	return 0;
}

void
codec_request_done(struct codec_request *req)
{
	cJSON_Delete(req->root);
	memset(req, 0, sizeof(*req));
}

/* Prints obj as one line plus '\n'; takes ownership of obj. */
static char *
finish(cJSON *obj, size_t *ret_len)
{
	char *s, *line;
	size_t n;

	if (obj == NULL)
		return NULL;
	s = cJSON_PrintUnformatted(obj);
	cJSON_Delete(obj);
	if (s == NULL)
		return NULL;
	n = strlen(s);
	line = realloc(s, n + 2);
	if (line == NULL) {
		free(s);
		return NULL;
	}
	line[n] = '\n';
	line[n + 1] = '\0';
	*ret_len = n + 1;
	return line;
}

static cJSON *
envelope(const cJSON *id, bool jsonrpc)
{
	cJSON *o = cJSON_CreateObject();

	if (o == NULL)
		return NULL;
	if (jsonrpc && cJSON_AddStringToObject(o, "jsonrpc", "2.0") == NULL)
		goto fail;
	if (id != NULL) {
		cJSON *c = cJSON_Duplicate(id, 1);

		if (c == NULL || !cJSON_AddItemToObject(o, "id", c)) {
			cJSON_Delete(c);
			goto fail;
		}
	}
	return o;
fail:
	cJSON_Delete(o);
	return NULL;
}

/* Adds a reference to item (no copy): the caller keeps ownership. */
static int
add_ref(cJSON *o, const char *key, const cJSON *item)
{
	cJSON *ref;

	if (item == NULL) {
		ref = cJSON_CreateNull();
	} else if (cJSON_IsObject(item)) {
		ref = cJSON_CreateObjectReference(item->child);
	} else if (cJSON_IsArray(item)) {
		ref = cJSON_CreateArrayReference(item->child);
	} else {
		ref = cJSON_Duplicate(item, 0);
	}
	if (ref == NULL || !cJSON_AddItemToObject(o, key, ref)) {
		cJSON_Delete(ref);
		return -ENOMEM;
	}
	return 0;
}

char *
codec_result(const cJSON *id, bool jsonrpc, const cJSON *result,
    size_t *ret_len)
{
	cJSON *o = envelope(id, jsonrpc);

	if (o == NULL || add_ref(o, "result", result) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return finish(o, ret_len);
}

char *
codec_result_served(const cJSON *id, bool jsonrpc, const cJSON *result,
    const char *served, size_t *ret_len)
{
	cJSON *o = envelope(id, jsonrpc);

	if (o == NULL || add_ref(o, "result", result) < 0 ||
	    (served != NULL &&
		cJSON_AddStringToObject(o, "cache", served) == NULL)) {
		cJSON_Delete(o);
		return NULL;
	}
	return finish(o, ret_len);
}

/* Appends n bytes at *o (the caller sized the buffer). */
static void
put(char *line, size_t *o, const char *p, size_t n)
{
	memcpy(line + *o, p, n);
	*o += n;
}

char *
codec_result_text(const cJSON *id, bool jsonrpc, const char *text,
    size_t len, const char *served, size_t *ret_len)
{
	static const char rpc[] = "\"jsonrpc\":\"2.0\",";
	char *ids = NULL, *line;
	size_t n, o = 0;

	assert(text != NULL && memchr(text, '\n', len) == NULL);
	if (id != NULL && (ids = cJSON_PrintUnformatted(id)) == NULL)
		return NULL;
	/* {rpc"id":ID,"result":TEXT,"cache":"SERVED"}\n */
	n = 1 + (jsonrpc ? sizeof(rpc) - 1 : 0) +
	    (ids != NULL ? 6 + strlen(ids) : 0) + 9 + len +
	    (served != NULL ? 11 + strlen(served) : 0) + 2;
	line = malloc(n + 1);
	if (line == NULL) {
		free(ids);
		return NULL;
	}
	put(line, &o, "{", 1);
	if (jsonrpc)
		put(line, &o, rpc, sizeof(rpc) - 1);
	if (ids != NULL) {
		put(line, &o, "\"id\":", 5);
		put(line, &o, ids, strlen(ids));
		put(line, &o, ",", 1);
	}
	put(line, &o, "\"result\":", 9);
	put(line, &o, text, len);
	if (served != NULL) {
		put(line, &o, ",\"cache\":\"", 10);
		put(line, &o, served, strlen(served));
		put(line, &o, "\"", 1);
	}
	put(line, &o, "}\n", 2);
	line[o] = '\0';
	free(ids);
	*ret_len = o;
	return line;
}

char *
codec_event(const cJSON *id, unsigned long long seq, const cJSON *event,
    size_t *ret_len)
{
	cJSON *o = envelope(id, false);

	if (o == NULL || cJSON_AddNumberToObject(o, "seq", (double)seq) == NULL ||
	    add_ref(o, "event", event) < 0) {
		cJSON_Delete(o);
		return NULL;
	}
	return finish(o, ret_len);
}

char *
codec_error_line(const cJSON *id, bool jsonrpc, const struct codec_error *e,
    size_t *ret_len)
{
	cJSON *o = envelope(id, jsonrpc), *err;

	if (o == NULL)
		return NULL;
	err = cJSON_AddObjectToObject(o, "error");
	if (err == NULL || !cJSON_AddStringToObject(err, "code", e->code) ||
	    !cJSON_AddStringToObject(err, "message",
		e->message != NULL ? e->message : e->code))
		goto fail;
	if (e->status > 0 &&
	    !cJSON_AddNumberToObject(err, "status", e->status))
		goto fail;
	if (e->request_id != NULL &&
	    !cJSON_AddStringToObject(err, "request_id", e->request_id))
		goto fail;
	if (e->upstream_code != NULL &&
	    !cJSON_AddStringToObject(err, "upstream_code", e->upstream_code))
		goto fail;
	if (e->retry_after >= 0 &&
	    !cJSON_AddNumberToObject(err, "retry_after", e->retry_after))
		goto fail;
	if (!cJSON_AddBoolToObject(err, "retryable", e->retryable))
		goto fail;
	if (e->details != NULL && add_ref(err, "details", e->details) < 0)
		goto fail;
	return finish(o, ret_len);
fail:
	cJSON_Delete(o);
	return NULL;
}

int
codec_exit_code(const char *code)
{
	static const struct {
		const char *code;
		int status;
	} map[] = {
	    {E_UP_NOT_FOUND, 3},
	    {E_UP_ROUTE, 3},
	    {E_NOT_FOUND_CALL, 3},
	    {E_UP_AUTH, 4},
	    {E_NO_KEY, 4},
	    {E_UP_PERMISSION, 4},
	    {E_FORBIDDEN, 4},
	    {E_UP_RATE_LIMIT, 5},
	    {E_UP_CONFLICT, 6},
	    {E_UP_BILLING, 7},
	    {E_UP_RUN_FAILED, 8},
	    {E_UNREACHABLE, 69},
	    {E_UPSTREAM_TIMEOUT, 75},
	    {E_TIMEOUT, 75},
	    {E_INTERNAL, 70},
	    {E_NOMEM, 70},
	};

	if (code == NULL)
		return 0;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcmp(map[i].code, code) == 0)
			return map[i].status;
	/* Bad input of ours (usage) vs anything else the API refused. */
	if (strncmp(code, "m8tesd.", 7) == 0)
		return 2;
	return 1;
}

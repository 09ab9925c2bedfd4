/*
 * SPDX-License-Identifier: MIT
 *
 * Method + params -> upstream path, query and body.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "methods.h"
#include "request.h"

#define REQUEST_MAX_PATH 8192
#define REQUEST_DEFAULT_LIMIT 20 /* the upstream's page size */

static const char hexdig[] = "0123456789ABCDEF";

static bool
unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	    c == '~';
}

static int
encode(const char *s, bool form, char *out, size_t outlen)
{
	size_t n = 0;

	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (unreserved(*p) || (form && *p == ' ')) {
			if (n + 1 >= outlen)
				return -ENOBUFS;
			out[n++] = (form && *p == ' ') ? '+' : (char)*p;
		} else {
			if (n + 3 >= outlen)
				return -ENOBUFS;
			out[n++] = '%';
			out[n++] = hexdig[*p >> 4];
			out[n++] = hexdig[*p & 15];
		}
	}
	if (n >= outlen)
		return -ENOBUFS;
	out[n] = '\0';
	return (int)n;
}

int
request_seg_encode(const char *value, char *out, size_t outlen)
{
	if (value[0] == '\0' || strcmp(value, ".") == 0 ||
	    strcmp(value, "..") == 0 || strchr(value, '/') != NULL)
		return -EINVAL;
	return encode(value, false, out, outlen);
}

int
request_form_encode(const char *s, char *out, size_t outlen)
{
	return encode(s, true, out, outlen);
}

const cJSON *
request_param(const cJSON *params, const char *name)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);

	if (v == NULL && strcmp(name, "teammate_id") == 0)
		v = cJSON_GetObjectItemCaseSensitive(params, "agent_id");
	return v;
}

/* Text of a scalar for a path segment or query value. */
static int
scalar_text(const cJSON *v, char *buf, size_t len, const char **ret)
{
	if (cJSON_IsString(v)) {
		*ret = v->valuestring;
		return 0;
	}
	if (cJSON_IsBool(v)) {
		*ret = cJSON_IsTrue(v) ? "true" : "false";
		return 0;
	}
	if (cJSON_IsNumber(v)) {
		double d = v->valuedouble;

		if (d == (double)(long long)d)
			(void)snprintf(buf, len, "%lld", (long long)d);
		else
			(void)snprintf(buf, len, "%.17g", d);
		*ret = buf;
		return 0;
	}
	return -EINVAL;
}

static bool
truthy(const cJSON *v)
{
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (cJSON_IsNumber(v))
		return v->valuedouble != 0;
	if (cJSON_IsBool(v))
		return cJSON_IsTrue(v);
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return v->child != NULL;
	return false;
}

/* Whether a present, non-null value is sent under p's modifiers. */
static bool
sent(const struct method_param *p, const cJSON *v)
{
	if ((p->flags & PARAM_ONLY_TRUE) && !cJSON_IsTrue(v))
		return false;
	if ((p->flags & PARAM_ONLY_FALSE) && !cJSON_IsFalse(v))
		return false;
	if ((p->flags & PARAM_TRUTHY) && !truthy(v))
		return false;
	return true;
}

static int
build_path(const struct method *m, const cJSON *params, char *out,
    size_t outlen, char *err, size_t errlen)
{
	const char *t = m->path;
	size_t n = 0;

	while (*t != '\0') {
		const char *close, *text;
		const struct method_param *p;
		char name[64], num[32];
		const cJSON *v;
		int r;

		if (*t != '{') {
			if (n + 1 >= outlen)
				return -ENOBUFS;
			out[n++] = *t++;
			continue;
		}
		close = strchr(t, '}');
		if (close == NULL || (size_t)(close - t - 1) >= sizeof(name))
			return -EINVAL;
		memcpy(name, t + 1, (size_t)(close - t - 1));
		name[close - t - 1] = '\0';
		t = close + 1;
		p = method_param_find(m, name);
		v = request_param(params, name);
		if (p == NULL || v == NULL ||
		    scalar_text(v, num, sizeof(num), &text) < 0) {
			(void)snprintf(err, errlen,
			    "missing path parameter \"%s\"", name);
			return -EINVAL;
		}
		r = request_seg_encode(text, out + n, outlen - n);
		if (r == -EINVAL) {
			(void)snprintf(err, errlen,
			    "\"%s\" may not be empty, \".\", \"..\" or "
			    "contain \"/\"",
			    name);
			return r;
		}
		if (r < 0)
			return r;
		n += (size_t)r;
	}
	out[n] = '\0';
	return (int)n;
}

static int
build_query(const struct method *m, const cJSON *params, char *out,
    size_t outlen)
{
	size_t n = strlen(out);
	bool first = true;

	for (size_t i = 0; i < m->nparams; i++) {
		const struct method_param *p = &m->params[i];
		const cJSON *v;
		const char *text;
		char num[32];
		int r;

		if (p->loc != LOC_QUERY && p->loc != LOC_BOTH)
			continue;
		v = request_param(params, p->name);
		if (v == NULL || cJSON_IsNull(v) || !sent(p, v))
			continue;
		/* The SDK leaves out the default page size. */
		if (strcmp(p->name, "limit") == 0 && cJSON_IsNumber(v) &&
		    v->valuedouble == REQUEST_DEFAULT_LIMIT)
			continue;
		if (scalar_text(v, num, sizeof(num), &text) < 0)
			return -EINVAL;
		r = snprintf(out + n, outlen - n, "%c%s=", first ? '?' : '&',
		    p->name);
		if (r < 0 || (size_t)r >= outlen - n)
			return -ENOBUFS;
		n += (size_t)r;
		r = request_form_encode(text, out + n, outlen - n);
		if (r < 0)
			return r;
		n += (size_t)r;
		first = false;
	}
	return (int)n;
}

static int
add_copy(cJSON *body, const char *name, const cJSON *v)
{
	cJSON *c = cJSON_Duplicate(v, 1);

	if (c == NULL || !cJSON_AddItemToObject(body, name, c)) {
		cJSON_Delete(c);
		return -ENOMEM;
	}
	return 0;
}

/* The few SDK rules that the table's modifiers do not express. */
static int
fixup_body(const struct method *m, const cJSON *params, cJSON *body)
{
	if (strcmp(m->name, "tasks.create") == 0) {
		const cJSON *s = request_param(params, "schedule");

		/* schedule_timezone travels only with schedule, "UTC" if unset. */
		if (s == NULL || cJSON_IsNull(s)) {
			cJSON_DeleteItemFromObjectCaseSensitive(body,
			    "schedule_timezone");
		} else if (!cJSON_HasObjectItem(body, "schedule_timezone")) {
			if (cJSON_AddStringToObject(body, "schedule_timezone",
				"UTC") == NULL)
				return -ENOMEM;
		}
	}
	return 0;
}

static int
build_body(const struct method *m, const cJSON *params, char **ret_body)
{
	cJSON *body;
	bool any = false;
	int r = -ENOMEM;

	*ret_body = NULL;
	body = cJSON_CreateObject();
	if (body == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < m->nparams; i++) {
		const struct method_param *p = &m->params[i];
		const cJSON *v;

		if (p->loc != LOC_BODY && p->loc != LOC_BOTH)
			continue;
		any = true;
		v = request_param(params, p->name);
		if (v != NULL && cJSON_IsNull(v) &&
		    (p->flags & PARAM_NULLABLE)) {
			if (cJSON_AddNullToObject(body, p->name) == NULL)
				goto out;
			continue;
		}
		if (v == NULL || cJSON_IsNull(v)) {
			cJSON *d;

			if (p->def == NULL)
				continue;
			d = cJSON_Parse(p->def);
			if (d == NULL || !cJSON_AddItemToObject(body, p->name, d)) {
				cJSON_Delete(d);
				goto out;
			}
			continue;
		}
		if (!sent(p, v))
			continue;
		if (add_copy(body, p->name, v) < 0)
			goto out;
	}
	r = fixup_body(m, params, body);
	if (r < 0)
		goto out;
	/* A route with body fields always carries a body, "{}" if empty. */
	if (any) {
		*ret_body = cJSON_PrintUnformatted(body);
		if (*ret_body == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	r = 0;
out:
	cJSON_Delete(body);
	return r;
}

int
request_build(const struct method *m, const cJSON *params, char **ret_path,
    char **ret_body, char *err, size_t errlen)
{
	char *path;
	int r;

	path = malloc(REQUEST_MAX_PATH);
	if (path == NULL)
		return -ENOMEM;
	r = build_path(m, params, path, REQUEST_MAX_PATH, err, errlen);
	if (r >= 0)
		r = build_query(m, params, path, REQUEST_MAX_PATH);
	if (r == -ENOBUFS)
		(void)snprintf(err, errlen, "request path too long");
	if (r < 0)
		goto fail;
	r = build_body(m, params, ret_body);
	if (r < 0)
		goto fail;
	*ret_path = path;
	return 0;
fail:
	free(path);
	return r == -ENOBUFS ? -EINVAL : r;
}

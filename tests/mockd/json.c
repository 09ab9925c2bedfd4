/*
 * SPDX-License-Identifier: MIT
 *
 * cJSON helpers. The mock stores every API object as a cJSON tree, so these
 * are the only accessors the route modules use.
 */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "json.h"
#include "util.h"

const char *
json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

int
json_int(const cJSON *o, const char *k, long long *ret)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	if (v == NULL || cJSON_IsNull(v))
		return -ENOENT;
	if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) ||
	    fabs(v->valuedouble) > 9e15)
		return -EINVAL;
	*ret = (long long)v->valuedouble;
	return 0;
}

bool
json_has(const cJSON *o, const char *k)
{
	return cJSON_GetObjectItemCaseSensitive(o, k) != NULL;
}

bool
json_nullish(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);

	return v == NULL || cJSON_IsNull(v);
}

long long
json_id(const cJSON *o)
{
	long long id;

	return json_int(o, "id", &id) == 0 ? id : -1;
}

int
json_set(cJSON *o, const char *k, cJSON *v)
{
	if (v == NULL)
		return -ENOMEM;
	if (cJSON_GetObjectItemCaseSensitive(o, k) != NULL)
		return cJSON_ReplaceItemInObjectCaseSensitive(o, k, v)
		    ? 0
		    : (cJSON_Delete(v), -ENOMEM);
	return cJSON_AddItemToObject(o, k, v) ? 0 : (cJSON_Delete(v), -ENOMEM);
}

int
json_set_str(cJSON *o, const char *k, const char *s)
{
	return json_set(o, k,
	    s != NULL ? cJSON_CreateString(s) : cJSON_CreateNull());
}

int
json_set_num(cJSON *o, const char *k, double v)
{
	return json_set(o, k, cJSON_CreateNumber(v));
}

int
json_set_bool(cJSON *o, const char *k, bool v)
{
	return json_set(o, k, cJSON_CreateBool(v));
}

int
json_set_null(cJSON *o, const char *k)
{
	return json_set(o, k, cJSON_CreateNull());
}

int
json_set_now(cJSON *o, const char *k)
{
	char buf[32];

	util_iso(time(NULL), buf, sizeof(buf));
	return json_set_str(o, k, buf);
}

int
json_copy_key(cJSON *dst, const cJSON *src, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(src, k);

	if (v == NULL)
		return 0;
	return json_set(dst, k, cJSON_Duplicate(v, 1));
}

cJSON *
json_find_id(const cJSON *a, long long id)
{
	cJSON *it;

	for (it = json_first(a); it != NULL; it = it->next)
		if (json_id(it) == id)
			return it;
	return NULL;
}

cJSON *
json_find_str(const cJSON *a, const char *k, const char *v)
{
	cJSON *it;

	for (it = json_first(a); it != NULL; it = it->next) {
		const char *s = json_str(it, k);

		if (s != NULL && strcmp(s, v) == 0)
			return it;
	}
	return NULL;
}

cJSON *
json_template(const char *text)
{
	return cJSON_Parse(text);
}

cJSON *
json_first(const cJSON *a)
{
	return a != NULL ? a->child : NULL;
}

cJSON *
json_last(const cJSON *a)
{
	return a != NULL && a->child != NULL ? a->child->prev : NULL;
}

cJSON *
json_prev(const cJSON *a, const cJSON *it)
{
	return it == a->child ? NULL : it->prev;
}

bool
json_scope_eq(const cJSON *o, const char *user_id)
{
	const char *s = json_str(o, "user_id");

	if (s == NULL || user_id == NULL)
		return s == NULL && user_id == NULL;
	return strcmp(s, user_id) == 0;
}

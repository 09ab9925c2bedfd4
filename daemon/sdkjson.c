/*
 * SPDX-License-Identifier: MIT
 *
 * JSON read the way the Python SDK reads it; see sdkjson.h.
 */
#include <string.h>

#include "sdkjson.h"

cJSON *
sdkjson_last(const cJSON *obj, const char *key)
{
	cJSON *c, *found = NULL;

	if (!cJSON_IsObject(obj))
		return NULL;
	for (c = obj->child; c != NULL; c = c->next)
		if (c->string != NULL && strcmp(c->string, key) == 0)
			found = c;
	return found;
}

bool
sdkjson_truthy(const cJSON *v)
{
	if (v == NULL || cJSON_IsNull(v) || cJSON_IsFalse(v))
		return false;
	if (cJSON_IsString(v))
		return v->valuestring[0] != '\0';
	if (cJSON_IsNumber(v))
		return v->valuedouble < 0 || v->valuedouble > 0;
	if (cJSON_IsArray(v) || cJSON_IsObject(v))
		return v->child != NULL;
	return true;
}

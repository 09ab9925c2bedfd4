/*
 * SPDX-License-Identifier: MIT
 *
 * cJSON conveniences for the mock: typed getters that tolerate missing keys,
 * setters that replace in place, and lookups by "id". Setters take ownership
 * of the value they are given and return 0 or -ENOMEM; several results may
 * be OR-ed together since the only error is -ENOMEM.
 */
#ifndef MOCKD_JSON_H
#define MOCKD_JSON_H

#include <stdbool.h>
#include <stddef.h>

#include <cjson/cJSON.h>

/* The string at key k, or NULL when absent or not a string. */
const char *json_str(const cJSON *o, const char *k);

/* The integer at key k: 0, -ENOENT (absent or null) or -EINVAL. */
int json_int(const cJSON *o, const char *k, long long *ret);

/* True when key k is present (null counts as present). */
bool json_has(const cJSON *o, const char *k);

/* True when key k is present with JSON null, or absent. */
bool json_nullish(const cJSON *o, const char *k);

/* The "id" of an object as an integer, -1 if it has none. */
long long json_id(const cJSON *o);

int json_set(cJSON *o, const char *k, cJSON *v);
int json_set_str(cJSON *o, const char *k, const char *s);
int json_set_num(cJSON *o, const char *k, double v);
int json_set_bool(cJSON *o, const char *k, bool v);
int json_set_null(cJSON *o, const char *k);
int json_set_now(cJSON *o, const char *k);

/* Copy the value of key k from src to dst (deep copy) if src has it. */
int json_copy_key(cJSON *dst, const cJSON *src, const char *k);

/* The element of array a whose "id" equals id, or NULL. */
cJSON *json_find_id(const cJSON *a, long long id);

/* The element of array a whose string key k equals v, or NULL. */
cJSON *json_find_str(const cJSON *a, const char *k, const char *v);

/* Parse a constant template; NULL only on ENOMEM. */
cJSON *json_template(const char *text);

/* The first element of array a (which may be NULL), or NULL. */
cJSON *json_first(const cJSON *a);

/* The last element of a and the one before it (NULL at the start). */
cJSON *json_last(const cJSON *a);
cJSON *json_prev(const cJSON *a, const cJSON *it);

/* Compare a nullable user_id with the object's "user_id". */
bool json_scope_eq(const cJSON *o, const char *user_id);

#endif

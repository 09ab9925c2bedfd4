/*
 * SPDX-License-Identifier: MIT
 *
 * JSON read the way the Python SDK reads it (upstream-api.md): of a key
 * given twice the last one counts, and "is it set?" is Python truthiness.
 * Shared by the SSE normaliser and the run accumulator.
 */
#ifndef M8_SDKJSON_H
#define M8_SDKJSON_H

#include <stdbool.h>

#include <cjson/cJSON.h>

/* The last member named key, or NULL; NULL when obj is not an object. */
cJSON *sdkjson_last(const cJSON *obj, const char *key);

/* Python truthiness; NULL (absent) is false. */
bool sdkjson_truthy(const cJSON *v);

#endif

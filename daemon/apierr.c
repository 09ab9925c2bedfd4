/*
 * SPDX-License-Identifier: MIT
 *
 * Upstream error envelopes -> protocol errors.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "apierr.h"

const char *
apierr_code_for_status(long status)
{
	switch (status) {
	case 400:
	case 422:
		return E_UP_VALIDATION;
	case 401:
		return E_UP_AUTH;
	case 402:
		return E_UP_BILLING;
	case 403:
		return E_UP_PERMISSION;
	case 404:
		return E_UP_NOT_FOUND;
	case 409:
		return E_UP_CONFLICT;
	case 429:
		return E_UP_RATE_LIMIT;
	default:
		return E_UP_API;
	}
}

static const char *
str_item(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);

	return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void
copy(char *dst, size_t cap, const char *src)
{
	(void)snprintf(dst, cap, "%s", src);
}

static bool
looks_html(const char *body, size_t len)
{
	size_t i = 0;

	while (i < len && (body[i] == ' ' || body[i] == '\n' ||
			      body[i] == '\r' || body[i] == '\t'))
		i++;
	return i < len && body[i] == '<';
}

void
apierr_from_http(struct apierr *a, long status, const char *body, size_t len,
    const char *request_id_header, double retry_after)
{
	cJSON *root = NULL;
	const cJSON *err;
	const char *s;

	memset(a, 0, sizeof(*a));
	a->e.status = (int)status;
	a->e.code = apierr_code_for_status(status);
	a->e.retry_after = retry_after;
	a->e.retryable = status == 429 || status >= 500;
	(void)snprintf(a->message, sizeof(a->message), "HTTP %ld", status);
	if (request_id_header != NULL)
		copy(a->request_id, sizeof(a->request_id), request_id_header);

	if (body != NULL && len > 0)
		root = cJSON_ParseWithLength(body, len);
	if (root == NULL) {
		if (body != NULL && len > 0 && looks_html(body, len))
			(void)snprintf(a->message, sizeof(a->message),
			    "HTTP %ld: the upstream answered an HTML page; "
			    "does the base URL end in /api/v2?",
			    status);
		else if (body != NULL && len > 0)
			(void)snprintf(a->message, sizeof(a->message),
			    "HTTP %ld: %.*s", status,
			    (int)(len > 300 ? 300 : len), body);
		goto out;
	}
	err = cJSON_GetObjectItemCaseSensitive(root, "error");
	if (status == 404 && err == NULL &&
	    (s = str_item(root, "detail")) != NULL &&
	    strcmp(s, "Not Found") == 0 && cJSON_GetArraySize(root) == 1) {
		a->e.code = E_UP_ROUTE;
		copy(a->message, sizeof(a->message),
		    "the upstream has no such route; does the base URL end "
		    "in /api/v2?");
		goto out;
	}
	if (cJSON_IsString(err)) {
		copy(a->message, sizeof(a->message), err->valuestring);
	} else if (cJSON_IsObject(err)) {
		const cJSON *details =
		    cJSON_GetObjectItemCaseSensitive(err, "details");

		if ((s = str_item(err, "message")) != NULL)
			copy(a->message, sizeof(a->message), s);
		else if ((s = str_item(root, "detail")) != NULL)
			copy(a->message, sizeof(a->message), s);
		if ((s = str_item(err, "request_id")) != NULL)
			copy(a->request_id, sizeof(a->request_id), s);
		if ((s = str_item(err, "error_code")) != NULL ||
		    (s = str_item(details, "error_code")) != NULL ||
		    (s = str_item(err, "code")) != NULL)
			copy(a->upstream_code, sizeof(a->upstream_code), s);
		if (cJSON_IsObject(details))
			a->details = cJSON_Duplicate(details, 1);
	} else if ((s = str_item(root, "detail")) != NULL) {
		copy(a->message, sizeof(a->message), s);
	}
	if (a->request_id[0] == '\0' &&
	    (s = str_item(root, "request_id")) != NULL)
		copy(a->request_id, sizeof(a->request_id), s);
out:
	cJSON_Delete(root);
	a->e.message = a->message;
	a->e.request_id = a->request_id[0] ? a->request_id : NULL;
	a->e.upstream_code = a->upstream_code[0] ? a->upstream_code : NULL;
	a->e.details = a->details;
}

void
apierr_from_transport(struct apierr *a, int error, const char *text)
{
	memset(a, 0, sizeof(*a));
	a->e.retry_after = -1;
	a->e.retryable = true;
	switch (error) {
	case -ETIMEDOUT:
		a->e.code = E_UPSTREAM_TIMEOUT;
		break;
	case -EFBIG:
		a->e.code = E_TOO_LARGE;
		a->e.retryable = false;
		break;
	case -ENOMEM:
		a->e.code = E_NOMEM;
		a->e.retryable = false;
		break;
	default:
		a->e.code = E_UNREACHABLE;
		break;
	}
	(void)snprintf(a->message, sizeof(a->message), "upstream: %s",
	    text != NULL ? text : "transport failure");
	a->e.message = a->message;
}

void
apierr_done(struct apierr *a)
{
	cJSON_Delete(a->details);
	a->details = NULL;
}

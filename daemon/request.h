/*
 * SPDX-License-Identifier: MIT
 *
 * Builds an upstream HTTP request (path with query, JSON body) from a method
 * of the table and the caller's params, exactly as the SDK would send it:
 * path segments encoded or refused by the upstream segment rule, the query
 * form-urlencoded, body fields in table order with the table's rules for
 * nulls, defaults and true/false-only flags. Pure: no I/O, no globals.
 */
#ifndef M8_REQUEST_H
#define M8_REQUEST_H

#include <stddef.h>

struct cJSON;
struct method;

/*
 * Encodes one path segment into out (outlen bytes, terminated). Returns the
 * length, -EINVAL for a value the upstream rule refuses (empty, ".", "..",
 * or containing '/'), -ENOBUFS when out is too small.
 */
int request_seg_encode(const char *value, char *out, size_t outlen);

/* Form-urlencodes s (space as '+') into out; same returns. */
int request_form_encode(const char *s, char *out, size_t outlen);

/*
 * Builds the request of method m for params (checked beforehand with
 * method_check_params). On success *ret_path holds the path and query below
 * the base URL and *ret_body the JSON body or NULL (both malloc'd, caller
 * frees). Errors: -EINVAL with a reason in err (a refused path segment),
 * -ENOMEM.
 */
int request_build(const struct method *m, const struct cJSON *params,
    char **ret_path, char **ret_body, char *err, size_t errlen);

/* The param value named name, honouring the "agent_id" alias. */
const struct cJSON *request_param(const struct cJSON *params,
    const char *name);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * The local protocol's codec, shared by the daemon and the client: request
 * decoding with every bound checked, reply/event/error envelopes, the stable
 * error codes and their exit codes. No I/O here. See PROTOCOL.md.
 */
#ifndef M8_CODEC_H
#define M8_CODEC_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;

#define PROTO_VERSION 1
#define PROTO_MAX_LINE (1024 * 1024) /* bytes, newline excluded */
#define PROTO_MAX_DEPTH 64           /* JSON nesting */
#define PROTO_MAX_ID 256             /* bytes of a string id */
#define PROTO_MAX_METHOD 64

/* Error codes: stable names, never renamed or reused. */
#define E_PARSE "m8tesd.parse_error"
#define E_INVALID_REQUEST "m8tesd.invalid_request"
#define E_INVALID_UTF8 "m8tesd.invalid_utf8"
#define E_LINE_TOO_LONG "m8tesd.line_too_long"
#define E_TOO_DEEP "m8tesd.too_deep"
#define E_METHOD_NOT_FOUND "m8tesd.method_not_found"
#define E_INVALID_PARAMS "m8tesd.invalid_params"
#define E_INVALID_PATH "m8tesd.invalid_path_segment"
#define E_DUPLICATE_ID "m8tesd.duplicate_id"
#define E_TOO_MANY_CALLS "m8tesd.too_many_calls"
#define E_CANCELLED "m8tesd.cancelled"
#define E_NOT_FOUND_CALL "m8tesd.no_such_call"
#define E_FORBIDDEN "m8tesd.forbidden"
#define E_NO_KEY "m8tesd.no_api_key"
#define E_TIMEOUT "m8tesd.timeout"
#define E_UNREACHABLE "m8tesd.upstream_unreachable"
#define E_UPSTREAM_TIMEOUT "m8tesd.upstream_timeout"
#define E_BAD_UPSTREAM "m8tesd.bad_upstream_reply"
#define E_TOO_LARGE "m8tesd.too_large"
#define E_SHUTTING_DOWN "m8tesd.shutting_down"
#define E_CACHE_MISS "m8tesd.cache_miss"
#define E_UNAVAILABLE "m8tesd.unavailable"
#define E_BUSY "m8tesd.busy"
#define E_INTERNAL "m8tesd.internal"
#define E_NOMEM "m8tesd.out_of_memory"
/* Mapped from the upstream's HTTP status (upstream-api §4.1). */
#define E_UP_VALIDATION "m8tes.validation_error"
#define E_UP_AUTH "m8tes.authentication_error"
#define E_UP_BILLING "m8tes.billing_error"
#define E_UP_PERMISSION "m8tes.permission_denied"
#define E_UP_NOT_FOUND "m8tes.not_found"
#define E_UP_ROUTE "m8tes.route_not_found"
#define E_UP_CONFLICT "m8tes.conflict"
#define E_UP_RATE_LIMIT "m8tes.rate_limited"
#define E_UP_API "m8tes.api_error"
#define E_UP_RUN_FAILED "m8tes.run_failed"

/* A decoded request line. Pointers borrow from the parsed tree. */
struct codec_request {
	struct cJSON *root;         /* owned: free with codec_request_done */
	const struct cJSON *id;     /* NULL when absent */
	const char *method;         /* NULL when the line was bad */
	const struct cJSON *params; /* object or NULL */
	bool jsonrpc;               /* "jsonrpc":"2.0" given: echo it */
};

/*
 * Decodes one line (without its newline). Returns 0 and fills req, or
 * -EINVAL with *ret_code set to one of the E_* codes and a reason in err.
 * On failure req->id is still set when the line held a usable id, so the
 * error can be matched to the call; req->root must be released either way.
 */
int codec_request_parse(const char *line, size_t len,
    struct codec_request *req, const char **ret_code, char *err,
    size_t errlen);
void codec_request_done(struct codec_request *req);

/* True when p[0..len) is valid UTF-8 (no overlongs, no surrogates). */
bool codec_utf8_valid(const char *p, size_t len);

/* Depth of the deepest nesting in p, stopping early past limit. */
int codec_json_depth(const char *p, size_t len, int limit);

/*
 * Envelopes. Each returns a malloc'd, newline-terminated line and its length
 * in *ret_len, or NULL on ENOMEM. id may be NULL (then "id" is omitted);
 * result and event are borrowed.
 */
char *codec_result(const struct cJSON *id, bool jsonrpc,
    const struct cJSON *result, size_t *ret_len);
/* As codec_result, plus "cache": served ("hit", "miss", …) when not NULL. */
char *codec_result_served(const struct cJSON *id, bool jsonrpc,
    const struct cJSON *result, const char *served, size_t *ret_len);
/*
 * As codec_result_served, with the result given as JSON text (len bytes of
 * one compact value, as cJSON_PrintUnformatted writes it: no newline),
 * copied as it is: nothing is parsed or printed. A cache hit's path.
 */
char *codec_result_text(const struct cJSON *id, bool jsonrpc,
    const char *text, size_t len, const char *served, size_t *ret_len);
char *codec_event(const struct cJSON *id, unsigned long long seq,
    const struct cJSON *event, size_t *ret_len);

/* Fields of an error reply beyond code and message; zero/NULL = absent. */
struct codec_error {
	const char *code;
	const char *message;
	int status;              /* upstream HTTP status, 0 = none */
	const char *request_id;  /* upstream request id */
	const char *upstream_code; /* upstream error_code */
	double retry_after;      /* seconds, < 0 = none */
	bool retryable;
	const struct cJSON *details; /* borrowed */
};
char *codec_error_line(const struct cJSON *id, bool jsonrpc,
    const struct codec_error *e, size_t *ret_len);

/* Exit status for a CLI that got error code code (sysexits-like). */
int codec_exit_code(const char *code);

#endif

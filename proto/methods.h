/*
 * SPDX-License-Identifier: MIT
 *
 * The method table (methods.def) as data: what the daemon dispatches, what
 * the client offers as commands and what daemon.describe prints. This module
 * owns parsing the compact parameter specs and checking a request's params
 * against them; it knows nothing of sockets or HTTP.
 */
#ifndef M8_METHODS_H
#define M8_METHODS_H

#include <stddef.h>

struct cJSON;

enum method_verb {
	VERB_NONE,
	VERB_GET,
	VERB_POST,
	VERB_PATCH,
	VERB_DELETE,
};

enum method_kind {
	KIND_OBJ,
	KIND_PAGE,
	KIND_ENV,
	KIND_ARR,
	KIND_RAW,
	KIND_EMPTY,
};

enum method_handler {
	H_PLAIN,
	H_POLL,
	H_WAIT,
	H_DOWNLOAD,
	H_STREAM,
	H_LOCAL,
};

#define METHOD_IDEM 0x1u  /* Idempotency-Key on every attempt */
#define METHOD_ADMIN 0x2u /* root or the daemon's own uid only */
#define METHOD_CACHE 0x4u /* GET answer may come from the cache */

#define PARAM_REQUIRED 0x01u
#define PARAM_NULLABLE 0x02u  /* a JSON null is sent as null */
#define PARAM_ONLY_TRUE 0x04u /* sent only when true */
#define PARAM_ONLY_FALSE 0x08u
#define PARAM_TRUTHY 0x10u /* sent only when truthy */

/* Where a parameter goes. */
enum param_loc {
	LOC_PATH = 'p',
	LOC_QUERY = 'q',
	LOC_BODY = 'b',
	LOC_BOTH = 'B', /* body and query */
	LOC_LOCAL = 'l',
};

/* What a parameter may hold. */
enum param_type {
	TYPE_STRING = 's',
	TYPE_INT = 'i',
	TYPE_NUMBER = 'n',
	TYPE_BOOL = 'b',
	TYPE_ID = 'x', /* integer or string */
	TYPE_OBJECT = 'o',
	TYPE_ARRAY = 'a',
	TYPE_ANY = 'j',
};

struct method_param {
	const char *name;
	enum param_type type;
	enum param_loc loc;
	unsigned flags;
	const char *def; /* JSON text sent when absent, or NULL */
};

struct method {
	const char *name;
	enum method_verb verb;
	const char *path;
	enum method_kind kind;
	enum method_handler handler;
	unsigned flags;
	const char *spec;
	const char *summary;
	const struct method_param *params;
	size_t nparams;
};

/*
 * Parses every parameter spec once. Returns 0, or -EINVAL naming nothing if
 * the built-in table is malformed (a programming error the unit test
 * catches). Safe to call more than once.
 */
int methods_init(void);

size_t methods_count(void);
const struct method *methods_at(size_t i);

/* The method called name, or NULL. */
const struct method *methods_find(const char *name);

/*
 * The parameter called name of m, or NULL. Besides the table's own, every
 * cached method takes "cache" ("default", "bypass", "only", "stale-ok")
 * and every paged list takes "all" (stream every item across pages).
 */
const struct method_param *method_param_find(const struct method *m,
    const char *name);

/*
 * Checks params (a JSON object, or NULL for none) against m: unknown names,
 * wrong types and missing required parameters. On failure returns -EINVAL
 * and writes a one-line reason to err (errlen bytes, always terminated).
 * "agent_id" is accepted as the SDK's alias of "teammate_id".
 */
int method_check_params(const struct method *m, const struct cJSON *params,
    char *err, size_t errlen);

const char *method_verb_name(enum method_verb v);
const char *method_kind_name(enum method_kind k);
const char *method_type_name(enum param_type t);
const char *method_loc_name(enum param_loc l);

#endif

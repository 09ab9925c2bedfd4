/*
 * SPDX-License-Identifier: MIT
 *
 * The method table and its parameter specs. The specs are parsed once into
 * fixed pools (no allocation, nothing to free), then used read-only.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "methods.h"

#define MAX_PARAMS 768
#define MAX_NAMES 16384

#define NONE VERB_NONE
#define GET VERB_GET
#define POST VERB_POST
#define PATCH VERB_PATCH
#define DELETE VERB_DELETE
#define OBJ KIND_OBJ
#define PAGE KIND_PAGE
#define ENV KIND_ENV
#define ARR KIND_ARR
#define RAW KIND_RAW
#define EMPTY KIND_EMPTY
#define PLAIN H_PLAIN
#define POLL H_POLL
#define WAIT H_WAIT
#define DOWNLOAD H_DOWNLOAD
#define STREAM H_STREAM
#define LOCAL H_LOCAL
#define IDEM METHOD_IDEM
#define ADMIN METHOD_ADMIN
#define CACHE METHOD_CACHE

static struct method table[] = {
#define M(name, verb, path, kind, handler, flags, params, summary)             \
	{name, verb, path, kind, handler, flags, params, summary, NULL, 0},
#include "methods.def"
#undef M
};

#define NMETHODS (sizeof(table) / sizeof(table[0]))

static struct method_param param_pool[MAX_PARAMS];
static char name_pool[MAX_NAMES];
static bool initialised;

static int parse_spec(struct method *m, size_t *np, size_t *nn);
static int check_value(const struct method_param *p, const cJSON *v,
    char *err, size_t errlen);

static int
parse_spec(struct method *m, size_t *np, size_t *nn)
{
	const char *s = m->spec;

	m->params = &param_pool[*np];
	m->nparams = 0;
	while (*s != '\0') {
		struct method_param *p;
		const char *tok, *colon;
		size_t len;

		while (*s == ' ')
			s++;
		if (*s == '\0')
			break;
		tok = s;
		while (*s != '\0' && *s != ' ')
			s++;
		len = (size_t)(s - tok);
		colon = memchr(tok, ':', len);
		if (colon == NULL || colon == tok || len - (size_t)(colon - tok) < 3)
			return -EINVAL;
		if (*np >= MAX_PARAMS || *nn + len + 2 > MAX_NAMES)
			return -EINVAL;
		p = &param_pool[(*np)++];
		memset(p, 0, sizeof(*p));
		/* Name, then the default's text, both in the name pool. */
		memcpy(&name_pool[*nn], tok, (size_t)(colon - tok));
		name_pool[*nn + (size_t)(colon - tok)] = '\0';
		p->name = &name_pool[*nn];
		*nn += (size_t)(colon - tok) + 1;
		p->type = (enum param_type)colon[1];
		p->loc = (enum param_loc)colon[2];
		if (strchr("sinbxoaj", colon[1]) == NULL ||
		    strchr("pqbBl", colon[2]) == NULL)
			return -EINVAL;
		for (const char *c = colon + 3; c < s; c++) {
			switch (*c) {
			case '!':
				p->flags |= PARAM_REQUIRED;
				break;
			case '~':
				p->flags |= PARAM_NULLABLE;
				break;
			case '+':
				p->flags |= PARAM_ONLY_TRUE;
				break;
			case '-':
				p->flags |= PARAM_ONLY_FALSE;
				break;
			case '?':
				p->flags |= PARAM_TRUTHY;
				break;
			case '=': {
				size_t dl = (size_t)(s - c - 1);
				cJSON *probe;

				memcpy(&name_pool[*nn], c + 1, dl);
				name_pool[*nn + dl] = '\0';
				p->def = &name_pool[*nn];
				*nn += dl + 1;
				probe = cJSON_Parse(p->def);
				if (probe == NULL)
					return -EINVAL;
				cJSON_Delete(probe);
				c = s - 1;
				break;
			}
			default:
				return -EINVAL;
			}
		}
		m->nparams++;
	}
	return 0;
}

int
methods_init(void)
{
	size_t np = 0, nn = 0;

	if (initialised)
		return 0;
	for (size_t i = 0; i < NMETHODS; i++) {
		int r = parse_spec(&table[i], &np, &nn);

		if (r < 0)
			return r;
	}
	initialised = true;
	return 0;
}

size_t
methods_count(void)
{
	return NMETHODS;
}

const struct method *
methods_at(size_t i)
{
	return i < NMETHODS ? &table[i] : NULL;
}

const struct method *
methods_find(const char *name)
{
	for (size_t i = 0; i < NMETHODS; i++)
		if (strcmp(table[i].name, name) == 0)
			return &table[i];
	return NULL;
}

/* Parameters every cached method and every paged list accepts. */
static const struct method_param param_cache = {"cache", TYPE_STRING,
    LOC_LOCAL, 0, NULL};
static const struct method_param param_all = {"all", TYPE_BOOL, LOC_LOCAL, 0,
    NULL};

const struct method_param *
method_param_find(const struct method *m, const char *name)
{
	if (strcmp(name, "agent_id") == 0)
		name = "teammate_id";
	if ((m->flags & METHOD_CACHE) && strcmp(name, "cache") == 0)
		return &param_cache;
	if (m->kind == KIND_PAGE && strcmp(name, "all") == 0)
		return &param_all;
	for (size_t i = 0; i < m->nparams; i++)
		if (strcmp(m->params[i].name, name) == 0)
			return &m->params[i];
	return NULL;
}

static bool
is_integer(const cJSON *v)
{
	double d;

	if (!cJSON_IsNumber(v))
		return false;
	d = v->valuedouble;
	return d >= -9007199254740992.0 && d <= 9007199254740992.0 &&
	    d == (double)(long long)d;
}

static int
check_value(const struct method_param *p, const cJSON *v, char *err,
    size_t errlen)
{
	bool ok;

	if (cJSON_IsNull(v)) {
		/* null means "leave out" unless it clears a value upstream. */
		return 0;
	}
	switch (p->type) {
	case TYPE_STRING:
		ok = cJSON_IsString(v);
		break;
	case TYPE_INT:
		ok = is_integer(v);
		break;
	case TYPE_NUMBER:
		ok = cJSON_IsNumber(v);
		break;
	case TYPE_BOOL:
		ok = cJSON_IsBool(v);
		break;
	case TYPE_ID:
		ok = is_integer(v) || cJSON_IsString(v);
		break;
	case TYPE_OBJECT:
		ok = cJSON_IsObject(v);
		break;
	case TYPE_ARRAY:
		ok = cJSON_IsArray(v);
		break;
	case TYPE_ANY:
	default:
		ok = true;
		break;
	}
	if (!ok) {
		(void)snprintf(err, errlen, "parameter \"%s\" must be %s",
		    p->name, method_type_name(p->type));
		return -EINVAL;
	}
	return 0;
}

int
method_check_params(const struct method *m, const cJSON *params, char *err,
    size_t errlen)
{
	const cJSON *v;
	bool alias = false, canonical = false;

	if (errlen > 0)
		err[0] = '\0';
	if (params != NULL && !cJSON_IsObject(params)) {
		(void)snprintf(err, errlen, "\"params\" must be an object");
		return -EINVAL;
	}
	cJSON_ArrayForEach(v, params)
	{
		const struct method_param *p;

		if (v->string == NULL)
			return -EINVAL;
		p = method_param_find(m, v->string);
		if (p == NULL) {
			(void)snprintf(err, errlen,
			    "unknown parameter \"%.64s\" for %s", v->string,
			    m->name);
			return -EINVAL;
		}
		if (strcmp(v->string, "agent_id") == 0)
			alias = true;
		else if (strcmp(v->string, "teammate_id") == 0)
			canonical = true;
		if (check_value(p, v, err, errlen) < 0)
			return -EINVAL;
	}
	v = cJSON_GetObjectItemCaseSensitive(params, "cache");
	if (cJSON_IsString(v) && strcmp(v->valuestring, "bypass") != 0 &&
	    strcmp(v->valuestring, "only") != 0 &&
	    strcmp(v->valuestring, "stale-ok") != 0 &&
	    strcmp(v->valuestring, "default") != 0) {
		(void)snprintf(err, errlen, "\"cache\" must be \"default\", "
		    "\"bypass\", \"only\" or \"stale-ok\"");
		return -EINVAL;
	}
	if (alias && canonical) {
		(void)snprintf(err, errlen,
		    "give \"teammate_id\" or its alias \"agent_id\", not both");
		return -EINVAL;
	}
	for (size_t i = 0; i < m->nparams; i++) {
		const struct method_param *p = &m->params[i];

		if (!(p->flags & PARAM_REQUIRED))
			continue;
		v = cJSON_GetObjectItemCaseSensitive(params, p->name);
		if (v == NULL && strcmp(p->name, "teammate_id") == 0)
			v = cJSON_GetObjectItemCaseSensitive(params,
			    "agent_id");
		if (v == NULL || cJSON_IsNull(v)) {
			(void)snprintf(err, errlen,
			    "missing required parameter \"%s\"", p->name);
			return -EINVAL;
		}
	}
	return 0;
}

const char *
method_verb_name(enum method_verb v)
{
	switch (v) {
	case VERB_GET:
		return "GET";
	case VERB_POST:
		return "POST";
	case VERB_PATCH:
		return "PATCH";
	case VERB_DELETE:
		return "DELETE";
	case VERB_NONE:
	default:
		return "";
	}
}

const char *
method_kind_name(enum method_kind k)
{
	static const char *const names[] = {"object", "page", "envelope",
	    "array", "bytes", "empty"};

	return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "";
}

const char *
method_type_name(enum param_type t)
{
	switch (t) {
	case TYPE_STRING:
		return "a string";
	case TYPE_INT:
		return "an integer";
	case TYPE_NUMBER:
		return "a number";
	case TYPE_BOOL:
		return "a boolean";
	case TYPE_ID:
		return "an integer or a string";
	case TYPE_OBJECT:
		return "an object";
	case TYPE_ARRAY:
		return "an array";
	case TYPE_ANY:
	default:
		return "any JSON value";
	}
}

const char *
method_loc_name(enum param_loc l)
{
	switch (l) {
	case LOC_PATH:
		return "path";
	case LOC_QUERY:
		return "query";
	case LOC_BODY:
		return "body";
	case LOC_BOTH:
		return "body+query";
	case LOC_LOCAL:
	default:
		return "local";
	}
}

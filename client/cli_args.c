/*
 * SPDX-License-Identifier: MIT
 *
 * From command-line words to a method and its params, driven by the method
 * table: the words of a command, aliases, flags typed by the parameter
 * specs, positionals for required parameters, and the key=value items of
 * "m8tes call". Nothing here does I/O except reading a key=@FILE.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "codec.h"
#include "methods.h"

#define MAX_POSITIONAL 32
#define MAX_SAFE_INT 9007199254740992LL /* 2^53: exact in a JSON number */

/* Words users type for a resource, as the SDK's own CLI accepts them. */
static const struct {
	const char *alias;
	const char *word;
} aliases[] = {
    {"mate", "teammates"},
    {"mates", "teammates"},
    {"agent", "teammates"},
    {"agents", "teammates"},
    {"teammate", "teammates"},
    {"task", "tasks"},
    {"run", "runs"},
    {"trigger", "triggers"},
    {"app", "apps"},
    {"memory", "memories"},
    {"permission", "permissions"},
    {"user", "users"},
    {"webhook", "webhooks"},
    {"setting", "settings"},
};

static bool hidden(const struct method *m);
static const struct method *find_visible(const char *name);
static bool parse_int(const char *s, long long *ret);
static bool json_number_valid(const char *s);
static int parse_bool(const char *s);
static int json_literal(const char *text, cJSON **ret);
static cJSON *comma_list(const char *text);
static int read_text(const char *path, char **ret, char *err, size_t errlen);
static int set_param(cJSON *params, const char *name, cJSON *v, bool append);
static int merge_object(cJSON *params, cJSON *obj);
static bool is_set(const cJSON *params, const struct method_param *p);
static bool positional(const struct method_param *p, int pass);
static int try_word(const char *name, const char *word, char *ret_name,
    const struct method **ret_m);
static cJSON *
scalar_value(enum param_type t, const char *text, const char **want);
static cJSON *
json_value(enum param_type t, const char *text, const char **want);
static int neg_errno(void);
static int text_error(const char *path, int r, char *err, size_t errlen);
static char *slurp(int fd, size_t *ret_len, int *ret_err);
static int unknown_option(const struct method *m, const char *arg, char *err,
    size_t errlen);
static int option_value(int argc, char *const argv[], int *i,
    const char **value, char *err, size_t errlen);
static int own_option(const struct method *m, int argc, char *const argv[],
    int *i, struct cli_request *req, char *err, size_t errlen);
static const struct method_param *option_param(const struct method *m,
    const char *arg, bool *ret_neg, const char **ret_value);
static int
call_arg(const char *a, struct cli_request *req, char *err, size_t errlen);
static int parse_option(const struct method *m, int argc, char *const argv[],
    int *i, struct cli_request *req, char *err, size_t errlen);
static int fill_positionals(const struct method *m, const char *const *pos,
    size_t npos, cJSON *params, char *err, size_t errlen);

/* "cancel" only makes sense on the connection that started the call. */
static bool
hidden(const struct method *m)
{
	return strcmp(m->name, "cancel") == 0;
}

static const struct method *
find_visible(const char *name)
{
	const struct method *m = methods_find(name);

	return m != NULL && !hidden(m) ? m : NULL;
}

bool
cli_is_group(const char *group)
{
	size_t gl = strlen(group);

	for (size_t i = 0; i < methods_count(); i++) {
		const struct method *m = methods_at(i);

		if (!hidden(m) && strncmp(m->name, group, gl) == 0 &&
		    m->name[gl] == '.')
			return true;
	}
	return false;
}

const char *
cli_alias_of(const char *word)
{
	for (size_t k = 0; k < sizeof(aliases) / sizeof(aliases[0]); k++)
		if (strcmp(word, aliases[k].alias) == 0)
			return aliases[k].word;
	return NULL;
}

/*
 * Writes name + "." + word ('-' as '_') to ret_name. Returns 1 when that
 * names a method (*ret_m set) or a group (*ret_m NULL), else 0.
 */
static int
try_word(const char *name, const char *word, char *ret_name,
    const struct method **ret_m)
{
	char try[PROTO_MAX_METHOD + 1];
	int n;

	n = snprintf(try, sizeof(try), "%s%s%s", name,
	    name[0] != '\0' ? "." : "", word);
	if (n < 0 || (size_t)n >= sizeof(try))
		return 0;
	for (char *p = try + strlen(name); *p != '\0'; p++)
		if (*p == '-')
			*p = '_';
	*ret_m = find_visible(try);
	if (*ret_m == NULL && !cli_is_group(try))
		return 0;
	memcpy(ret_name, try, (size_t)n + 1);
	return 1;
}

int
cli_find_method(int argc, char *const argv[], const struct method **ret_m,
    char *group, size_t grouplen)
{
	char name[PROTO_MAX_METHOD + 1] = "";
	const struct method *found = NULL, *m;
	int used = 0;

	if (grouplen > 0)
		group[0] = '\0';
	for (int i = 0; i < argc; i++) {
		const char *alias = cli_alias_of(argv[i]);

		if (argv[i][0] == '-' || argv[i][0] == '\0')
			break;
		if (!try_word(name, argv[i], name, &m) &&
		    (alias == NULL || !try_word(name, alias, name, &m)))
			break;
		if (m != NULL) {
			found = m;
			used = i + 1;
		} else if (grouplen > 0) {
			(void)snprintf(group, grouplen, "%s", name);
		}
	}
	*ret_m = found;
	return used;
}

void
cli_method_words(const struct method *m, char *buf, size_t len)
{
	(void)snprintf(buf, len, "%s", m->name);
	for (char *p = buf; *p != '\0'; p++) {
		if (*p == '.')
			*p = ' ';
		else if (*p == '_')
			*p = '-';
	}
}

void
cli_flag_name(const char *param, char *buf, size_t len)
{
	(void)snprintf(buf, len, "--%s", param);
	for (char *p = buf + 2; *p != '\0'; p++)
		if (*p == '_')
			*p = '-';
}

/* A whole decimal integer that a JSON number holds exactly. */
static bool
parse_int(const char *s, long long *ret)
{
	char *end;
	long long v;

	if (!(s[0] == '-' || isdigit((unsigned char)s[0])))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v > MAX_SAFE_INT ||
	    v < -MAX_SAFE_INT)
		return false;
	*ret = v;
	return true;
}

/* The JSON number grammar: no "01", ".5", "+1", hex, inf or nan. */
static bool
json_number_valid(const char *s)
{
	const char *p = s;
	double d;

	if (*p == '-')
		p++;
	if (*p == '0') {
		p++;
	} else if (*p >= '1' && *p <= '9') {
		while (isdigit((unsigned char)*p))
			p++;
	} else {
		return false;
	}
	if (*p == '.') {
		if (!isdigit((unsigned char)*++p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		if (!isdigit((unsigned char)*p))
			return false;
		while (isdigit((unsigned char)*p))
			p++;
	}
	if (*p != '\0')
		return false;
	d = strtod(s, NULL);
	return isfinite(d);
}

/* 1 true, 0 false, -1 neither. */
static int
parse_bool(const char *s)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < 4; i++) {
		if (strcmp(s, yes[i]) == 0)
			return 1;
		if (strcmp(s, no[i]) == 0)
			return 0;
	}
	return -1;
}

/*
 * The key=value rule: 1 and a new item when text is a JSON number, true,
 * false, null, object or array; 0 when it is not (a string, then).
 */
static int
json_literal(const char *text, cJSON **ret)
{
	cJSON *v;

	if (strcmp(text, "true") == 0) {
		v = cJSON_CreateTrue();
	} else if (strcmp(text, "false") == 0) {
		v = cJSON_CreateFalse();
	} else if (strcmp(text, "null") == 0) {
		v = cJSON_CreateNull();
	} else if (json_number_valid(text)) {
		v = cJSON_CreateNumber(strtod(text, NULL));
	} else if (text[0] == '{' || text[0] == '[') {
		v = cJSON_ParseWithOpts(text, NULL, true);
		if (v == NULL)
			return 0;
	} else {
		return 0;
	}
	if (v == NULL)
		return -ENOMEM;
	*ret = v;
	return 1;
}

/* "gmail, slack" -> ["gmail","slack"]; empty items are skipped. */
static cJSON *
comma_list(const char *text)
{
	cJSON *arr = cJSON_CreateArray();
	const char *p = text;

	if (arr == NULL)
		return NULL;
	while (*p != '\0') {
		const char *q = strchr(p, ','), *e;
		cJSON *s;
		char *item;

		if (q == NULL)
			q = p + strlen(p);
		e = q;
		while (p < e && isspace((unsigned char)*p))
			p++;
		while (e > p && isspace((unsigned char)e[-1]))
			e--;
		if (e > p) {
			item = strndup(p, (size_t)(e - p));
			s = item != NULL ? cJSON_CreateString(item) : NULL;
			free(item);
			if (s == NULL || !cJSON_AddItemToArray(arr, s)) {
				cJSON_Delete(s);
				cJSON_Delete(arr);
				return NULL;
			}
		}
		p = *q != '\0' ? q + 1 : q;
	}
	return arr;
}

/* Integers, numbers, booleans, ids; *want says what text is not. */
static cJSON *
scalar_value(enum param_type t, const char *text, const char **want)
{
	long long n;
	int b;

	switch (t) {
	case TYPE_INT:
		if (parse_int(text, &n))
			return cJSON_CreateNumber((double)n);
		*want = "an integer";
		return NULL;
	case TYPE_NUMBER:
		if (json_number_valid(text))
			return cJSON_CreateNumber(strtod(text, NULL));
		*want = "a number";
		return NULL;
	case TYPE_BOOL:
		b = parse_bool(text);
		if (b >= 0)
			return cJSON_CreateBool(b);
		*want = "true or false";
		return NULL;
	case TYPE_ID:
	default:
		if (parse_int(text, &n))
			return cJSON_CreateNumber((double)n);
		if (text[0] != '\0')
			return cJSON_CreateString(text);
		*want = "an id";
		return NULL;
	}
}

/* Objects, arrays and any JSON; *want says what text is not. */
static cJSON *
json_value(enum param_type t, const char *text, const char **want)
{
	cJSON *v = NULL;

	if (t == TYPE_ANY) {
		if (json_literal(text, &v) == 0)
			v = cJSON_CreateString(text);
		return v;
	}
	if (t == TYPE_ARRAY && text[0] != '[')
		return comma_list(text);
	v = cJSON_ParseWithOpts(text, NULL, true);
	if (t == TYPE_ARRAY ? cJSON_IsArray(v) : cJSON_IsObject(v))
		return v;
	cJSON_Delete(v);
	*want =
	    t == TYPE_ARRAY ? "a JSON array or a comma list" : "a JSON object";
	return NULL;
}

int
cli_value_parse(const struct method_param *p, const char *text, cJSON **ret,
    char *err, size_t errlen)
{
	const char *want = NULL;
	cJSON *v;

	if ((p->flags & PARAM_NULLABLE) && strcmp(text, "null") == 0)
		v = cJSON_CreateNull();
	else if (p->type == TYPE_STRING)
		v = cJSON_CreateString(text);
	else if (p->type == TYPE_OBJECT || p->type == TYPE_ARRAY ||
	    p->type == TYPE_ANY)
		v = json_value(p->type, text, &want);
	else
		v = scalar_value(p->type, text, &want);
	if (want != NULL) {
		(void)snprintf(err, errlen,
		    "parameter \"%s\" must be %s, not \"%.64s\"", p->name, want,
		    text);
		return -EINVAL;
	}
	if (v == NULL)
		return -ENOMEM;
	*ret = v;
	return 0;
}

/* -errno after a failed call; never 0, whatever libc left in errno. */
static int
neg_errno(void)
{
	return errno > 0 ? -errno : -EIO;
}

/*
 * Reads fd to its end into a new buffer with room for a NUL. Returns it,
 * or NULL with *ret_err -EFBIG past a protocol line, -ENOMEM or -errno.
 */
static char *
slurp(int fd, size_t *ret_len, int *ret_err)
{
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap), *nbuf;
	ssize_t n;

	*ret_err = -ENOMEM;
	if (buf == NULL)
		return NULL;
	for (;;) {
		if (len + 1 == cap) {
			*ret_err =
			    cap > (size_t)PROTO_MAX_LINE ? -EFBIG : -ENOMEM;
			nbuf = cap > (size_t)PROTO_MAX_LINE
			    ? NULL
			    : realloc(buf, cap * 2);
			if (nbuf == NULL)
				goto fail;
			buf = nbuf;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - 1 - len);
		if (n == 0)
			break;
		if (n > 0) {
			len += (size_t)n;
		} else if (errno != EINTR) {
			*ret_err = neg_errno();
			goto fail;
		}
	}
	*ret_err = -EFBIG;
	if (len > (size_t)PROTO_MAX_LINE)
		goto fail;
	*ret_len = len;
	return buf;
fail:
	free(buf);
	return NULL;
}

/* Says why path could not be used; returns r. */
static int
text_error(const char *path, int r, char *err, size_t errlen)
{
	(void)snprintf(err, errlen, "%s: %s", path,
	    r == -EFBIG        ? "larger than a protocol line"
	        : r == -EINVAL ? "not UTF-8 text"
	                       : strerror(-r));
	return r;
}

/* A whole file (or stdin for "-") as UTF-8 text of at most a line. */
static int
read_text(const char *path, char **ret, char *err, size_t errlen)
{
	bool is_stdin = strcmp(path, "-") == 0;
	char *buf;
	size_t len;
	int fd, r;

	fd = is_stdin ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
	if (fd == -1)
		return text_error(path, neg_errno(), err, errlen);
	buf = slurp(fd, &len, &r);
	if (!is_stdin)
		(void)close(fd);
	if (buf == NULL)
		return text_error(path, r, err, errlen);
	if (memchr(buf, '\0', len) != NULL || !codec_utf8_valid(buf, len)) {
		free(buf);
		return text_error(path, -EINVAL, err, errlen);
	}
	buf[len] = '\0';
	*ret = buf;
	return 0;
}

int
cli_kv_parse(const struct method *m, const char *arg, cJSON *params, char *err,
    size_t errlen)
{
	const struct method_param *p;
	const char *eq = strchr(arg, '='), *val;
	char *key, *text = NULL;
	cJSON *v = NULL;
	bool forced;
	int r;

	forced = eq != NULL && eq > arg && eq[-1] == ':';
	if (eq == NULL || eq - arg - (forced ? 1 : 0) == 0) {
		(void)snprintf(err, errlen,
		    "expected key=value, key:=JSON or key=@FILE, not \"%.64s\"",
		    arg);
		return -EINVAL;
	}
	key = strndup(arg, (size_t)(eq - arg) - (forced ? 1 : 0));
	if (key == NULL)
		return -ENOMEM;
	val = eq + 1;
	p = m != NULL ? method_param_find(m, key) : NULL;
	if (forced) {
		v = cJSON_ParseWithOpts(val, NULL, true);
		if (v == NULL) {
			(void)snprintf(err, errlen, "%s: not valid JSON: %.64s",
			    key, val);
			r = -EINVAL;
			goto out;
		}
	} else if (val[0] == '@') {
		r = read_text(val + 1, &text, err, errlen);
		if (r < 0)
			goto out;
		v = cJSON_CreateString(text);
	} else if (p != NULL && p->type == TYPE_STRING) {
		v = cJSON_CreateString(val);
	} else {
		r = json_literal(val, &v);
		if (r < 0)
			goto out;
		if (r == 0)
			v = cJSON_CreateString(val);
	}
	r = v != NULL ? set_param(params, key, v, false) : -ENOMEM;
	v = NULL;
out:
	cJSON_Delete(v);
	free(text);
	free(key);
	return r;
}

/*
 * Sets params[name] to v (taken, also on failure), replacing an earlier
 * value; with append, an array given again grows the earlier one instead.
 * name must not be the earlier item's own key string.
 */
static int
set_param(cJSON *params, const char *name, cJSON *v, bool append)
{
	cJSON *old = cJSON_GetObjectItemCaseSensitive(params, name);

	if (append && cJSON_IsArray(old) && cJSON_IsArray(v)) {
		while (v->child != NULL) {
			cJSON *it = cJSON_DetachItemViaPointer(v, v->child);

			if (!cJSON_AddItemToArray(old, it)) {
				cJSON_Delete(it);
				cJSON_Delete(v);
				return -ENOMEM;
			}
		}
		cJSON_Delete(v);
		return 0;
	}
	if (old != NULL)
		cJSON_Delete(cJSON_DetachItemViaPointer(params, old));
	if (!cJSON_AddItemToObject(params, name, v)) {
		cJSON_Delete(v);
		return -ENOMEM;
	}
	return 0;
}

/* Moves every member of obj (freed) into params, replacing. */
static int
merge_object(cJSON *params, cJSON *obj)
{
	int r = 0;

	while (obj->child != NULL && r == 0) {
		cJSON *it = cJSON_DetachItemViaPointer(obj, obj->child);
		char *key = it->string != NULL ? strdup(it->string) : NULL;

		r = key != NULL ? set_param(params, key, it, false) : -ENOMEM;
		if (key == NULL)
			cJSON_Delete(it);
		free(key);
	}
	cJSON_Delete(obj);
	return r;
}

static bool
is_set(const cJSON *params, const struct method_param *p)
{
	return cJSON_GetObjectItemCaseSensitive(params, p->name) != NULL ||
	    (strcmp(p->name, "teammate_id") == 0 &&
	        cJSON_GetObjectItemCaseSensitive(params, "agent_id") != NULL);
}

/* Pass 0 takes the required path parameters, pass 1 the other ones. */
static bool
positional(const struct method_param *p, int pass)
{
	return (p->flags & PARAM_REQUIRED) &&
	    (pass == 0) == (p->loc == LOC_PATH);
}

static int
unknown_option(const struct method *m, const char *arg, char *err,
    size_t errlen)
{
	char words[128];

	cli_method_words(m, words, sizeof(words));
	(void)snprintf(err, errlen,
	    "unknown option %.*s for %s (see m8tes %s --help)",
	    (int)strcspn(arg, "="), arg, m->name, words);
	return -EINVAL;
}

/*
 * The value of the option at argv[*i]: after its '=', else the next word
 * (*i advances). Returns 0, or -EINVAL when there is none.
 */
static int
option_value(int argc, char *const argv[], int *i, const char **value,
    char *err, size_t errlen)
{
	if (*value != NULL)
		return 0;
	if (*i + 1 >= argc) {
		(void)snprintf(err, errlen, "option %s needs a value",
		    argv[*i]);
		return -EINVAL;
	}
	*value = argv[++*i];
	return 0;
}

/*
 * The options of m8tes itself, not of the method: -h/--help, --json and a
 * download's -o/--output FILE. Returns 1 when argv[*i] was one, 0 when
 * not, or -EINVAL.
 */
static int
own_option(const struct method *m, int argc, char *const argv[], int *i,
    struct cli_request *req, char *err, size_t errlen)
{
	const char *a = argv[*i], *value = NULL;
	int r;

	if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
		req->help = true;
		return 1;
	}
	if (strcmp(a, "--json") == 0 && method_param_find(m, "json") == NULL) {
		req->json = true;
		return 1;
	}
	if (m->handler != H_DOWNLOAD)
		return 0;
	if (strncmp(a, "--output=", 9) == 0)
		value = a + 9;
	else if (strcmp(a, "-o") != 0 && strcmp(a, "--output") != 0)
		return 0;
	r = option_value(argc, argv, i, &value, err, errlen);
	if (r < 0)
		return r;
	req->output = value;
	return 1;
}

/*
 * Finds the parameter of "--flag-name[=value]" or "--no-flag-name" (a
 * boolean). Sets *ret_value to the text after '=' or NULL.
 */
static const struct method_param *
option_param(const struct method *m, const char *arg, bool *ret_neg,
    const char **ret_value)
{
	const struct method_param *p;
	char name[PROTO_MAX_METHOD + 1];
	size_t nl = strcspn(arg, "=");

	if (strncmp(arg, "--", 2) != 0 || nl <= 2 || nl - 2 >= sizeof(name))
		return NULL;
	memcpy(name, arg + 2, nl - 2);
	name[nl - 2] = '\0';
	for (char *c = name; *c != '\0'; c++)
		if (*c == '-')
			*c = '_';
	*ret_value = arg[nl] == '=' ? arg + nl + 1 : NULL;
	*ret_neg = false;
	p = method_param_find(m, name);
	if (p != NULL || strncmp(name, "no_", 3) != 0)
		return p;
	p = method_param_find(m, name + 3);
	if (p == NULL || p->type != TYPE_BOOL)
		return NULL;
	*ret_neg = true;
	return p;
}

/* One option at argv[*i]; advances *i past a separate value. */
static int
parse_option(const struct method *m, int argc, char *const argv[], int *i,
    struct cli_request *req, char *err, size_t errlen)
{
	const struct method_param *p;
	const char *value;
	cJSON *v = NULL;
	bool neg;
	int r;

	r = own_option(m, argc, argv, i, req, err, errlen);
	if (r != 0)
		return r < 0 ? r : 0;
	p = option_param(m, argv[*i], &neg, &value);
	if (p == NULL)
		return unknown_option(m, argv[*i], err, errlen);
	if (neg && value != NULL) {
		(void)snprintf(err, errlen, "%.*s takes no value",
		    (int)strcspn(argv[*i], "="), argv[*i]);
		return -EINVAL;
	}
	if (p->type == TYPE_BOOL && value == NULL) {
		/* "--memory false" reads as users mean it. */
		if (!neg && *i + 1 < argc &&
		    (strcmp(argv[*i + 1], "true") == 0 ||
		        strcmp(argv[*i + 1], "false") == 0))
			neg = strcmp(argv[++*i], "false") == 0;
		v = cJSON_CreateBool(!neg);
		if (v == NULL)
			return -ENOMEM;
	} else {
		r = option_value(argc, argv, i, &value, err, errlen);
		if (r == 0)
			r = cli_value_parse(p, value, &v, err, errlen);
		if (r < 0)
			return r;
	}
	return set_param(req->params, p->name, v, true);
}

static int
fill_positionals(const struct method *m, const char *const *pos, size_t npos,
    cJSON *params, char *err, size_t errlen)
{
	char flag[PROTO_MAX_METHOD + 3], words[128];
	size_t k = 0, slot = 0;

	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < m->nparams; i++) {
			const struct method_param *p = &m->params[i];
			cJSON *v;
			int r;

			if (!positional(p, pass))
				continue;
			slot++;
			if (is_set(params, p))
				continue;
			if (k == npos) {
				char upper[PROTO_MAX_METHOD + 1];

				(void)snprintf(upper, sizeof(upper), "%s",
				    p->name);
				for (char *c = upper; *c != '\0'; c++)
					*c = (char)toupper((unsigned char)*c);
				cli_flag_name(p->name, flag, sizeof(flag));
				(void)snprintf(err, errlen,
				    "missing %s (argument %zu, or %s)", upper,
				    slot, flag);
				return -EINVAL;
			}
			r = cli_value_parse(p, pos[k++], &v, err, errlen);
			if (r < 0)
				return r;
			r = set_param(params, p->name, v, false);
			if (r < 0)
				return r;
		}
	}
	if (k < npos) {
		cli_method_words(m, words, sizeof(words));
		(void)snprintf(err, errlen,
		    "too many arguments for %s: \"%.64s\" (see m8tes %s "
		    "--help)",
		    m->name, pos[k], words);
		return -EINVAL;
	}
	return 0;
}

int
cli_method_args(const struct method *m, int argc, char *const argv[],
    struct cli_request *req, char *err, size_t errlen)
{
	const char *pos[MAX_POSITIONAL];
	size_t npos = 0;
	bool opts_done = false;
	int r;

	memset(req, 0, sizeof(*req));
	req->method = m;
	req->name = m->name;
	req->params = cJSON_CreateObject();
	if (req->params == NULL)
		return -ENOMEM;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		/* "-5" is a value, not an option. */
		if (!opts_done && a[0] == '-' && a[1] != '\0' &&
		    !isdigit((unsigned char)a[1])) {
			r = parse_option(m, argc, argv, &i, req, err, errlen);
			if (r < 0)
				goto fail;
			continue;
		}
		if (npos == MAX_POSITIONAL) {
			(void)snprintf(err, errlen, "too many arguments");
			r = -EINVAL;
			goto fail;
		}
		pos[npos++] = a;
	}
	if (req->help)
		return 0;
	r = fill_positionals(m, pos, npos, req->params, err, errlen);
	if (r < 0)
		goto fail;
	r = method_check_params(m, req->params, err, errlen);
	if (r < 0)
		goto fail;
	return 0;
fail:
	cli_request_done(req);
	return r;
}

/* One argument of "call": an option, the method's name, JSON or key=value. */
static int
call_arg(const char *a, struct cli_request *req, char *err, size_t errlen)
{
	cJSON *obj;

	if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
		req->help = true;
		return 0;
	}
	if (strcmp(a, "--json") == 0) {
		req->json = true;
		return 0;
	}
	if (req->name == NULL) {
		if (a[0] == '\0' || a[0] == '-' ||
		    strlen(a) > PROTO_MAX_METHOD) {
			(void)snprintf(err, errlen, "bad method name \"%.64s\"",
			    a);
			return -EINVAL;
		}
		req->name = a;
		req->method = methods_find(a);
		return 0;
	}
	if (a[0] != '{')
		return cli_kv_parse(req->method, a, req->params, err, errlen);
	obj = cJSON_ParseWithOpts(a, NULL, true);
	if (!cJSON_IsObject(obj)) {
		cJSON_Delete(obj);
		(void)snprintf(err, errlen, "params: not a JSON object: %.64s",
		    a);
		return -EINVAL;
	}
	return merge_object(req->params, obj);
}

int
cli_call_args(int argc, char *const argv[], struct cli_request *req, char *err,
    size_t errlen)
{
	int r = 0;

	memset(req, 0, sizeof(*req));
	req->params = cJSON_CreateObject();
	if (req->params == NULL)
		return -ENOMEM;
	for (int i = 0; i < argc && r == 0; i++)
		r = call_arg(argv[i], req, err, errlen);
	if (r == 0 && !req->help && req->name == NULL) {
		(void)snprintf(err, errlen, "call: missing METHOD");
		r = -EINVAL;
	}
	if (r == 0 && !req->help && req->method != NULL)
		r = method_check_params(req->method, req->params, err, errlen);
	if (r < 0)
		cli_request_done(req);
	return r;
}

void
cli_request_done(struct cli_request *req)
{
	cJSON_Delete(req->params);
	memset(req, 0, sizeof(*req));
}

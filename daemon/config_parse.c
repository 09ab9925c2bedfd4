/*
 * SPDX-License-Identifier: MIT
 *
 * The text of m8tesd.conf: lines, comments, quoting, where each key may
 * stand, and the check of every value outside the sections, shared with the
 * command line through config_set; also the helpers the parser's messages
 * and checks share with config_sections.c, which owns the [peer NAME] and
 * [hook NAME] sections. Messages say "FILE:LINE: what is wrong" and never
 * repeat a webhook secret. No logging.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "config.h"
#include "config_int.h"

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)

/* Messages spell these limits out. */
_Static_assert(SUN_PATH_MAX == 108, "sun_path is 108 bytes on Linux");
_Static_assert(PATH_MAX == 4096, "PATH_MAX is 4096 on Linux");

static int find_key(const char *name, bool dashes);
static enum place where(const struct pstate *ps);
static size_t distance(const char *a, const char *b);
static void suggest(enum place at, const char *name, char *buf, size_t len);
static int
parse_size(const char *v, unsigned long long hi, unsigned long long *ret);
static int parse_mode(const char *v, unsigned *ret);
static int parse_ttl_pair(const char *p, size_t n, struct config_ttl *ret);
static int set_number(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v);
static int add_secret(struct pstate *ps, struct config *c, const char *shown,
    const char *v);
static int set_value(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v);
static int read_value(struct pstate *ps, char *p, char **ret);
static int misplaced(struct pstate *ps, const char *name, bool dashes);
static int unknown_key(struct pstate *ps, const char *name);
static int parse_line(struct pstate *ps, struct config *c, char *p);
static int check_pairs(struct pstate *ps, const struct config *c);

/* ---- helpers ----------------------------------------------------------- */

int
pstate_fail(struct pstate *ps, const char *fmt, ...)
{
	va_list ap;
	size_t n = 0;
	int k;

	if (ps->errlen == 0)
		return -EINVAL;
	ps->err[0] = '\0';
	if (ps->filename != NULL) {
		k = snprintf(ps->err, ps->errlen, "%s:%u: ", ps->filename,
		    ps->line);
		if (k > 0)
			n = (size_t)k < ps->errlen ? (size_t)k : ps->errlen - 1;
	}
	va_start(ap, fmt);
	(void)vsnprintf(ps->err + n, ps->errlen - n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

int
pstate_nomem(struct pstate *ps)
{
	if (ps->errlen > 0)
		(void)snprintf(ps->err, ps->errlen, "out of memory");
	return -ENOMEM;
}

/* The key called name, or -1; dashes lets '-' stand for '_'. */
static int
find_key(const char *name, bool dashes)
{
	char norm[64] = {0};
	size_t n = strlen(name);

	if (n >= sizeof(norm))
		return -1;
	for (size_t i = 0; i <= n; i++)
		norm[i] = (char)(dashes && name[i] == '-' ? '_' : name[i]);
	for (int k = 0; k < CONFIG_NPLAIN; k++)
		if (strcmp(config_keys[k].name, norm) == 0)
			return k;
	return -1;
}

static enum place
where(const struct pstate *ps)
{
	if (ps->peer != NULL)
		return PLACE_PEER;
	return ps->hook != NULL ? PLACE_HOOK : PLACE_TOP;
}

/* Edit distance, for "did you mean" (short key names only). */
static size_t
distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), prev[64], cur[64];

	if (la >= 64 || lb >= 64)
		return SIZE_MAX;
	for (size_t j = 0; j <= lb; j++)
		prev[j] = j;
	for (size_t i = 1; i <= la; i++) {
		cur[0] = i;
		for (size_t j = 1; j <= lb; j++) {
			size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
			size_t del = prev[j] + 1, ins = cur[j - 1] + 1;

			cur[j] = sub < del ? sub : del;
			if (ins < cur[j])
				cur[j] = ins;
		}
		memcpy(prev, cur, (lb + 1) * sizeof(prev[0]));
	}
	return prev[lb];
}

/*
 * Writes " (did you mean \"x\"?)" for a near miss, else "". The keys of
 * the place the line is in are tried first, so they win a tie.
 */
static void
suggest(enum place at, const char *name, char *buf, size_t len)
{
	const char *best = NULL, *cand;
	size_t bestd = 3, d, n = strlen(name);
	char norm[64] = {0};
	/* Tables in the order tried: [0] plain keys, [1] peer, [2] hook. */
	static const enum place order[3][3] = {
	    [PLACE_TOP] = {PLACE_TOP, PLACE_PEER, PLACE_HOOK},
	    [PLACE_PEER] = {PLACE_PEER, PLACE_TOP, PLACE_HOOK},
	    [PLACE_HOOK] = {PLACE_HOOK, PLACE_TOP, PLACE_PEER},
	};

	buf[0] = '\0';
	if (n >= sizeof(norm))
		return;
	for (size_t i = 0; i <= n; i++)
		norm[i] = (char)(name[i] == '-' ? '_' : name[i]);
	for (int t = 0; t < 3; t++) {
		enum place p = order[at][t];
		int nk = p == PLACE_TOP ? CONFIG_NPLAIN
		    : p == PLACE_PEER   ? PK_N
		                        : HK_N;

		for (int k = 0; k < nk; k++) {
			cand = p == PLACE_TOP ? config_keys[k].name
			    : p == PLACE_PEER ? config_pkeys[k]
			                      : config_hkeys[k];
			d = distance(norm, cand);
			if (d < bestd && d < strlen(cand)) {
				bestd = d;
				best = cand;
			}
		}
	}
	if (best != NULL)
		(void)snprintf(buf, len, " (did you mean \"%s\"?)", best);
}

bool
config_has_ctl(const char *s, bool tab_ok)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && !(tab_ok && *p == '\t')) || *p == 0x7f)
			return true;
	return false;
}

int
config_parse_uint(const char *s, unsigned long long hi, unsigned long long *ret)
{
	unsigned long long v = 0;

	if (*s == '\0')
		return -EINVAL;
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (d > hi || v > (hi - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*ret = v;
	return 0;
}

/* Plain decimal only: strtod's hex, "inf" and "nan" are not wanted. */
int
config_parse_decimal(const char *s, double *ret)
{
	const char *p = s;
	char *end;
	double d;

	while (*p >= '0' && *p <= '9')
		p++;
	if (p == s)
		return -EINVAL;
	if (*p == '.') {
		const char *q = ++p;

		while (*p >= '0' && *p <= '9')
			p++;
		if (p == q)
			return -EINVAL;
	}
	if (*p != '\0' || p - s > 32)
		return -EINVAL;
	errno = 0;
	d = strtod(s, &end);
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*ret = d;
	return 0;
}

int
config_parse_bool(const char *s, bool *ret)
{
	static const char *const yes[] = {"true", "yes", "on", "1"};
	static const char *const no[] = {"false", "no", "off", "0"};

	for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*ret = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*ret = false;
			return 0;
		}
	}
	return -EINVAL;
}

/* A user or group name: printable, no blanks, ':' or '/', no leading '-'. */
bool
config_valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > CONFIG_MAX_NAME || s[0] == '-')
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= ' ' || *p == 0x7f || *p == ':' || *p == '/')
			return false;
	return true;
}

/* ---- values ------------------------------------------------------------ */

/* The usual message: bad value "V" for KEY: WANT. */
int
pstate_bad_value(struct pstate *ps, const char *shown, const char *v,
    const char *want)
{
	return pstate_fail(ps, "bad value \"" CONFIG_SHOW "\" for %s: %s", v,
	    shown, want);
}

/* Digits with an optional K, M or G (powers of 1024), at most hi. */
static int
parse_size(const char *v, unsigned long long hi, unsigned long long *ret)
{
	static const char suffix[] = "kKmMgG";
	unsigned long long mul = 1, u;
	size_t n = strlen(v);
	const char *s;
	char num[32];

	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, n + 1);
	s = strchr(suffix, num[n - 1]);
	if (s != NULL) {
		mul = 1ull << (10 * (1 + (s - suffix) / 2));
		num[n - 1] = '\0';
	}
	if (config_parse_uint(num, hi / mul, &u) < 0)
		return -EINVAL;
	*ret = u * mul;
	return 0;
}

/* Octal permission bits, at most 0777. */
static int
parse_mode(const char *v, unsigned *ret)
{
	unsigned m = 0;

	if (*v == '\0')
		return -EINVAL;
	for (; *v != '\0'; v++) {
		if (*v < '0' || *v > '7')
			return -EINVAL;
		m = m * 8 + (unsigned)(*v - '0');
		if (m > 0777)
			return -EINVAL;
	}
	*ret = m;
	return 0;
}

/* NULL when v is a good value of a text type t, else what is wanted. */
const char *
config_check_text(enum config_vtype t, const char *v)
{
	struct config_ttl ttls[CONFIG_MAX_TTLS];
	const char *colon = strrchr(v, ':');
	unsigned long long port;

	switch (t) {
	case CONFIG_V_SOCKPATH:
		return strlen(v) < SUN_PATH_MAX
		    ? NULL
		    : "a socket path must be shorter than 108 bytes";
	case CONFIG_V_PATH:
		return strlen(v) < PATH_MAX
		    ? NULL
		    : "want a path shorter than 4096 bytes";
	case CONFIG_V_URL:
		if ((strncmp(v, "http://", 7) != 0 || v[7] == '\0') &&
		    (strncmp(v, "https://", 8) != 0 || v[8] == '\0'))
			return "want an http:// or https:// URL";
		return strpbrk(v, " \t") == NULL ? NULL : "blank in a URL";
	case CONFIG_V_LISTEN:
		/* An empty ADDRESS (":8080") means every address. */
		if (colon == NULL || strpbrk(v, " \t") != NULL ||
		    config_parse_uint(colon + 1, 65535, &port) < 0)
			return "want ADDRESS:PORT (port 0 to 65535)";
		return NULL;
	case CONFIG_V_TTLS:
		return config_parse_ttls(v, ttls, CONFIG_MAX_TTLS) >= 0
		    ? NULL
		    : "want at most 32 RESOURCE=SECONDS pairs, such as "
		      "\"agents=60 runs=5\"";
	case CONFIG_V_GROUP:
	default:
		return config_valid_name(v) ? NULL
		                            : "want a group name or number";
	}
}

/* Numbers, booleans and the log level, checked against the key's range. */
static int
set_number(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v)
{
	const struct config_keydef *kd = &config_keys[k];
	unsigned long long u;
	enum log_level l;
	double d;

	switch (kd->type) {
	case CONFIG_V_LEVEL:
		if (log_level_parse(v, &l) < 0)
			return pstate_bad_value(ps, shown, v,
			    "want error, warn, info or debug");
		c->log_level = l;
		return 0;
	case CONFIG_V_SECONDS:
		if (config_parse_decimal(v, &d) < 0 || d < kd->lo || d > kd->hi)
			return pstate_fail(ps,
			    "bad value \"" CONFIG_SHOW
			    "\" for %s: want seconds from "
			    "%g to %g",
			    v, shown, kd->lo, kd->hi);
		*(double *)config_field(c, k) = d;
		return 0;
	case CONFIG_V_UINT:
		if (config_parse_uint(v, (unsigned long long)kd->hi, &u) < 0 ||
		    u < (unsigned long long)kd->lo)
			return pstate_fail(ps,
			    "bad value \"" CONFIG_SHOW
			    "\" for %s: want a whole "
			    "number from %.0f to %.0f",
			    v, shown, kd->lo, kd->hi);
		*(unsigned *)config_field(c, k) = (unsigned)u;
		return 0;
	case CONFIG_V_SIZE:
		if (parse_size(v, (unsigned long long)kd->hi, &u) < 0 ||
		    u < (unsigned long long)kd->lo)
			return pstate_fail(ps,
			    "bad value \"" CONFIG_SHOW
			    "\" for %s: want bytes from "
			    "%.0f to %.0f (K, M and G suffixes allowed)",
			    v, shown, kd->lo, kd->hi);
		*(size_t *)config_field(c, k) = (size_t)u;
		return 0;
	case CONFIG_V_MODE:
		if (parse_mode(v, (unsigned *)config_field(c, k)) < 0)
			return pstate_bad_value(ps, shown, v,
			    "want an octal mode such as 0660");
		return 0;
	case CONFIG_V_BOOL:
	default:
		if (config_parse_bool(v, (bool *)config_field(c, k)) < 0)
			return pstate_bad_value(ps, shown, v,
			    "want true or false");
		return 0;
	}
}

/* Appends a webhook secret; messages never repeat it. */
static int
add_secret(struct pstate *ps, struct config *c, const char *shown,
    const char *v)
{
	if (config_has_ctl(v, false) || strlen(v) > CONFIG_MAX_SECRET)
		return pstate_fail(ps,
		    "bad value for %s: want at most %d printable bytes", shown,
		    CONFIG_MAX_SECRET);
	if (c->nwebhook_secrets >= CONFIG_MAX_SECRETS)
		return pstate_fail(ps, "more than %d %s values",
		    CONFIG_MAX_SECRETS, shown);
	if (config_list_push(&c->webhook_secrets, &c->nwebhook_secrets, v) < 0)
		return pstate_nomem(ps);
	return 0;
}

/* Checks v for key k and stores it; shown is the key's name in messages. */
static int
set_value(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v)
{
	const char *want;
	char **s;

	if (*v == '\0')
		return pstate_fail(ps, "%s needs a value", shown);
	switch (config_keys[k].type) {
	case CONFIG_V_SECRET:
		return add_secret(ps, c, shown, v);
	case CONFIG_V_SOCKPATH:
	case CONFIG_V_PATH:
	case CONFIG_V_URL:
	case CONFIG_V_LISTEN:
	case CONFIG_V_GROUP:
	case CONFIG_V_TTLS:
		break;
	default:
		if (config_has_ctl(v, false))
			return pstate_fail(ps,
			    "bad value for %s: control character", shown);
		return set_number(ps, c, k, shown, v);
	}
	if (config_has_ctl(v, false))
		return pstate_fail(ps, "bad value for %s: control character",
		    shown);
	if ((want = config_check_text(config_keys[k].type, v)) != NULL)
		return pstate_bad_value(ps, shown, v, want);
	s = config_field(c, k);
	free(*s);
	*s = strdup(v);
	return *s == NULL ? pstate_nomem(ps) : 0;
}

/* ---- lines ------------------------------------------------------------- */

/*
 * The value after '=' at p: quoted ("..." with \" and \\) or bare (blanks
 * trimmed, a '#' after a blank starts a comment). Unescapes in place.
 */
static int
read_value(struct pstate *ps, char *p, char **ret)
{
	char *out, *start;

	p += strspn(p, " \t");
	*ret = p;
	if (*p != '"') {
		start = p;
		for (; *p != '\0'; p++) {
			if (*p == '#' &&
			    (p == start || p[-1] == ' ' || p[-1] == '\t'))
				break;
		}
		while (p > start && (p[-1] == ' ' || p[-1] == '\t'))
			p--;
		*p = '\0';
		*ret = start;
		return 0;
	}
	start = out = ++p;
	for (;;) {
		if (*p == '\0')
			return pstate_fail(ps, "unterminated quoted value");
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (p[1] != '"' && p[1] != '\\')
				return pstate_fail(ps,
				    "unknown escape in a quoted value (only "
				    "\\\" "
				    "and \\\\)");
			p++;
		}
		*out++ = *p++;
	}
	p++;
	p += strspn(p, " \t");
	if (*p != '\0' && *p != '#')
		return pstate_fail(ps, "text after the closing quote");
	*out = '\0';
	*ret = start;
	return 0;
}

/*
 * A key that is valid, but not where the line is: says where it belongs.
 * max_connections is both a plain key and a [peer] key. dashes lets '-'
 * stand for '_', as on the command line.
 */
static int
misplaced(struct pstate *ps, const char *name, bool dashes)
{
	enum place at = where(ps);
	char norm[64] = {0};
	size_t n = strlen(name);
	bool plain;

	if (n >= sizeof(norm))
		return 0;
	for (size_t i = 0; i <= n; i++)
		norm[i] = (char)(dashes && name[i] == '-' ? '_' : name[i]);
	plain = find_key(norm, false) >= 0;
	if (at != PLACE_TOP && plain)
		return pstate_fail(ps,
		    "key \"%s\" belongs before the first section", name);
	if (at != PLACE_PEER && !plain && config_find_pkey(norm) >= 0)
		return pstate_fail(ps,
		    "key \"%s\" is only valid in a [peer NAME] section", name);
	if (at != PLACE_HOOK && !plain && config_find_hkey(norm) >= 0)
		return pstate_fail(ps,
		    "key \"%s\" is only valid in a [hook NAME] section", name);
	return 0;
}

/* A key that is nowhere valid: names the section it is in, and a hint. */
static int
unknown_key(struct pstate *ps, const char *name)
{
	char hint[64];

	suggest(where(ps), name, hint, sizeof(hint));
	if (ps->peer != NULL)
		return pstate_fail(ps, "unknown key \"%s\" in [peer %s]%s",
		    name, ps->peer->name, hint);
	if (ps->hook != NULL)
		return pstate_fail(ps, "unknown key \"%s\" in [hook %s]%s",
		    name, ps->hook->name, hint);
	return pstate_fail(ps, "unknown key \"%s\"%s", name, hint);
}

static int
parse_line(struct pstate *ps, struct config *c, char *p)
{
	char name[64], *v = NULL;
	size_t n;
	int k, r;

	p += strspn(p, " \t");
	if (*p == '\0' || *p == '#')
		return 0;
	if (*p == '[')
		return config_section_begin(ps, c, p + 1);
	n = strspn(p,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-");
	if (n == 0)
		return pstate_fail(ps, "expected \"key = value\"");
	if (n >= sizeof(name))
		return pstate_fail(ps, "unknown key \"%.32s...\"", p);
	memcpy(name, p, n);
	name[n] = '\0';
	p += n;
	p += strspn(p, " \t");
	if (*p != '=')
		return pstate_fail(ps, "expected \"=\" after \"%s\"", name);
	if ((r = read_value(ps, p + 1, &v)) < 0)
		return r;

	if ((r = config_section_key(ps, name, v)) <= 0)
		return r;
	if ((r = misplaced(ps, name, false)) < 0)
		return r;
	k = find_key(name, false);
	if (k < 0)
		return unknown_key(ps, name);
	if (ps->keyline[k] != 0 && k != CONFIG_WEBHOOK_SECRET)
		return pstate_fail(ps, "%s is already set on line %u", name,
		    ps->keyline[k]);
	ps->keyline[k] = ps->line;
	if ((r = set_value(ps, c, (enum config_key)k, name, v)) < 0)
		return r;
	c->set |= CONFIG_BIT(k);
	return 0;
}

/* Keys that only make sense together, named at the line of the one given. */
static int
check_pairs(struct pstate *ps, const struct config *c)
{
	enum config_key given, missing;

	if (config_check_pairs(c, &given, &missing) == 0)
		return 0;
	ps->line = ps->keyline[given];
	if (ps->line == 0)
		ps->filename = NULL;
	return pstate_fail(ps, "%s needs %s as well", config_keys[given].name,
	    config_keys[missing].name);
}

/* ---- API --------------------------------------------------------------- */

int
config_parse(const char *text, size_t len, const char *filename,
    struct config *ret, char *err, size_t errlen)
{
	struct pstate ps = {
	    .filename = filename != NULL ? filename : "config",
	    .err = err,
	    .errlen = errlen,
	};
	char line[CONFIG_MAX_LINE + 1];
	struct config c;
	const char *p = text, *end = text + len, *nl;
	size_t n;
	int r = 0;

	config_init(&c);
	while (p < end) {
		ps.line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl != NULL ? nl : end) - p);
		if (n > 0 && p[n - 1] == '\r')
			n--;
		if (n > CONFIG_MAX_LINE) {
			r = pstate_fail(&ps, "line longer than %d bytes",
			    CONFIG_MAX_LINE);
			goto out_free;
		}
		if (memchr(p, '\0', n) != NULL) {
			r = pstate_fail(&ps, "NUL byte in the line");
			goto out_free;
		}
		memcpy(line, p, n);
		line[n] = '\0';
		r = parse_line(&ps, &c, line);
		explicit_bzero(line, n);
		if (r < 0)
			goto out_free;
		p = nl != NULL ? nl + 1 : end;
	}
	if ((r = config_section_end(&ps)) < 0 || (r = check_pairs(&ps, &c)) < 0)
		goto out_free;
	*ret = c;
	return 0;

out_free:
	config_done(&c);
	return r;
}

int
config_set(struct config *c, const char *key, const char *value, char *err,
    size_t errlen)
{
	struct pstate ps = {.err = err, .errlen = errlen};
	char hint[64];
	int k, r;

	k = find_key(key, true);
	if (k < 0) {
		if ((r = misplaced(&ps, key, true)) < 0)
			return r;
		suggest(PLACE_TOP, key, hint, sizeof(hint));
		return pstate_fail(&ps, "unknown key \"%s\"%s", key, hint);
	}
	if ((r = set_value(&ps, c, (enum config_key)k, key, value)) < 0)
		return r;
	c->set |= CONFIG_BIT(k);
	return 0;
}

/* One RESOURCE=SECONDS pair of n bytes at p into *ret. */
static int
parse_ttl_pair(const char *p, size_t n, struct config_ttl *ret)
{
	const char *eq = memchr(p, '=', n);
	char num[40];
	size_t name_len;
	double d;

	if (eq == NULL)
		return -EINVAL;
	name_len = (size_t)(eq - p);
	if (name_len == 0 || name_len >= sizeof(ret->resource) ||
	    strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789_") < name_len ||
	    n - name_len - 1 >= sizeof(num))
		return -EINVAL;
	memcpy(num, eq + 1, n - name_len - 1);
	num[n - name_len - 1] = '\0';
	if (config_parse_decimal(num, &d) < 0 || d > CONFIG_MAX_TTL_S)
		return -EINVAL;
	memcpy(ret->resource, p, name_len);
	ret->resource[name_len] = '\0';
	ret->ttl_ms = (unsigned)(d * 1000 + 0.5);
	return 0;
}

int
config_parse_ttls(const char *spec, struct config_ttl *v, size_t max)
{
	static const char seps[] = " \t,";
	struct config_ttl t;
	size_t n = 0, len, i;

	for (;;) {
		spec += strspn(spec, seps);
		if (*spec == '\0')
			break;
		len = strcspn(spec, seps);
		if (parse_ttl_pair(spec, len, &t) < 0)
			return -EINVAL;
		spec += len;
		for (i = 0; i < n; i++)
			if (strcmp(v[i].resource, t.resource) == 0)
				break;
		if (i == max)
			return -E2BIG;
		v[i] = t;
		n += i == n;
	}
	return n == 0 ? -EINVAL : (int)n;
}

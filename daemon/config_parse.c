/*
 * SPDX-License-Identifier: MIT
 *
 * The text of m8tesd.conf: lines, comments, quoting, [peer NAME] and
 * [hook NAME] sections, and the check of every value, shared with the
 * command line through config_set. Messages say "FILE:LINE: what is wrong"
 * and never repeat a webhook secret. Method globs are checked against the
 * method table, so a misspelt pattern is an error instead of a rule that
 * silently matches nothing. Event globs cannot be: the event types are the
 * sender's. No logging.
 */
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#include "config.h"
#include "config_int.h"
#include "methods.h"

#define SUN_PATH_MAX sizeof(((struct sockaddr_un *)0)->sun_path)
#define SHOW "%.64s" /* how much of a bad value a message repeats */

/* Messages spell these limits out. */
_Static_assert(SUN_PATH_MAX == 108, "sun_path is 108 bytes on Linux");
_Static_assert(PATH_MAX == 4096, "PATH_MAX is 4096 on Linux");

/* Keys of a [peer] section. */
enum pkey {
	PK_MATCH_UID,
	PK_MATCH_GID,
	PK_MATCH_USER,
	PK_ALLOW,
	PK_DENY,
	PK_TENANT,
	PK_MAX_CONNECTIONS,
	PK_RATE,
	PK_BURST,
	PK_ADMIN,
	PK_N
};

static const char *const pkeys[PK_N] = {
    [PK_MATCH_UID] = "match_uid",
    [PK_MATCH_GID] = "match_gid",
    [PK_MATCH_USER] = "match_user",
    [PK_ALLOW] = "allow",
    [PK_DENY] = "deny",
    [PK_TENANT] = "tenant",
    [PK_MAX_CONNECTIONS] = "max_connections",
    [PK_RATE] = "rate",
    [PK_BURST] = "burst",
    [PK_ADMIN] = "admin",
};

/* Keys of a [hook] section. */
enum hkey {
	HK_EVENTS,
	HK_EXEC,
	HK_URL,
	HK_MAX_CONCURRENT,
	HK_RETRIES,
	HK_TIMEOUT,
	HK_N
};

static const char *const hkeys[HK_N] = {
    [HK_EVENTS] = "events",
    [HK_EXEC] = "exec",
    [HK_URL] = "url",
    [HK_MAX_CONCURRENT] = "max_concurrent",
    [HK_RETRIES] = "retries",
    [HK_TIMEOUT] = "timeout",
};

/* Ranges of the numbers of a [hook] section; messages spell them out. */
#define HOOK_MAX_CONCURRENT 256
#define HOOK_MAX_RETRIES 100
#define HOOK_MAX_TIMEOUT 3600

/* What a line may be in: outside any section, or in one of either kind. */
enum place {
	PLACE_TOP,
	PLACE_PEER,
	PLACE_HOOK,
};

/* The parser's place and where each key was first given. */
struct pstate {
	const char *filename; /* NULL: messages name no place (command line) */
	unsigned line;
	char *err;
	size_t errlen;
	unsigned keyline[CONFIG_NKEYS];
	struct config_peer *peer; /* the [peer] section being read, or NULL */
	unsigned pkeyline[PK_N];
	struct hook_def *hook; /* the [hook] section being read, or NULL */
	unsigned hookhead;     /* the line of its header */
	unsigned hkeyline[HK_N];
	unsigned hookline[CONFIG_MAX_HOOKS]; /* header of each [hook] */
};

static int fail(struct pstate *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int nomem(struct pstate *ps);
static int find_key(const char *name, bool dashes);
static int find_pkey(const char *name);
static int find_hkey(const char *name);
static enum place where(const struct pstate *ps);
static size_t distance(const char *a, const char *b);
static void suggest(enum place at, const char *name, char *buf, size_t len);
static bool has_ctl(const char *s, bool tab_ok);
static int
parse_uint(const char *s, unsigned long long hi, unsigned long long *ret);
static int parse_decimal(const char *s, double *ret);
static int parse_bool(const char *s, bool *ret);
static bool valid_name(const char *s);
static int bad_value(struct pstate *ps, const char *shown, const char *v,
    const char *want);
static int
parse_size(const char *v, unsigned long long hi, unsigned long long *ret);
static int parse_mode(const char *v, unsigned *ret);
static int parse_ttl_pair(const char *p, size_t n, struct config_ttl *ret);
static const char *check_text(enum config_vtype t, const char *v);
static int set_number(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v);
static int add_secret(struct pstate *ps, struct config *c, const char *shown,
    const char *v);
static int set_value(struct pstate *ps, struct config *c, enum config_key k,
    const char *shown, const char *v);
static int check_glob(struct pstate *ps, const char *key, const char *g);
static int
set_globs(struct pstate *ps, char ***v, size_t *n, const char *key, char *text);
static int set_peer_match(struct pstate *ps, enum pkey k, const char *v);
static int set_peer_limit(struct pstate *ps, enum pkey k, const char *v);
static int set_peer_value(struct pstate *ps, enum pkey k, char *v);
static int set_events(struct pstate *ps, char *text);
static int set_hook_action(struct pstate *ps, enum hkey k, const char *v);
static int set_hook_number(struct pstate *ps, enum hkey k, const char *v);
static int set_hook_value(struct pstate *ps, enum hkey k, char *v);
static bool valid_section_name(const char *s);
static int begin_section(struct pstate *ps, struct config *c, char *p);
static int begin_peer(struct pstate *ps, struct config *c, const char *name);
static int begin_hook(struct pstate *ps, struct config *c, const char *name);
static int end_peer(struct pstate *ps);
static int end_hook(struct pstate *ps);
static int end_section(struct pstate *ps);
static int read_value(struct pstate *ps, char *p, char **ret);
static int misplaced(struct pstate *ps, const char *name, bool dashes);
static int set_section_key(struct pstate *ps, const char *name, char *v);
static int unknown_key(struct pstate *ps, const char *name);
static int parse_line(struct pstate *ps, struct config *c, char *p);
static int check_pairs(struct pstate *ps, const struct config *c);

/* ---- helpers ----------------------------------------------------------- */

static int
fail(struct pstate *ps, const char *fmt, ...)
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

static int
nomem(struct pstate *ps)
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

static int
find_pkey(const char *name)
{
	for (int k = 0; k < PK_N; k++)
		if (strcmp(pkeys[k], name) == 0)
			return k;
	return -1;
}

static int
find_hkey(const char *name)
{
	for (int k = 0; k < HK_N; k++)
		if (strcmp(hkeys[k], name) == 0)
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
			    : p == PLACE_PEER ? pkeys[k]
			                      : hkeys[k];
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

static bool
has_ctl(const char *s, bool tab_ok)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if ((*p < 0x20 && !(tab_ok && *p == '\t')) || *p == 0x7f)
			return true;
	return false;
}

static int
parse_uint(const char *s, unsigned long long hi, unsigned long long *ret)
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
static int
parse_decimal(const char *s, double *ret)
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

static int
parse_bool(const char *s, bool *ret)
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
static bool
valid_name(const char *s)
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
static int
bad_value(struct pstate *ps, const char *shown, const char *v, const char *want)
{
	return fail(ps, "bad value \"" SHOW "\" for %s: %s", v, shown, want);
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
	if (parse_uint(num, hi / mul, &u) < 0)
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
static const char *
check_text(enum config_vtype t, const char *v)
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
		    parse_uint(colon + 1, 65535, &port) < 0)
			return "want ADDRESS:PORT (port 0 to 65535)";
		return NULL;
	case CONFIG_V_TTLS:
		return config_parse_ttls(v, ttls, CONFIG_MAX_TTLS) >= 0
		    ? NULL
		    : "want at most 32 RESOURCE=SECONDS pairs, such as "
		      "\"agents=60 runs=5\"";
	case CONFIG_V_GROUP:
	default:
		return valid_name(v) ? NULL : "want a group name or number";
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
			return bad_value(ps, shown, v,
			    "want error, warn, info or debug");
		c->log_level = l;
		return 0;
	case CONFIG_V_SECONDS:
		if (parse_decimal(v, &d) < 0 || d < kd->lo || d > kd->hi)
			return fail(ps,
			    "bad value \"" SHOW "\" for %s: want seconds from "
			    "%g to %g",
			    v, shown, kd->lo, kd->hi);
		*(double *)config_field(c, k) = d;
		return 0;
	case CONFIG_V_UINT:
		if (parse_uint(v, (unsigned long long)kd->hi, &u) < 0 ||
		    u < (unsigned long long)kd->lo)
			return fail(ps,
			    "bad value \"" SHOW "\" for %s: want a whole "
			    "number from %.0f to %.0f",
			    v, shown, kd->lo, kd->hi);
		*(unsigned *)config_field(c, k) = (unsigned)u;
		return 0;
	case CONFIG_V_SIZE:
		if (parse_size(v, (unsigned long long)kd->hi, &u) < 0 ||
		    u < (unsigned long long)kd->lo)
			return fail(ps,
			    "bad value \"" SHOW "\" for %s: want bytes from "
			    "%.0f to %.0f (K, M and G suffixes allowed)",
			    v, shown, kd->lo, kd->hi);
		*(size_t *)config_field(c, k) = (size_t)u;
		return 0;
	case CONFIG_V_MODE:
		if (parse_mode(v, (unsigned *)config_field(c, k)) < 0)
			return bad_value(ps, shown, v,
			    "want an octal mode such as 0660");
		return 0;
	case CONFIG_V_BOOL:
	default:
		if (parse_bool(v, (bool *)config_field(c, k)) < 0)
			return bad_value(ps, shown, v, "want true or false");
		return 0;
	}
}

/* Appends a webhook secret; messages never repeat it. */
static int
add_secret(struct pstate *ps, struct config *c, const char *shown,
    const char *v)
{
	if (has_ctl(v, false) || strlen(v) > CONFIG_MAX_SECRET)
		return fail(ps,
		    "bad value for %s: want at most %d printable bytes", shown,
		    CONFIG_MAX_SECRET);
	if (c->nwebhook_secrets >= CONFIG_MAX_SECRETS)
		return fail(ps, "more than %d %s values", CONFIG_MAX_SECRETS,
		    shown);
	if (config_list_push(&c->webhook_secrets, &c->nwebhook_secrets, v) < 0)
		return nomem(ps);
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
		return fail(ps, "%s needs a value", shown);
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
		if (has_ctl(v, false))
			return fail(ps, "bad value for %s: control character",
			    shown);
		return set_number(ps, c, k, shown, v);
	}
	if (has_ctl(v, false))
		return fail(ps, "bad value for %s: control character", shown);
	if ((want = check_text(config_keys[k].type, v)) != NULL)
		return bad_value(ps, shown, v, want);
	s = config_field(c, k);
	free(*s);
	*s = strdup(v);
	return *s == NULL ? nomem(ps) : 0;
}

/* A method glob: method-name characters and ?*[]!-, matching some method. */
static int
check_glob(struct pstate *ps, const char *key, const char *g)
{
	size_t n = strlen(g);

	if (n > CONFIG_MAX_GLOB ||
	    strspn(g,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789_.*?[]!-") != n)
		return fail(ps,
		    "bad pattern \"" SHOW "\" in %s: want method names or "
		    "globs (such as runs.*) separated by blanks",
		    g, key);
	if (methods_init() < 0)
		return fail(ps, "the method table is broken");
	for (size_t i = 0; i < methods_count(); i++)
		if (fnmatch(g, methods_at(i)->name, 0) == 0)
			return 0;
	return fail(ps, "pattern \"" SHOW "\" in %s matches no method", g, key);
}

/* Appends the blank-separated globs of text to *v. */
static int
set_globs(struct pstate *ps, char ***v, size_t *n, const char *key, char *text)
{
	struct config_peer *pe = ps->peer;
	char *p = text, *g;
	int r;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		g = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		if ((r = check_glob(ps, key, g)) < 0)
			return r;
		if (pe->nallow + pe->ndeny >= CONFIG_MAX_GLOBS)
			return fail(ps, "more than %d patterns in [peer %s]",
			    CONFIG_MAX_GLOBS, pe->name);
		if (config_list_push(v, n, g) < 0)
			return nomem(ps);
	}
	return 0;
}

/* match_uid, match_gid or match_user: exactly one per section. */
static int
set_peer_match(struct pstate *ps, enum pkey k, const char *v)
{
	struct config_peer *pe = ps->peer;
	unsigned long long u;

	for (int m = PK_MATCH_UID; m <= PK_MATCH_USER; m++)
		if (ps->pkeyline[m] != 0 && m != (int)k)
			return fail(ps,
			    "[peer %s] already matches by %s (line %u); give "
			    "one of match_uid, match_gid, match_user",
			    pe->name, pkeys[m], ps->pkeyline[m]);
	if (k == PK_MATCH_USER) {
		if (!valid_name(v))
			return bad_value(ps, pkeys[k], v, "want a user name");
		pe->match = CONFIG_MATCH_USER;
		pe->user = strdup(v);
		return pe->user == NULL ? nomem(ps) : 0;
	}
	if (parse_uint(v, 4294967294ull, &u) < 0)
		return bad_value(ps, pkeys[k], v,
		    "want a number (use match_user for a name)");
	if (k == PK_MATCH_UID) {
		pe->match = CONFIG_MATCH_UID;
		pe->uid = (uid_t)u;
	} else {
		pe->match = CONFIG_MATCH_GID;
		pe->gid = (gid_t)u;
	}
	return 0;
}

/* max_connections, rate and burst of a section. */
static int
set_peer_limit(struct pstate *ps, enum pkey k, const char *v)
{
	struct config_peer *pe = ps->peer;
	unsigned long long u;
	double d;

	switch (k) {
	case PK_RATE:
		if (parse_decimal(v, &d) < 0 || d > 1e6)
			return bad_value(ps, pkeys[k], v,
			    "want requests per second from 0 to 1000000");
		pe->rate = d;
		return 0;
	case PK_BURST:
		if (parse_uint(v, 1000000, &u) < 0 || u == 0)
			return bad_value(ps, pkeys[k], v,
			    "want a whole number from 1 to 1000000");
		pe->burst = (unsigned)u;
		return 0;
	case PK_MAX_CONNECTIONS:
	default:
		if (parse_uint(v, 1048576, &u) < 0)
			return bad_value(ps, pkeys[k], v,
			    "want a whole number from 0 to 1048576");
		pe->max_connections = (unsigned)u;
		return 0;
	}
}

static int
set_peer_value(struct pstate *ps, enum pkey k, char *v)
{
	struct config_peer *pe = ps->peer;
	const char *key = pkeys[k];

	if (*v == '\0')
		return fail(ps, "%s needs a value", key);
	if (has_ctl(v, k == PK_ALLOW || k == PK_DENY))
		return fail(ps, "bad value for %s: control character", key);
	switch (k) {
	case PK_MATCH_UID:
	case PK_MATCH_GID:
	case PK_MATCH_USER:
		return set_peer_match(ps, k, v);
	case PK_ALLOW:
		return set_globs(ps, &pe->allow, &pe->nallow, key, v);
	case PK_DENY:
		return set_globs(ps, &pe->deny, &pe->ndeny, key, v);
	case PK_TENANT:
		if (strlen(v) > CONFIG_MAX_NAME || strchr(v, '/') != NULL ||
		    strcmp(v, ".") == 0 || strcmp(v, "..") == 0)
			return bad_value(ps, key, v,
			    "want a user_id of at most 256 bytes, without '/'");
		pe->tenant = strdup(v);
		return pe->tenant == NULL ? nomem(ps) : 0;
	case PK_MAX_CONNECTIONS:
	case PK_RATE:
	case PK_BURST:
		return set_peer_limit(ps, k, v);
	case PK_ADMIN:
	default:
		if (parse_bool(v, &pe->admin) < 0)
			return bad_value(ps, key, v, "want true or false");
		return 0;
	}
}

/* Appends the blank-separated event globs of text to the section's. */
static int
set_events(struct pstate *ps, char *text)
{
	struct hook_def *h = ps->hook;
	char *p = text, *g, *d;
	size_t n;

	for (;;) {
		p += strspn(p, " \t");
		if (*p == '\0')
			break;
		g = p;
		p += strcspn(p, " \t");
		if (*p != '\0')
			*p++ = '\0';
		n = strlen(g);
		if (n > CONFIG_MAX_GLOB ||
		    strspn(g,
		        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		        "0123456789_.:*?[]!-") != n)
			return fail(ps,
			    "bad pattern \"" SHOW "\" in events: want event "
			    "types or globs (such as run.*) separated by "
			    "blanks",
			    g);
		if (h->nevents >= HOOK_MAX_EVENTS)
			return fail(ps, "more than %d patterns in [hook %s]",
			    HOOK_MAX_EVENTS, h->name);
		d = strdup(g);
		if (d == NULL)
			return nomem(ps);
		h->events[h->nevents++] = d;
	}
	return 0;
}

/* exec or url: exactly one per section. */
static int
set_hook_action(struct pstate *ps, enum hkey k, const char *v)
{
	struct hook_def *h = ps->hook;
	enum hkey other = k == HK_EXEC ? HK_URL : HK_EXEC;
	const char *want;
	char *d;

	if (ps->hkeyline[other] != 0)
		return fail(ps,
		    "[hook %s] already has %s (line %u); give one of exec and "
		    "url",
		    h->name, hkeys[other], ps->hkeyline[other]);
	if (k == HK_URL && (want = check_text(CONFIG_V_URL, v)) != NULL)
		return bad_value(ps, hkeys[k], v, want);
	d = strdup(v);
	if (d == NULL)
		return nomem(ps);
	if (k == HK_EXEC)
		h->exec = d;
	else
		h->url = d;
	return 0;
}

/* max_concurrent, retries and timeout of a section. */
static int
set_hook_number(struct pstate *ps, enum hkey k, const char *v)
{
	struct hook_def *h = ps->hook;
	unsigned long long u;

	switch (k) {
	case HK_MAX_CONCURRENT:
		if (parse_uint(v, HOOK_MAX_CONCURRENT, &u) < 0 || u == 0)
			return bad_value(ps, hkeys[k], v,
			    "want a whole number from 1 to 256");
		h->max_concurrent = (unsigned)u;
		return 0;
	case HK_RETRIES:
		if (parse_uint(v, HOOK_MAX_RETRIES, &u) < 0)
			return bad_value(ps, hkeys[k], v,
			    "want a whole number from 0 to 100");
		h->retries = (unsigned)u;
		return 0;
	case HK_TIMEOUT:
	default:
		if (parse_uint(v, HOOK_MAX_TIMEOUT, &u) < 0 || u == 0)
			return bad_value(ps, hkeys[k], v,
			    "want whole seconds from 1 to 3600");
		h->timeout_s = (unsigned)u;
		return 0;
	}
}

static int
set_hook_value(struct pstate *ps, enum hkey k, char *v)
{
	const char *key = hkeys[k];

	if (*v == '\0')
		return fail(ps, "%s needs a value", key);
	/* A shell command may hold tabs; nothing else may hold controls. */
	if (has_ctl(v, k == HK_EVENTS || k == HK_EXEC))
		return fail(ps, "bad value for %s: control character", key);
	switch (k) {
	case HK_EVENTS:
		return set_events(ps, v);
	case HK_EXEC:
	case HK_URL:
		return set_hook_action(ps, k, v);
	case HK_MAX_CONCURRENT:
	case HK_RETRIES:
	case HK_TIMEOUT:
	default:
		return set_hook_number(ps, k, v);
	}
}

/* ---- lines ------------------------------------------------------------- */

/* A section NAME: letters, digits and _.@- (at most 64). */
static bool
valid_section_name(const char *s)
{
	size_t n = strlen(s);

	return n <= CONFIG_MAX_SECTION_NAME &&
	    strspn(s,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789_.@-") == n;
}

/* "[peer NAME]" or "[hook NAME]" at p (just after the '['). */
static int
begin_section(struct pstate *ps, struct config *c, char *p)
{
	const char *kind;
	char *name, *end;
	bool hook;
	int r;

	if ((r = end_section(ps)) < 0)
		return r;
	p += strspn(p, " \t");
	name = p;
	p += strcspn(p, " \t]");
	end = p;
	hook = end - name == 4 && strncmp(name, "hook", 4) == 0;
	kind = hook ? "hook" : "peer";
	if (!hook && (end - name != 4 || strncmp(name, "peer", 4) != 0)) {
		*end = '\0';
		return fail(ps,
		    "unknown section \"[" SHOW "]\": want [peer NAME] or "
		    "[hook NAME]",
		    name);
	}
	p += strspn(p, " \t");
	name = p;
	p += strcspn(p, " \t]");
	if (p == name)
		return fail(ps, "[%s] needs a NAME: want [%s NAME]", kind,
		    kind);
	end = p;
	p += strspn(p, " \t");
	if (*p != ']')
		return fail(ps, "bad section header: want [%s NAME]", kind);
	p++;
	p += strspn(p, " \t");
	if (*p != '\0' && *p != '#')
		return fail(ps, "text after the section header");
	*end = '\0';
	if (!valid_section_name(name))
		return fail(ps,
		    "bad section name \"" SHOW "\": want letters, digits and "
		    "_.@- (at most 64)",
		    name);
	if (hook)
		return begin_hook(ps, c, name);
	return begin_peer(ps, c, name);
}

/* Opens [peer NAME], its header already checked. */
static int
begin_peer(struct pstate *ps, struct config *c, const char *name)
{
	struct config_peer *np;

	for (size_t i = 0; i < c->npeers; i++)
		if (strcmp(c->peers[i].name, name) == 0)
			return fail(ps,
			    "[peer %s] is already defined on line %u", name,
			    c->peers[i].line);
	if (c->npeers >= CONFIG_MAX_PEERS)
		return fail(ps, "more than %d [peer] sections",
		    CONFIG_MAX_PEERS);
	np = realloc(c->peers, (c->npeers + 1) * sizeof(*np));
	if (np == NULL)
		return nomem(ps);
	c->peers = np;
	memset(&np[c->npeers], 0, sizeof(np[0]));
	np[c->npeers].line = ps->line;
	np[c->npeers].name = strdup(name);
	if (np[c->npeers].name == NULL)
		return nomem(ps);
	ps->peer = &np[c->npeers++];
	memset(ps->pkeyline, 0, sizeof(ps->pkeyline));
	c->set |= CONFIG_BIT(CONFIG_PEERS);
	return 0;
}

/* Opens [hook NAME], its header already checked, with the defaults. */
static int
begin_hook(struct pstate *ps, struct config *c, const char *name)
{
	struct hook_def *nh;
	char *d;

	for (size_t i = 0; i < c->nhooks; i++)
		if (strcmp(c->hooks[i].name, name) == 0)
			return fail(ps,
			    "[hook %s] is already defined on line %u", name,
			    ps->hookline[i]);
	if (c->nhooks >= CONFIG_MAX_HOOKS)
		return fail(ps, "more than %d [hook] sections",
		    CONFIG_MAX_HOOKS);
	nh = realloc(c->hooks, (c->nhooks + 1) * sizeof(*nh));
	if (nh == NULL)
		return nomem(ps);
	c->hooks = nh;
	nh = &c->hooks[c->nhooks];
	memset(nh, 0, sizeof(*nh));
	d = strdup(name);
	if (d == NULL)
		return nomem(ps);
	nh->name = d;
	nh->max_concurrent = CONFIG_DEF_HOOK_MAX_CONCURRENT;
	nh->retries = CONFIG_DEF_HOOK_RETRIES;
	nh->timeout_s = CONFIG_DEF_HOOK_TIMEOUT;
	ps->hookline[c->nhooks++] = ps->line;
	ps->hook = nh;
	ps->hookhead = ps->line;
	memset(ps->hkeyline, 0, sizeof(ps->hkeyline));
	c->set |= CONFIG_BIT(CONFIG_HOOKS);
	return 0;
}

/* Closes the section being read: it must match someone; fills burst. */
static int
end_peer(struct pstate *ps)
{
	struct config_peer *pe = ps->peer;
	unsigned line = ps->line;

	if (pe == NULL)
		return 0;
	ps->peer = NULL;
	if (ps->pkeyline[PK_MATCH_UID] == 0 &&
	    ps->pkeyline[PK_MATCH_GID] == 0 &&
	    ps->pkeyline[PK_MATCH_USER] == 0) {
		ps->line = pe->line;
		return fail(ps,
		    "[peer %s] needs one of match_uid, match_gid, match_user",
		    pe->name);
	}
	if (ps->pkeyline[PK_BURST] != 0 && pe->rate == 0) {
		ps->line = ps->pkeyline[PK_BURST];
		return fail(ps, "burst in [peer %s] needs a rate above 0",
		    pe->name);
	}
	if (pe->rate > 0 && pe->burst == 0) {
		/* One second's worth of requests, at least one. */
		pe->burst = (unsigned)pe->rate;
		if ((double)pe->burst < pe->rate)
			pe->burst++;
		if (pe->burst == 0)
			pe->burst = 1;
	}
	if (pe->rate == 0)
		pe->burst = 0;
	ps->line = line;
	return 0;
}

/* Closes the [hook] section being read: it must have exec or url. */
static int
end_hook(struct pstate *ps)
{
	struct hook_def *h = ps->hook;

	if (h == NULL)
		return 0;
	ps->hook = NULL;
	/* set_hook_action already refused both. */
	if (h->exec == NULL && h->url == NULL) {
		ps->line = ps->hookhead;
		return fail(ps, "[hook %s] needs one of exec and url", h->name);
	}
	return 0;
}

/* Closes the section being read, if any. */
static int
end_section(struct pstate *ps)
{
	int r;

	if ((r = end_peer(ps)) < 0)
		return r;
	return end_hook(ps);
}

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
			return fail(ps, "unterminated quoted value");
		if (*p == '"')
			break;
		if (*p == '\\') {
			if (p[1] != '"' && p[1] != '\\')
				return fail(ps,
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
		return fail(ps, "text after the closing quote");
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
		return fail(ps, "key \"%s\" belongs before the first section",
		    name);
	if (at != PLACE_PEER && !plain && find_pkey(norm) >= 0)
		return fail(ps,
		    "key \"%s\" is only valid in a [peer NAME] section", name);
	if (at != PLACE_HOOK && !plain && find_hkey(norm) >= 0)
		return fail(ps,
		    "key \"%s\" is only valid in a [hook NAME] section", name);
	return 0;
}

/*
 * name = v in the section being read: 0 or -errno when name is a key of
 * that section, 1 when it is not (or no section is being read).
 */
static int
set_section_key(struct pstate *ps, const char *name, char *v)
{
	int k;

	k = ps->peer != NULL ? find_pkey(name) : -1;
	if (k >= 0) {
		if (ps->pkeyline[k] != 0 && k != PK_ALLOW && k != PK_DENY)
			return fail(ps,
			    "%s is already set in [peer %s] on line %u", name,
			    ps->peer->name, ps->pkeyline[k]);
		ps->pkeyline[k] = ps->line;
		return set_peer_value(ps, (enum pkey)k, v);
	}
	k = ps->hook != NULL ? find_hkey(name) : -1;
	if (k >= 0) {
		if (ps->hkeyline[k] != 0 && k != HK_EVENTS)
			return fail(ps,
			    "%s is already set in [hook %s] on line %u", name,
			    ps->hook->name, ps->hkeyline[k]);
		ps->hkeyline[k] = ps->line;
		return set_hook_value(ps, (enum hkey)k, v);
	}
	return 1;
}

/* A key that is nowhere valid: names the section it is in, and a hint. */
static int
unknown_key(struct pstate *ps, const char *name)
{
	char hint[64];

	suggest(where(ps), name, hint, sizeof(hint));
	if (ps->peer != NULL)
		return fail(ps, "unknown key \"%s\" in [peer %s]%s", name,
		    ps->peer->name, hint);
	if (ps->hook != NULL)
		return fail(ps, "unknown key \"%s\" in [hook %s]%s", name,
		    ps->hook->name, hint);
	return fail(ps, "unknown key \"%s\"%s", name, hint);
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
		return begin_section(ps, c, p + 1);
	n = strspn(p,
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "0123456789_-");
	if (n == 0)
		return fail(ps, "expected \"key = value\"");
	if (n >= sizeof(name))
		return fail(ps, "unknown key \"%.32s...\"", p);
	memcpy(name, p, n);
	name[n] = '\0';
	p += n;
	p += strspn(p, " \t");
	if (*p != '=')
		return fail(ps, "expected \"=\" after \"%s\"", name);
	if ((r = read_value(ps, p + 1, &v)) < 0)
		return r;

	if ((r = set_section_key(ps, name, v)) <= 0)
		return r;
	if ((r = misplaced(ps, name, false)) < 0)
		return r;
	k = find_key(name, false);
	if (k < 0)
		return unknown_key(ps, name);
	if (ps->keyline[k] != 0 && k != CONFIG_WEBHOOK_SECRET)
		return fail(ps, "%s is already set on line %u", name,
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
	return fail(ps, "%s needs %s as well", config_keys[given].name,
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
			r = fail(&ps, "line longer than %d bytes",
			    CONFIG_MAX_LINE);
			goto out_free;
		}
		if (memchr(p, '\0', n) != NULL) {
			r = fail(&ps, "NUL byte in the line");
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
	if ((r = end_section(&ps)) < 0 || (r = check_pairs(&ps, &c)) < 0)
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
		return fail(&ps, "unknown key \"%s\"%s", key, hint);
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
	if (parse_decimal(num, &d) < 0 || d > CONFIG_MAX_TTL_S)
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

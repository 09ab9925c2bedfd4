/*
 * SPDX-License-Identifier: MIT
 *
 * The [peer NAME] and [hook NAME] sections of m8tesd.conf: their headers,
 * their keys and the check of every value, and what a section must hold
 * when it ends. config_parse.c reads the lines and hands each "key = value"
 * inside a section here first, through config_section_key. Method globs are
 * checked against the method table, so a misspelt pattern is an error
 * instead of a rule that silently matches nothing. Event globs cannot be:
 * the event types are the sender's. No logging.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_int.h"
#include "methods.h"

/* Ranges of the numbers of a [hook] section; messages spell them out. */
#define HOOK_MAX_CONCURRENT 256
#define HOOK_MAX_RETRIES 100
#define HOOK_MAX_TIMEOUT 3600

/* Indexed by enum pkey and enum hkey. */
const char *const config_pkeys[PK_N] = {
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

const char *const config_hkeys[HK_N] = {
    [HK_EVENTS] = "events",
    [HK_EXEC] = "exec",
    [HK_URL] = "url",
    [HK_MAX_CONCURRENT] = "max_concurrent",
    [HK_RETRIES] = "retries",
    [HK_TIMEOUT] = "timeout",
};

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
static int begin_peer(struct pstate *ps, struct config *c, const char *name);
static int begin_hook(struct pstate *ps, struct config *c, const char *name);
static int end_peer(struct pstate *ps);
static int end_hook(struct pstate *ps);

int
config_find_pkey(const char *name)
{
	for (int k = 0; k < PK_N; k++)
		if (strcmp(config_pkeys[k], name) == 0)
			return k;
	return -1;
}

int
config_find_hkey(const char *name)
{
	for (int k = 0; k < HK_N; k++)
		if (strcmp(config_hkeys[k], name) == 0)
			return k;
	return -1;
}

/* ---- keys -------------------------------------------------------------- */

/* A method glob: method-name characters and ?*[]!-, matching some method. */
static int
check_glob(struct pstate *ps, const char *key, const char *g)
{
	size_t n = strlen(g);

	if (n > CONFIG_MAX_GLOB ||
	    strspn(g,
	        "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
	        "0123456789_.*?[]!-") != n)
		return pstate_fail(ps,
		    "bad pattern \"" CONFIG_SHOW
		    "\" in %s: want method names or "
		    "globs (such as runs.*) separated by blanks",
		    g, key);
	if (methods_init() < 0)
		return pstate_fail(ps, "the method table is broken");
	for (size_t i = 0; i < methods_count(); i++)
		if (fnmatch(g, methods_at(i)->name, 0) == 0)
			return 0;
	return pstate_fail(ps,
	    "pattern \"" CONFIG_SHOW "\" in %s matches no method", g, key);
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
			return pstate_fail(ps,
			    "more than %d patterns in [peer %s]",
			    CONFIG_MAX_GLOBS, pe->name);
		if (config_list_push(v, n, g) < 0)
			return pstate_nomem(ps);
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
			return pstate_fail(ps,
			    "[peer %s] already matches by %s (line %u); give "
			    "one of match_uid, match_gid, match_user",
			    pe->name, config_pkeys[m], ps->pkeyline[m]);
	if (k == PK_MATCH_USER) {
		if (!config_valid_name(v))
			return pstate_bad_value(ps, config_pkeys[k], v,
			    "want a user name");
		pe->match = CONFIG_MATCH_USER;
		pe->user = strdup(v);
		return pe->user == NULL ? pstate_nomem(ps) : 0;
	}
	if (config_parse_uint(v, 4294967294ull, &u) < 0)
		return pstate_bad_value(ps, config_pkeys[k], v,
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
		if (config_parse_decimal(v, &d) < 0 || d > 1e6)
			return pstate_bad_value(ps, config_pkeys[k], v,
			    "want requests per second from 0 to 1000000");
		pe->rate = d;
		return 0;
	case PK_BURST:
		if (config_parse_uint(v, 1000000, &u) < 0 || u == 0)
			return pstate_bad_value(ps, config_pkeys[k], v,
			    "want a whole number from 1 to 1000000");
		pe->burst = (unsigned)u;
		return 0;
	case PK_MAX_CONNECTIONS:
	default:
		if (config_parse_uint(v, 1048576, &u) < 0)
			return pstate_bad_value(ps, config_pkeys[k], v,
			    "want a whole number from 0 to 1048576");
		pe->max_connections = (unsigned)u;
		return 0;
	}
}

static int
set_peer_value(struct pstate *ps, enum pkey k, char *v)
{
	struct config_peer *pe = ps->peer;
	const char *key = config_pkeys[k];

	if (*v == '\0')
		return pstate_fail(ps, "%s needs a value", key);
	if (config_has_ctl(v, k == PK_ALLOW || k == PK_DENY))
		return pstate_fail(ps, "bad value for %s: control character",
		    key);
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
			return pstate_bad_value(ps, key, v,
			    "want a user_id of at most 256 bytes, without '/'");
		pe->tenant = strdup(v);
		return pe->tenant == NULL ? pstate_nomem(ps) : 0;
	case PK_MAX_CONNECTIONS:
	case PK_RATE:
	case PK_BURST:
		return set_peer_limit(ps, k, v);
	case PK_ADMIN:
	default:
		if (config_parse_bool(v, &pe->admin) < 0)
			return pstate_bad_value(ps, key, v,
			    "want true or false");
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
			return pstate_fail(ps,
			    "bad pattern \"" CONFIG_SHOW
			    "\" in events: want event "
			    "types or globs (such as run.*) separated by "
			    "blanks",
			    g);
		if (h->nevents >= HOOK_MAX_EVENTS)
			return pstate_fail(ps,
			    "more than %d patterns in [hook %s]",
			    HOOK_MAX_EVENTS, h->name);
		d = strdup(g);
		if (d == NULL)
			return pstate_nomem(ps);
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
		return pstate_fail(ps,
		    "[hook %s] already has %s (line %u); give one of exec and "
		    "url",
		    h->name, config_hkeys[other], ps->hkeyline[other]);
	if (k == HK_URL && (want = config_check_text(CONFIG_V_URL, v)) != NULL)
		return pstate_bad_value(ps, config_hkeys[k], v, want);
	d = strdup(v);
	if (d == NULL)
		return pstate_nomem(ps);
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
		if (config_parse_uint(v, HOOK_MAX_CONCURRENT, &u) < 0 || u == 0)
			return pstate_bad_value(ps, config_hkeys[k], v,
			    "want a whole number from 1 to 256");
		h->max_concurrent = (unsigned)u;
		return 0;
	case HK_RETRIES:
		if (config_parse_uint(v, HOOK_MAX_RETRIES, &u) < 0)
			return pstate_bad_value(ps, config_hkeys[k], v,
			    "want a whole number from 0 to 100");
		h->retries = (unsigned)u;
		return 0;
	case HK_TIMEOUT:
	default:
		if (config_parse_uint(v, HOOK_MAX_TIMEOUT, &u) < 0 || u == 0)
			return pstate_bad_value(ps, config_hkeys[k], v,
			    "want whole seconds from 1 to 3600");
		h->timeout_s = (unsigned)u;
		return 0;
	}
}

static int
set_hook_value(struct pstate *ps, enum hkey k, char *v)
{
	const char *key = config_hkeys[k];

	if (*v == '\0')
		return pstate_fail(ps, "%s needs a value", key);
	/* A shell command may hold tabs; nothing else may hold controls. */
	if (config_has_ctl(v, k == HK_EVENTS || k == HK_EXEC))
		return pstate_fail(ps, "bad value for %s: control character",
		    key);
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

/* ---- sections ---------------------------------------------------------- */

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
int
config_section_begin(struct pstate *ps, struct config *c, char *p)
{
	const char *kind;
	char *name, *end;
	bool hook;
	int r;

	if ((r = config_section_end(ps)) < 0)
		return r;
	p += strspn(p, " \t");
	name = p;
	p += strcspn(p, " \t]");
	end = p;
	hook = end - name == 4 && strncmp(name, "hook", 4) == 0;
	kind = hook ? "hook" : "peer";
	if (!hook && (end - name != 4 || strncmp(name, "peer", 4) != 0)) {
		*end = '\0';
		return pstate_fail(ps,
		    "unknown section \"[" CONFIG_SHOW
		    "]\": want [peer NAME] or "
		    "[hook NAME]",
		    name);
	}
	p += strspn(p, " \t");
	name = p;
	p += strcspn(p, " \t]");
	if (p == name)
		return pstate_fail(ps, "[%s] needs a NAME: want [%s NAME]",
		    kind, kind);
	end = p;
	p += strspn(p, " \t");
	if (*p != ']')
		return pstate_fail(ps, "bad section header: want [%s NAME]",
		    kind);
	p++;
	p += strspn(p, " \t");
	if (*p != '\0' && *p != '#')
		return pstate_fail(ps, "text after the section header");
	*end = '\0';
	if (!valid_section_name(name))
		return pstate_fail(ps,
		    "bad section name \"" CONFIG_SHOW
		    "\": want letters, digits and "
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
			return pstate_fail(ps,
			    "[peer %s] is already defined on line %u", name,
			    c->peers[i].line);
	if (c->npeers >= CONFIG_MAX_PEERS)
		return pstate_fail(ps, "more than %d [peer] sections",
		    CONFIG_MAX_PEERS);
	np = realloc(c->peers, (c->npeers + 1) * sizeof(*np));
	if (np == NULL)
		return pstate_nomem(ps);
	c->peers = np;
	memset(&np[c->npeers], 0, sizeof(np[0]));
	np[c->npeers].line = ps->line;
	np[c->npeers].name = strdup(name);
	if (np[c->npeers].name == NULL)
		return pstate_nomem(ps);
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
			return pstate_fail(ps,
			    "[hook %s] is already defined on line %u", name,
			    ps->hookline[i]);
	if (c->nhooks >= CONFIG_MAX_HOOKS)
		return pstate_fail(ps, "more than %d [hook] sections",
		    CONFIG_MAX_HOOKS);
	nh = realloc(c->hooks, (c->nhooks + 1) * sizeof(*nh));
	if (nh == NULL)
		return pstate_nomem(ps);
	c->hooks = nh;
	nh = &c->hooks[c->nhooks];
	memset(nh, 0, sizeof(*nh));
	d = strdup(name);
	if (d == NULL)
		return pstate_nomem(ps);
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
		return pstate_fail(ps,
		    "[peer %s] needs one of match_uid, match_gid, match_user",
		    pe->name);
	}
	if (ps->pkeyline[PK_BURST] != 0 && pe->rate == 0) {
		ps->line = ps->pkeyline[PK_BURST];
		return pstate_fail(ps,
		    "burst in [peer %s] needs a rate above 0", pe->name);
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
		return pstate_fail(ps, "[hook %s] needs one of exec and url",
		    h->name);
	}
	return 0;
}

/* Closes the section being read, if any. */
int
config_section_end(struct pstate *ps)
{
	int r;

	if ((r = end_peer(ps)) < 0)
		return r;
	return end_hook(ps);
}

/*
 * name = v in the section being read: 0 or -errno when name is a key of
 * that section, 1 when it is not (or no section is being read).
 */
int
config_section_key(struct pstate *ps, const char *name, char *v)
{
	int k;

	k = ps->peer != NULL ? config_find_pkey(name) : -1;
	if (k >= 0) {
		if (ps->pkeyline[k] != 0 && k != PK_ALLOW && k != PK_DENY)
			return pstate_fail(ps,
			    "%s is already set in [peer %s] on line %u", name,
			    ps->peer->name, ps->pkeyline[k]);
		ps->pkeyline[k] = ps->line;
		return set_peer_value(ps, (enum pkey)k, v);
	}
	k = ps->hook != NULL ? config_find_hkey(name) : -1;
	if (k >= 0) {
		if (ps->hkeyline[k] != 0 && k != HK_EVENTS)
			return pstate_fail(ps,
			    "%s is already set in [hook %s] on line %u", name,
			    ps->hook->name, ps->hkeyline[k]);
		ps->hkeyline[k] = ps->line;
		return set_hook_value(ps, (enum hkey)k, v);
	}
	return 1;
}

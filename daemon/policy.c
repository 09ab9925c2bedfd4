/*
 * SPDX-License-Identifier: MIT
 *
 * The policy: rules copied from the [peer] sections, the per-call check
 * (globs with fnmatch, admin methods, tenant user_id) and a small
 * open-addressing table of per-uid state, the connection count and a
 * token bucket. Buckets count micro-tokens in integers, so a given
 * sequence of clock readings always gives the same answers. Entries of
 * uids with no connection and a full bucket are dropped when the table
 * grows, which bounds it by the uids actually active. No logging, no
 * clock, no I/O but policy_user_name.
 */
#include <errno.h>
#include <fnmatch.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "methods.h"
#include "policy.h"

#define UTOK 1000000u /* micro-tokens in one request */
#define MIN_SLOTS 16u
#define PWBUF_MAX ((size_t)1024 * 1024)

struct policy_rule {
	char *name; /* NULL for the default rule */
	enum config_match match;
	uid_t uid;
	gid_t gid;
	char *user;
	char **allow; /* nallow == 0: everything */
	size_t nallow;
	char **deny;
	size_t ndeny;
	char *tenant;
	unsigned max_connections; /* 0: the policy's per-uid default */
	uint64_t rate;            /* micro-tokens per millisecond; 0 = none */
	uint64_t burst;           /* micro-tokens */
	bool admin;
	bool deny_all; /* the default rule under default_deny */
};

/* Per-uid state. A slot is in use when used is set. */
struct uid_slot {
	uid_t uid;
	bool used;
	bool bucket; /* tokens and last_ms are valid */
	unsigned conns;
	uint64_t tokens;  /* micro-tokens */
	uint64_t last_ms; /* when tokens was last brought up to date */
	uint64_t rate;    /* of the last take, to see when it is full */
	uint64_t burst;
};

struct policy {
	struct policy_rule *rules;
	size_t nrules;
	struct policy_rule deflt;
	unsigned max_per_uid;
	unsigned long generation;
	struct uid_slot *slots; /* power-of-two capacity */
	size_t cap;
	size_t used;
	uint64_t now_ms; /* the latest clock reading seen */
};

static const char *const admin_globs[] = {
    "auth.*",
    "cache.clear",
    "daemon.shutdown",
    "daemon.reload",
    "daemon.set_log_level",
};

static const char *const always_allowed[] = {
    "cancel",
    "daemon.hello",
    "daemon.ping",
    "daemon.describe",
};

static void rule_done(struct policy_rule *r);
static int rule_init(struct policy_rule *r, const struct config_peer *cp);
static void rules_free(struct policy_rule *rules, size_t n);
static int
rules_build(const struct config *c, struct policy_rule **ret, size_t *ret_n);
static bool globs_match(char *const *globs, size_t n, const char *method);
static int inject_tenant(const struct policy_rule *r, const char *method,
    struct cJSON *params, char *reason, size_t len);
static size_t slot_hash(uid_t uid, size_t cap);
static struct uid_slot *slot_find(const struct policy *p, uid_t uid);
static bool slot_idle(const struct uid_slot *s, uint64_t now_ms);
static int slots_grow(struct policy *p);
static struct uid_slot *slot_get(struct policy *p, uid_t uid, int *ret_err);
static void bucket_refill(struct uid_slot *s, uint64_t now_ms);

/* ---- rules ------------------------------------------------------------- */

static void
rule_done(struct policy_rule *r)
{
	free(r->name);
	free(r->user);
	free(r->tenant);
	for (size_t i = 0; i < r->nallow; i++)
		free(r->allow[i]);
	for (size_t i = 0; i < r->ndeny; i++)
		free(r->deny[i]);
	free(r->allow);
	free(r->deny);
	memset(r, 0, sizeof(*r));
}

static int
copy_strv(char *const *src, size_t n, char ***ret)
{
	char **v;

	*ret = NULL;
	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (v == NULL)
		return -ENOMEM;
	*ret = v;
	for (size_t i = 0; i < n; i++) {
		v[i] = strdup(src[i]);
		if (v[i] == NULL)
			return -ENOMEM;
	}
	return 0;
}

static int
copy_str(const char *s, char **ret)
{
	*ret = s != NULL ? strdup(s) : NULL;
	return s != NULL && *ret == NULL ? -ENOMEM : 0;
}

/* Fills a zeroed r from a section; on failure r is freed and zeroed. */
static int
rule_init(struct policy_rule *r, const struct config_peer *cp)
{
	r->match = cp->match;
	r->uid = cp->uid;
	r->gid = cp->gid;
	r->max_connections = cp->max_connections;
	r->admin = cp->admin;
	if (cp->rate > 0) {
		/* tokens/s = micro-tokens/ms * 1000; never round to 0. */
		r->rate = (uint64_t)(cp->rate * 1000.0 + 0.5);
		if (r->rate == 0)
			r->rate = 1;
		r->burst = (uint64_t)(cp->burst > 0 ? cp->burst : 1) * UTOK;
	}
	/* Counts first: rule_done frees the arrays by them. */
	r->nallow = cp->nallow;
	r->ndeny = cp->ndeny;
	if (copy_str(cp->name, &r->name) < 0 ||
	    copy_str(cp->user, &r->user) < 0 ||
	    copy_str(cp->tenant, &r->tenant) < 0 ||
	    copy_strv(cp->allow, cp->nallow, &r->allow) < 0 ||
	    copy_strv(cp->deny, cp->ndeny, &r->deny) < 0) {
		if (r->allow == NULL)
			r->nallow = 0;
		if (r->deny == NULL)
			r->ndeny = 0;
		rule_done(r);
		return -ENOMEM;
	}
	return 0;
}

static void
rules_free(struct policy_rule *rules, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rule_done(&rules[i]);
	free(rules);
}

static int
rules_build(const struct config *c, struct policy_rule **ret, size_t *ret_n)
{
	struct policy_rule *rules = NULL;

	if (c->npeers > 0) {
		rules = calloc(c->npeers, sizeof(*rules));
		if (rules == NULL)
			return -ENOMEM;
	}
	for (size_t i = 0; i < c->npeers; i++) {
		if (rule_init(&rules[i], &c->peers[i]) < 0) {
			rules_free(rules, i);
			return -ENOMEM;
		}
	}
	*ret = rules;
	*ret_n = c->npeers;
	return 0;
}

static bool
globs_match(char *const *globs, size_t n, const char *method)
{
	for (size_t i = 0; i < n; i++)
		if (fnmatch(globs[i], method, 0) == 0)
			return true;
	return false;
}

static bool
in_list(const char *const *list, size_t n, const char *method, bool glob)
{
	for (size_t i = 0; i < n; i++)
		if (glob ? fnmatch(list[i], method, 0) == 0
		         : strcmp(list[i], method) == 0)
			return true;
	return false;
}

/*
 * Every user_id in params must be the tenant; then exactly one is left.
 * All occurrences are looked at, not only the first: a JSON object may
 * repeat a name, and whichever copy a later stage picks must be ours.
 */
static int
inject_tenant(const struct policy_rule *r, const char *method,
    struct cJSON *params, char *reason, size_t len)
{
	const struct method *m = methods_find(method);
	cJSON *it, *next;

	if (m == NULL || method_param_find(m, "user_id") == NULL)
		return 0;
	if (!cJSON_IsObject(params)) {
		(void)snprintf(reason, len, "params must be an object");
		return -EINVAL;
	}
	for (it = params->child; it != NULL; it = it->next) {
		if (it->string == NULL || strcmp(it->string, "user_id") != 0)
			continue;
		if (!cJSON_IsString(it) ||
		    strcmp(it->valuestring, r->tenant) != 0) {
			(void)snprintf(reason, len,
			    "this peer may only use user_id \"%s\" "
			    "([peer %s])",
			    r->tenant, r->name != NULL ? r->name : "");
			return -EPERM;
		}
	}
	for (it = params->child; it != NULL; it = next) {
		next = it->next;
		if (it->string != NULL && strcmp(it->string, "user_id") == 0)
			cJSON_Delete(cJSON_DetachItemViaPointer(params, it));
	}
	if (cJSON_AddStringToObject(params, "user_id", r->tenant) == NULL)
		return -ENOMEM;
	return 0;
}

/* ---- per-uid table ----------------------------------------------------- */

static size_t
slot_hash(uid_t uid, size_t cap)
{
	/* Fibonacci hashing: uids are often consecutive. */
	return (size_t)(((uint64_t)uid * 0x9E3779B97F4A7C15ull) >> 32) &
	    (cap - 1);
}

static struct uid_slot *
slot_find(const struct policy *p, uid_t uid)
{
	if (p->cap == 0)
		return NULL;
	for (size_t i = slot_hash(uid, p->cap);; i = (i + 1) & (p->cap - 1)) {
		if (!p->slots[i].used)
			return NULL;
		if (p->slots[i].uid == uid)
			return &p->slots[i];
	}
}

static void
bucket_refill(struct uid_slot *s, uint64_t now_ms)
{
	uint64_t dt, need;

	if (now_ms <= s->last_ms || s->tokens >= s->burst) {
		if (now_ms > s->last_ms)
			s->last_ms = now_ms;
		return;
	}
	dt = now_ms - s->last_ms;
	need = s->burst - s->tokens;
	/* Compare before multiplying: dt * rate may not fit. */
	if (dt >= need / s->rate + 1)
		s->tokens = s->burst;
	else
		s->tokens += dt * s->rate < need ? dt * s->rate : need;
	s->last_ms = now_ms;
}

/* No connection and nothing a fresh entry would not also have. */
static bool
slot_idle(const struct uid_slot *s, uint64_t now_ms)
{
	struct uid_slot t = *s;

	if (t.conns > 0)
		return false;
	if (!t.bucket || t.rate == 0)
		return true;
	bucket_refill(&t, now_ms);
	return t.tokens >= t.burst;
}

/* Rehashes into a table twice the size of what is still live, or more. */
static int
slots_grow(struct policy *p)
{
	struct uid_slot *ns;
	size_t live = 0, cap = MIN_SLOTS;

	for (size_t i = 0; i < p->cap; i++)
		if (p->slots[i].used && !slot_idle(&p->slots[i], p->now_ms))
			live++;
	if (live + 1 > POLICY_MAX_UIDS)
		return -ENOSPC;
	while (cap < 4 * (live + 1))
		cap *= 2;
	ns = calloc(cap, sizeof(*ns));
	if (ns == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < p->cap; i++) {
		const struct uid_slot *s = &p->slots[i];
		size_t j;

		if (!s->used || slot_idle(s, p->now_ms))
			continue;
		for (j = slot_hash(s->uid, cap); ns[j].used;
		     j = (j + 1) & (cap - 1))
			;
		ns[j] = *s;
	}
	free(p->slots);
	p->slots = ns;
	p->cap = cap;
	p->used = live;
	return 0;
}

/* uid's slot, made when missing; NULL with *ret_err on failure. */
static struct uid_slot *
slot_get(struct policy *p, uid_t uid, int *ret_err)
{
	struct uid_slot *s = slot_find(p, uid);
	size_t i;
	int r;

	if (s != NULL)
		return s;
	/* Keep the load at most one half; at the bound, try to make room. */
	if ((p->used >= POLICY_MAX_UIDS || 2 * (p->used + 1) > p->cap) &&
	    (r = slots_grow(p)) < 0) {
		*ret_err = r;
		return NULL;
	}
	for (i = slot_hash(uid, p->cap); p->slots[i].used;
	     i = (i + 1) & (p->cap - 1))
		;
	s = &p->slots[i];
	memset(s, 0, sizeof(*s));
	s->used = true;
	s->uid = uid;
	p->used++;
	return s;
}

/* ---- API --------------------------------------------------------------- */

struct policy *
policy_new(const struct config *c)
{
	struct policy *p;

	if (methods_init() < 0)
		return NULL;
	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	if (policy_reload(p, c) < 0) {
		free(p);
		return NULL;
	}
	p->generation = 0;
	return p;
}

void
policy_free(struct policy *p)
{
	if (p == NULL)
		return;
	rules_free(p->rules, p->nrules);
	free(p->slots);
	free(p);
}

int
policy_reload(struct policy *p, const struct config *c)
{
	struct policy_rule *rules;
	size_t n;
	int r;

	if ((r = rules_build(c, &rules, &n)) < 0)
		return r;
	rules_free(p->rules, p->nrules);
	p->rules = rules;
	p->nrules = n;
	memset(&p->deflt, 0, sizeof(p->deflt));
	p->deflt.deny_all = c->default_deny;
	p->max_per_uid = c->max_connections_per_uid;
	p->generation++;
	return 0;
}

unsigned long
policy_generation(const struct policy *p)
{
	return p->generation;
}

const struct policy_rule *
policy_match(const struct policy *p, uid_t uid, gid_t gid, const char *user)
{
	for (size_t i = 0; i < p->nrules; i++) {
		const struct policy_rule *r = &p->rules[i];

		switch (r->match) {
		case CONFIG_MATCH_UID:
			if (r->uid == uid)
				return r;
			break;
		case CONFIG_MATCH_GID:
			if (r->gid == gid)
				return r;
			break;
		case CONFIG_MATCH_USER:
		default:
			if (user != NULL && strcmp(r->user, user) == 0)
				return r;
			break;
		}
	}
	return &p->deflt;
}

const char *
policy_rule_name(const struct policy_rule *r)
{
	return r->name;
}

const char *
policy_rule_tenant(const struct policy_rule *r)
{
	return r->tenant;
}

bool
policy_rule_admin(const struct policy_rule *r)
{
	return r->admin;
}

bool
policy_method_is_admin(const char *method)
{
	const struct method *m = methods_find(method);

	if (m != NULL && (m->flags & METHOD_ADMIN))
		return true;
	return in_list(admin_globs,
	    sizeof(admin_globs) / sizeof(admin_globs[0]), method, true);
}

int
policy_check_call(const struct policy_rule *r, bool peer_is_admin,
    const char *method, struct cJSON *params, char *reason, size_t len)
{
	const char *name = r->name != NULL ? r->name : "";
	bool always = in_list(always_allowed,
	    sizeof(always_allowed) / sizeof(always_allowed[0]), method, false);

	if (r->deny_all && !peer_is_admin && !always) {
		(void)snprintf(reason, len,
		    "no [peer] section of the configuration matches this peer "
		    "and default_deny is on");
		return -EPERM;
	}
	if (globs_match(r->deny, r->ndeny, method)) {
		(void)snprintf(reason, len, "%s is denied by [peer %s]", method,
		    name);
		return -EPERM;
	}
	if (!always && r->nallow > 0 &&
	    !globs_match(r->allow, r->nallow, method)) {
		(void)snprintf(reason, len, "%s is not allowed by [peer %s]",
		    method, name);
		return -EPERM;
	}
	if (!peer_is_admin && !r->admin && policy_method_is_admin(method)) {
		(void)snprintf(reason, len,
		    "%s needs root, the daemon's own user or admin = true",
		    method);
		return -EPERM;
	}
	if (r->tenant != NULL)
		return inject_tenant(r, method, params, reason, len);
	return 0;
}

int
policy_conn_open(struct policy *p, const struct policy_rule *r, uid_t uid)
{
	unsigned cap =
	    r->max_connections > 0 ? r->max_connections : p->max_per_uid;
	struct uid_slot *s = slot_find(p, uid);
	int err = 0;

	if (cap > 0 && s != NULL && s->conns >= cap)
		return -EDQUOT;
	if (s == NULL && (s = slot_get(p, uid, &err)) == NULL)
		return err;
	s->conns++;
	return 0;
}

void
policy_conn_close(struct policy *p, uid_t uid)
{
	struct uid_slot *s = slot_find(p, uid);

	if (s != NULL && s->conns > 0)
		s->conns--;
}

unsigned
policy_conn_count(const struct policy *p, uid_t uid)
{
	const struct uid_slot *s = slot_find(p, uid);

	return s != NULL ? s->conns : 0;
}

int
policy_rate_take(struct policy *p, const struct policy_rule *r, uid_t uid,
    uint64_t now_ms, uint64_t *ret_wait_ms)
{
	struct uid_slot *s;
	int err = 0;

	if (now_ms > p->now_ms)
		p->now_ms = now_ms;
	if (r->rate == 0)
		return 0;
	if ((s = slot_get(p, uid, &err)) == NULL)
		return err;
	if (!s->bucket) {
		s->bucket = true;
		s->tokens = r->burst;
		s->last_ms = now_ms;
	} else if (s->rate != r->rate || s->burst != r->burst) {
		/* The rule changed (a reload): keep what is left, capped. */
		bucket_refill(s, now_ms);
		if (s->tokens > r->burst)
			s->tokens = r->burst;
	}
	s->rate = r->rate;
	s->burst = r->burst;
	bucket_refill(s, now_ms);
	if (s->tokens >= UTOK) {
		s->tokens -= UTOK;
		return 0;
	}
	if (ret_wait_ms != NULL)
		*ret_wait_ms = (UTOK - s->tokens + s->rate - 1) / s->rate;
	return -EAGAIN;
}

int
policy_user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd pw, *res = NULL;
	size_t size = 4096;
	char *tmp;
	int r;

	for (;;) {
		tmp = malloc(size);
		if (tmp == NULL)
			return -ENOMEM;
		r = getpwuid_r(uid, &pw, tmp, size, &res);
		if (r != ERANGE || size >= PWBUF_MAX)
			break;
		free(tmp);
		size *= 2;
	}
	if (r != 0) {
		free(tmp);
		return -r;
	}
	if (res == NULL) {
		free(tmp);
		return -ENOENT;
	}
	if (strlen(pw.pw_name) >= len) {
		free(tmp);
		return -ENAMETOOLONG;
	}
	memcpy(buf, pw.pw_name, strlen(pw.pw_name) + 1);
	free(tmp);
	return 0;
}

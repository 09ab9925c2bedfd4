/*
 * SPDX-License-Identifier: MIT
 *
 * Whole configurations: the key table, defaults, freeing (secrets wiped),
 * deep copies ([peer] and [hook] sections included), config_merge (the
 * command line over the file), config_diff, config_reload (swap only on
 * success) and reading the file. The text itself is parsed in
 * config_parse.c. No logging.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_int.h"

#define OFF(f) offsetof(struct config, f)

const struct config_keydef config_keys[CONFIG_NKEYS] = {
    [CONFIG_SOCKET] = {"socket", CONFIG_V_SOCKPATH, OFF(socket), 0, 0},
    [CONFIG_BASE_URL] = {"base_url", CONFIG_V_URL, OFF(base_url), 0, 0},
    [CONFIG_API_KEY_FILE] = {"api_key_file", CONFIG_V_PATH, OFF(api_key_file),
        0, 0},
    [CONFIG_STATE_DIR] = {"state_dir", CONFIG_V_PATH, OFF(state_dir), 0, 0},
    [CONFIG_CACHE_DIR] = {"cache_dir", CONFIG_V_PATH, OFF(cache_dir), 0, 0},
    [CONFIG_WEBHOOK_LISTEN] = {"webhook_listen", CONFIG_V_LISTEN,
        OFF(webhook_listen), 0, 0},
    [CONFIG_LOG_LEVEL] = {"log_level", CONFIG_V_LEVEL, OFF(log_level), 0, 0},
    [CONFIG_UPSTREAM_TIMEOUT] = {"upstream_timeout", CONFIG_V_SECONDS,
        OFF(upstream_timeout), 1, 86400},
    [CONFIG_POLL_INTERVAL] = {"poll_interval", CONFIG_V_SECONDS,
        OFF(poll_interval), 0.01, 3600},
    [CONFIG_RETRY_BACKOFF] = {"retry_backoff", CONFIG_V_SECONDS,
        OFF(retry_backoff), 0, 60},
    [CONFIG_MAX_RETRY_AFTER] = {"max_retry_after", CONFIG_V_SECONDS,
        OFF(max_retry_after), 0, 86400},
    [CONFIG_SOCKET_MODE] = {"socket_mode", CONFIG_V_MODE, OFF(socket_mode), 0,
        0777},
    [CONFIG_SOCKET_GROUP] = {"socket_group", CONFIG_V_GROUP, OFF(socket_group),
        0, 0},
    [CONFIG_MAX_CONNECTIONS] = {"max_connections", CONFIG_V_UINT,
        OFF(max_connections), 1, 1048576},
    [CONFIG_MAX_CONNECTIONS_PER_UID] = {"max_connections_per_uid",
        CONFIG_V_UINT, OFF(max_connections_per_uid), 0, 1048576},
    [CONFIG_WEBHOOK_SECRET] = {"webhook_secret", CONFIG_V_SECRET,
        OFF(webhook_secrets), 0, 0},
    [CONFIG_WEBHOOK_SECRET_FILE] = {"webhook_secret_file", CONFIG_V_PATH,
        OFF(webhook_secret_file), 0, 0},
    [CONFIG_WEBHOOK_TOLERANCE] = {"webhook_tolerance", CONFIG_V_UINT,
        OFF(webhook_tolerance), 0, 2592000},
    [CONFIG_WEBHOOK_MAX_BODY] = {"webhook_max_body", CONFIG_V_SIZE,
        OFF(webhook_max_body), 1024, 1024.0 * 1024 * 1024},
    [CONFIG_WEBHOOK_TLS_CERT] = {"webhook_tls_cert", CONFIG_V_PATH,
        OFF(webhook_tls_cert), 0, 0},
    [CONFIG_WEBHOOK_TLS_KEY] = {"webhook_tls_key", CONFIG_V_PATH,
        OFF(webhook_tls_key), 0, 0},
    [CONFIG_AUDIT_RETENTION_DAYS] = {"audit_retention_days", CONFIG_V_UINT,
        OFF(audit_retention_days), 0, 36500},
    [CONFIG_DEFAULT_DENY] = {"default_deny", CONFIG_V_BOOL, OFF(default_deny),
        0, 0},
    [CONFIG_CACHE_MAX_BYTES] = {"cache_max_bytes", CONFIG_V_SIZE,
        OFF(cache_max_bytes), 65536, 1024.0 * 1024 * 1024 * 1024},
    [CONFIG_CACHE_MAX_FILE_BYTES] = {"cache_max_file_bytes", CONFIG_V_SIZE,
        OFF(cache_max_file_bytes), 65536, 1024.0 * 1024 * 1024 * 1024},
    [CONFIG_CACHE_TTL] = {"cache_ttl", CONFIG_V_TTLS, OFF(cache_ttl), 0, 0},
    [CONFIG_RUN_LOG_RETENTION_DAYS] = {"run_log_retention_days", CONFIG_V_UINT,
        OFF(run_log_retention_days), 0, 36500},
    [CONFIG_RUN_LOG_MAX_STORED] = {"run_log_max_stored", CONFIG_V_UINT,
        OFF(run_log_max_stored), 1, 100000000},
    [CONFIG_WEBHOOK_RETENTION_DAYS] = {"webhook_retention_days", CONFIG_V_UINT,
        OFF(webhook_retention_days), 0, 36500},
    [CONFIG_WEBHOOK_MAX_STORED] = {"webhook_max_stored", CONFIG_V_UINT,
        OFF(webhook_max_stored), 1, 1000000000},
    [CONFIG_PEERS] = {"peer", CONFIG_V_PEERS, OFF(peers), 0, 0},
    [CONFIG_HOOKS] = {"hook", CONFIG_V_HOOKS, OFF(hooks), 0, 0},
};

/* The sections come after every plain key, and nothing after them. */
_Static_assert(CONFIG_HOOKS == CONFIG_NPLAIN + 1 &&
        CONFIG_NKEYS == CONFIG_HOOKS + 1,
    "sections are the last keys");
_Static_assert(CONFIG_NKEYS <= 64, "config_diff returns one bit per key");

static const void *cfield(const struct config *c, enum config_key k);
static void list_free(char ***v, size_t *n, bool wipe);
static int list_copy(char ***dst, size_t *dn, char *const *src, size_t sn);
static bool list_eq(char *const *a, size_t an, char *const *b, size_t bn);
static bool str_eq(const char *a, const char *b);
static int dup_or_null(const char *s, char **ret);
static int cdup_or_null(const char *s, const char **ret);
static void cfree(const char *s);
static void peer_free(struct config_peer *p);
static int peer_copy(struct config_peer *dst, const struct config_peer *src);
static bool peer_eq(const struct config_peer *a, const struct config_peer *b);
static void peers_free(struct config *c);
static int peers_copy(struct config *dst, const struct config *src);
static bool peers_eq(const struct config *a, const struct config *b);
static void hookdef_free(struct hook_def *h);
static int hookdef_copy(struct hook_def *dst, const struct hook_def *src);
static bool hookdef_eq(const struct hook_def *a, const struct hook_def *b);
static void hookdefs_free(struct config *c);
static int hookdefs_copy(struct config *dst, const struct config *src);
static bool hookdefs_eq(const struct config *a, const struct config *b);
static void key_free(struct config *c, enum config_key k);
static int
key_copy(struct config *dst, const struct config *src, enum config_key k);
static bool
key_eq(const struct config *a, const struct config *b, enum config_key k);

void *
config_field(struct config *c, enum config_key k)
{
	return (char *)c + config_keys[k].off;
}

static const void *
cfield(const struct config *c, enum config_key k)
{
	return (const char *)c + config_keys[k].off;
}

static void
list_free(char ***v, size_t *n, bool wipe)
{
	for (size_t i = 0; i < *n; i++) {
		if (wipe)
			explicit_bzero((*v)[i], strlen((*v)[i]));
		free((*v)[i]);
	}
	free(*v);
	*v = NULL;
	*n = 0;
}

int
config_list_push(char ***v, size_t *n, const char *s)
{
	char **nv;
	char *d;

	d = strdup(s);
	if (d == NULL)
		return -ENOMEM;
	nv = realloc(*v, (*n + 1) * sizeof(*nv));
	if (nv == NULL) {
		free(d);
		return -ENOMEM;
	}
	nv[(*n)++] = d;
	*v = nv;
	return 0;
}

/* Copies src into the empty list *dst; on failure *dst stays empty. */
static int
list_copy(char ***dst, size_t *dn, char *const *src, size_t sn)
{
	for (size_t i = 0; i < sn; i++) {
		if (config_list_push(dst, dn, src[i]) < 0) {
			list_free(dst, dn, true);
			return -ENOMEM;
		}
	}
	return 0;
}

static bool
list_eq(char *const *a, size_t an, char *const *b, size_t bn)
{
	if (an != bn)
		return false;
	for (size_t i = 0; i < an; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return true;
}

static bool
str_eq(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

static void
peer_free(struct config_peer *p)
{
	free(p->name);
	free(p->user);
	free(p->tenant);
	list_free(&p->allow, &p->nallow, false);
	list_free(&p->deny, &p->ndeny, false);
	memset(p, 0, sizeof(*p));
}

static int
dup_or_null(const char *s, char **ret)
{
	*ret = NULL;
	if (s == NULL)
		return 0;
	*ret = strdup(s);
	return *ret == NULL ? -ENOMEM : 0;
}

/* dup_or_null for a field held as const char * (struct hook_def's). */
static int
cdup_or_null(const char *s, const char **ret)
{
	char *d;
	int r;

	r = dup_or_null(s, &d);
	*ret = d;
	return r;
}

/* Frees an owned string that its struct holds as const char *. */
static void
cfree(const char *s)
{
	free((char *)(uintptr_t)s);
}

/* Deep copy into a zeroed dst; on failure dst is freed and zeroed. */
static int
peer_copy(struct config_peer *dst, const struct config_peer *src)
{
	*dst = *src;
	dst->name = dst->user = dst->tenant = NULL;
	dst->allow = dst->deny = NULL;
	dst->nallow = dst->ndeny = 0;
	if (dup_or_null(src->name, &dst->name) < 0 ||
	    dup_or_null(src->user, &dst->user) < 0 ||
	    dup_or_null(src->tenant, &dst->tenant) < 0 ||
	    list_copy(&dst->allow, &dst->nallow, src->allow, src->nallow) < 0 ||
	    list_copy(&dst->deny, &dst->ndeny, src->deny, src->ndeny) < 0) {
		peer_free(dst);
		return -ENOMEM;
	}
	return 0;
}

static bool
peer_eq(const struct config_peer *a, const struct config_peer *b)
{
	if (!str_eq(a->name, b->name) || a->match != b->match ||
	    !str_eq(a->tenant, b->tenant) ||
	    a->max_connections != b->max_connections || a->rate != b->rate ||
	    a->burst != b->burst || a->admin != b->admin ||
	    !list_eq(a->allow, a->nallow, b->allow, b->nallow) ||
	    !list_eq(a->deny, a->ndeny, b->deny, b->ndeny))
		return false;
	switch (a->match) {
	case CONFIG_MATCH_UID:
		return a->uid == b->uid;
	case CONFIG_MATCH_GID:
		return a->gid == b->gid;
	case CONFIG_MATCH_USER:
	default:
		return str_eq(a->user, b->user);
	}
}

static void
peers_free(struct config *c)
{
	for (size_t i = 0; i < c->npeers; i++)
		peer_free(&c->peers[i]);
	free(c->peers);
	c->peers = NULL;
	c->npeers = 0;
}

/* Copies src's sections over dst's (freed first); -ENOMEM leaves none. */
static int
peers_copy(struct config *dst, const struct config *src)
{
	peers_free(dst);
	if (src->npeers == 0)
		return 0;
	dst->peers = calloc(src->npeers, sizeof(*dst->peers));
	if (dst->peers == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < src->npeers; i++) {
		if (peer_copy(&dst->peers[i], &src->peers[i]) < 0) {
			peers_free(dst);
			return -ENOMEM;
		}
		dst->npeers++;
	}
	return 0;
}

static bool
peers_eq(const struct config *a, const struct config *b)
{
	if (a->npeers != b->npeers)
		return false;
	for (size_t i = 0; i < a->npeers; i++)
		if (!peer_eq(&a->peers[i], &b->peers[i]))
			return false;
	return true;
}

static void
hookdef_free(struct hook_def *h)
{
	cfree(h->name);
	for (size_t i = 0; i < h->nevents; i++)
		cfree(h->events[i]);
	cfree(h->exec);
	cfree(h->url);
	memset(h, 0, sizeof(*h));
}

/* Deep copy into dst; on failure dst is freed and zeroed. */
static int
hookdef_copy(struct hook_def *dst, const struct hook_def *src)
{
	*dst = *src;
	dst->name = dst->exec = dst->url = NULL;
	memset(dst->events, 0, sizeof(dst->events));
	dst->nevents = 0;
	if (cdup_or_null(src->name, &dst->name) < 0 ||
	    cdup_or_null(src->exec, &dst->exec) < 0 ||
	    cdup_or_null(src->url, &dst->url) < 0)
		goto out_free;
	for (size_t i = 0; i < src->nevents; i++) {
		if (cdup_or_null(src->events[i], &dst->events[i]) < 0)
			goto out_free;
		dst->nevents++;
	}
	return 0;

out_free:
	hookdef_free(dst);
	return -ENOMEM;
}

static bool
hookdef_eq(const struct hook_def *a, const struct hook_def *b)
{
	if (!str_eq(a->name, b->name) || !str_eq(a->exec, b->exec) ||
	    !str_eq(a->url, b->url) || a->nevents != b->nevents ||
	    a->max_concurrent != b->max_concurrent ||
	    a->retries != b->retries || a->timeout_s != b->timeout_s)
		return false;
	for (size_t i = 0; i < a->nevents; i++)
		if (!str_eq(a->events[i], b->events[i]))
			return false;
	return true;
}

static void
hookdefs_free(struct config *c)
{
	for (size_t i = 0; i < c->nhooks; i++)
		hookdef_free(&c->hooks[i]);
	free(c->hooks);
	c->hooks = NULL;
	c->nhooks = 0;
}

/* Copies src's sections over dst's (freed first); -ENOMEM leaves none. */
static int
hookdefs_copy(struct config *dst, const struct config *src)
{
	hookdefs_free(dst);
	if (src->nhooks == 0)
		return 0;
	dst->hooks = calloc(src->nhooks, sizeof(*dst->hooks));
	if (dst->hooks == NULL)
		return -ENOMEM;
	for (size_t i = 0; i < src->nhooks; i++) {
		if (hookdef_copy(&dst->hooks[i], &src->hooks[i]) < 0) {
			hookdefs_free(dst);
			return -ENOMEM;
		}
		dst->nhooks++;
	}
	return 0;
}

/* In order: moving a section is a change, as it is for [peer] ones. */
static bool
hookdefs_eq(const struct config *a, const struct config *b)
{
	if (a->nhooks != b->nhooks)
		return false;
	for (size_t i = 0; i < a->nhooks; i++)
		if (!hookdef_eq(&a->hooks[i], &b->hooks[i]))
			return false;
	return true;
}

/* Frees the value of k in c (strings and lists; numbers stay). */
static void
key_free(struct config *c, enum config_key k)
{
	char **s;

	switch (config_keys[k].type) {
	case CONFIG_V_PEERS:
		peers_free(c);
		break;
	case CONFIG_V_HOOKS:
		hookdefs_free(c);
		break;
	case CONFIG_V_SECRET:
		list_free(&c->webhook_secrets, &c->nwebhook_secrets, true);
		break;
	case CONFIG_V_SOCKPATH:
	case CONFIG_V_PATH:
	case CONFIG_V_URL:
	case CONFIG_V_LISTEN:
	case CONFIG_V_GROUP:
	case CONFIG_V_TTLS:
		s = config_field(c, k);
		free(*s);
		*s = NULL;
		break;
	default:
		break;
	}
}

/* Gives dst src's value of k (deep copy). -ENOMEM leaves dst's unset. */
static int
key_copy(struct config *dst, const struct config *src, enum config_key k)
{
	key_free(dst, k);
	switch (config_keys[k].type) {
	case CONFIG_V_PEERS:
		return peers_copy(dst, src);
	case CONFIG_V_HOOKS:
		return hookdefs_copy(dst, src);
	case CONFIG_V_SECRET:
		return list_copy(&dst->webhook_secrets, &dst->nwebhook_secrets,
		    src->webhook_secrets, src->nwebhook_secrets);
	case CONFIG_V_SOCKPATH:
	case CONFIG_V_PATH:
	case CONFIG_V_URL:
	case CONFIG_V_LISTEN:
	case CONFIG_V_GROUP:
	case CONFIG_V_TTLS:
		return dup_or_null(*(char *const *)cfield(src, k),
		    (char **)config_field(dst, k));
	case CONFIG_V_LEVEL:
		dst->log_level = src->log_level;
		return 0;
	case CONFIG_V_SECONDS:
		*(double *)config_field(dst, k) =
		    *(const double *)cfield(src, k);
		return 0;
	case CONFIG_V_UINT:
	case CONFIG_V_MODE:
		*(unsigned *)config_field(dst, k) =
		    *(const unsigned *)cfield(src, k);
		return 0;
	case CONFIG_V_SIZE:
		*(size_t *)config_field(dst, k) =
		    *(const size_t *)cfield(src, k);
		return 0;
	case CONFIG_V_BOOL:
	default:
		*(bool *)config_field(dst, k) = *(const bool *)cfield(src, k);
		return 0;
	}
}

static bool
key_eq(const struct config *a, const struct config *b, enum config_key k)
{
	switch (config_keys[k].type) {
	case CONFIG_V_PEERS:
		return peers_eq(a, b);
	case CONFIG_V_HOOKS:
		return hookdefs_eq(a, b);
	case CONFIG_V_SECRET:
		return list_eq(a->webhook_secrets, a->nwebhook_secrets,
		    b->webhook_secrets, b->nwebhook_secrets);
	case CONFIG_V_SOCKPATH:
	case CONFIG_V_PATH:
	case CONFIG_V_URL:
	case CONFIG_V_LISTEN:
	case CONFIG_V_GROUP:
	case CONFIG_V_TTLS:
		return str_eq(*(char *const *)cfield(a, k),
		    *(char *const *)cfield(b, k));
	case CONFIG_V_LEVEL:
		return a->log_level == b->log_level;
	case CONFIG_V_SECONDS:
		return *(const double *)cfield(a, k) ==
		    *(const double *)cfield(b, k);
	case CONFIG_V_UINT:
	case CONFIG_V_MODE:
		return *(const unsigned *)cfield(a, k) ==
		    *(const unsigned *)cfield(b, k);
	case CONFIG_V_SIZE:
		return *(const size_t *)cfield(a, k) ==
		    *(const size_t *)cfield(b, k);
	case CONFIG_V_BOOL:
	default:
		return *(const bool *)cfield(a, k) ==
		    *(const bool *)cfield(b, k);
	}
}

void
config_init(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->log_level = LOG_LEVEL_INFO;
	c->upstream_timeout = CONFIG_DEF_UPSTREAM_TIMEOUT;
	c->poll_interval = CONFIG_DEF_POLL_INTERVAL;
	c->retry_backoff = CONFIG_DEF_RETRY_BACKOFF;
	c->max_retry_after = CONFIG_DEF_MAX_RETRY_AFTER;
	c->socket_mode = CONFIG_DEF_SOCKET_MODE;
	c->max_connections = CONFIG_DEF_MAX_CONNECTIONS;
	c->webhook_tolerance = CONFIG_DEF_WEBHOOK_TOLERANCE;
	c->webhook_max_body = CONFIG_DEF_WEBHOOK_MAX_BODY;
	c->audit_retention_days = CONFIG_DEF_AUDIT_RETENTION_DAYS;
	c->run_log_retention_days = CONFIG_DEF_RUN_LOG_RETENTION_DAYS;
	c->run_log_max_stored = CONFIG_DEF_RUN_LOG_MAX_STORED;
	c->webhook_retention_days = CONFIG_DEF_WEBHOOK_RETENTION_DAYS;
	c->webhook_max_stored = CONFIG_DEF_WEBHOOK_MAX_STORED;
}

void
config_done(struct config *c)
{
	if (c == NULL)
		return;
	for (int k = 0; k < CONFIG_NKEYS; k++)
		key_free(c, (enum config_key)k);
	config_init(c);
}

const char *
config_key_name(enum config_key k)
{
	return (unsigned)k < CONFIG_NKEYS ? config_keys[k].name : "?";
}

int
config_load(const char *path, bool must_exist, struct config *ret, char *err,
    size_t errlen)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd == -1) {
		r = -errno;
		if (r == -ENOENT && !must_exist) {
			config_init(ret);
			return 0;
		}
		(void)snprintf(err, errlen, "cannot open %s: %s", path,
		    strerror(-r));
		return r;
	}
	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out_errno;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		(void)snprintf(err, errlen, "%s is not a regular file", path);
		goto out_close;
	}
	if (st.st_size > (off_t)CONFIG_MAX_SIZE)
		goto out_big;
	buf = malloc(CONFIG_MAX_SIZE + 1);
	if (buf == NULL) {
		r = -ENOMEM;
		goto out_errno;
	}
	/* Read to EOF, not st_size: the file may change under us. */
	while ((n = read(fd, buf + len, CONFIG_MAX_SIZE + 1 - len)) != 0) {
		if (n < 0) {
			if (errno == EINTR)
				continue;
			r = -errno;
			goto out_errno;
		}
		len += (size_t)n;
		if (len > CONFIG_MAX_SIZE)
			goto out_big;
	}
	r = config_parse(buf, len, path, ret, err, errlen);
	if (r == 0)
		r = 1;
	goto out_close;

out_big:
	r = -EFBIG;
	(void)snprintf(err, errlen, "%s is larger than %zu bytes", path,
	    CONFIG_MAX_SIZE);
	goto out_close;
out_errno:
	(void)snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
out_close:
	if (buf != NULL) {
		/* It may hold webhook secrets. */
		explicit_bzero(buf, len);
		free(buf);
	}
	(void)close(fd);
	return r;
}

int
config_check_pairs(const struct config *c, enum config_key *ret_given,
    enum config_key *ret_missing)
{
	if ((c->webhook_tls_cert == NULL) != (c->webhook_tls_key == NULL)) {
		bool cert = c->webhook_tls_cert != NULL;

		*ret_given =
		    cert ? CONFIG_WEBHOOK_TLS_CERT : CONFIG_WEBHOOK_TLS_KEY;
		*ret_missing =
		    cert ? CONFIG_WEBHOOK_TLS_KEY : CONFIG_WEBHOOK_TLS_CERT;
		return -EINVAL;
	}
	return 0;
}

int
config_merge(struct config *dst, const struct config *src, char *err,
    size_t errlen)
{
	enum config_key given, missing;
	struct config tmp;
	int r;

	config_init(&tmp);
	tmp.set = dst->set | src->set;
	for (int k = 0; k < CONFIG_NKEYS; k++) {
		const struct config *from =
		    (src->set & CONFIG_BIT(k)) ? src : dst;

		if ((r = key_copy(&tmp, from, (enum config_key)k)) < 0) {
			(void)snprintf(err, errlen, "out of memory");
			goto out_free;
		}
	}
	if ((r = config_check_pairs(&tmp, &given, &missing)) < 0) {
		(void)snprintf(err, errlen, "%s needs %s as well",
		    config_keys[given].name, config_keys[missing].name);
		goto out_free;
	}
	config_done(dst);
	*dst = tmp;
	return 0;

out_free:
	config_done(&tmp);
	return r;
}

int
config_reload(const char *path, bool must_exist, const struct config *overrides,
    struct config *cur, char *err, size_t errlen)
{
	struct config next;
	int loaded, r;

	config_init(&next);
	loaded = config_load(path, must_exist, &next, err, errlen);
	if (loaded < 0)
		return loaded;
	if (overrides != NULL &&
	    (r = config_merge(&next, overrides, err, errlen)) < 0) {
		config_done(&next);
		return r;
	}
	config_done(cur);
	*cur = next;
	return loaded;
}

uint64_t
config_diff(const struct config *a, const struct config *b)
{
	uint64_t d = 0;

	for (int k = 0; k < CONFIG_NKEYS; k++)
		if (!key_eq(a, b, (enum config_key)k))
			d |= CONFIG_BIT(k);
	return d;
}

const char *
config_default_path(char *buf, size_t len)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	if (getuid() == 0)
		return CONFIG_DEFAULT_PATH;
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(buf, len, "%s/m8tes/m8tesd.conf", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(buf, len, "%s/.config/m8tes/m8tesd.conf", home);
	else
		return CONFIG_DEFAULT_PATH;
	if (n < 0 || (size_t)n >= len)
		return CONFIG_DEFAULT_PATH;
	return buf;
}

/*
 * SPDX-License-Identifier: MIT
 *
 * The configuration of m8tesd (m8tesd.conf(5)): text in, struct config out.
 * The file holds "key = value" lines, '#' comments, values optionally in
 * double quotes (with \" and \\ as the only escapes), [peer NAME]
 * sections that become the rules of the policy module, and [hook NAME]
 * sections that become the struct hook_defs of the hooks module. Every
 * command-line option of m8tesd has a key of the same name ('-' spelled
 * '_'), so the command line and the file go through the same checks: the
 * command line is parsed into a second struct config with config_set and
 * laid over the file's with config_merge.
 *
 * The module is pure: no logging (not even debug), no side effects besides
 * reading the one file config_load is asked to read. Resolving names (a
 * socket group, a peer's user name) and acting on values are the caller's.
 * Errors are -EINVAL with a one-line message "FILE:LINE: what is wrong" in
 * the caller's err buffer, -ENOMEM, or -errno from reading the file.
 */
#ifndef M8_CONFIG_H
#define M8_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "hooks.h"
#include "log.h"

#define CONFIG_DEFAULT_PATH "/etc/m8tes/m8tesd.conf"

/* Limits of the file and of what it may declare. */
#define CONFIG_MAX_SIZE ((size_t)1024 * 1024) /* bytes of one file */
#define CONFIG_MAX_LINE 8192                  /* bytes of one line */
#define CONFIG_MAX_PEERS 1024                 /* [peer] sections */
#define CONFIG_MAX_GLOBS 256       /* allow + deny patterns per section */
#define CONFIG_MAX_GLOB 128        /* bytes of one pattern */
#define CONFIG_MAX_SECRETS 16      /* webhook_secret lines */
#define CONFIG_MAX_SECRET 512      /* bytes of one webhook secret */
#define CONFIG_MAX_NAME 256        /* tenant, user and group names */
#define CONFIG_MAX_SECTION_NAME 64 /* NAME of [peer NAME], [hook NAME] */
#define CONFIG_MAX_HOOKS HOOKS_MAX /* [hook] sections */
#define CONFIG_MAX_TTLS 32         /* RESOURCE=SECONDS pairs of cache_ttl */
#define CONFIG_MAX_TTL_NAME 32     /* bytes of a resource name, + NUL */
#define CONFIG_MAX_TTL_S 604800    /* longest cache TTL: a week */

/* Defaults: the same as m8tesd's built-in ones. */
#define CONFIG_DEF_UPSTREAM_TIMEOUT 300.0 /* seconds */
#define CONFIG_DEF_POLL_INTERVAL 2.0      /* seconds */
#define CONFIG_DEF_RETRY_BACKOFF 0.5      /* seconds, doubled per retry */
#define CONFIG_DEF_MAX_RETRY_AFTER 60.0   /* seconds */
#define CONFIG_DEF_SOCKET_MODE 0660
#define CONFIG_DEF_MAX_CONNECTIONS 4096
#define CONFIG_DEF_WEBHOOK_TOLERANCE 300                  /* seconds; 0 = off */
#define CONFIG_DEF_WEBHOOK_MAX_BODY ((size_t)1024 * 1024) /* bytes */
#define CONFIG_DEF_AUDIT_RETENTION_DAYS 90 /* 0 = keep for ever */
#define CONFIG_DEF_RUN_LOG_RETENTION_DAYS 30 /* 0 = no age limit */
#define CONFIG_DEF_RUN_LOG_MAX_STORED 10000  /* finished runs' logs */
#define CONFIG_DEF_WEBHOOK_RETENTION_DAYS 30 /* 0 = no age limit */
#define CONFIG_DEF_WEBHOOK_MAX_STORED 1000000
#define CONFIG_DEF_HOOK_MAX_CONCURRENT 4   /* deliveries in flight */
#define CONFIG_DEF_HOOK_RETRIES 5          /* attempts after the first */
#define CONFIG_DEF_HOOK_TIMEOUT 30         /* seconds per attempt */

/*
 * Every key outside the sections, then CONFIG_PEERS and CONFIG_HOOKS, which
 * stand for all the [peer] and all the [hook] sections. New plain keys go
 * before CONFIG_PEERS: the parser takes the keys below it as plain ones.
 */
enum config_key {
	CONFIG_SOCKET,
	CONFIG_BASE_URL,
	CONFIG_API_KEY_FILE,
	CONFIG_STATE_DIR,
	CONFIG_CACHE_DIR,
	CONFIG_WEBHOOK_LISTEN,
	CONFIG_LOG_LEVEL,
	CONFIG_UPSTREAM_TIMEOUT,
	CONFIG_POLL_INTERVAL,
	CONFIG_RETRY_BACKOFF,
	CONFIG_MAX_RETRY_AFTER,
	CONFIG_SOCKET_MODE,
	CONFIG_SOCKET_GROUP,
	CONFIG_MAX_CONNECTIONS,
	CONFIG_MAX_CONNECTIONS_PER_UID,
	CONFIG_WEBHOOK_SECRET,
	CONFIG_WEBHOOK_SECRET_FILE,
	CONFIG_WEBHOOK_TOLERANCE,
	CONFIG_WEBHOOK_MAX_BODY,
	CONFIG_WEBHOOK_TLS_CERT,
	CONFIG_WEBHOOK_TLS_KEY,
	CONFIG_AUDIT_RETENTION_DAYS,
	CONFIG_DEFAULT_DENY,
	CONFIG_CACHE_MAX_BYTES,
	CONFIG_CACHE_MAX_FILE_BYTES,
	CONFIG_CACHE_TTL,
	CONFIG_RUN_LOG_RETENTION_DAYS,
	CONFIG_RUN_LOG_MAX_STORED,
	CONFIG_WEBHOOK_RETENTION_DAYS,
	CONFIG_WEBHOOK_MAX_STORED,
	CONFIG_PEERS,
	CONFIG_HOOKS,
	CONFIG_NKEYS
};

#define CONFIG_BIT(k) (UINT64_C(1) << (k))

/* How a [peer] section picks its peers. */
enum config_match {
	CONFIG_MATCH_UID,  /* match_uid = N: the peer's uid */
	CONFIG_MATCH_GID,  /* match_gid = N: the peer's (primary) gid */
	CONFIG_MATCH_USER, /* match_user = NAME: the user name of its uid */
};

/* One [peer NAME] section, in file order. */
struct config_peer {
	char *name;    /* NAME of the section */
	unsigned line; /* line of its header, for messages */
	enum config_match match;
	uid_t uid;    /* CONFIG_MATCH_UID */
	gid_t gid;    /* CONFIG_MATCH_GID */
	char *user;   /* CONFIG_MATCH_USER */
	char **allow; /* method globs; nallow == 0 means "*" */
	size_t nallow;
	char **deny; /* method globs; deny wins over allow */
	size_t ndeny;
	char *tenant;             /* forced user_id, or NULL */
	unsigned max_connections; /* per uid; 0 = no cap of its own */
	double rate;    /* requests per second per uid; 0 = no limit */
	unsigned burst; /* bucket size; set whenever rate is */
	bool admin;     /* may call admin methods */
};

/*
 * The whole configuration. Strings are owned (NULL = not given: the caller
 * picks its default, which may depend on the environment); numbers always
 * hold a usable value, the default unless given. set says which keys were
 * given, so a command line can be laid over a file (config_merge) and a
 * reload can tell what changed (config_diff).
 */
struct config {
	uint64_t set; /* CONFIG_BIT(key) of each key given */
	char *socket;
	char *base_url; /* http:// or https:// */
	char *api_key_file;
	char *state_dir;
	char *cache_dir;
	char *webhook_listen; /* "ADDRESS:PORT" */
	enum log_level log_level;
	double upstream_timeout;          /* seconds, 1 to 86400 */
	double poll_interval;             /* seconds, 0.01 to 3600 */
	double retry_backoff;             /* seconds, 0 to 60 */
	double max_retry_after;           /* seconds, 0 to 86400 */
	unsigned socket_mode;             /* permission bits, at most 0777 */
	char *socket_group;               /* group name or number, unresolved */
	unsigned max_connections;         /* in all */
	unsigned max_connections_per_uid; /* 0 = no cap besides the rules' */
	char **webhook_secrets;           /* secrets, wiped when freed */
	size_t nwebhook_secrets;
	char *webhook_secret_file;
	unsigned webhook_tolerance; /* seconds; 0 = off */
	size_t webhook_max_body;    /* bytes */
	char *webhook_tls_cert;     /* both or neither */
	char *webhook_tls_key;
	unsigned audit_retention_days; /* 0 = keep for ever */
	bool default_deny; /* refuse peers no [peer] section matches */
	size_t cache_max_bytes;      /* pages and objects; 0 = built-in */
	size_t cache_max_file_bytes; /* downloaded files; 0 = built-in */
	char *cache_ttl;             /* "agents=60 runs=5", see below */
	/* Retention in state.db; days 0 = no age limit. */
	unsigned run_log_retention_days; /* finished runs' event logs */
	unsigned run_log_max_stored;     /* newest finished runs kept */
	unsigned webhook_retention_days; /* received webhooks */
	unsigned webhook_max_stored;     /* newest webhooks kept */
	struct config_peer *peers;
	size_t npeers;
	struct hook_def *hooks; /* [hook NAME] sections, in file order; */
	size_t nhooks;          /* their strings are owned */
};

/* One pair of cache_ttl: a resource's TTL. */
struct config_ttl {
	char resource[CONFIG_MAX_TTL_NAME]; /* a-z, 0-9 and _ */
	unsigned ttl_ms;                    /* 0: stale at once */
};

/*
 * Parses a cache_ttl value: RESOURCE=SECONDS pairs separated by blanks or
 * commas ("agents=60, runs=2.5"), seconds from 0 to CONFIG_MAX_TTL_S.
 * Returns the number of pairs written to v (at most max; a later pair for
 * the same resource replaces an earlier one), -EINVAL for a bad value or
 * -E2BIG for more than max resources.
 */
int config_parse_ttls(const char *spec, struct config_ttl *v, size_t max);

/* Sets every field to its default; nothing is set. Cannot fail. */
void config_init(struct config *c);

/*
 * Frees what c owns (the [hook] sections' strings included), wiping the
 * webhook secrets, and leaves c as config_init does. Accepts NULL and a
 * config_init'ed struct.
 */
void config_done(struct config *c);

static inline bool
config_isset(const struct config *c, enum config_key k)
{
	return (c->set & CONFIG_BIT(k)) != 0;
}

/* The key's name as written in the file ("base_url"). */
const char *config_key_name(enum config_key k);

/*
 * Parses len bytes of text (need not be NUL-terminated) named filename in
 * messages (NULL: "config"). On success returns 0 and *ret, which the
 * caller releases with config_done; on failure returns -EINVAL (err says
 * "FILE:LINE: ...") or -ENOMEM, and *ret is not touched.
 */
int config_parse(const char *text, size_t len, const char *filename,
    struct config *ret, char *err, size_t errlen);

/*
 * Reads and parses the file at path (at most CONFIG_MAX_SIZE bytes).
 * Returns 1 and *ret when the file was read; 0 and a config_init'ed *ret
 * when it does not exist and must_exist is false; else -ENOENT, -EFBIG,
 * -EINVAL, -ENOMEM or another -errno with err set, *ret not touched.
 */
int config_load(const char *path, bool must_exist, struct config *ret,
    char *err, size_t errlen);

/*
 * Sets one key outside the sections from its text, with the checks
 * of the file: how the command line feeds a struct config. key may spell
 * '_' as '-' ("base-url"); messages name it as given, with no file or
 * line. webhook_secret appends; any other key replaces its value. Returns
 * 0, -EINVAL (unknown key or bad value; err says which) or -ENOMEM.
 */
int config_set(struct config *c, const char *key, const char *value, char *err,
    size_t errlen);

/*
 * Lays src over dst: every key set in src replaces dst's value (a list
 * key replaces the whole list; src's [peer] sections, when it has any,
 * replace dst's, and so do its [hook] sections). Then checks the keys that
 * go together. Returns 0, or -EINVAL / -ENOMEM with dst unchanged.
 */
int config_merge(struct config *dst, const struct config *src, char *err,
    size_t errlen);

/*
 * A reload: loads path as config_load does, lays overrides (the command
 * line; may be NULL) over it, and only when all of that worked frees *cur
 * and puts the result in its place. On any error *cur is left as it was,
 * so a bad file never costs the daemon its running configuration. On
 * success every pointer into the old *cur is gone, the strings of its
 * hooks included: a hooks object made from them (hooks_new borrows them)
 * must be rebuilt or given copies first. Returns config_load's 1 or 0, or
 * -errno with err set.
 */
int
config_reload(const char *path, bool must_exist, const struct config *overrides,
    struct config *cur, char *err, size_t errlen);

/*
 * The keys whose values differ between a and b, as CONFIG_BIT()s
 * (CONFIG_PEERS for any difference in the [peer] sections, CONFIG_HOOKS
 * for any in the [hook] sections: added, removed, reordered or changed),
 * so a reload can say which changes need a restart.
 */
uint64_t config_diff(const struct config *a, const struct config *b);

/*
 * The configuration file m8tesd reads without --config: /etc/m8tes/
 * m8tesd.conf for root, else $XDG_CONFIG_HOME/m8tes/m8tesd.conf or
 * ~/.config/m8tes/m8tesd.conf (written to buf). Falls back to the /etc
 * path when neither variable is usable or buf is too small.
 */
const char *config_default_path(char *buf, size_t len);

#endif

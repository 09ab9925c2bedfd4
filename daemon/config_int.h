/*
 * SPDX-License-Identifier: MIT
 *
 * Internals shared by config.c (whole configurations: defaults, copy,
 * merge, compare, load), config_parse.c (text: lines, plain keys, value
 * checks) and config_sections.c (the [peer] and [hook] sections). Not for
 * other modules: they use config.h.
 */
#ifndef M8_CONFIG_INT_H
#define M8_CONFIG_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/* What a key's value must look like, and the field type it fills. */
enum config_vtype {
	CONFIG_V_SOCKPATH, /* char *: a socket path that fits sun_path */
	CONFIG_V_PATH,     /* char *: a file or directory path */
	CONFIG_V_URL,      /* char *: http:// or https:// */
	CONFIG_V_LISTEN,   /* char *: ADDRESS:PORT */
	CONFIG_V_GROUP,    /* char *: a group name or number */
	CONFIG_V_TTLS,     /* char *: RESOURCE=SECONDS pairs */
	CONFIG_V_LEVEL,    /* enum log_level */
	CONFIG_V_SECONDS,  /* double, decimal seconds */
	CONFIG_V_UINT,     /* unsigned */
	CONFIG_V_SIZE,     /* size_t, with an optional K, M or G */
	CONFIG_V_MODE,     /* unsigned, octal permission bits */
	CONFIG_V_BOOL,     /* bool */
	CONFIG_V_SECRET,   /* the webhook_secrets list: appended, wiped */
	CONFIG_V_PEERS,    /* the [peer] sections (CONFIG_PEERS only) */
	CONFIG_V_HOOKS,    /* the [hook] sections (CONFIG_HOOKS only) */
};

/* One key outside the sections, or CONFIG_PEERS or CONFIG_HOOKS. */
struct config_keydef {
	const char *name;
	enum config_vtype type;
	size_t off;    /* of its field in struct config */
	double lo, hi; /* range of numbers; bytes for CONFIG_V_SIZE */
};

/* Keys below this are plain "key = value" ones; the rest are sections. */
#define CONFIG_NPLAIN CONFIG_PEERS

/* Indexed by enum config_key. */
extern const struct config_keydef config_keys[CONFIG_NKEYS];

/* The field of key k in c. */
void *config_field(struct config *c, enum config_key k);

/* Appends a copy of s to the list *v of *n strings: 0 or -ENOMEM. */
int config_list_push(char ***v, size_t *n, const char *s);

/*
 * The keys that only make sense together: returns 0, or -EINVAL with the
 * key given in *ret_given and the one missing in *ret_missing.
 */
int config_check_pairs(const struct config *c, enum config_key *ret_given,
    enum config_key *ret_missing);

/* ---- the parser: config_parse.c and config_sections.c ------------------ */

/* How much of a bad value a message repeats. */
#define CONFIG_SHOW "%.64s"

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

/* config_parse.c: messages and value checks. */

/*
 * Writes "FILE:LINE: " and the message to ps->err (no place when
 * ps->filename is NULL); returns -EINVAL.
 */
int pstate_fail(struct pstate *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Writes "out of memory" to ps->err; returns -ENOMEM. */
int pstate_nomem(struct pstate *ps);
/* The usual message: bad value "V" for KEY: WANT. Returns -EINVAL. */
int pstate_bad_value(struct pstate *ps, const char *shown, const char *v,
    const char *want);
/* True when s holds a control character (a tab is one unless tab_ok). */
bool config_has_ctl(const char *s, bool tab_ok);
/* Digits only, at most hi, into *ret: 0, -EINVAL or -ERANGE. */
int config_parse_uint(const char *s, unsigned long long hi,
    unsigned long long *ret);
/* Plain decimal ("12", "0.5") into *ret: 0 or -EINVAL. */
int config_parse_decimal(const char *s, double *ret);
/* true/yes/on/1 or false/no/off/0, any case, into *ret: 0 or -EINVAL. */
int config_parse_bool(const char *s, bool *ret);
/* A user or group name: printable, no blanks, ':' or '/', no leading '-'. */
bool config_valid_name(const char *s);
/* NULL when v is a good value of a text type t, else what is wanted. */
const char *config_check_text(enum config_vtype t, const char *v);

/* config_sections.c: the [peer NAME] and [hook NAME] sections. */

/* The names of the section keys, indexed by enum pkey and enum hkey. */
extern const char *const config_pkeys[PK_N];
extern const char *const config_hkeys[HK_N];

/* The [peer] or [hook] key called name, or -1. */
int config_find_pkey(const char *name);
int config_find_hkey(const char *name);

/*
 * "[peer NAME]" or "[hook NAME]" at p (just after the '['; changed in
 * place): closes the section being read and opens that one in c.
 * 0 or -errno, with the message in ps->err.
 */
int config_section_begin(struct pstate *ps, struct config *c, char *p);

/* Closes the section being read, if any, checking it is complete. */
int config_section_end(struct pstate *ps);

/*
 * name = v in the section being read: 0 or -errno when name is a key of
 * that section, 1 when it is not (or no section is being read).
 */
int config_section_key(struct pstate *ps, const char *name, char *v);

#endif

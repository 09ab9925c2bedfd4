/*
 * SPDX-License-Identifier: MIT
 *
 * Internals shared by config.c (whole configurations: defaults, copy,
 * merge, compare, load) and config_parse.c (text: lines, sections, value
 * checks). Not for other modules: they use config.h.
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

#endif

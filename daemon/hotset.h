/*
 * SPDX-License-Identifier: MIT
 *
 * The response cache's hot set: in-memory copies of the entries read or
 * written last, so that a repeated hit costs neither an SQLite statement
 * nor a copy out of the database. A direct-mapped table: a key has one
 * slot, picked by its hash, and a newer key in that slot replaces the
 * older one. Bounded in slots and bytes; an entry over HOTSET_MAX_ENTRY
 * bytes is never held. It holds copies of rows of cache.db and never
 * more: the cache drops a slot when it deletes the row, and the whole set
 * when it deletes more broadly (invalidation, clear, rebuild).
 *
 * Pure memory: no I/O, no logging. One thread only.
 */
#ifndef M8_HOTSET_H
#define M8_HOTSET_H

#include <stddef.h>
#include <stdint.h>

#define HOTSET_SLOTS 256
#define HOTSET_KEY_SIZE 65                          /* 64 hex digits + NUL */
#define HOTSET_MAX_ENTRY ((size_t)256 * 1024)       /* bytes of one body */
#define HOTSET_MAX_BYTES ((size_t)16 * 1024 * 1024) /* of all bodies */

/* One slot: a copy of a row of cache.db. */
struct hotset_entry {
	int64_t id; /* the row's id; 0: the slot is empty */
	char key[HOTSET_KEY_SIZE];
	int64_t stored_at, expires_at, used; /* ms, as in the row */
	char *body;                          /* owned, a NUL after len */
	size_t len;
};

struct hotset {
	struct hotset_entry slot[HOTSET_SLOTS];
	size_t bytes; /* sum of the bodies' lengths */
};

/* The entry of key (kid: its 63-bit id), or NULL. */
struct hotset_entry *
hotset_find(struct hotset *h, int64_t kid, const char *key);

/*
 * Puts a copy of row e in key's slot (kid: its id), replacing what was
 * there; e->body (e->len bytes) is taken: owned by the set on success,
 * still the caller's on failure. When the set would go over
 * HOTSET_MAX_BYTES it is emptied first. Returns 0 and the slot in *ret
 * (may be NULL); -EFBIG for a body over HOTSET_MAX_ENTRY; -EINVAL for a
 * key of the wrong length or an id of 0.
 */
int hotset_take(struct hotset *h, int64_t kid, struct hotset_entry *e,
    struct hotset_entry **ret);

/* Drops key's entry, if held. */
void hotset_drop_key(struct hotset *h, int64_t kid, const char *key);

/* Drops the entry of row id, if held (scans the slots). */
void hotset_drop_id(struct hotset *h, int64_t id);

/* Drops every entry. The set stays usable. */
void hotset_clear(struct hotset *h);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * A set of identifiers held as 128-bit BLAKE2b digests, each with the
 * int64 it maps to (a webhook's inbox seq). It stands in for a unique index
 * on random text, which costs a dirty page per insert: a lookup or an
 * insert here is a hash and a probe. Open addressing with linear probing
 * and backward-shift deletion; about 40 bytes a member. A collision of two
 * digests takes 2^64 members to become likely. Not thread-safe.
 */
#ifndef M8TESD_IDSET_H
#define M8TESD_IDSET_H

#include <stddef.h>
#include <stdint.h>

#define IDSET_DIGEST_SIZE 16
#define IDSET_MAX_MEMBERS (1u << 28) /* 268M: far past any retention */

struct idset;

struct idset_digest {
	uint8_t b[IDSET_DIGEST_SIZE];
};

int idset_new(struct idset **ret);
void idset_free(struct idset *s);

/* The digest of an identifier's bytes. */
void idset_digest(const char *id, size_t len, struct idset_digest *ret);

/* The value of d, or 0 if it is not a member (values must be > 0). */
int64_t idset_get(const struct idset *s, const struct idset_digest *d);
/* Adds d -> value (> 0) or replaces its value; 0, -ENOMEM or -E2BIG. */
int idset_put(struct idset *s, const struct idset_digest *d, int64_t value);
/* Removes d; 0, or -ENOENT if it was not a member. */
int idset_del(struct idset *s, const struct idset_digest *d);
/* Drops every member whose value is below min (rows pruned since). */
void idset_trim(struct idset *s, int64_t min);
size_t idset_count(const struct idset *s);

#endif

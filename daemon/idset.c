/*
 * SPDX-License-Identifier: MIT
 *
 * The digest set of idset.h. Slots hold the digest and the value; value 0
 * marks an empty slot. The table doubles past 3/4 full and starts at 1024
 * slots; the probe start is the digest's first 8 bytes, which BLAKE2b has
 * already spread evenly.
 */
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"

#define IDSET_MIN_SLOTS 1024u

struct slot {
	struct idset_digest d;
	int64_t value; /* 0: empty */
};

struct idset {
	struct slot *slots;
	size_t mask; /* slots - 1; the number of slots is a power of two */
	size_t count;
};

static size_t
home(const struct idset *s, const struct idset_digest *d)
{
	uint64_t h;

	memcpy(&h, d->b, sizeof(h));
	return (size_t)h & s->mask;
}

/* The slot of d, or the empty slot where it would go. */
static size_t
find(const struct idset *s, const struct idset_digest *d)
{
	size_t i = home(s, d);

	while (s->slots[i].value != 0 &&
	    memcmp(&s->slots[i].d, d, sizeof(*d)) != 0)
		i = (i + 1) & s->mask;
	return i;
}

/* Moves every member whose value is >= min into a table of nslots. */
static int
rehash(struct idset *s, size_t nslots, int64_t min)
{
	struct idset t = {.mask = nslots - 1};

	t.slots = calloc(nslots, sizeof(*t.slots));
	if (t.slots == NULL)
		return -ENOMEM;
	for (size_t i = 0; s->slots != NULL && i <= s->mask; i++) {
		const struct slot *o = &s->slots[i];

		if (o->value != 0 && o->value >= min) {
			t.slots[find(&t, &o->d)] = *o;
			t.count++;
		}
	}
	free(s->slots);
	*s = t;
	return 0;
}

int
idset_new(struct idset **ret)
{
	struct idset *s = calloc(1, sizeof(*s));

	if (s == NULL || rehash(s, IDSET_MIN_SLOTS, 1) < 0) {
		free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void
idset_free(struct idset *s)
{
	if (s == NULL)
		return;
	free(s->slots);
	free(s);
}

void
idset_digest(const char *id, size_t len, struct idset_digest *ret)
{
	(void)crypto_generichash(ret->b, sizeof(ret->b),
	    (const unsigned char *)id, len, NULL, 0);
}

int64_t
idset_get(const struct idset *s, const struct idset_digest *d)
{
	return s->slots[find(s, d)].value;
}

int
idset_put(struct idset *s, const struct idset_digest *d, int64_t value)
{
	size_t i;
	int r;

	if (value <= 0)
		return -EINVAL;
	i = find(s, d);
	if (s->slots[i].value == 0) {
		if (s->count >= IDSET_MAX_MEMBERS)
			return -E2BIG;
		if ((s->count + 1) * 4 > (s->mask + 1) * 3) {
			if ((r = rehash(s, (s->mask + 1) * 2, 1)) < 0)
				return r;
			i = find(s, d);
		}
		s->slots[i].d = *d;
		s->count++;
	}
	s->slots[i].value = value;
	return 0;
}

int
idset_del(struct idset *s, const struct idset_digest *d)
{
	size_t i = find(s, d), j = i;

	if (s->slots[i].value == 0)
		return -ENOENT;
	/*
	 * Backward shift: members after the hole that would not be found
	 * past it move into it, so that no probe run is ever broken.
	 */
	for (;;) {
		size_t k;

		s->slots[i].value = 0;
		for (;;) {
			j = (j + 1) & s->mask;
			if (s->slots[j].value == 0) {
				s->count--;
				return 0;
			}
			k = home(s, &s->slots[j].d);
			/* k cyclically in (i, j]: it stays where it is. */
			if (i <= j ? (i < k && k <= j) : (i < k || k <= j))
				continue;
			break;
		}
		s->slots[i] = s->slots[j];
		i = j;
	}
}

void
idset_trim(struct idset *s, int64_t min)
{
	size_t n = s->mask + 1;

	/* Shrink while a quarter full or less, never below the start. */
	while (n > IDSET_MIN_SLOTS && s->count * 4 <= n / 2)
		n /= 2;
	/* Out of memory: the stale members stay, which is only wasteful. */
	(void)rehash(s, n, min);
}

size_t
idset_count(const struct idset *s)
{
	return s->count;
}

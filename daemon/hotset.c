/*
 * SPDX-License-Identifier: MIT
 *
 * The hot set of the response cache: a direct-mapped table of copies of
 * cache.db rows (see hotset.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "hotset.h"

static struct hotset_entry *slot_of(struct hotset *h, int64_t kid);
static void slot_free(struct hotset *h, struct hotset_entry *s);

static struct hotset_entry *
slot_of(struct hotset *h, int64_t kid)
{
	return &h->slot[(uint64_t)kid % HOTSET_SLOTS];
}

static void
slot_free(struct hotset *h, struct hotset_entry *s)
{
	if (s->id == 0)
		return;
	h->bytes -= s->len;
	free(s->body);
	*s = (struct hotset_entry){0};
}

struct hotset_entry *
hotset_find(struct hotset *h, int64_t kid, const char *key)
{
	struct hotset_entry *s = slot_of(h, kid);

	if (s->id == 0 || strcmp(s->key, key) != 0)
		return NULL;
	return s;
}

int
hotset_take(struct hotset *h, int64_t kid, struct hotset_entry *e,
    struct hotset_entry **ret)
{
	struct hotset_entry *s = slot_of(h, kid);

	if (e->id == 0 || strlen(e->key) != HOTSET_KEY_SIZE - 1)
		return -EINVAL;
	if (e->len > HOTSET_MAX_ENTRY)
		return -EFBIG;
	slot_free(h, s);
	if (h->bytes + e->len > HOTSET_MAX_BYTES)
		hotset_clear(h);
	*s = *e;
	h->bytes += e->len;
	if (ret != NULL)
		*ret = s;
	return 0;
}

void
hotset_drop_key(struct hotset *h, int64_t kid, const char *key)
{
	struct hotset_entry *s = hotset_find(h, kid, key);

	if (s != NULL)
		slot_free(h, s);
}

void
hotset_drop_id(struct hotset *h, int64_t id)
{
	size_t i;

	for (i = 0; id != 0 && i < HOTSET_SLOTS; i++)
		if (h->slot[i].id == id)
			slot_free(h, &h->slot[i]);
}

void
hotset_clear(struct hotset *h)
{
	size_t i;

	for (i = 0; i < HOTSET_SLOTS; i++)
		slot_free(h, &h->slot[i]);
	h->bytes = 0;
}

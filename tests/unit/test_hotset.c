/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for hotset.c: one slot per key, replacing, dropping by key and
 * by row id, the entry and byte limits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotset.h"
#include "t.h"

/* An entry for key number n (64 hex digits) and a body of len bytes. */
static struct hotset_entry
entry(int n, int64_t id, size_t len)
{
	struct hotset_entry e = {.id = id, .len = len};

	(void)snprintf(e.key, sizeof(e.key), "%064x", n);
	e.body = malloc(len + 1);
	if (e.body != NULL) {
		memset(e.body, 'a' + n % 26, len);
		e.body[len] = '\0';
	}
	return e;
}

TEST(find_take_drop)
{
	struct hotset h = {0};
	struct hotset_entry e = entry(1, 10, 5), *s = NULL;
	char first[HOTSET_KEY_SIZE], other[HOTSET_KEY_SIZE];

	ASSERT(e.body != NULL);
	ASSERT(hotset_find(&h, 1, e.key) == NULL);
	ASSERT_EQ(hotset_take(&h, 1, &e, &s), 0);
	ASSERT(s != NULL && s->body == e.body && s->id == 10);
	ASSERT(hotset_find(&h, 1, e.key) == s);
	ASSERT_EQ(h.bytes, 5);
	memcpy(first, e.key, sizeof(first));
	/* Same slot, another key: not found; then it replaces the first. */
	(void)snprintf(other, sizeof(other), "%064x", 2);
	ASSERT(hotset_find(&h, 1 + HOTSET_SLOTS, other) == NULL);
	e = entry(2, 11, 7);
	ASSERT_EQ(hotset_take(&h, 1 + HOTSET_SLOTS, &e, NULL), 0);
	ASSERT(hotset_find(&h, 1, first) == NULL);
	ASSERT_STREQ(hotset_find(&h, 1 + HOTSET_SLOTS, other)->key, other);
	ASSERT_EQ(h.bytes, 7);
	hotset_drop_key(&h, 1 + HOTSET_SLOTS, other);
	ASSERT(hotset_find(&h, 1 + HOTSET_SLOTS, other) == NULL);
	ASSERT_EQ(h.bytes, 0);
	/* By row id. */
	e = entry(3, 12, 3);
	ASSERT_EQ(hotset_take(&h, 3, &e, NULL), 0);
	hotset_drop_id(&h, 99);
	ASSERT_EQ(h.bytes, 3);
	hotset_drop_id(&h, 12);
	ASSERT_EQ(h.bytes, 0);
	hotset_clear(&h);
}

TEST(limits)
{
	struct hotset h = {0};
	struct hotset_entry e;
	size_t i, per = HOTSET_MAX_ENTRY;

	e = entry(1, 1, HOTSET_MAX_ENTRY + 1);
	ASSERT_EQ(hotset_take(&h, 1, &e, NULL), -EFBIG);
	free(e.body); /* still the caller's */
	e = entry(1, 0, 1);
	ASSERT_EQ(hotset_take(&h, 1, &e, NULL), -EINVAL);
	free(e.body);
	/* Over the byte cap, the set starts over: never above it. */
	for (i = 0; i < 2 * HOTSET_MAX_BYTES / per; i++) {
		e = entry((int)i, (int64_t)i + 1, per);
		ASSERT_EQ(hotset_take(&h, (int64_t)i, &e, NULL), 0);
		ASSERT(h.bytes <= HOTSET_MAX_BYTES);
	}
	ASSERT(h.bytes > 0);
	hotset_clear(&h);
	ASSERT_EQ(h.bytes, 0);
	for (i = 0; i < HOTSET_SLOTS; i++)
		ASSERT(h.slot[i].id == 0 && h.slot[i].body == NULL);
}

int
main(void)
{
	RUN(find_take_drop);
	RUN(limits);
	return t_done();
}

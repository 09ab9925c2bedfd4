/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "idset.h"
#include "t.h"

static void
digest_of(unsigned n, struct idset_digest *d)
{
	char id[32];
	int len = snprintf(id, sizeof(id), "msg_%u", n);

	idset_digest(id, (size_t)len, d);
}

TEST(put_get_replace)
{
	struct idset *s;
	struct idset_digest a, b;

	ASSERT_OK(idset_new(&s));
	idset_digest("msg_a", 5, &a);
	idset_digest("msg_b", 5, &b);
	ASSERT(memcmp(&a, &b, sizeof(a)) != 0);
	ASSERT_EQ(idset_get(s, &a), 0);
	ASSERT_OK(idset_put(s, &a, 7));
	ASSERT_EQ(idset_get(s, &a), 7);
	ASSERT_EQ(idset_get(s, &b), 0);
	ASSERT_OK(idset_put(s, &a, 9));
	ASSERT_EQ(idset_get(s, &a), 9);
	ASSERT_EQ(idset_count(s), 1);
	ASSERT_EQ(idset_put(s, &b, 0), -EINVAL);
	ASSERT_EQ(idset_put(s, &b, -1), -EINVAL);
	ASSERT_EQ(idset_del(s, &b), -ENOENT);
	ASSERT_OK(idset_del(s, &a));
	ASSERT_EQ(idset_get(s, &a), 0);
	ASSERT_EQ(idset_count(s), 0);
	idset_free(s);
	idset_free(NULL);
}

/* Against a plain array, through growth, deletions and trims. */
TEST(model)
{
	enum { N = 60000 };
	static int64_t want[N];
	struct idset *s;
	struct idset_digest d;
	unsigned seed = 12345;
	size_t live = 0;

	ASSERT_OK(idset_new(&s));
	memset(want, 0, sizeof(want));
	for (int round = 0; round < 200000; round++) {
		unsigned n;

		seed = seed * 1103515245u + 12345u;
		n = (seed >> 8) % N;
		digest_of(n, &d);
		if ((seed >> 4) % 4 == 0) {
			ASSERT_EQ(idset_del(s, &d), want[n] != 0 ? 0 : -ENOENT);
			live -= want[n] != 0;
			want[n] = 0;
		} else {
			ASSERT_OK(idset_put(s, &d, round + 1));
			live += want[n] == 0;
			want[n] = round + 1;
		}
	}
	ASSERT_EQ(idset_count(s), live);
	for (unsigned n = 0; n < N; n++) {
		digest_of(n, &d);
		ASSERT_EQ(idset_get(s, &d), want[n]);
	}
	/* Trim: every member below the cut goes, the others stay. */
	idset_trim(s, 150000);
	live = 0;
	for (unsigned n = 0; n < N; n++) {
		int64_t w = want[n] >= 150000 ? want[n] : 0;

		digest_of(n, &d);
		ASSERT_EQ(idset_get(s, &d), w);
		live += w != 0;
	}
	ASSERT_EQ(idset_count(s), live);
	/* Trimming everything shrinks the table and leaves it usable. */
	idset_trim(s, INT64_MAX);
	ASSERT_EQ(idset_count(s), 0);
	digest_of(1, &d);
	ASSERT_OK(idset_put(s, &d, 5));
	ASSERT_EQ(idset_get(s, &d), 5);
	idset_free(s);
}

int
main(void)
{
	if (sodium_init() < 0)
		return 1;
	RUN(put_get_replace);
	RUN(model);
	return t_done();
}

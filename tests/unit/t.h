/*
 * SPDX-License-Identifier: MIT
 *
 * A tiny unit-test harness: TEST(name) defines a case, RUN(name) runs it,
 * ASSERT_* print both values on failure and fail the case; t_done() prints
 * "N passed, N failed" and returns the exit status.
 */
#ifndef M8_T_H
#define M8_T_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int t_passed, t_failed, t_cur_failed;

#define TEST(name) static void test_##name(void)

#define RUN(name)                                                              \
	do {                                                                   \
		t_cur_failed = 0;                                              \
		test_##name();                                                 \
		if (t_cur_failed) {                                            \
			t_failed++;                                            \
			printf("FAIL %s\n", #name);                            \
		} else {                                                       \
			t_passed++;                                            \
			printf("ok   %s\n", #name);                            \
		}                                                              \
	} while (0)

#define T_FAIL(...)                                                            \
	do {                                                                   \
		printf("  %s:%d: ", __FILE__, __LINE__);                       \
		printf(__VA_ARGS__);                                           \
		printf("\n");                                                  \
		t_cur_failed = 1;                                              \
		return;                                                        \
	} while (0)

#define ASSERT(c)                                                              \
	do {                                                                   \
		if (!(c))                                                      \
			T_FAIL("assertion failed: %s", #c);                    \
	} while (0)

#define ASSERT_OK(e)                                                           \
	do {                                                                   \
		long long t_r_ = (long long)(e);                               \
		if (t_r_ < 0)                                                  \
			T_FAIL("%s = %lld, want >= 0", #e, t_r_);              \
	} while (0)

#define ASSERT_EQ(a, b)                                                        \
	do {                                                                   \
		long long t_a_ = (long long)(a), t_b_ = (long long)(b);        \
		if (t_a_ != t_b_)                                              \
			T_FAIL("%s = %lld, want %lld", #a, t_a_, t_b_);        \
	} while (0)

#define ASSERT_STREQ(a, b)                                                     \
	do {                                                                   \
		const char *t_a_ = (a), *t_b_ = (b);                           \
		if (t_a_ == NULL || t_b_ == NULL || strcmp(t_a_, t_b_) != 0)   \
			T_FAIL("%s = \"%s\", want \"%s\"", #a,                 \
			    t_a_ ? t_a_ : "(null)", t_b_ ? t_b_ : "(null)");   \
	} while (0)

#define ASSERT_MEMEQ(a, alen, b, blen)                                         \
	do {                                                                   \
		size_t t_al_ = (alen), t_bl_ = (blen);                         \
		if (t_al_ != t_bl_ || memcmp((a), (b), t_al_) != 0)            \
			T_FAIL("%s (%zu bytes) = \"%.*s\", want \"%.*s\"", #a, \
			    t_al_, (int)t_al_, (const char *)(a), (int)t_bl_,  \
			    (const char *)(b));                                \
	} while (0)

static inline int
t_done(void)
{
	printf("%d passed, %d failed\n", t_passed, t_failed);
	return t_failed == 0 ? 0 : 1;
}

#endif

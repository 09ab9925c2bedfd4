/*
 * SPDX-License-Identifier: MIT
 *
 * Unit tests for sig: the two upstream-api.md section 9.2 vectors for both
 * signing and verifying, tampering, secret rotation sets, the freshness
 * window, secrets unsealed for a run of verifications, malformed and
 * missing headers, the API key holder and the random/hash helpers.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "sig.h"
#include "t.h"

#define V1_SECRET "whsec_test_secret_123"
#define V1_ID "msg_abc"
#define V1_TS "1700000000"
#define V1_BODY "{\"event\":\"run.completed\",\"run_id\":42}"
#define V1_SIG                                                                 \
	"v1=b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6"

#define V2_SECRET "whsec_empty"
#define V2_ID "msg_5"
#define V2_SIG                                                                 \
	"v1=b90542c8751515c38eca2f61b914689089954e09c25ec9b451ba214f123f624e"

#define V1_NOW ((int64_t)1700000000)
#define TOL 300u

static enum sig_result
verify1(const char *id, const char *ts, const char *sig, const char *body,
    struct sig_secret *const *secrets, size_t n, uint32_t tol, int64_t now)
{
	return sig_verify(id, ts, sig, body, body ? strlen(body) : 0, secrets,
	    n, tol, now);
}

TEST(sign_vectors)
{
	char out[SIG_SIGNATURE_SIZE];

	sig_sign(V1_SECRET, V1_ID, V1_TS, V1_BODY, strlen(V1_BODY), out);
	ASSERT_STREQ(out, V1_SIG);
	sig_sign(V2_SECRET, V2_ID, V1_TS, NULL, 0, out);
	ASSERT_STREQ(out, V2_SIG);
	sig_sign(V2_SECRET, V2_ID, V1_TS, "", 0, out);
	ASSERT_STREQ(out, V2_SIG);
	ASSERT_EQ(strlen(out), SIG_SIGNATURE_LEN);
}

TEST(verify_vectors)
{
	struct sig_secret *s1 = sig_secret_new(V1_SECRET, strlen(V1_SECRET));
	struct sig_secret *s2 = sig_secret_new(V2_SECRET, strlen(V2_SECRET));

	ASSERT(s1 != NULL && s2 != NULL);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_OK);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s1, 1, TOL, V1_NOW),
	    SIG_OK);
	ASSERT_EQ(
	    sig_verify(V2_ID, V1_TS, V2_SIG, NULL, 0, &s2, 1, TOL, V1_NOW),
	    SIG_OK);
	/* The same secret works again: it was locked and unlocked cleanly. */
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_OK);
	sig_secret_free(s1);
	sig_secret_free(s2);
}

TEST(tampering)
{
	struct sig_secret *s1 = sig_secret_new(V1_SECRET, strlen(V1_SECRET));
	struct sig_secret *wrong = sig_secret_new("whsec_other", 11);
	/* Same bytes with a different length must not verify either. */
	struct sig_secret *prefix = sig_secret_new(V1_SECRET, 6);
	const char *body2 = "{\"event\":\"run.completed\",\"run_id\":43}";
	char sig[SIG_SIGNATURE_SIZE];

	ASSERT(s1 != NULL && wrong != NULL && prefix != NULL);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, body2, &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	/* A trailing newline added by a proxy breaks the signature. */
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY "\n", &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	ASSERT_EQ(verify1("msg_abd", V1_TS, V1_SIG, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	ASSERT_EQ(
	    verify1(V1_ID, "1700000001", V1_SIG, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	/* Leading zero: same number, different bytes as received. */
	ASSERT_EQ(
	    verify1(V1_ID, "01700000000", V1_SIG, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &wrong, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &prefix, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	/* One flipped hex digit of the MAC. */
	memcpy(sig, V1_SIG, sizeof(sig));
	sig[SIG_SIGNATURE_LEN - 1] =
	    sig[SIG_SIGNATURE_LEN - 1] == '6' ? '7' : '6';
	ASSERT_EQ(verify1(V1_ID, V1_TS, sig, V1_BODY, &s1, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	sig_secret_free(s1);
	sig_secret_free(wrong);
	sig_secret_free(prefix);
}

TEST(binary_body_and_long_secret)
{
	static const unsigned char body[] = {0x00, 0xff, 0xfe, '.', 0x00, 0x80,
	    '\n'};
	char long_secret[201];
	char sig[SIG_SIGNATURE_SIZE];
	struct sig_secret *s;

	/* Longer than the SHA-256 block: HMAC hashes the key first. */
	memset(long_secret, 'k', sizeof(long_secret) - 1);
	long_secret[sizeof(long_secret) - 1] = '\0';
	sig_sign(long_secret, "id", "5", body, sizeof(body), sig);
	s = sig_secret_new(long_secret, strlen(long_secret));
	ASSERT(s != NULL);
	ASSERT_EQ(
	    sig_verify("id", "5", sig, body, sizeof(body), &s, 1, 0, V1_NOW),
	    SIG_OK);
	/* A NUL byte in the body is data, not a terminator. */
	ASSERT_EQ(sig_verify("id", "5", sig, body, 1, &s, 1, 0, V1_NOW),
	    SIG_BAD_SIGNATURE);
	sig_secret_free(s);

	/* An empty secret is a valid (if foolish) HMAC key. */
	sig_sign("", "id", "5", body, sizeof(body), sig);
	s = sig_secret_new("", 0);
	ASSERT(s != NULL);
	ASSERT_EQ(
	    sig_verify("id", "5", sig, body, sizeof(body), &s, 1, 0, V1_NOW),
	    SIG_OK);
	sig_secret_free(s);
}

TEST(rotation_sets)
{
	struct sig_secret *set[3];

	set[0] = sig_secret_new("whsec_old", 9);
	set[1] = NULL;
	set[2] = sig_secret_new(V1_SECRET, strlen(V1_SECRET));
	ASSERT(set[0] != NULL && set[2] != NULL);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 3, TOL, V1_NOW),
	    SIG_OK);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 2, TOL, V1_NOW),
	    SIG_BAD_SIGNATURE);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, NULL, 0, TOL, V1_NOW),
	    SIG_BAD_SIGNATURE);

	/* Valid up to and including not_after, refused after it. */
	sig_secret_set_not_after(set[2], V1_NOW);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 3, TOL, V1_NOW),
	    SIG_OK);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 3, TOL, V1_NOW + 1),
	    SIG_BAD_SIGNATURE);
	sig_secret_set_not_after(set[2], 0);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 3, 0, V1_NOW + 86400),
	    SIG_OK);
	sig_secret_free(set[0]);
	sig_secret_free(set[2]);
}

/* Unsealed for a run of verifications, sealed again: same answers. */
TEST(unseal_for_a_run)
{
	struct sig_secret *set[2];

	set[0] = sig_secret_new("whsec_other", 11);
	set[1] = sig_secret_new(V1_SECRET, strlen(V1_SECRET));
	ASSERT(set[0] != NULL && set[1] != NULL);
	for (int i = 0; i < 2; i++) {
		sig_secret_unseal(set[i]);
		sig_secret_unseal(set[i]); /* idempotent */
	}
	for (int k = 0; k < 3; k++) {
		ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 2, TOL,
			      V1_NOW),
		    SIG_OK);
		ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, "{}", set, 2, TOL,
			      V1_NOW),
		    SIG_BAD_SIGNATURE);
	}
	for (int i = 0; i < 2; i++) {
		sig_secret_seal(set[i]);
		sig_secret_seal(set[i]);
	}
	sig_secret_seal(NULL);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, set, 2, TOL, V1_NOW),
	    SIG_OK);
	/* Freed while unsealed is fine too. */
	sig_secret_unseal(set[1]);
	sig_secret_free(set[0]);
	sig_secret_free(set[1]);
}

TEST(freshness)
{
	struct sig_secret *s = sig_secret_new(V1_SECRET, strlen(V1_SECRET));

	ASSERT(s != NULL);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, V1_NOW + 300),
	    SIG_OK);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, V1_NOW + 301),
	    SIG_STALE);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, V1_NOW - 300),
	    SIG_OK);
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, V1_NOW - 301),
	    SIG_FUTURE);
	/* Freshness is decided before the MAC: a stale forgery is stale. */
	ASSERT_EQ(
	    verify1(V1_ID, V1_TS, V1_SIG, "forged", &s, 1, TOL, V1_NOW + 1000),
	    SIG_STALE);
	/* Tolerance 0 accepts any age, either way. */
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, 0,
	              V1_NOW + 10LL * 365 * 86400),
	    SIG_OK);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, 0, 0), SIG_OK);
	/* Extreme clocks do not overflow. */
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, INT64_MIN),
	    SIG_FUTURE);
	ASSERT_EQ(verify1(V1_ID, V1_TS, V1_SIG, V1_BODY, &s, 1, TOL, INT64_MAX),
	    SIG_STALE);
	ASSERT_EQ(verify1(V1_ID, "999999999999999999", V1_SIG, V1_BODY, &s, 1,
	              UINT32_MAX, INT64_MIN),
	    SIG_FUTURE);
	sig_secret_free(s);
}

TEST(malformed)
{
	static const char *const bad_sigs[] = {
	    /* uppercase hex */
	    "v1="
	    "B70279B624690A8169F069E5943E580B510E8CA616C0CE5FAD0246FBC90322B6",
	    /* no prefix */
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    /* other schemes */
	    "v2="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    "v1,"
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    "V1="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    /* spaces anywhere: no trimming */
	    " v1="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    "v1="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6 ",
	    "v1= "
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b",
	    /* wrong length */
	    "v1="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b",
	    "v1="
	    "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b66",
	    "v1=",
	    "v1",
	    /* several signatures are not supported */
	    ("v1="
	     "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6 "
	     "v1="
	     "b70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b"
	     "6"),
	    /* non-hex */
	    "v1="
	    "g70279b624690a8169f069e5943e580b510e8ca616c0ce5fad0246fbc90322b6",
	    /* base64 of the MAC */
	    "v1=twJ5tiRpCoFp8GnllD5YC1EOjKYWwM5frQJG+8kDIrY=",
	};
	static const char *const bad_ts[] = {"17e8", "-1", "+1700000000",
	    " 1700000000", "1700000000 ", "1_700_000_000", "0x6553f100",
	    "1700000000.5", "1234567890123456789"};
	struct sig_secret *s = sig_secret_new(V1_SECRET, strlen(V1_SECRET));
	size_t i;

	ASSERT(s != NULL);
	for (i = 0; i < sizeof(bad_sigs) / sizeof(bad_sigs[0]); i++) {
		enum sig_result r = verify1(V1_ID, V1_TS, bad_sigs[i], V1_BODY,
		    &s, 1, 0, V1_NOW);

		if (r != SIG_MALFORMED)
			T_FAIL("signature \"%s\": %s, want malformed",
			    bad_sigs[i], sig_result_str(r));
	}
	for (i = 0; i < sizeof(bad_ts) / sizeof(bad_ts[0]); i++) {
		/* Non-numeric is malformed even with the window off. */
		enum sig_result r = verify1(V1_ID, bad_ts[i], V1_SIG, V1_BODY,
		    &s, 1, 0, V1_NOW);

		if (r != SIG_MALFORMED)
			T_FAIL("timestamp \"%s\": %s, want malformed",
			    bad_ts[i], sig_result_str(r));
	}
	sig_secret_free(s);
}

TEST(missing)
{
	struct sig_secret *s = sig_secret_new(V1_SECRET, strlen(V1_SECRET));

	ASSERT(s != NULL);
	ASSERT_EQ(verify1(NULL, V1_TS, V1_SIG, V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	ASSERT_EQ(verify1("", V1_TS, V1_SIG, V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	ASSERT_EQ(verify1(V1_ID, NULL, V1_SIG, V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	ASSERT_EQ(verify1(V1_ID, "", V1_SIG, V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	ASSERT_EQ(verify1(V1_ID, V1_TS, NULL, V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	ASSERT_EQ(verify1(V1_ID, V1_TS, "", V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	/* Missing wins over malformed. */
	ASSERT_EQ(verify1(NULL, "abc", "v1=zz", V1_BODY, &s, 1, 0, V1_NOW),
	    SIG_MISSING_HEADER);
	sig_secret_free(s);
	sig_secret_free(NULL);
}

TEST(result_names)
{
	ASSERT_STREQ(sig_result_str(SIG_OK), "ok");
	ASSERT_STREQ(sig_result_str(SIG_MISSING_HEADER), "missing_header");
	ASSERT_STREQ(sig_result_str(SIG_MALFORMED), "malformed");
	ASSERT_STREQ(sig_result_str(SIG_STALE), "stale");
	ASSERT_STREQ(sig_result_str(SIG_FUTURE), "future");
	ASSERT_STREQ(sig_result_str(SIG_BAD_SIGNATURE), "bad_signature");
}

TEST(key_holder)
{
	struct sig_key *k = sig_key_new();
	char fp[SIG_FINGERPRINT_SIZE], fp2[SIG_FINGERPRINT_SIZE];
	char hex[SIG_SHA256_HEX_SIZE];

	ASSERT(k != NULL);
	ASSERT(!sig_key_isset(k));
	ASSERT(sig_key_get(k) == NULL);
	ASSERT_EQ(sig_key_fingerprint(k, fp), -ENOKEY);

	ASSERT_EQ(sig_key_set(k, "sk_test_123", 11), 0);
	ASSERT(sig_key_isset(k));
	ASSERT_STREQ(sig_key_get(k), "sk_test_123");
	ASSERT_EQ(sig_key_fingerprint(k, fp), 0);
	sig_sha256_hex("sk_test_123", 11, hex);
	ASSERT_EQ(strlen(fp), SIG_FINGERPRINT_LEN);
	ASSERT(strncmp(fp, hex, SIG_FINGERPRINT_LEN) == 0);
	ASSERT(strstr(fp, "sk_") == NULL);

	/* Only len bytes are taken. */
	ASSERT_EQ(sig_key_set(k, "sk_live_456XXXX", 11), 0);
	ASSERT_STREQ(sig_key_get(k), "sk_live_456");
	ASSERT_EQ(sig_key_fingerprint(k, fp2), 0);
	ASSERT(strcmp(fp, fp2) != 0);
	sig_sha256_hex("sk_live_456", 11, hex);
	ASSERT(strncmp(fp2, hex, SIG_FINGERPRINT_LEN) == 0);

	/* Refused values leave the current key in place. */
	ASSERT_EQ(sig_key_set(k, "sk\r\nX-Evil: 1", 13), -EINVAL);
	ASSERT_EQ(sig_key_set(k, "sk test", 7), -EINVAL);
	ASSERT_EQ(sig_key_set(k, "sk\0x", 4), -EINVAL);
	ASSERT_EQ(sig_key_set(k, "", 0), -EINVAL);
	ASSERT_STREQ(sig_key_get(k), "sk_live_456");

	sig_key_clear(k);
	ASSERT(!sig_key_isset(k));
	ASSERT(sig_key_get(k) == NULL);
	ASSERT_EQ(sig_key_fingerprint(k, fp), -ENOKEY);
	ASSERT_EQ(sig_key_set(k, "sk_again", 8), 0);
	sig_key_free(k);
	sig_key_free(NULL);
}

TEST(sha256)
{
	char hex[SIG_SHA256_HEX_SIZE];

	sig_sha256_hex("abc", 3, hex);
	ASSERT_STREQ(hex,
	    "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad");
	sig_sha256_hex(NULL, 0, hex);
	ASSERT_STREQ(hex,
	    "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855");
}

TEST(uuid)
{
	char a[SIG_UUID_SIZE], b[SIG_UUID_SIZE];
	int n;
	size_t i;

	for (n = 0; n < 64; n++) {
		sig_random_uuid(a);
		ASSERT_EQ(strlen(a), 36);
		for (i = 0; i < 36; i++) {
			if (i == 8 || i == 13 || i == 18 || i == 23) {
				ASSERT_EQ(a[i], '-');
				continue;
			}
			ASSERT(isxdigit((unsigned char)a[i]));
			ASSERT(!isupper((unsigned char)a[i]));
		}
		ASSERT_EQ(a[14], '4');
		ASSERT(strchr("89ab", a[19]) != NULL);
	}
	sig_random_uuid(b);
	ASSERT(strcmp(a, b) != 0);
}

int
main(void)
{
	if (sig_init() != 0) {
		printf("sig_init failed\n");
		return 1;
	}
	RUN(sign_vectors);
	RUN(verify_vectors);
	RUN(tampering);
	RUN(binary_body_and_long_secret);
	RUN(rotation_sets);
	RUN(unseal_for_a_run);
	RUN(freshness);
	RUN(malformed);
	RUN(missing);
	RUN(result_names);
	RUN(key_holder);
	RUN(sha256);
	RUN(uuid);
	return t_done();
}

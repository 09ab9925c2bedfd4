/*
 * SPDX-License-Identifier: MIT
 *
 * Webhook signatures and secret memory on libsodium (the only sodium.h
 * user). Verification follows upstream-api.md section 9.2 to the byte: the
 * MAC is HMAC-SHA256 keyed with the secret's raw bytes (libsodium's
 * init/update/final API, since secrets are not 32 bytes) over id "." ts "."
 * body, streamed without building the message; the header must be exactly
 * "v1=" + 64 lowercase hex, which is decoded and compared with
 * crypto_verify_32, never a plain byte compare. Webhook secrets sit in
 * sodium_malloc memory, already keyed into an HMAC state, that is PROT_NONE
 * except during the HMAC, or while the caller holds them unsealed for a
 * run of verifications; the API key sits in read-only sodium_malloc memory
 * because callers borrow it to build the Authorization header. sodium_free
 * wipes both.
 */
#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "sig.h"

#define SIG_PREFIX "v1="
#define SIG_PREFIX_LEN 3
#define SIG_MAC_LEN 32       /* crypto_auth_hmacsha256_BYTES */
#define SIG_TS_MAX_DIGITS 18 /* fits int64_t without overflow checks */

/*
 * A secret is kept as the HMAC state right after keying (the key's inner
 * and outer pads absorbed): as secret as the key, and each verification
 * starts from a copy of it instead of hashing the key again.
 */
struct sig_secret {
	crypto_auth_hmacsha256_state *keyed; /* sodium_malloc */
	int64_t not_after;                   /* 0 = no expiry */
	bool open; /* readable; else PROT_NONE (sealed) */
};

struct sig_key {
	char *s; /* sodium_malloc, read-only, NUL-terminated; NULL = unset */
	size_t len;
	char fp[SIG_FINGERPRINT_SIZE];
};

static int parse_timestamp(const char *ts, int64_t *ret);
static int hexval(char c);
static int parse_signature(const char *sig, unsigned char mac[SIG_MAC_LEN]);
static void
hmac(const crypto_auth_hmacsha256_state *keyed, const char *id, const char *ts,
    const void *body, size_t len, unsigned char mac[SIG_MAC_LEN]);
static int
secret_matches(struct sig_secret *secret, const char *id, const char *ts,
    const void *body, size_t len, const unsigned char mac[SIG_MAC_LEN]);

int
sig_init(void)
{
	/* 0 = initialised now, 1 = already initialised, -1 = failure. */
	if (sodium_init() < 0)
		return -EIO;
	return 0;
}

const char *
sig_result_str(enum sig_result r)
{
	switch (r) {
	case SIG_OK:
		return "ok";
	case SIG_MISSING_HEADER:
		return "missing_header";
	case SIG_MALFORMED:
		return "malformed";
	case SIG_STALE:
		return "stale";
	case SIG_FUTURE:
		return "future";
	case SIG_BAD_SIGNATURE:
		return "bad_signature";
	}
	return "unknown";
}

struct sig_secret *
sig_secret_new(const char *s, size_t len)
{
	struct sig_secret *secret;

	assert(s != NULL || len == 0);
	if (sig_init() < 0)
		return NULL;
	secret = calloc(1, sizeof(*secret));
	if (secret == NULL)
		return NULL;
	secret->keyed = sodium_malloc(sizeof(*secret->keyed));
	if (secret->keyed == NULL) {
		free(secret);
		return NULL;
	}
	/* Keys of any length, 0 included, are used as they are. */
	(void)crypto_auth_hmacsha256_init(secret->keyed,
	    (const unsigned char *)(len > 0 ? s : ""), len);
	/* Failure only leaves the page readable; still guarded and wiped. */
	(void)sodium_mprotect_noaccess(secret->keyed);
	return secret;
}

void
sig_secret_free(struct sig_secret *secret)
{
	if (secret == NULL)
		return;
	sodium_free(secret->keyed); /* makes it writable, wipes, unmaps */
	free(secret);
}

void
sig_secret_unseal(struct sig_secret *secret)
{
	assert(secret != NULL);
	if (!secret->open && sodium_mprotect_readonly(secret->keyed) == 0)
		secret->open = true;
}

void
sig_secret_seal(struct sig_secret *secret)
{
	if (secret == NULL || !secret->open)
		return;
	(void)sodium_mprotect_noaccess(secret->keyed);
	secret->open = false;
}

void
sig_secret_set_not_after(struct sig_secret *secret, int64_t not_after)
{
	assert(secret != NULL);
	secret->not_after = not_after;
}

/*
 * Decimal digits only: no sign, no spaces, no underscores. Eighteen digits
 * cover every plausible Unix time and cannot overflow int64_t.
 */
static int
parse_timestamp(const char *ts, int64_t *ret)
{
	int64_t v = 0;
	size_t i;

	for (i = 0; ts[i] != '\0'; i++) {
		if (ts[i] < '0' || ts[i] > '9' || i >= SIG_TS_MAX_DIGITS)
			return -EINVAL;
		v = v * 10 + (ts[i] - '0');
	}
	if (i == 0)
		return -EINVAL;
	*ret = v;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1; /* uppercase is not what the sender produces */
}

/*
 * The header is public (it travels in the request), so this parse need not
 * be constant time; the comparison against the computed MAC is.
 */
static int
parse_signature(const char *sig, unsigned char mac[SIG_MAC_LEN])
{
	const char *hex = sig + SIG_PREFIX_LEN;
	size_t i;

	if (strlen(sig) != SIG_SIGNATURE_LEN ||
	    strncmp(sig, SIG_PREFIX, SIG_PREFIX_LEN) != 0)
		return -EINVAL;
	for (i = 0; i < SIG_MAC_LEN; i++) {
		int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		mac[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}

static void
hmac(const crypto_auth_hmacsha256_state *keyed, const char *id, const char *ts,
    const void *body, size_t len, unsigned char mac[SIG_MAC_LEN])
{
	crypto_auth_hmacsha256_state st = *keyed;

	(void)crypto_auth_hmacsha256_update(&st, (const unsigned char *)id,
	    strlen(id));
	(void)crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	(void)crypto_auth_hmacsha256_update(&st, (const unsigned char *)ts,
	    strlen(ts));
	(void)crypto_auth_hmacsha256_update(&st, (const unsigned char *)".", 1);
	if (len > 0)
		(void)crypto_auth_hmacsha256_update(&st, body, len);
	(void)crypto_auth_hmacsha256_final(&st, mac);
	/* The state holds the key's inner and outer pads. */
	sodium_memzero(&st, sizeof(st));
}

/* Returns 1 if secret signs the message as mac, 0 if not or unusable. */
static int
secret_matches(struct sig_secret *secret, const char *id, const char *ts,
    const void *body, size_t len, const unsigned char mac[SIG_MAC_LEN])
{
	unsigned char want[SIG_MAC_LEN];
	int ok;

	/*
	 * mprotect on our own whole mapping does not fail in practice; if it
	 * ever did, reading would fault, so treat the secret as unusable.
	 */
	if (secret->open) {
		hmac(secret->keyed, id, ts, body, len, want);
	} else {
		if (sodium_mprotect_readonly(secret->keyed) != 0)
			return 0;
		hmac(secret->keyed, id, ts, body, len, want);
		(void)sodium_mprotect_noaccess(secret->keyed);
	}
	ok = crypto_verify_32(want, mac) == 0;
	sodium_memzero(want, sizeof(want));
	return ok;
}

enum sig_result
sig_verify(const char *id, const char *timestamp, const char *signature,
    const void *body, size_t len, struct sig_secret *const *secrets,
    size_t nsecrets, uint32_t tolerance, int64_t now)
{
	unsigned char mac[SIG_MAC_LEN];
	int64_t ts;
	size_t i;

	assert(body != NULL || len == 0);
	assert(secrets != NULL || nsecrets == 0);
	if (id == NULL || *id == '\0' || timestamp == NULL ||
	    *timestamp == '\0' || signature == NULL || *signature == '\0')
		return SIG_MISSING_HEADER;
	if (parse_timestamp(timestamp, &ts) < 0 ||
	    parse_signature(signature, mac) < 0)
		return SIG_MALFORMED;
	/* ts >= 0; unsigned differences cannot overflow for any now. */
	if (tolerance > 0) {
		if (ts < now && (uint64_t)now - (uint64_t)ts > tolerance)
			return SIG_STALE;
		if (ts > now && (uint64_t)ts - (uint64_t)now > tolerance)
			return SIG_FUTURE;
	}
	for (i = 0; i < nsecrets; i++) {
		struct sig_secret *secret = secrets[i];

		if (secret == NULL ||
		    (secret->not_after != 0 && now > secret->not_after))
			continue;
		if (secret_matches(secret, id, timestamp, body, len, mac))
			return SIG_OK;
	}
	return SIG_BAD_SIGNATURE;
}

void
sig_sign(const char *secret, const char *id, const char *timestamp,
    const void *body, size_t len, char out[SIG_SIGNATURE_SIZE])
{
	unsigned char mac[SIG_MAC_LEN];
	char hex[SIG_SHA256_HEX_SIZE];
	crypto_auth_hmacsha256_state keyed;

	assert(secret != NULL && id != NULL && timestamp != NULL);
	assert(body != NULL || len == 0);
	(void)crypto_auth_hmacsha256_init(&keyed, (const unsigned char *)secret,
	    strlen(secret));
	hmac(&keyed, id, timestamp, body, len, mac);
	sodium_memzero(&keyed, sizeof(keyed));
	(void)sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
	(void)snprintf(out, SIG_SIGNATURE_SIZE, SIG_PREFIX "%s", hex);
}

struct sig_key *
sig_key_new(void)
{
	if (sig_init() < 0)
		return NULL;
	return calloc(1, sizeof(struct sig_key));
}

void
sig_key_free(struct sig_key *key)
{
	if (key == NULL)
		return;
	sig_key_clear(key);
	free(key);
}

int
sig_key_set(struct sig_key *key, const char *s, size_t len)
{
	unsigned char h[crypto_hash_sha256_BYTES];
	char hex[SIG_SHA256_HEX_SIZE];
	char *p;
	size_t i;

	assert(key != NULL && s != NULL);
	if (len == 0)
		return -EINVAL;
	/* It goes into "Authorization: Bearer <key>": no CR/LF smuggling. */
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c == 0x7f)
			return -EINVAL;
	}
	p = sodium_malloc(len + 1); /* sodium was initialised by sig_key_new */
	if (p == NULL)
		return -ENOMEM;
	memcpy(p, s, len);
	p[len] = '\0';
	(void)crypto_hash_sha256(h, (const unsigned char *)p, len);
	(void)sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
	(void)sodium_mprotect_readonly(p);

	sig_key_clear(key);
	key->s = p;
	key->len = len;
	memcpy(key->fp, hex, SIG_FINGERPRINT_LEN);
	key->fp[SIG_FINGERPRINT_LEN] = '\0';
	return 0;
}

void
sig_key_clear(struct sig_key *key)
{
	assert(key != NULL);
	sodium_free(key->s); /* NULL is a no-op */
	key->s = NULL;
	key->len = 0;
	memset(key->fp, 0, sizeof(key->fp));
}

bool
sig_key_isset(const struct sig_key *key)
{
	assert(key != NULL);
	return key->s != NULL;
}

const char *
sig_key_get(const struct sig_key *key)
{
	assert(key != NULL);
	return key->s;
}

int
sig_key_fingerprint(const struct sig_key *key, char out[SIG_FINGERPRINT_SIZE])
{
	assert(key != NULL);
	if (key->s == NULL)
		return -ENOKEY;
	memcpy(out, key->fp, SIG_FINGERPRINT_SIZE);
	return 0;
}

void
sig_random_uuid(char out[SIG_UUID_SIZE])
{
	static const char digits[] = "0123456789abcdef";
	unsigned char b[16];
	size_t i, o = 0;

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = digits[b[i] >> 4];
		out[o++] = digits[b[i] & 0x0f];
	}
	out[o] = '\0';
}

void
sig_sha256_hex(const void *p, size_t len, char out[SIG_SHA256_HEX_SIZE])
{
	unsigned char h[crypto_hash_sha256_BYTES];
	static const unsigned char empty[1];

	assert(p != NULL || len == 0);
	(void)crypto_hash_sha256(h, len > 0 ? p : empty, len);
	(void)sodium_bin2hex(out, SIG_SHA256_HEX_SIZE, h, sizeof(h));
}

struct sig_sha256 {
	crypto_hash_sha256_state st;
};

struct sig_sha256 *
sig_sha256_new(void)
{
	struct sig_sha256 *h;

	h = malloc(sizeof(*h));
	if (h == NULL)
		return NULL;
	(void)crypto_hash_sha256_init(&h->st);
	return h;
}

void
sig_sha256_update(struct sig_sha256 *h, const void *p, size_t len)
{
	assert(h != NULL && (p != NULL || len == 0));
	if (len > 0)
		(void)crypto_hash_sha256_update(&h->st, p, len);
}

void
sig_sha256_final(struct sig_sha256 *h, char out[SIG_SHA256_HEX_SIZE])
{
	unsigned char d[crypto_hash_sha256_BYTES];

	assert(h != NULL);
	(void)crypto_hash_sha256_final(&h->st, d);
	(void)sodium_bin2hex(out, SIG_SHA256_HEX_SIZE, d, sizeof(d));
	(void)crypto_hash_sha256_init(&h->st);
}

void
sig_sha256_free(struct sig_sha256 *h)
{
	free(h);
}

char *
sig_base64(const void *p, size_t len)
{
	size_t n =
	    sodium_base64_encoded_len(len, sodium_base64_VARIANT_ORIGINAL);
	char *out = malloc(n);

	if (out == NULL)
		return NULL;
	sodium_bin2base64(out, n, p, len, sodium_base64_VARIANT_ORIGINAL);
	return out;
}

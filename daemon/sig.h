/*
 * SPDX-License-Identifier: MIT
 *
 * Signatures and secrets: verification and signing of m8tes webhooks
 * (upstream-api.md section 9.2: "v1=" + lowercase hex HMAC-SHA256 over
 * "<id>.<timestamp>.<raw body>", keyed with the secret's bytes as-is),
 * holders that keep webhook secrets and the upstream API key in guarded
 * sodium_malloc memory, and the few random/hash helpers the daemon needs
 * (UUIDv4 Idempotency-Keys, SHA-256 hex). This is the only file that
 * includes sodium.h. It does no I/O and no logging; it does not know where
 * secrets come from (config, credentials, state.db) nor how results map to
 * HTTP statuses.
 */
#ifndef M8_SIG_H
#define M8_SIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIG_SIGNATURE_LEN 67   /* "v1=" + 64 lowercase hex digits */
#define SIG_SIGNATURE_SIZE 68  /* ... plus the NUL */
#define SIG_SHA256_HEX_SIZE 65 /* 64 hex digits + NUL */
#define SIG_FINGERPRINT_LEN 12 /* hex digits of SHA-256(key) shown */
#define SIG_FINGERPRINT_SIZE 13
#define SIG_UUID_SIZE 37 /* xxxxxxxx-xxxx-4xxx-Nxxx-xxxxxxxxxxxx + NUL */

/*
 * Outcome of sig_verify, ordered by the check that decides it. The HTTP
 * layer maps MISSING_HEADER and MALFORMED to 400 and the rest to 401.
 */
enum sig_result {
	SIG_OK = 0,
	SIG_MISSING_HEADER, /* id, timestamp or signature NULL or empty */
	SIG_MALFORMED,      /* timestamp not decimal digits, or signature */
	                    /* not exactly "v1=" + 64 lowercase hex */
	SIG_STALE,          /* timestamp older than now - tolerance */
	SIG_FUTURE,         /* timestamp newer than now + tolerance */
	SIG_BAD_SIGNATURE,  /* well formed, but no usable secret matches */
};

struct sig_secret;
struct sig_key;

/*
 * Initialises libsodium; call once at startup. Idempotent. Returns 0 or -EIO
 * when libsodium cannot initialise (no usable randomness source). The
 * constructors below call it too, so forgetting it is not fatal, but main
 * should call it to fail early.
 */
int sig_init(void);

/* Short, stable, lowercase name of a result ("ok", "stale", ...). */
const char *sig_result_str(enum sig_result r);

/*
 * Returns a new webhook secret holding a copy of the len bytes at s (used
 * as the HMAC key exactly as they are; any length, 0 allowed). The bytes live
 * in sodium_malloc memory (guard pages, mlock'd where permitted, excluded
 * from core dumps) kept PROT_NONE except while sig_verify reads them.
 * Returns NULL only on ENOMEM. The caller may wipe its own copy afterwards.
 */
struct sig_secret *sig_secret_new(const char *s, size_t len);

/* Wipes and frees a secret; NULL is a no-op. */
void sig_secret_free(struct sig_secret *secret);

/*
 * sig_verify makes a sealed secret readable for each HMAC and PROT_NONE
 * again after it: two mprotect calls, each a TLB shootdown on every CPU
 * running one of the process's threads. A caller verifying many
 * deliveries in a row unseals the secrets (read-only) once before them and
 * seals them again when the run is over. Both are idempotent;
 * sig_secret_seal accepts NULL. New secrets are sealed.
 */
void sig_secret_unseal(struct sig_secret *secret);
void sig_secret_seal(struct sig_secret *secret);

/*
 * Sets the Unix time after which sig_verify no longer accepts this secret
 * (the end of a rotation overlap); 0, the default, means never.
 */
void sig_secret_set_not_after(struct sig_secret *secret, int64_t not_after);

/*
 * Verifies one webhook delivery (upstream-api.md section 9.2). id, timestamp
 * and signature are the Webhook-Id, Webhook-Timestamp and Webhook-Signature
 * header values exactly as received (NUL-terminated, untrimmed; NULL when
 * absent); body/len the raw request body, verified before any parsing.
 * secrets holds nsecrets candidates (NULL entries are skipped, as are secrets
 * whose not_after is set and earlier than now): the delivery is valid if any
 * one of them matches, which is how rotation overlaps work. tolerance is the
 * freshness window in seconds, 0 = accept any age (manual replay); now is the
 * caller's Unix time. The timestamp must be decimal digits even when the
 * window is off. Comparison is constant time (crypto_verify_32); nothing is
 * logged.
 */
enum sig_result
sig_verify(const char *id, const char *timestamp, const char *signature,
    const void *body, size_t len, struct sig_secret *const *secrets,
    size_t nsecrets, uint32_t tolerance, int64_t now);

/*
 * Writes the Webhook-Signature value ("v1=" + 64 lowercase hex, NUL
 * terminated) for secret (NUL-terminated, bytes used as-is), id, timestamp
 * (as it will be sent) and body/len into out. Used by tests and the mock.
 */
void sig_sign(const char *secret, const char *id, const char *timestamp,
    const void *body, size_t len, char out[SIG_SIGNATURE_SIZE]);

/*
 * Upstream API key holder. The key lives in sodium_malloc memory that is
 * read-only (never writable after set) and wiped when replaced or freed.
 * sig_key_new returns an empty holder, or NULL only on ENOMEM.
 */
struct sig_key *sig_key_new(void);

/* Wipes and frees the holder; NULL is a no-op. */
void sig_key_free(struct sig_key *key);

/*
 * Replaces the key with a copy of the len bytes at s, wiping the old one.
 * Returns 0; -EINVAL if len is 0 or s holds a byte that cannot appear in an
 * HTTP header token (control characters, space, DEL), in which case the old
 * key is kept; -ENOMEM (old key kept). Callers trim a trailing newline.
 */
int sig_key_set(struct sig_key *key, const char *s, size_t len);

/* Wipes the key; the holder becomes empty. */
void sig_key_clear(struct sig_key *key);

/* True if a key is set. */
bool sig_key_isset(const struct sig_key *key);

/*
 * Returns the key as a NUL-terminated string borrowed from the holder (valid
 * until the next sig_key_set, sig_key_clear or sig_key_free; never write to
 * it, never log it), or NULL if no key is set.
 */
const char *sig_key_get(const struct sig_key *key);

/*
 * Writes the key's fingerprint, the first 12 hex digits of SHA-256(key), to
 * out: safe to show (auth status) and to use as a cache partition name.
 * Returns 0, or -ENOKEY if no key is set (out untouched).
 */
int
sig_key_fingerprint(const struct sig_key *key, char out[SIG_FINGERPRINT_SIZE]);

/* Writes a random UUID version 4, lowercase, NUL-terminated, to out. */
void sig_random_uuid(char out[SIG_UUID_SIZE]);

/* Writes SHA-256(p[0..len)) as 64 lowercase hex digits + NUL to out. */
void sig_sha256_hex(const void *p, size_t len, char out[SIG_SHA256_HEX_SIZE]);

/*
 * Streaming SHA-256, for content too large to hold in memory (downloaded
 * files). sig_sha256_new returns a fresh state, or NULL only on ENOMEM;
 * sig_sha256_update hashes len more bytes (p may be NULL if len is 0);
 * sig_sha256_final writes the digest of everything fed as 64 lowercase
 * hex digits + NUL to out and resets the state for a new message;
 * sig_sha256_free frees it (NULL is a no-op). Not for secrets: the state
 * lives in ordinary memory.
 */
struct sig_sha256;

struct sig_sha256 *sig_sha256_new(void);
void sig_sha256_update(struct sig_sha256 *h, const void *p, size_t len);
void sig_sha256_final(struct sig_sha256 *h, char out[SIG_SHA256_HEX_SIZE]);
void sig_sha256_free(struct sig_sha256 *h);

/*
 * Returns a malloc'd, NUL-terminated base64 encoding (RFC 4648, padded) of
 * p[0..len), or NULL on ENOMEM.
 */
char *sig_base64(const void *p, size_t len);

#endif

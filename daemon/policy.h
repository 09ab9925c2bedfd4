/*
 * SPDX-License-Identifier: MIT
 *
 * Who may call what: the [peer] sections of the configuration as rules,
 * matched once per connection by the peer's uid, gid or user name (first
 * matching section wins, in file order), then applied to every call:
 * method globs (deny wins over allow), admin methods, the forced tenant
 * user_id, a per-uid connection cap and a per-uid token bucket of
 * requests.
 *
 * The module is pure: it reads no clock (the caller passes monotonic
 * milliseconds, so tests are deterministic), logs nothing and does no I/O
 * but policy_user_name's one lookup, which the caller makes once per
 * connection, never per call. The socket's mode and group are the first
 * gate; a peer no section matches is allowed everything but the admin
 * methods, unless default_deny is set.
 */
#ifndef M8_POLICY_H
#define M8_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cJSON;
struct config;
struct policy;
struct policy_rule;

/* Distinct uids tracked for caps and rates; past it new uids are refused. */
#define POLICY_MAX_UIDS 65536

/*
 * Builds the rules from c's [peer] sections, default_deny and
 * max_connections_per_uid; everything is copied, so c may be freed at
 * once. Returns NULL only when out of memory.
 */
struct policy *policy_new(const struct config *c);
void policy_free(struct policy *p);

/*
 * Replaces the rules with c's, keeping the per-uid connection counts and
 * token buckets, so a reload drops nothing and resets no limit. Every
 * rule pointer from policy_match becomes invalid: a caller that keeps one
 * per connection re-matches when policy_generation changes. Returns 0, or
 * -ENOMEM with p unchanged.
 */
int policy_reload(struct policy *p, const struct config *c);

/* Increases with every successful policy_reload. */
unsigned long policy_generation(const struct policy *p);

/*
 * The rule for a peer: the first section whose match_uid, match_gid
 * (the peer's primary gid, as SO_PEERCRED gives it) or match_user (user,
 * which may be NULL when the uid has no name) fits, else the built-in
 * default rule. Never NULL. Valid until the next policy_reload or
 * policy_free.
 */
const struct policy_rule *
policy_match(const struct policy *p, uid_t uid, gid_t gid, const char *user);

/* The section's NAME, or NULL for the default rule. */
const char *policy_rule_name(const struct policy_rule *r);

/* The forced user_id of the rule, or NULL. */
const char *policy_rule_tenant(const struct policy_rule *r);

/* The rule's admin = true. */
bool policy_rule_admin(const struct policy_rule *r);

/*
 * True for the methods that need an admin peer: auth.*, cache.clear,
 * daemon.shutdown, daemon.reload, daemon.set_log_level and any method the
 * method table flags ADMIN.
 */
bool policy_method_is_admin(const char *method);

/*
 * May a peer under rule r call method? peer_is_admin is the caller's
 * finding that the peer is root or the daemon's own uid. In order: under
 * default_deny a non-admin peer no section matched is refused; a deny glob
 * refuses; an allow list that does not match refuses (cancel, daemon.hello,
 * daemon.ping and daemon.describe are always allowed unless denied by
 * name or glob); an admin method needs peer_is_admin or admin = true.
 * When r has a tenant and the method takes user_id, every user_id in
 * params must be the tenant, and params (an object, borrowed, modified) is
 * left with exactly one user_id, the tenant's.
 *
 * Returns 0; -EPERM with a one-line reason for the peer in reason; -EINVAL
 * when a tenant must be injected and params is not an object; -ENOMEM.
 */
int policy_check_call(const struct policy_rule *r, bool peer_is_admin,
    const char *method, struct cJSON *params, char *reason, size_t len);

/*
 * Counts a new connection of uid against its cap: the rule's
 * max_connections, else max_connections_per_uid (0 = none). Returns 0, or
 * -EDQUOT when uid already has that many, -ENOSPC past POLICY_MAX_UIDS
 * uids, -ENOMEM. Each success is paired with one policy_conn_close.
 */
int policy_conn_open(struct policy *p, const struct policy_rule *r, uid_t uid);
void policy_conn_close(struct policy *p, uid_t uid);

/* Connections policy_conn_open counts for uid now. */
unsigned policy_conn_count(const struct policy *p, uid_t uid);

/*
 * Takes one request from uid's token bucket under rule r (rate tokens a
 * second, at most burst stored; a bucket starts full). now_ms is a
 * monotonic clock in milliseconds. Returns 0; -EAGAIN when the bucket is
 * empty, with the milliseconds until a token is due in *ret_wait_ms (may
 * be NULL); -ENOSPC or -ENOMEM as policy_conn_open. A rule without rate
 * always returns 0.
 */
int policy_rate_take(struct policy *p, const struct policy_rule *r, uid_t uid,
    uint64_t now_ms, uint64_t *ret_wait_ms);

/*
 * The user name of uid (getpwuid_r), for match_user: resolve it once when
 * a connection is accepted. Returns 0, -ENOENT when uid has no name,
 * -ENAMETOOLONG when it does not fit in len bytes, or -errno.
 */
int policy_user_name(uid_t uid, char *buf, size_t len);

#endif

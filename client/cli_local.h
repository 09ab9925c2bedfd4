/*
 * SPDX-License-Identifier: MIT
 *
 * The m8tes commands about the daemon's own state: "auth login" (the key
 * read from the terminal without echo, or from stdin; never from argv; the
 * buffers that held it wiped), "auth status" (where the key came from and
 * its fingerprint, never the key), "auth logout", "cache stats", "cache
 * clear" and "audit" (upstream calls made for local users, as a table).
 */
#ifndef M8_CLI_LOCAL_H
#define M8_CLI_LOCAL_H

#include <stddef.h>
#include <stdio.h>

struct cJSON;
struct cli_cmd;
struct cli_opts;

#define CLI_KEY_MAX 512 /* bytes of an API key */

/*
 * Reads one line, the key, from fd into buf: with echo off when fd is a
 * terminal (after printing prompt on tty, restoring the terminal also when
 * a signal interrupts), else as it comes. Surrounding white space is
 * dropped. Returns its length, -ENODATA for an empty key, -EMSGSIZE when it
 * does not fit in len - 1 bytes, -EINVAL for a control character in it,
 * -EINTR when interrupted, or -errno. buf is wiped on every failure.
 */
int cli_local_read_key(int fd, FILE *tty, char *buf, size_t len);

/* The audit rows ({"data":[...]}) as a table on f. */
void cli_local_audit_table(FILE *f, const struct cJSON *result);

/* "auth login|status|logout", "cache stats|clear", "audit". */
int cli_local_main(const struct cli_opts *o, struct cli_cmd *cmd);

#endif

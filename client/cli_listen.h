/*
 * SPDX-License-Identifier: MIT
 *
 * "m8tes webhooks listen", after `stripe listen`: follows the daemon's
 * webhook inbox (webhooks.listen), prints one line per webhook on a
 * terminal or its JSON otherwise, optionally POSTs each payload to a local
 * URL and/or runs a command with it on stdin, and acknowledges each
 * processed seq for a durable consumer. Also "m8tes webhooks replay".
 */
#ifndef M8_CLI_LISTEN_H
#define M8_CLI_LISTEN_H

#include <stddef.h>
#include <stdio.h>

struct cJSON;
struct cli_cmd;
struct cli_opts;

#define CLI_LISTEN_FORWARD_MS 10000 /* one --forward-to POST */
#define CLI_LISTEN_MAX_ACKS 64      /* acks in flight; they are cumulative */

/*
 * One line for a webhook event ({"type":"webhook","seq","event","run_id",
 * "received_at","replayed",...}): "YYYY-MM-DD HH:MM:SS  #SEQ  EVENT  run
 * RUN_ID" in local time, "-" for what is null, "  (replayed)" at the end of
 * a replayed one.
 */
void cli_listen_line(FILE *f, const struct cJSON *ev);

/*
 * What a webhook hands on: its payload as compact JSON
 * ("application/json"), or the raw body it came with when that was no
 * JSON ("text/plain; charset=utf-8"). Returns 0 with a new buffer in
 * *ret, or -ENOMEM.
 */
int cli_listen_body(const struct cJSON *ev, char **ret, size_t *ret_len,
    const char **ret_type);

/* "webhooks listen": runs until the connection ends; the exit status. */
int cli_listen_main(const struct cli_opts *o, struct cli_cmd *cmd);

/* "webhooks replay": the exit status. */
int cli_listen_replay_main(const struct cli_opts *o, struct cli_cmd *cmd);

#endif

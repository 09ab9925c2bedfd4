/*
 * SPDX-License-Identifier: MIT
 *
 * The m8tes commands that are more than one call of the method table:
 * watching a run, downloading through a passed descriptor, a teammate's
 * one-shot task and chat, listening to and replaying webhooks, logging in,
 * the cache and the audit log. This module names them and parses their
 * arguments into a struct cli_cmd (method, params, options); it prints
 * nothing and connects to nothing. Errors are -EINVAL with a one-line
 * reason, or -ENOMEM.
 */
#ifndef M8_CLI_CMD_H
#define M8_CLI_CMD_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;
struct method;

enum cli_cmd_kind {
	CLI_CMD_NONE = 0,    /* not one of these: a method of the table */
	CLI_CMD_WATCH,       /* runs watch RUN_ID [--after-seq N] */
	CLI_CMD_DOWNLOAD,    /* runs download RUN_ID FILENAME [-o PATH] */
	CLI_CMD_MATE_TASK,   /* mate task [ID] MESSAGE */
	CLI_CMD_MATE_CHAT,   /* mate chat [ID] [--resume RUN_ID] */
	CLI_CMD_LISTEN,      /* webhooks listen [...] */
	CLI_CMD_REPLAY,      /* webhooks replay SEQ | --since | --from --to */
	CLI_CMD_LOGIN,       /* auth login */
	CLI_CMD_AUTH_STATUS, /* auth status */
	CLI_CMD_LOGOUT,      /* auth logout */
	CLI_CMD_CACHE_STATS, /* cache stats */
	CLI_CMD_CACHE_CLEAR, /* cache clear [--resource R] [--prefix P] */
	CLI_CMD_AUDIT,       /* audit [--uid N] [--method GLOB] ... */
};

/* One parsed command. Release with cli_cmd_done. */
struct cli_cmd {
	enum cli_cmd_kind kind;
	const struct method *method; /* the method it calls */
	struct cJSON *params;        /* owned, never NULL once parsed */
	struct cJSON *reply_params;  /* mate chat: runs.reply's options */
	bool help;                   /* -h or --help */
	bool json;                   /* --json */
	bool pick_teammate;          /* mate task/chat without an ID */
	long long resume_run;        /* mate chat --resume RUN_ID, or 0 */
	const char *output;          /* runs download -o PATH */
	const char *forward_to;      /* webhooks listen --forward-to URL */
	const char *exec;            /* webhooks listen --exec CMD */
};

/*
 * Finds the command named by the leading words of argv ("runs watch",
 * "mate task", "audit"; the first word may be an alias as for methods).
 * Returns the number of words and sets *ret_kind, or 0 when the words name
 * none of these commands.
 */
int cli_cmd_find(int argc, char *const argv[], enum cli_cmd_kind *ret_kind);

/* The words of a command ("webhooks listen"). */
const char *cli_cmd_words(enum cli_cmd_kind kind);

/*
 * Parses the arguments after the words of a command of kind into cmd;
 * now is the current Unix time, for --since. With --help nothing is
 * checked. Returns 0, -EINVAL with err set, or -ENOMEM.
 */
int cli_cmd_parse(enum cli_cmd_kind kind, int argc, char *const argv[],
    long long now, struct cli_cmd *cmd, char *err, size_t errlen);

void cli_cmd_done(struct cli_cmd *cmd);

/*
 * A point in time as Unix seconds: digits are Unix seconds, N followed by
 * s, m, h, d or w is that long before now ("10m", "2h", "1d"), and
 * YYYY-MM-DDTHH:MM:SSZ (or a date alone) is UTC. Returns 0, or -EINVAL
 * for anything else, for a time before 1970 and for overflow.
 */
int cli_since_parse(const char *s, long long now, long long *ret);

#endif

/*
 * SPDX-License-Identifier: MIT
 *
 * "m8tes mate task [ID] MESSAGE" and "m8tes mate chat [ID]": a teammate's
 * one-shot streamed run, and a conversation in which the first line starts
 * a run (runs.create) and every later line replies to it (runs.reply),
 * each turn streamed back by cli_run. The state machine deciding what a
 * line means is pure, for the tests; the loop reads stdin, a terminal or
 * not (then each line is a turn), until its end or /exit.
 */
#ifndef M8_CLI_CHAT_H
#define M8_CLI_CHAT_H

struct cJSON;
struct cli_cmd;
struct cli_opts;

enum cli_chat_action {
	CLI_CHAT_SKIP = 0, /* nothing to send: empty line, /new, /resume */
	CLI_CHAT_CREATE,   /* start the conversation's run */
	CLI_CHAT_REPLY,    /* reply to the conversation's run */
	CLI_CHAT_HELP,     /* /help */
	CLI_CHAT_QUIT,     /* end of input, /exit, /quit */
};

/* The state of a conversation. */
struct cli_chat {
	const struct cJSON *create; /* runs.create options, borrowed */
	const struct cJSON *reply;  /* runs.reply options, borrowed, or NULL */
	long long run_id;           /* the run replied to; 0 = none yet */
};

/*
 * What one input line asks for (line may end in a newline; NULL is the end
 * of input). For CLI_CHAT_CREATE and CLI_CHAT_REPLY sets *ret_method and
 * *ret_params, a new object: the options and the message, plus run_id for
 * a reply. "/new" (or "/clear") forgets the run, "/resume RUN_ID" replies
 * to that run from now on. Returns the action, -EINVAL for a bad /resume,
 * or -ENOMEM.
 */
int cli_chat_next(struct cli_chat *ch, const char *line,
    const char **ret_method, struct cJSON **ret_params);

/*
 * Records the run a turn talked to (0: none known, the state stays): the
 * next line replies to it.
 */
void cli_chat_turn_done(struct cli_chat *ch, long long run_id);

/* "mate task": returns the exit status. */
int cli_chat_task_main(const struct cli_opts *o, struct cli_cmd *cmd);

/* "mate chat": returns the exit status. */
int cli_chat_main(const struct cli_opts *o, struct cli_cmd *cmd);

#endif

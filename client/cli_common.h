/*
 * SPDX-License-Identifier: MIT
 *
 * What every m8tes command shares: the global options, the exit statuses,
 * connecting with a helpful message, and turning a failed call or an error
 * reply into one line on stderr and an exit status. Prints to stderr only;
 * owns nothing beyond the connection it hands out; never exits.
 */
#ifndef M8_CLI_COMMON_H
#define M8_CLI_COMMON_H

#include <stdbool.h>

struct m8c_conn;
struct m8c_reply;

/* Exit statuses of our own (sysexits.h values); API errors use codec's. */
#define CLI_EXIT_USAGE 2
#define CLI_EXIT_RUN_FAILED 8 /* as m8tes.run_failed */
#define CLI_EXIT_NOINPUT 66
#define CLI_EXIT_UNAVAILABLE 69
#define CLI_EXIT_SOFTWARE 70
#define CLI_EXIT_IOERR 74
#define CLI_EXIT_TEMPFAIL 75
#define CLI_EXIT_PROTOCOL 76

/* The options before the command, and what the terminal looks like. */
struct cli_opts {
	const char *socket; /* NULL: m8c_socket_path */
	bool json;          /* JSON lines instead of the readable form */
	int timeout_ms;     /* -1: wait */
	bool tty_in;        /* stdin is a terminal */
	bool tty_out;       /* stdout is a terminal */
	bool tty_err;       /* stderr is a terminal */
};

/* "m8tes: <pre><arg><post>" on stderr. Returns CLI_EXIT_USAGE. */
int cli_usage_error(const char *pre, const char *arg, const char *post);

/*
 * Says why a cli_*_args parser failed (err) and returns the status:
 * CLI_EXIT_USAGE for -EINVAL, CLI_EXIT_SOFTWARE for -ENOMEM, else
 * CLI_EXIT_NOINPUT (an unreadable key=@FILE).
 */
int cli_args_error(int r, const char *err);

/*
 * Connects to the daemon at o->socket and applies o->timeout_ms to sends.
 * Returns 0 and the connection in *ret, or, after saying why on stderr,
 * CLI_EXIT_UNAVAILABLE.
 */
int cli_connect(const struct cli_opts *o, struct m8c_conn **ret);

/* A call that ended without a reply (-errno): says why, picks the status. */
int cli_call_error(int r, const struct cli_opts *o);

/*
 * The status for a reply that is not a result: prints an error reply with
 * cli_out_error, or the resume hint of a lagged one, on stderr.
 */
int cli_reply_error(const struct m8c_reply *reply);

/*
 * Flushes stdout; a failed write turns a 0 status into CLI_EXIT_IOERR
 * (after saying so). Returns the status to exit with.
 */
int cli_finish(int status);

#endif

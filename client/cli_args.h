/*
 * SPDX-License-Identifier: MIT
 *
 * The m8tes command line as data: which method a command's words name
 * ("tasks triggers create" -> tasks.triggers.create, with the SDK CLI's
 * aliases), and the params object its arguments build, typed by the method
 * table. Used by m8tes.c and the unit tests; prints nothing, connects to
 * nothing. Errors are -EINVAL with a one-line reason for usage mistakes,
 * -ENOMEM, or -errno (with a reason) when a key=@FILE cannot be read.
 */
#ifndef M8_CLI_ARGS_H
#define M8_CLI_ARGS_H

#include <stdbool.h>
#include <stddef.h>

struct cJSON;
struct method;
struct method_param;

/* What one command line asks for. Release with cli_request_done. */
struct cli_request {
	const struct method *method; /* NULL: a method our table lacks */
	const char *name;            /* the method's name (borrowed) */
	struct cJSON *params;        /* owned object, never NULL once parsed */
	bool help;                   /* --help or -h among the arguments */
	bool json;                   /* --json among the arguments */
	const char *output;          /* --output FILE of a download */
};

void cli_request_done(struct cli_request *req);

/*
 * Finds the method named by the leading words of argv ("runs",
 * "download-file"): words join with '.', '-' stands for '_', the first
 * word may be an alias (mate/agent/teammate -> teammates, task -> tasks,
 * run -> runs, ...). The longest match wins and words stop at the first
 * option. Returns the number of words used and sets *ret_m; or 0 when the
 * words name no method, with group set to the longest prefix naming a group
 * of methods ("tasks.triggers"; "" when even the first word is unknown).
 */
int cli_find_method(int argc, char *const argv[], const struct method **ret_m,
    char *group, size_t grouplen);

/* The resource an alias stands for ("mate" -> "teammates"), or NULL. */
const char *cli_alias_of(const char *word);

/* True when some command-line method's name starts with group + ".". */
bool cli_is_group(const char *group);

/* The command words of m ("tasks triggers create", "runs download-file"). */
void cli_method_words(const struct method *m, char *buf, size_t len);

/* "--flag-name" for a parameter name ("flag_name"). */
void cli_flag_name(const char *param, char *buf, size_t len);

/*
 * Types the text of one flag or positional argument for parameter p: s as
 * is; i and n strictly numeric; b true/false/yes/no/1/0; x an integer when
 * it is one, else a string; o a JSON object; a a JSON array, or a comma
 * list of strings ("gmail, slack"; "" is the empty list); j a JSON literal,
 * else a string. "null" is JSON null for a nullable (~) parameter. Returns
 * 0 and a new item in *ret.
 */
int cli_value_parse(const struct method_param *p, const char *text,
    struct cJSON **ret, char *err, size_t errlen);

/*
 * Adds one "key=value", "key:=JSON" or "key=@FILE" ("@-" is stdin) to
 * params, replacing an earlier value of key. A value is a JSON literal when
 * it parses as a number, true, false, null, object or array, else a
 * string, except that parameters m types as strings always get the string.
 * m may be NULL (a method our table lacks).
 */
int cli_kv_parse(const struct method *m, const char *arg, struct cJSON *params,
    char *err, size_t errlen);

/*
 * Builds req for m from the arguments after its words: "--flag VALUE",
 * "--flag=VALUE", "--flag"/"--no-flag" for booleans, repeated array flags
 * appending, "--" ending options, and positionals filling m's required
 * parameters not given as flags, path parameters first, then the others in
 * table order. Also takes --help/-h, --json and, for a download, --output
 * FILE/-o FILE. Checks the result with method_check_params unless help was
 * asked for.
 */
int cli_method_args(const struct method *m, int argc, char *const argv[],
    struct cli_request *req, char *err, size_t errlen);

/*
 * Builds req for "call METHOD [JSON | key=value ...]": argv[0] is the
 * method's name; a JSON object argument merges all its members, the others
 * are cli_kv_parse items. Methods in our table are checked with
 * method_check_params; other names are accepted (a newer daemon may know
 * them).
 */
int cli_call_args(int argc, char *const argv[], struct cli_request *req,
    char *err, size_t errlen);

#endif

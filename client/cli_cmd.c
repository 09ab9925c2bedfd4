/*
 * SPDX-License-Identifier: MIT
 *
 * Names and arguments of the m8tes commands beyond the method table. Where
 * a command's options are a method's parameters, the method table types
 * them (cli_method_args); this file only takes out the options of its own
 * (--forward-to, --exec, --since, --resume, ...) and places positionals
 * that the table cannot place (mate task's optional ID).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "cli_args.h"
#include "cli_cmd.h"
#include "cli_http.h"
#include "codec.h"
#include "methods.h"

#define MAX_OWN 6 /* own options of one command */

static const struct {
	const char *resource; /* first word, after aliases */
	const char *verb;     /* second word, or NULL */
	enum cli_cmd_kind kind;
	const char *method;
	const char *words;
} cmds[] = {
    {"runs", "watch", CLI_CMD_WATCH, "runs.stream", "runs watch"},
    {"runs", "download", CLI_CMD_DOWNLOAD, "runs.download_file",
        "runs download"},
    {"teammates", "task", CLI_CMD_MATE_TASK, "runs.create", "mate task"},
    {"teammates", "t", CLI_CMD_MATE_TASK, "runs.create", "mate task"},
    {"teammates", "chat", CLI_CMD_MATE_CHAT, "runs.create", "mate chat"},
    {"teammates", "ch", CLI_CMD_MATE_CHAT, "runs.create", "mate chat"},
    {"webhooks", "listen", CLI_CMD_LISTEN, "webhooks.listen",
        "webhooks listen"},
    {"webhooks", "replay", CLI_CMD_REPLAY, "webhooks.replay",
        "webhooks replay"},
    {"auth", "login", CLI_CMD_LOGIN, "auth.login", "auth login"},
    {"auth", "status", CLI_CMD_AUTH_STATUS, "auth.status", "auth status"},
    {"auth", "logout", CLI_CMD_LOGOUT, "auth.logout", "auth logout"},
    {"cache", "stats", CLI_CMD_CACHE_STATS, "cache.stats", "cache stats"},
    {"cache", "clear", CLI_CMD_CACHE_CLEAR, "cache.clear", "cache clear"},
    {"audit", NULL, CLI_CMD_AUDIT, "audit.list", "audit"},
};

/* An option of a command's own: its name and where its value goes. */
struct own_opt {
	const char *name;   /* "--forward-to" */
	const char **value; /* NULL: a flag without a value */
	bool *flag;         /* set when the flag is seen */
};

static size_t cmd_index(enum cli_cmd_kind kind);
static bool parse_count(const char *s, long long *ret);
static int split_own(int argc, char *const argv[], const struct own_opt *own,
    char **rest, int *ret_nrest, char *err, size_t errlen);
static int method_args(struct cli_cmd *cmd, int argc, char *const argv[],
    char *err, size_t errlen);
static int own_then_method(struct cli_cmd *cmd, int argc,
    char *const argv[], const struct own_opt *own, char *err, size_t errlen);
static bool takes_value(const struct method *m, int argc, char *const argv[],
    int i, int *ret_extra);
static int parse_mate(struct cli_cmd *cmd, int argc, char *const argv[],
    char *err, size_t errlen);
static int chat_reply_params(struct cli_cmd *cmd);
static int parse_replay(struct cli_cmd *cmd, int argc, char *const argv[],
    long long now, char *err, size_t errlen);
static int parse_with_since(struct cli_cmd *cmd, int argc,
    char *const argv[], long long now, char *err, size_t errlen);
static int parse_listen(struct cli_cmd *cmd, int argc, char *const argv[],
    char *err, size_t errlen);
static int parse_login(struct cli_cmd *cmd, int argc, char *const argv[],
    char *err, size_t errlen);
static int set_number(cJSON *params, const char *name, long long v);
static bool opt_is(const char *arg, const char *name);

static size_t
cmd_index(enum cli_cmd_kind kind)
{
	size_t i;

	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (cmds[i].kind == kind)
			break;
	return i;
}

int
cli_cmd_find(int argc, char *const argv[], enum cli_cmd_kind *ret_kind)
{
	const char *first;

	if (argc < 1)
		return 0;
	first = cli_alias_of(argv[0]) != NULL ? cli_alias_of(argv[0]) : argv[0];
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		if (strcmp(first, cmds[i].resource) != 0)
			continue;
		if (cmds[i].verb == NULL) {
			*ret_kind = cmds[i].kind;
			/* "audit list" is the method's own name for it. */
			return argc > 1 && strcmp(argv[1], "list") == 0 ? 2 : 1;
		}
		if (argc > 1 && strcmp(argv[1], cmds[i].verb) == 0) {
			*ret_kind = cmds[i].kind;
			return 2;
		}
	}
	return 0;
}

const char *
cli_cmd_words(enum cli_cmd_kind kind)
{
	size_t i = cmd_index(kind);

	return i < sizeof(cmds) / sizeof(cmds[0]) ? cmds[i].words : "";
}

/* A positive decimal integer that a JSON number holds exactly. */
static bool
parse_count(const char *s, long long *ret)
{
	char *end;
	long long v;

	if (!isdigit((unsigned char)s[0]))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0' || v <= 0 || v > 9007199254740992LL)
		return false;
	*ret = v;
	return true;
}

int
cli_since_parse(const char *s, long long now, long long *ret)
{
	static const struct {
		char unit;
		long long secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400},
	    {'w', 604800}};
	const char *end;
	struct tm tm;
	long long n = 0;
	size_t len = strlen(s);

	if (len > 0 && isdigit((unsigned char)s[0]) &&
	    strspn(s, "0123456789") == len) {
		if (!parse_count(s, &n))
			return -EINVAL;
		*ret = n;
		return 0;
	}
	if (len >= 2 && strspn(s, "0123456789") == len - 1) {
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
			char digits[24];

			if (s[len - 1] != units[i].unit || len - 1 >= 20)
				continue;
			memcpy(digits, s, len - 1);
			digits[len - 1] = '\0';
			n = strtoll(digits, NULL, 10);
			if (n > (LLONG_MAX / units[i].secs) ||
			    n * units[i].secs > now)
				return -EINVAL;
			*ret = now - n * units[i].secs;
			return 0;
		}
		return -EINVAL;
	}
	memset(&tm, 0, sizeof(tm));
	end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
	if (end == NULL || *end != '\0') {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y-%m-%d", &tm);
	}
	if (end == NULL || *end != '\0' || len < 10)
		return -EINVAL;
	n = (long long)timegm(&tm);
	if (n < 0)
		return -EINVAL;
	*ret = n;
	return 0;
}

/*
 * Takes a command's own options (own, ended by a NULL name) out of argv:
 * "--name VALUE", "--name=VALUE" and flags. The other words go to rest in
 * order; "--" and what follows it are passed on untouched.
 */
static int
split_own(int argc, char *const argv[], const struct own_opt *own,
    char **rest, int *ret_nrest, char *err, size_t errlen)
{
	int n = 0;

	for (int i = 0; i < argc; i++) {
		const struct own_opt *o = NULL;
		size_t len = strcspn(argv[i], "=");

		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				rest[n++] = argv[i++];
			break;
		}
		for (size_t k = 0; own[k].name != NULL && o == NULL; k++)
			if (strlen(own[k].name) == len &&
			    strncmp(argv[i], own[k].name, len) == 0)
				o = &own[k];
		if (o == NULL) {
			rest[n++] = argv[i];
			continue;
		}
		if (o->value == NULL) {
			if (argv[i][len] == '=') {
				(void)snprintf(err, errlen, "%s takes no value",
				    o->name);
				return -EINVAL;
			}
			*o->flag = true;
			continue;
		}
		if (argv[i][len] == '=') {
			*o->value = argv[i] + len + 1;
		} else if (i + 1 < argc) {
			*o->value = argv[++i];
		} else {
			(void)snprintf(err, errlen, "option %s needs a value",
			    o->name);
			return -EINVAL;
		}
	}
	*ret_nrest = n;
	return 0;
}

/* The command's own options out of argv, then the rest as its method's. */
static int
own_then_method(struct cli_cmd *cmd, int argc, char *const argv[],
    const struct own_opt *own, char *err, size_t errlen)
{
	char **rest = calloc((size_t)argc + 1, sizeof(*rest));
	int nrest = 0, r;

	if (rest == NULL)
		return -ENOMEM;
	r = split_own(argc, argv, own, rest, &nrest, err, errlen);
	if (r == 0)
		r = method_args(cmd, nrest, rest, err, errlen);
	free(rest);
	return r;
}

/* The method's own flags and positionals, typed by the table, into cmd. */
static int
method_args(struct cli_cmd *cmd, int argc, char *const argv[], char *err,
    size_t errlen)
{
	struct cli_request req;
	int r;

	r = cli_method_args(cmd->method, argc, argv, &req, err, errlen);
	if (r < 0)
		return r;
	cJSON_Delete(cmd->params);
	cmd->params = req.params;
	req.params = NULL;
	cmd->help = cmd->help || req.help;
	cmd->json = cmd->json || req.json;
	if (req.output != NULL)
		cmd->output = req.output;
	cli_request_done(&req);
	return 0;
}

/* True when arg is the option name, alone or as "name=value". */
static bool
opt_is(const char *arg, const char *name)
{
	size_t len = strcspn(arg, "=");

	return strlen(name) == len && strncmp(arg, name, len) == 0;
}

static int
set_number(cJSON *params, const char *name, long long v)
{
	cJSON_DeleteItemFromObjectCaseSensitive(params, name);
	return cJSON_AddNumberToObject(params, name, (double)v) != NULL
	    ? 0
	    : -ENOMEM;
}

/*
 * Whether the option at argv[i] takes the next word as its value, as
 * cli_method_args will read it for m; *ret_extra is the number of words it
 * takes after itself.
 */
static bool
takes_value(const struct method *m, int argc, char *const argv[], int i,
    int *ret_extra)
{
	const char *a = argv[i];
	char name[PROTO_MAX_METHOD + 1];
	const struct method_param *p;
	size_t len = strcspn(a, "=");

	*ret_extra = 0;
	if (a[len] == '=' || strncmp(a, "--", 2) != 0 || len - 2 >= sizeof(name))
		return false;
	memcpy(name, a + 2, len - 2);
	name[len - 2] = '\0';
	for (char *c = name; *c != '\0'; c++)
		if (*c == '-')
			*c = '_';
	p = method_param_find(m, name);
	if (p == NULL && strncmp(name, "no_", 3) == 0)
		return false;
	if (p == NULL)
		return false;
	if (p->type == TYPE_BOOL) {
		/* "--memory false" takes the word, as cli_method_args does. */
		if (i + 1 < argc && (strcmp(argv[i + 1], "true") == 0 ||
		                        strcmp(argv[i + 1], "false") == 0))
			*ret_extra = 1;
		return *ret_extra > 0;
	}
	*ret_extra = 1;
	return true;
}

/*
 * "mate task [ID] MESSAGE [runs.create options]" and "mate chat [ID]
 * [--resume RUN_ID] [runs.create options]": positionals are the teammate
 * and the message, the options those of runs.create.
 */
static int
parse_mate(struct cli_cmd *cmd, int argc, char *const argv[], char *err,
    size_t errlen)
{
	bool chat = cmd->kind == CLI_CMD_MATE_CHAT, has_msg = false;
	bool has_id = false, opts_done = false;
	const char *resume = NULL, *pos[3], *id = NULL, *msg = NULL;
	const struct own_opt own[] = {{"--resume", &resume, NULL}, {NULL}};
	char **rest, **args;
	int nrest = 0, nargs = 0, npos = 0, r;

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	args = calloc((size_t)argc + 5, sizeof(*args));
	r = -ENOMEM;
	if (rest == NULL || args == NULL)
		goto out;
	r = chat ? split_own(argc, argv, own, rest, &nrest, err, errlen)
	         : 0;
	if (r < 0)
		goto out;
	if (!chat) {
		memcpy(rest, argv, (size_t)argc * sizeof(*rest));
		nrest = argc;
	}
	for (int i = 0; i < nrest; i++) {
		const char *a = rest[i];
		int extra;

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (opts_done || a[0] != '-' || a[1] == '\0' ||
		    isdigit((unsigned char)a[1])) {
			if (npos == 3) {
				(void)snprintf(err, errlen,
				    "too many arguments for %s: \"%.64s\"",
				    cli_cmd_words(cmd->kind), a);
				r = -EINVAL;
				goto out;
			}
			pos[npos++] = a;
			continue;
		}
		if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
			cmd->help = true;
		has_msg = has_msg || opt_is(a, "--message");
		has_id = has_id || opt_is(a, "--teammate-id") ||
		    opt_is(a, "--agent-id");
		args[nargs++] = rest[i];
		(void)takes_value(cmd->method, nrest, rest, i, &extra);
		for (; extra > 0 && i + 1 < nrest; extra--)
			args[nargs++] = rest[++i];
	}
	r = -EINVAL;
	if (chat && has_msg) {
		(void)snprintf(err, errlen,
		    "mate chat reads its messages from stdin, not --message");
		goto out;
	}
	if (chat || has_msg) {
		id = npos > 0 ? pos[0] : NULL;
		if (npos > 1) {
			(void)snprintf(err, errlen,
			    "too many arguments for %s: \"%.64s\"",
			    cli_cmd_words(cmd->kind), pos[1]);
			goto out;
		}
	} else if (npos == 2) {
		id = pos[0];
		msg = pos[1];
	} else if (npos == 1) {
		msg = pos[0];
	} else if (npos > 2) {
		(void)snprintf(err, errlen,
		    "too many arguments for mate task: \"%.64s\"", pos[2]);
		goto out;
	} else if (!cmd->help) {
		(void)snprintf(err, errlen,
		    "missing MESSAGE (mate task [ID] MESSAGE)");
		goto out;
	}
	if (id != NULL && has_id) {
		(void)snprintf(err, errlen,
		    "teammate given twice: \"%.64s\" and --teammate-id", id);
		goto out;
	}
	if (id != NULL) {
		args[nargs++] = (char *)(uintptr_t) "--teammate-id";
		args[nargs++] = (char *)(uintptr_t)id;
	}
	/* chat: a stand-in message passes the check; each line is one. */
	if (chat || msg != NULL) {
		args[nargs++] = (char *)(uintptr_t) "--message";
		args[nargs++] = (char *)(uintptr_t)(chat ? "-" : msg);
	}
	cmd->pick_teammate = id == NULL && !has_id;
	r = method_args(cmd, nargs, args, err, errlen);
	if (r < 0 || !chat)
		goto out;
	cJSON_DeleteItemFromObjectCaseSensitive(cmd->params, "message");
	if (resume != NULL && !parse_count(resume, &cmd->resume_run)) {
		(void)snprintf(err, errlen,
		    "--resume wants a run id, not \"%.64s\"", resume);
		r = -EINVAL;
		goto out;
	}
	r = chat_reply_params(cmd);
out:
	free(rest);
	free(args);
	return r;
}

/* The options of a chat's runs.create that runs.reply takes as well. */
static int
chat_reply_params(struct cli_cmd *cmd)
{
	const struct method *reply = methods_find("runs.reply");
	const cJSON *it;

	cmd->reply_params = cJSON_CreateObject();
	if (cmd->reply_params == NULL)
		return -ENOMEM;
	cJSON_ArrayForEach(it, cmd->params)
	{
		cJSON *copy;

		if (method_param_find(reply, it->string) == NULL ||
		    strcmp(it->string, "run_id") == 0)
			continue;
		copy = cJSON_Duplicate(it, true);
		if (copy == NULL ||
		    !cJSON_AddItemToObject(cmd->reply_params, it->string,
		        copy)) {
			cJSON_Delete(copy);
			return -ENOMEM;
		}
	}
	return 0;
}

/* "webhooks replay SEQ | --since TIME | --from SEQ [--to SEQ]". */
static int
parse_replay(struct cli_cmd *cmd, int argc, char *const argv[], long long now,
    char *err, size_t errlen)
{
	const char *since = NULL, *from = NULL, *to = NULL, *seq = NULL;
	const struct own_opt own[] = {{"--since", &since, NULL},
	    {"--from", &from, NULL}, {"--from-seq", &from, NULL},
	    {"--to", &to, NULL}, {"--to-seq", &to, NULL}, {NULL}};
	long long v;
	char **rest;
	int nrest = 0, modes, r;

	rest = calloc((size_t)argc + 1, sizeof(*rest));
	if (rest == NULL)
		return -ENOMEM;
	r = split_own(argc, argv, own, rest, &nrest, err, errlen);
	for (int i = 0; r == 0 && i < nrest; i++) {
		if (strcmp(rest[i], "-h") == 0 ||
		    strcmp(rest[i], "--help") == 0) {
			cmd->help = true;
		} else if (strcmp(rest[i], "--json") == 0) {
			cmd->json = true;
		} else if (strcmp(rest[i], "--") != 0 && seq == NULL &&
		    (rest[i][0] != '-' || rest[i][1] == '\0')) {
			seq = rest[i];
		} else if (strcmp(rest[i], "--") != 0) {
			(void)snprintf(err, errlen,
			    "%s \"%.64s\" for webhooks replay",
			    rest[i][0] == '-' ? "unknown option"
			                      : "too many arguments:",
			    rest[i]);
			r = -EINVAL;
		}
	}
	free(rest);
	if (r < 0 || cmd->help)
		return r;
	modes = (seq != NULL) + (since != NULL) + (from != NULL);
	if (modes != 1 || (to != NULL && from == NULL)) {
		(void)snprintf(err, errlen,
		    "webhooks replay wants one of SEQ, --since TIME or --from "
		    "SEQ [--to SEQ]");
		return -EINVAL;
	}
	if (since != NULL) {
		if (cli_since_parse(since, now, &v) < 0) {
			(void)snprintf(err, errlen,
			    "--since wants Unix seconds, 10m, 2h, 1d or "
			    "YYYY-MM-DD, not \"%.64s\"",
			    since);
			return -EINVAL;
		}
		return set_number(cmd->params, "since", v);
	}
	for (int k = 0; k < 3; k++) {
		const char *text = k == 0 ? seq : k == 1 ? from : to;
		const char *name = k == 0 ? "seq" : k == 1 ? "from_seq"
		                                           : "to_seq";

		if (text == NULL)
			continue;
		if (!parse_count(text, &v)) {
			(void)snprintf(err, errlen,
			    "%s must be a positive integer, not \"%.64s\"",
			    k == 0 ? "SEQ" : k == 1 ? "--from" : "--to", text);
			return -EINVAL;
		}
		r = set_number(cmd->params, name, v);
		if (r < 0)
			return r;
	}
	return 0;
}

/* "audit [--since TIME] [method options]": --since as for replay. */
static int
parse_with_since(struct cli_cmd *cmd, int argc, char *const argv[],
    long long now, char *err, size_t errlen)
{
	const char *since = NULL;
	const struct own_opt own[] = {{"--since", &since, NULL}, {NULL}};
	long long v;
	int r;

	r = own_then_method(cmd, argc, argv, own, err, errlen);
	if (r < 0 || since == NULL || cmd->help)
		return r;
	if (cli_since_parse(since, now, &v) < 0) {
		(void)snprintf(err, errlen,
		    "--since wants Unix seconds, 10m, 2h, 1d or YYYY-MM-DD, "
		    "not \"%.64s\"",
		    since);
		return -EINVAL;
	}
	return set_number(cmd->params, "since", v);
}

/* "webhooks listen [--forward-to URL] [--exec CMD] [method options]". */
static int
parse_listen(struct cli_cmd *cmd, int argc, char *const argv[], char *err,
    size_t errlen)
{
	const struct own_opt own[] = {{"--forward-to", &cmd->forward_to, NULL},
	    {"--exec", &cmd->exec, NULL}, {NULL}};
	struct cli_url url;
	int r;

	r = own_then_method(cmd, argc, argv, own, err, errlen);
	if (r < 0 || cmd->help)
		return r;
	if (cmd->forward_to != NULL &&
	    cli_http_url_parse(cmd->forward_to, &url, err, errlen) < 0)
		return -EINVAL;
	if (cmd->exec != NULL && cmd->exec[0] == '\0') {
		(void)snprintf(err, errlen, "--exec wants a command");
		return -EINVAL;
	}
	return 0;
}

/* "auth login": the key never comes from the command line. */
static int
parse_login(struct cli_cmd *cmd, int argc, char *const argv[], char *err,
    size_t errlen)
{
	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			cmd->help = true;
		} else if (strcmp(argv[i], "--json") == 0) {
			cmd->json = true;
		} else {
			(void)snprintf(err, errlen,
			    "auth login takes no arguments: it reads the key "
			    "from the terminal, or from stdin");
			return -EINVAL;
		}
	}
	return 0;
}

int
cli_cmd_parse(enum cli_cmd_kind kind, int argc, char *const argv[],
    long long now, struct cli_cmd *cmd, char *err, size_t errlen)
{
	size_t i = cmd_index(kind);
	int r;

	memset(cmd, 0, sizeof(*cmd));
	if (i == sizeof(cmds) / sizeof(cmds[0]))
		return -EINVAL;
	cmd->kind = kind;
	cmd->method = methods_find(cmds[i].method);
	cmd->params = cJSON_CreateObject();
	if (cmd->method == NULL || cmd->params == NULL) {
		cli_cmd_done(cmd);
		return -ENOMEM;
	}
	switch (kind) {
	case CLI_CMD_MATE_TASK:
	case CLI_CMD_MATE_CHAT:
		r = parse_mate(cmd, argc, argv, err, errlen);
		break;
	case CLI_CMD_REPLAY:
		r = parse_replay(cmd, argc, argv, now, err, errlen);
		break;
	case CLI_CMD_AUDIT:
		r = parse_with_since(cmd, argc, argv, now, err, errlen);
		break;
	case CLI_CMD_LISTEN:
		r = parse_listen(cmd, argc, argv, err, errlen);
		break;
	case CLI_CMD_LOGIN:
		r = parse_login(cmd, argc, argv, err, errlen);
		break;
	case CLI_CMD_NONE:
	case CLI_CMD_WATCH:
	case CLI_CMD_DOWNLOAD:
	case CLI_CMD_AUTH_STATUS:
	case CLI_CMD_LOGOUT:
	case CLI_CMD_CACHE_STATS:
	case CLI_CMD_CACHE_CLEAR:
	default:
		r = method_args(cmd, argc, argv, err, errlen);
		break;
	}
	if (r < 0)
		cli_cmd_done(cmd);
	return r;
}

void
cli_cmd_done(struct cli_cmd *cmd)
{
	cJSON_Delete(cmd->params);
	cJSON_Delete(cmd->reply_params);
	memset(cmd, 0, sizeof(*cmd));
}

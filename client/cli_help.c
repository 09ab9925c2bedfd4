/*
 * SPDX-License-Identifier: MIT
 *
 * Help texts of m8tes. Everything about methods and parameters is read
 * from the method table, so the help cannot drift from what the daemon
 * accepts.
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>

#include "cli_args.h"
#include "cli_help.h"
#include "codec.h"
#include "methods.h"

#define WRAP 78

static const char *type_short(enum param_type t);
static const char *metavar(enum param_type t);
static void wrap_words(FILE *f, const char *text, size_t col, size_t indent);
static void tr(char *s, char from, char to);
static size_t group_len(const struct method *m);
static void print_group(FILE *f, size_t from, size_t to, size_t gl);
static bool print_usage(FILE *f, const struct method *m);
static void option_text(const struct method_param *p, char *buf, size_t len);
static void print_params(FILE *f, const struct method *m);

/* The commands of cli_cmd as they appear in the command lists. */
static const struct {
	const char *group;
	const char *verb;
	const char *summary;
} extra[] = {
    {"runs", "watch", "Follow a run's events live; re-attaches by itself"},
    {"runs", "download", "Download a run's file (descriptor passing, "
                         "progress, size checked)"},
    {"teammates", "task", "Run a message with a teammate, streamed live"},
    {"teammates", "chat", "Chat with a teammate: each line is a turn"},
    {"webhooks", "listen", "Print, forward or run received webhooks live"},
    {"webhooks", "replay", "Deliver stored webhooks to the listeners again"},
};

static const char *
type_short(enum param_type t)
{
	switch (t) {
	case TYPE_STRING:
		return "string";
	case TYPE_INT:
		return "integer";
	case TYPE_NUMBER:
		return "number";
	case TYPE_BOOL:
		return "boolean";
	case TYPE_ID:
		return "id";
	case TYPE_OBJECT:
		return "object";
	case TYPE_ARRAY:
		return "array";
	case TYPE_ANY:
	default:
		return "json";
	}
}

static const char *
metavar(enum param_type t)
{
	switch (t) {
	case TYPE_STRING:
		return "TEXT";
	case TYPE_INT:
		return "N";
	case TYPE_NUMBER:
		return "NUM";
	case TYPE_ID:
		return "ID";
	case TYPE_ARRAY:
		return "LIST";
	case TYPE_BOOL:
		return "";
	case TYPE_OBJECT:
	case TYPE_ANY:
	default:
		return "JSON";
	}
}

/* Replaces every from in s by to. */
static void
tr(char *s, char from, char to)
{
	for (; *s != '\0'; s++)
		if (*s == from)
			*s = to;
}

/* Prints space-separated text from column col, wrapping to indent. */
static void
wrap_words(FILE *f, const char *text, size_t col, size_t indent)
{
	const char *p = text;

	while (*p != '\0') {
		size_t n = strcspn(p, " ");

		if (col > indent && col + 1 + n > WRAP) {
			(void)fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			(void)fputc(' ', f);
			col++;
		}
		(void)fprintf(f, "%.*s", (int)n, p);
		col += n;
		p += n;
		while (*p == ' ')
			p++;
	}
	(void)fputc('\n', f);
}

/* Length of the group part of a method's name ("tasks.triggers"), or 0. */
static size_t
group_len(const struct method *m)
{
	const char *dot = strrchr(m->name, '.');

	return dot != NULL && strcmp(m->name, "cancel") != 0
	    ? (size_t)(dot - m->name)
	    : 0;
}

/* "  tasks triggers create list delete" for methods [from, to). */
static void
print_group(FILE *f, size_t from, size_t to, size_t gl)
{
	char words[PROTO_MAX_METHOD + 1], verbs[1024] = "";
	const struct method *m = methods_at(from);
	size_t vl = 0;

	(void)snprintf(words, sizeof(words), "%.*s", (int)gl, m->name);
	tr(words, '.', ' ');
	(void)fprintf(f, "  %-15s", words);
	for (size_t i = from; i < to; i++) {
		(void)snprintf(words, sizeof(words), "%s",
		    methods_at(i)->name + gl + 1);
		tr(words, '_', '-');
		if (vl + strlen(words) + 2 < sizeof(verbs))
			vl += (size_t)snprintf(verbs + vl, sizeof(verbs) - vl,
			    "%s%s", vl > 0 ? " " : "", words);
	}
	wrap_words(f, verbs, 17, 17);
}

void
cli_help_main(FILE *f)
{
	size_t i = 0, n = methods_count();

	(void)fputs(
	    "usage: m8tes [--socket PATH] [--json] [--timeout SEC] COMMAND "
	    "[ARGS...]\n"
	    "\n"
	    "The command-line client of m8tesd, the local m8tes.ai API "
	    "daemon.\n"
	    "\n"
	    "Options (before COMMAND; --json and --help also after it):\n"
	    "  --socket PATH  the daemon's socket (default: $M8TES_SOCKET, "
	    "else\n"
	    "                 $XDG_RUNTIME_DIR/m8tes/m8tesd.sock, else "
	    "/run/m8tes/m8tesd.sock)\n"
	    "  --json         print JSON lines; the default when stdout is "
	    "not a terminal\n"
	    "  --timeout SEC  give up after SEC seconds (default: wait)\n"
	    "  -h, --help     help; COMMAND --help for a command's\n"
	    "  --version      print the version\n"
	    "\n"
	    "Commands:\n"
	    "  RESOURCE COMMAND [ARGS] [--param VALUE...]\n"
	    "                 call an API method, e.g. m8tes teammates get 7\n"
	    "  call METHOD [JSON | key=value | key:=JSON | key=@FILE ...]\n"
	    "                 call any method by its protocol name\n"
	    "  ping           round trip to the daemon\n"
	    "  hello          the daemon's version and capabilities, and who "
	    "you are to it\n"
	    "  describe [METHOD]\n"
	    "                 the daemon's own method table\n"
	    "  help [COMMAND...]\n"
	    "                 this help, or a command's\n"
	    "\n"
	    "Runs, live (text as it arrives, tool calls, the stop reason; on "
	    "a terminal,\n"
	    "permission requests and questions are asked and answered in "
	    "place):\n"
	    "  runs create [MESSAGE] [--message TEXT] [--teammate-id ID] "
	    "[--tools a,b]\n"
	    "              [--text-only]\n"
	    "  runs reply RUN_ID [MESSAGE]    tasks run TASK_ID\n"
	    "  runs watch RUN_ID [--after-seq N]\n"
	    "                 follow a run; re-attaches when it falls behind\n"
	    "  mate task [ID] MESSAGE\n"
	    "                 a teammate's run (default: your first "
	    "teammate)\n"
	    "  mate chat [ID] [--resume RUN_ID]\n"
	    "                 a conversation: each line is a turn\n"
	    "  runs download RUN_ID FILENAME [-o PATH]\n"
	    "                 a run's file, passed as a descriptor, with a "
	    "progress bar\n"
	    "\n"
	    "The daemon's own:\n"
	    "  webhooks listen [--events LIST] [--run-id N] [--after-seq N] "
	    "[--consumer NAME]\n"
	    "                  [--forward-to URL] [--exec CMD]\n"
	    "                 received webhooks as they come, like `stripe "
	    "listen`\n"
	    "  webhooks replay SEQ | --since TIME | --from SEQ [--to SEQ]\n"
	    "  webhooks ack CONSUMER SEQ\n"
	    "  auth login | status | logout\n"
	    "                 the daemon's API key: login reads it without "
	    "echo, or from stdin\n"
	    "  cache stats | clear [--resource NAME] [--prefix PATH]\n"
	    "  audit [--uid N] [--method GLOB] [--since TIME] [--limit N]\n"
	    "                 upstream calls made for local users\n"
	    "\n"
	    "Resources and their commands (aliases: mate, agent, teammate "
	    "for teammates;\n"
	    "task for tasks; run for runs):\n",
	    f);
	while (i < n) {
		const struct method *m = methods_at(i);
		size_t gl = group_len(m), j = i + 1;

		while (j < n && gl > 0 && group_len(methods_at(j)) == gl &&
		    strncmp(methods_at(j)->name, m->name, gl) == 0)
			j++;
		if (gl > 0)
			print_group(f, i, j, gl);
		i = j;
	}
	(void)fputs("\n"
	            "Exit status: 0 done; 1 API error; 2 usage or invalid "
	            "request; 3 not found;\n"
	            "4 authentication or permission; 5 rate limited; 6 "
	            "conflict; 7 billing;\n"
	            "8 run failed; 66 input file unreadable; 69 daemon "
	            "unreachable; 70 daemon\n"
	            "failure; 74 output error; 75 timeout; 76 bad reply from "
	            "the daemon.\n",
	    f);
}

void
cli_help_group(FILE *f, const char *group)
{
	char words[PROTO_MAX_METHOD + 1];
	size_t gl = strlen(group);

	(void)snprintf(words, sizeof(words), "%s", group);
	tr(words, '.', ' ');
	(void)fprintf(f,
	    "usage: m8tes %s COMMAND [ARGS] [--param VALUE...]\n\n"
	    "Commands (m8tes %s COMMAND --help for parameters):\n",
	    words, words);
	for (size_t i = 0; i < methods_count(); i++) {
		const struct method *m = methods_at(i);

		if (strncmp(m->name, group, gl) != 0 || m->name[gl] != '.' ||
		    strcmp(m->name, "cancel") == 0)
			continue;
		(void)snprintf(words, sizeof(words), "%s", m->name + gl + 1);
		tr(words, '.', ' ');
		tr(words, '_', '-');
		(void)fprintf(f, "  %-22s %s\n", words, m->summary);
	}
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++)
		if (strcmp(group, extra[i].group) == 0)
			(void)fprintf(f, "  %-22s %s\n", extra[i].verb,
			    extra[i].summary);
}

/* "usage: m8tes runs get RUN_ID [options]"; returns whether any ARG. */
static bool
print_usage(FILE *f, const struct method *m)
{
	char words[128], arg[PROTO_MAX_METHOD + 1];
	size_t col;
	bool any = false;

	cli_method_words(m, words, sizeof(words));
	(void)fprintf(f, "usage: m8tes %s", words);
	col = 12 + strlen(words);
	for (int pass = 0; pass < 2; pass++) {
		for (size_t i = 0; i < m->nparams; i++) {
			const struct method_param *p = &m->params[i];

			if (!(p->flags & PARAM_REQUIRED) ||
			    (pass == 0) != (p->loc == LOC_PATH))
				continue;
			(void)snprintf(arg, sizeof(arg), "%s", p->name);
			for (char *c = arg; *c != '\0'; c++)
				*c = (char)toupper((unsigned char)*c);
			(void)fprintf(f, " %s", arg);
			col += strlen(arg) + 1;
			any = true;
		}
	}
	(void)fprintf(f, "%s[options]\n\n", col > 60 ? "\n         " : " ");
	return any;
}

/* "--flag-name TEXT" or "--[no-]flag-name" for p. */
static void
option_text(const struct method_param *p, char *buf, size_t len)
{
	char flag[PROTO_MAX_METHOD + 3];

	cli_flag_name(p->name, flag, sizeof(flag));
	if (p->type == TYPE_BOOL)
		(void)snprintf(buf, len, "--[no-]%s", flag + 2);
	else
		(void)snprintf(buf, len, "%s %s", flag, metavar(p->type));
}

/* One line per parameter: option, type, location, notes. */
static void
print_params(FILE *f, const struct method *m)
{
	char opt[PROTO_MAX_METHOD + 16], notes[160];
	size_t fw = 0;

	for (size_t i = 0; i < m->nparams; i++) {
		option_text(&m->params[i], opt, sizeof(opt));
		if (strlen(opt) > fw)
			fw = strlen(opt);
	}
	if (m->nparams > 0)
		(void)fputs("\nParameters:\n", f);
	for (size_t i = 0; i < m->nparams; i++) {
		const struct method_param *p = &m->params[i];

		option_text(p, opt, sizeof(opt));
		(void)snprintf(notes, sizeof(notes), "%s%s%s%s",
		    p->flags & PARAM_REQUIRED ? " required" : "",
		    p->def != NULL ? " default " : "",
		    p->def != NULL ? p->def : "",
		    p->flags & PARAM_NULLABLE ? " (null resets)" : "");
		(void)fprintf(f, "  %-*s  %-7s  %-*s%s\n", (int)fw, opt,
		    type_short(p->type), notes[0] != '\0' ? 10 : 0,
		    p->loc == LOC_LOCAL ? "daemon" : method_loc_name(p->loc),
		    notes);
	}
}

void
cli_help_method(FILE *f, const struct method *m)
{
	bool any = print_usage(f, m);

	(void)fprintf(f, "%s.\n", m->summary);
	if (m->verb != VERB_NONE)
		(void)fprintf(f, "Method %s: %s %s, answers %s%s.\n", m->name,
		    method_verb_name(m->verb), m->path,
		    method_kind_name(m->kind),
		    m->handler == H_STREAM ? " after streaming events" : "");
	else
		(void)fprintf(f, "Method %s, answered by the daemon itself.\n",
		    m->name);
	if (any)
		(void)fputs("\nThe arguments fill the required parameters in "
		            "the order shown; each may\nalso be given as its "
		            "option.\n",
		    f);
	print_params(f, m);
	if (m->handler == H_STREAM)
		(void)fputs("\nStreams: text as it arrives, \"  TOOL\" per tool "
		            "call, \"  > RESULT\" per result,\nthe stop reason "
		            "at the end; --json prints the event lines and the "
		            "result.\nOn a terminal, a permission request is "
		            "shown and asked (\"allow? [y/N]\",\nor a question's "
		            "options); without one, m8tes prints the command "
		            "that\nanswers it (m8tes runs approve RUN REQ allow). "
		            "A client that falls behind\nre-attaches with runs "
		            "stream by itself.\n",
		    f);
	(void)fputs("\nOptions:\n", f);
	if (m->handler == H_DOWNLOAD)
		(void)fputs("  -o, --output FILE  write the file there (\"-\": "
		            "stdout); on a terminal the\n"
		            "                     default is a new file named "
		            "FILENAME here\n",
		    f);
	(void)fputs("  --json             print JSON lines\n"
	            "  -h, --help         this help\n"
	            "\nValues: integers and numbers as digits; booleans as "
	            "--flag, --no-flag or\n--flag=true|false; ids as digits "
	            "or text; arrays as a comma list (a,b) or\nJSON; objects "
	            "as JSON; \"null\" for a parameter that null resets.\n",
	    f);
}

void
cli_help_builtin(FILE *f, const char *cmd)
{
	if (strcmp(cmd, "call") == 0) {
		(void)fputs(
		    "usage: m8tes call METHOD [JSON | key=value | key:=JSON | "
		    "key=@FILE ...]\n"
		    "\n"
		    "Calls METHOD (a protocol name such as teammates.list) "
		    "with "
		    "the params given:\n"
		    "  JSON        a JSON object; its members are merged in\n"
		    "  key=value   a JSON number, true, false, null, object or "
		    "array when value\n"
		    "              parses as one (limit=5, "
		    "tools='[\"gmail\"]'), "
		    "else a string;\n"
		    "              parameters the method table types as "
		    "strings stay strings\n"
		    "  key:=JSON   value is JSON, always (name:='\"42\"')\n"
		    "  key=@FILE   the file's text as a string; @- reads "
		    "stdin\n"
		    "A later key replaces an earlier one. Known methods are "
		    "checked before\n"
		    "sending; other names are sent as they are.\n",
		    f);
	} else if (strcmp(cmd, "describe") == 0) {
		(void)fputs(
		    "usage: m8tes describe [METHOD]\n\n"
		    "Asks the daemon for its method table, or for one method "
		    "(teammates.list or\n"
		    "teammates list).\n",
		    f);
	} else if (strcmp(cmd, "ping") == 0) {
		(void)fputs(
		    "usage: m8tes ping\n\nOne round trip to the daemon.\n", f);
	} else {
		(void)fputs(
		    "usage: m8tes hello\n\nThe daemon's protocol and version, "
		    "its capabilities and limits, and\nthe identity it sees "
		    "for you.\n",
		    f);
	}
}

/* The texts of cli_cmd's commands, by kind. */
static const struct {
	enum cli_cmd_kind kind;
	const char *text;
} cmd_help[] = {
    {CLI_CMD_WATCH,
        "usage: m8tes runs watch RUN_ID [--after-seq N] [--text-only] "
        "[--json]\n"
        "\n"
        "Follows a run's event stream (runs.stream) live: text as it "
        "arrives, tool\n"
        "calls and their results, the stop reason. The daemon first "
        "replays what the\n"
        "run did so far; --after-seq N starts after event N. When this "
        "client falls\n"
        "behind, it re-attaches after the last event it saw, by itself. "
        "Permission\n"
        "requests are asked on a terminal, as for runs create.\n"},
    {CLI_CMD_DOWNLOAD,
        "usage: m8tes runs download RUN_ID FILENAME [-o PATH] [--json]\n"
        "\n"
        "Downloads a file a run produced. The daemon passes it as an open "
        "descriptor,\n"
        "so no byte of it crosses the socket as base64; an older daemon "
        "sends chunks\n"
        "or one base64 answer instead. The size is checked, a progress "
        "bar shows when\n"
        "stderr is a terminal, and the file is written under a temporary "
        "name and\n"
        "renamed into place, so a failed download leaves nothing.\n"
        "\n"
        "  -o, --output PATH  write there (\"-\": stdout); default: a new "
        "file FILENAME\n"
        "                     here, never replacing one\n"
        "  --json             print {\"path\",\"size\",\"sha256\",...} "
        "when done\n"
        "\n"
        "runs download-file is the plain method: the whole file in one "
        "base64 answer.\n"},
    {CLI_CMD_MATE_TASK,
        "usage: m8tes mate task [ID] MESSAGE [runs create options]\n"
        "\n"
        "Runs MESSAGE with teammate ID (default: your first teammate) and "
        "streams the\n"
        "answer live, as `m8tes runs create --teammate-id ID --message "
        "MESSAGE` does.\n"
        "The options of runs create apply: --tools a,b, --text-only, "
        "--human-in-the-loop,\n"
        "--permission-mode MODE, ... (see m8tes runs create --help). "
        "Aliases: mate,\n"
        "agent, teammate; t for task.\n"},
    {CLI_CMD_MATE_CHAT,
        "usage: m8tes mate chat [ID] [--resume RUN_ID] [runs create "
        "options]\n"
        "\n"
        "A conversation with teammate ID (default: your first teammate). "
        "Each line is a\n"
        "turn: the first starts a run (runs create), later ones reply to "
        "it (runs\n"
        "reply), and the answer streams back. On a terminal the prompt is "
        "\"you> \";\n"
        "with stdin not a terminal each input line is a turn, without "
        "prompts.\n"
        "\n"
        "  /new            start a new run with the next line\n"
        "  /resume RUN_ID  reply to that run from now on\n"
        "  /exit, Ctrl-D   end the chat\n"
        "  --resume RUN_ID start by replying to that run\n"},
    {CLI_CMD_LISTEN,
        "usage: m8tes webhooks listen [--events LIST] [--run-id N] "
        "[--after-seq N]\n"
        "           [--consumer NAME] [--forward-to URL] [--exec CMD] "
        "[--json]\n"
        "\n"
        "Prints the webhooks the daemon receives as they come: one line "
        "each (time,\n"
        "seq, event, run) on a terminal, their JSON otherwise. Runs until "
        "interrupted.\n"
        "\n"
        "  --events LIST     only these events: globs, comma-separated "
        "(run.*)\n"
        "  --run-id N        only webhooks about run N\n"
        "  --after-seq N     first the stored webhooks after seq N\n"
        "  --consumer NAME   a durable cursor: start where NAME stopped "
        "and acknowledge\n"
        "                    (webhooks ack) each webhook once handled\n"
        "  --forward-to URL  POST each payload to URL "
        "(http://host:port/path, no TLS,\n"
        "                    10 s); a 2xx answer is success\n"
        "  --exec CMD        run sh -c CMD per webhook with the payload on "
        "stdin and\n"
        "                    M8TES_EVENT, M8TES_SEQ, M8TES_RUN_ID, "
        "M8TES_WEBHOOK_ID and\n"
        "                    M8TES_REPLAYED set; exit 0 is success\n"
        "\n"
        "With --consumer, a failed --forward-to or --exec stops the "
        "acknowledgements,\n"
        "so the next listen as that consumer starts again at the failed "
        "webhook.\n"},
    {CLI_CMD_REPLAY,
        "usage: m8tes webhooks replay SEQ\n"
        "       m8tes webhooks replay --since TIME\n"
        "       m8tes webhooks replay --from SEQ [--to SEQ]\n"
        "\n"
        "Delivers stored webhooks to the listeners again, marked replayed. "
        "TIME is Unix\n"
        "seconds, a span ago (30s, 10m, 2h, 1d, 1w) or a UTC date "
        "(2025-01-31 or\n"
        "2025-01-31T09:00:00Z).\n"},
    {CLI_CMD_LOGIN,
        "usage: m8tes auth login\n"
        "\n"
        "Reads an API key from the terminal (not echoed) or, when stdin is "
        "not a\n"
        "terminal, from its first line; the daemon checks it upstream, "
        "stores it (0600)\n"
        "and uses it from then on. The key is never an argument, so it "
        "stays out of\n"
        "shell histories and process lists. Needs the daemon's admin (root "
        "or its user).\n"},
    {CLI_CMD_AUTH_STATUS,
        "usage: m8tes auth status\n"
        "\n"
        "Where the daemon's key comes from (file, credentials, env, login "
        "or none) and\n"
        "its fingerprint; never the key.\n"},
    {CLI_CMD_LOGOUT,
        "usage: m8tes auth logout\n"
        "\n"
        "Has the daemon forget the stored key and wipe it from memory. "
        "Needs the\n"
        "daemon's admin.\n"},
    {CLI_CMD_CACHE_STATS,
        "usage: m8tes cache stats\n"
        "\n"
        "Entries, bytes, files and the hit ratio of the daemon's cache.\n"},
    {CLI_CMD_CACHE_CLEAR,
        "usage: m8tes cache clear [--resource NAME] [--prefix PATH]\n"
        "\n"
        "Drops cached answers: all of them, one resource's (teammates, "
        "runs, ...) or\n"
        "those below an API path (/agents/7). Needs the daemon's admin.\n"},
    {CLI_CMD_AUDIT,
        "usage: m8tes audit [--uid N] [--method GLOB] [--since TIME] "
        "[--limit N] [--json]\n"
        "\n"
        "The upstream calls the daemon made for local users, newest first: "
        "time, uid,\n"
        "pid, command, method, HTTP status, duration. TIME as for webhooks "
        "replay.\n"
        "Needs the daemon's admin.\n"},
};

void
cli_help_cmd(FILE *f, enum cli_cmd_kind kind)
{
	for (size_t i = 0; i < sizeof(cmd_help) / sizeof(cmd_help[0]); i++) {
		if (cmd_help[i].kind == kind) {
			(void)fputs(cmd_help[i].text, f);
			return;
		}
	}
}

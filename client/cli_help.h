/*
 * SPDX-License-Identifier: MIT
 *
 * The m8tes help texts, generated from the method table: the command list,
 * a group's commands and one method's parameters with their types,
 * locations and required flags; and the texts of the commands that are
 * more than one method (cli_cmd). Prints only; owns nothing.
 */
#ifndef M8_CLI_HELP_H
#define M8_CLI_HELP_H

#include <stdio.h>

#include "cli_cmd.h"

struct method;

/* "m8tes --help": usage, options, commands, resources, exit status. */
void cli_help_main(FILE *f);

/* The commands below group ("tasks", "tasks.triggers"). */
void cli_help_group(FILE *f, const char *group);

/* One method: usage line, summary, arguments, every parameter. */
void cli_help_method(FILE *f, const struct method *m);

/* Usage of a built-in command: "call", "ping", "hello", "describe". */
void cli_help_builtin(FILE *f, const char *cmd);

/* Usage, options and behaviour of one of cli_cmd's commands. */
void cli_help_cmd(FILE *f, enum cli_cmd_kind kind);

#endif

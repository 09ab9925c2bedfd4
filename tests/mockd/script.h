/*
 * SPDX-License-Identifier: MIT
 *
 * The run script compiler: message markers in, a list of run actions out.
 * Pure apart from reading store.run_steps; runs.c executes the result.
 *
 * Markers (anywhere in the message, several allowed):
 *   [fail] [fail:TYPE] [soft_fail[:CODE]] [cancelled] [error] [approval]
 *   [question] [plan] [autocontinue] [invalid] [unknown] [fields]
 *   [split] [crlf] [cr] [keepalive] [multiline] [nodone] [doneonly]
 *   [bracketonly] [drop:N] [stall] [stall:MS] [slow:MS] [long:N] [stamp]
 *   [native]
 */
#ifndef MOCKD_SCRIPT_H
#define MOCKD_SCRIPT_H

#include "runs.h"

/* Parse the markers of message into ret (zeroed first). */
void script_marks(const char *message, struct run_marks *ret);

/* Compile run->message and run->m into run->acts; 0 or -ENOMEM. */
int script_build(struct run *run);

/* Free run->acts. */
void script_free(struct run *run);

/* The final output text of the current turn (malloc'ed), NULL on ENOMEM. */
char *script_output(const struct run *run);

#endif

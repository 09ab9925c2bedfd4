/*
 * SPDX-License-Identifier: MIT
 *
 * Runs and their state machine. A turn (a create or a reply) compiles the
 * message's markers ("[approval]", "[fail:TYPE]", "[slow:50]" …) into a
 * script of actions: events to emit, step boundaries, approval gates and
 * the terminal transition. A polled run executes one step per GET; a
 * streamed run has a driver thread that executes the script with delays,
 * so the run's status always agrees with the events it has logged. Every
 * function here needs the store lock held.
 */
#ifndef MOCKD_RUNS_H
#define MOCKD_RUNS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

#define RUNS_MAX 100000             /* runs kept; older finished ones go */
#define RUNS_DEFAULT_STALL_MS 30000 /* "[stall]" without a duration */

enum run_ev_kind {
	RUN_EV_DATA,    /* "data:" frame; '\n' in text = more lines */
	RUN_EV_COMMENT, /* a ':' comment line (keep-alive) */
	RUN_EV_PARTIAL, /* raw bytes, no frame end, then EOF */
};

struct run_event {
	enum run_ev_kind kind;
	char *text;
};

enum run_act_kind {
	RUN_ACT_EMIT,  /* append an event */
	RUN_ACT_STEP,  /* a polled run stops here until the next GET */
	RUN_ACT_GATE,  /* open an approval/question and wait */
	RUN_ACT_END,   /* the terminal transition */
	RUN_ACT_STALL, /* a streamed run goes quiet for ms */
};

struct run_act {
	enum run_act_kind kind;
	enum run_ev_kind ev; /* EMIT */
	char *text;          /* EMIT payload; GATE/END kind name */
	unsigned int ms;     /* STALL */
};

/* What the markers in a message ask for. */
struct run_marks {
	char fail[48];      /* failure type, "" = none */
	char soft_fail[48]; /* completed with this error_code */
	bool approval, question, plan, autocontinue;
	bool error, cancelled, invalid, unknown, fields;
	bool split, crlf, cr, keepalive, multiline;
	bool nodone, doneonly, bracketonly;
	bool stamp; /* "t_us" (CLOCK_MONOTONIC) in each frame as it is sent */
	bool native; /* text and tool call as Claude-native frames */
	unsigned int drop; /* frames before the first cut, 0 none */
	unsigned int stall_ms;
	unsigned int slow_ms;
	unsigned int long_n;
};

struct run {
	TAILQ_ENTRY(run) entry;
	long long id;
	cJSON *obj;      /* the Run object as served */
	cJSON *perms;    /* PermissionRequest array */
	cJSON *messages; /* RunMessage array */
	char *message;   /* this turn's message */
	struct run_marks m;
	struct run_act *acts;
	size_t nacts, actcap, pc;
	struct run_event *ev;
	size_t nev, evcap;
	size_t ev_base;    /* first event of this turn */
	unsigned int turn; /* bumped by turns and cancel */
	unsigned int refs;
	unsigned int gates; /* permission requests so far */
	bool gate_open;
	bool denied;     /* a tool use was denied */
	bool driven;     /* a driver thread owns it */
	bool dead;       /* removed by a reset */
	bool files;      /* report.csv, chart.png exist */
	bool origin_cut; /* the [drop:N] cut happened */
};

/*
 * A new run with the Run object's defaults, in the store's list (one
 * reference held by the list). The caller fills teammate_id and friends,
 * then calls runs_turn(). NULL on ENOMEM.
 */
struct run *runs_new(void);

/*
 * Start a turn with message: compile the markers, reset the transient
 * fields, and either run the prelude (polled) or start a driver thread
 * (stream). Returns 0 or -ENOMEM / -EAGAIN.
 */
int runs_turn(struct run *run, const char *message, bool stream);

/* Execute one polling step (a GET of the run). */
void runs_advance(struct run *run);

/* Cancel: status cancelled, gates cancelled, a "cancelled" event. */
int runs_cancel(struct run *run);

/*
 * Resolve the open gate whose PermissionRequest is perm with status
 * ("allowed", "denied", "answered") and resume the run.
 */
int
runs_resolve(struct run *run, cJSON *perm, const char *status, bool remember);

struct run *runs_find(long long id);
void runs_ref(struct run *run);
void runs_unref(struct run *run);

/* Remove every run (a reset). */
void runs_clear(void);

/* Remove every run and free the file contents (exit). */
void runs_done(void);

const char *runs_status(const struct run *run);
bool runs_terminal(const struct run *run);

/* Whether events may still be appended in the current turn. */
bool runs_live(const struct run *run);

/* The content of file name of a completed run, or NULL. */
const void *runs_file(const struct run *run, const char *name, size_t *ret_len,
    const char **ret_ctype);

/* The names of the files of a run, NULL-terminated. */
extern const char *const runs_file_names[];

#endif

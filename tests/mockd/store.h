/*
 * SPDX-License-Identifier: MIT
 *
 * The mock's whole state: one global struct guarded by one mutex, and the
 * condition variable that wakes streams and run drivers. Objects are cJSON
 * trees in per-collection arrays (ascending id); keys starting with '_' are
 * private and never served. Runs live in runs.c and are listed here.
 */
#ifndef MOCKD_STORE_H
#define MOCKD_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include <cjson/cJSON.h>

struct run;

struct store {
	pthread_mutex_t mtx;
	pthread_cond_t cond; /* broadcast on every state change */
	bool stopping;       /* the process is shutting down */

	/* Configuration from the command line and /__mock/config. */
	const char *api_key;
	int run_steps;     /* GETs until a polled run ends */
	int cli_run_steps; /* --run-steps, restored by a reset */
	bool strict;       /* --strict: default of the setting */
	bool verbose;
	bool triggers_data; /* task triggers list as {data} */

	cJSON *agents;
	cJSON *tasks;
	cJSON *triggers; /* all task triggers, "_task_id" set */
	cJSON *memories;
	cJSON *policies;
	cJSON *users;
	cJSON *webhooks;
	cJSON *deliveries;
	cJSON *connections; /* app connections */
	cJSON *settings;
	cJSON *idem;                    /* Idempotency-Key -> run id */
	TAILQ_HEAD(run_list, run) runs; /* ascending id */
	unsigned int nruns;

	long long seq_agent, seq_task, seq_trigger, seq_memory;
	long long seq_policy, seq_user, seq_webhook, seq_delivery;
	long long seq_run, seq_conn, seq_msg;
	uint64_t seq_req;

	unsigned int drivers; /* run driver threads alive */
};

extern struct store store;

/* Set up the lock and empty collections; 0 or -ENOMEM. */
int store_init(void);

/* Drop every object and start over (the lock must be held). */
int store_reset(void);

/* Free everything at exit (no threads may be left). */
void store_done(void);

void store_lock(void);
void store_unlock(void);
void store_broadcast(void);

/*
 * Wait on the condition for at most ms milliseconds (the lock held).
 * Returns true when the deadline passed.
 */
bool store_wait(uint64_t deadline_ms);

/* Sleep ms milliseconds without the lock, ending early on shutdown. */
void store_sleep(unsigned int ms);

/* A copy of o without its private '_' keys; NULL on ENOMEM. */
cJSON *store_public(const cJSON *o);

/* Whether strict end-user mode is on (settings.require_end_user_id). */
bool store_strict(void);

/* A fresh "req_…" id into buf (at least 24 bytes). */
void store_request_id(char *buf, size_t len);

#endif

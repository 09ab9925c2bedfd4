/*
 * SPDX-License-Identifier: MIT
 *
 * The global state and its lock. Every request handler runs with the lock
 * held; streams and run drivers wait on the one condition variable, which
 * is broadcast whenever a run changes. Sleeps wait on the same condition so
 * shutdown ends them at once.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "inspect.h"
#include "json.h"
#include "runs.h"
#include "store.h"
#include "util.h"

struct store store = {
    .mtx = PTHREAD_MUTEX_INITIALIZER,
    .run_steps = 2,
    .cli_run_steps = 2,
};

static const char settings_template[] =
    "{\"per_end_user_run_limit\":null,\"per_end_user_cost_limit_cents\":null,"
    "\"per_end_user_rate_per_minute\":null,\"retention_mode\":\"standard\","
    "\"require_end_user_id\":false}";

static void
collections_free(void)
{
	cJSON **all[] = {&store.agents, &store.tasks, &store.triggers,
	    &store.memories, &store.policies, &store.users, &store.webhooks,
	    &store.deliveries, &store.connections, &store.settings,
	    &store.idem};

	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		cJSON_Delete(*all[i]);
		*all[i] = NULL;
	}
}

static int
collections_new(void)
{
	cJSON **arrays[] = {&store.agents, &store.tasks, &store.triggers,
	    &store.memories, &store.policies, &store.users, &store.webhooks,
	    &store.deliveries, &store.connections};

	for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
		*arrays[i] = cJSON_CreateArray();
		if (*arrays[i] == NULL)
			return -ENOMEM;
	}
	store.idem = cJSON_CreateObject();
	store.settings = json_template(settings_template);
	if (store.idem == NULL || store.settings == NULL)
		return -ENOMEM;
	return json_set_bool(store.settings, "require_end_user_id",
	    store.strict);
}

int
store_init(void)
{
	pthread_condattr_t ca;

	if (pthread_condattr_init(&ca) != 0)
		return -ENOMEM;
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&store.cond, &ca) != 0) {
		(void)pthread_condattr_destroy(&ca);
		return -ENOMEM;
	}
	(void)pthread_condattr_destroy(&ca);
	TAILQ_INIT(&store.runs);
	return collections_new();
}

int
store_reset(void)
{
	runs_clear();
	collections_free();
	inspect_clear();
	store.seq_agent = store.seq_task = store.seq_trigger = 0;
	store.seq_memory = store.seq_policy = store.seq_user = 0;
	store.seq_webhook = store.seq_delivery = store.seq_run = 0;
	store.seq_conn = store.seq_msg = 0;
	store.triggers_data = false;
	store.run_steps = store.cli_run_steps;
	store_broadcast();
	return collections_new();
}

void
store_done(void)
{
	runs_done();
	collections_free();
	(void)pthread_cond_destroy(&store.cond);
}

void
store_lock(void)
{
	(void)pthread_mutex_lock(&store.mtx);
}

void
store_unlock(void)
{
	(void)pthread_mutex_unlock(&store.mtx);
}

void
store_broadcast(void)
{
	(void)pthread_cond_broadcast(&store.cond);
}

bool
store_wait(uint64_t deadline_ms)
{
	struct timespec ts;

	if (util_now_ms() >= deadline_ms)
		return true;
	ts.tv_sec = (time_t)(deadline_ms / 1000);
	ts.tv_nsec = (long)(deadline_ms % 1000) * 1000000;
	(void)pthread_cond_timedwait(&store.cond, &store.mtx, &ts);
	return util_now_ms() >= deadline_ms;
}

void
store_sleep(unsigned int ms)
{
	uint64_t deadline = util_now_ms() + ms;

	store_lock();
	while (!store.stopping && !store_wait(deadline))
		;
	store_unlock();
}

cJSON *
store_public(const cJSON *o)
{
	cJSON *c = cJSON_Duplicate(o, 1), *it, *next;

	if (c == NULL)
		return NULL;
	for (it = c->child; it != NULL; it = next) {
		next = it->next;
		if (it->string != NULL && it->string[0] == '_')
			cJSON_Delete(cJSON_DetachItemViaPointer(c, it));
	}
	return c;
}

bool
store_strict(void)
{
	return cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(store.settings,
	    "require_end_user_id"));
}

void
store_request_id(char *buf, size_t len)
{
	char rnd[13];
	uint64_t n;

	util_randhex(rnd, 12);
	store_lock();
	n = ++store.seq_req;
	store_unlock();
	(void)snprintf(buf, len, "req_%s%06llx", rnd,
	    (unsigned long long)(n & 0xffffff));
}

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# tasks.* and tasks.triggers.*: every method through the real client, the
# reply and the exact wire request. user_id in the body on create, in the
# query elsewhere, in both on triggers.create; schedule with cron and
# timezone, webhook triggers with a url, email triggers with an address;
# triggers listed as a bare array or {data}.
. "$(dirname "$0")/lib.sh"

start_mock
start_daemon
# A teammate in the u1 scope to hang the tasks on (set-up, not under test).
mock_post /agents/ '{"name":"Ops Mate","user_id":"u1"}' >/dev/null

# ---- create ---------------------------------------------------------------
rpc_ok "tasks.create (schedule)" tasks.create '{"teammate_id":1,
    "instructions":"Send the weekly recap","name":"Weekly recap",
    "tools":["gmail"],"user_id":"u1","email_notifications":true,
    "webhook":false,"schedule":"0 9 * * 1","enable_lessons":false,
    "model":null}'
wire "tasks.create (schedule)" POST /tasks/ "" '{"teammate_id":1,
    "instructions":"Send the weekly recap","name":"Weekly recap",
    "tools":["gmail"],"user_id":"u1","enable_lessons":false,
    "schedule":"0 9 * * 1","schedule_timezone":"UTC"}'
jqt "tasks.create (schedule): reply" "$OUT" \
    '.id == 1 and .teammate_id == 1 and .user_id == "u1" and
     .instructions == "Send the weekly recap" and .name == "Weekly recap" and
     .enable_lessons == false and .email_notifications == true'

rpc_ok "tasks.create (flags)" tasks.create '{"teammate_id":"1",
    "instructions":"Triage the inbox","user_id":"u1",
    "email_notifications":false,"webhook":true,
    "schedule_timezone":"Europe/Paris"}'
wire "tasks.create (flags)" POST /tasks/ "" '{"teammate_id":"1",
    "instructions":"Triage the inbox","user_id":"u1",
    "email_notifications":false,"webhook":true}'
jqt "tasks.create (flags): reply with the live webhook URL" "$OUT" \
    '.id == 2 and .email_notifications == false and .webhook_enabled == true
     and (.webhook_url | test("^https://api\\.m8tes\\.ai/api/v1/webhooks/tasks/2/whk_[0-9a-f]{24}$"))'

rpc_ok "tasks.create (schedule with timezone)" tasks.create '{"teammate_id":1,
    "instructions":"Morning digest","user_id":"u1","schedule":"30 7 * * *",
    "schedule_timezone":"America/New_York"}'
wire "tasks.create (schedule with timezone)" POST /tasks/ "" '{"teammate_id":1,
    "instructions":"Morning digest","user_id":"u1","schedule":"30 7 * * *",
    "schedule_timezone":"America/New_York"}'

out=$(call tasks.create '{"instructions":"No teammate"}')
jqt "tasks.create without teammate_id: m8tesd.invalid_params" "$out" \
    '.error.code == "m8tesd.invalid_params"'

# ---- get / update / delete ----------------------------------------------------
rpc_ok "tasks.get" tasks.get '{"task_id":1,"user_id":"u1"}'
wire "tasks.get" GET /tasks/1 "user_id=u1" ""
jqt "tasks.get: reply" "$OUT" '.id == 1 and .name == "Weekly recap"'

rpc_ok "tasks.update" tasks.update '{"task_id":1,"user_id":"u1",
    "status":"disabled","model":null,"effort":null,"enable_memory":null,
    "enable_feedback":false,"name":null,"goals":"Be brief"}'
wire "tasks.update" PATCH /tasks/1 "user_id=u1" '{"status":"disabled",
    "model":null,"effort":null,"enable_memory":null,"enable_feedback":false,
    "goals":"Be brief"}'
jqt "tasks.update: reply" "$OUT" '.id == 1 and .status == "disabled" and
    .model == null and .enable_memory == null and .enable_feedback == false and
    .goals == "Be brief" and .name == "Weekly recap"'

rpc_ok "tasks.delete" tasks.delete '{"task_id":3,"user_id":"u1"}'
wire "tasks.delete" DELETE /tasks/3 "user_id=u1" ""
jeq "tasks.delete: reply" "$OUT" '{"ok":true}'

# ---- list -----------------------------------------------------------------------
rpc_ok "tasks.list page 1" tasks.list '{"teammate_id":1,"user_id":"u1",
    "include_archived":true,"limit":2}'
wire "tasks.list page 1" GET /tasks/ \
    "teammate_id=1&user_id=u1&include_archived=true&limit=2" ""
jqt "tasks.list page 1: reply" "$OUT" \
    '[.data[].id] == [3,2] and .has_more == true and
     .next_starting_after == 2'
rpc_ok "tasks.list page 2" tasks.list '{"teammate_id":1,"user_id":"u1",
    "include_archived":true,"limit":2,"starting_after":2}'
wire "tasks.list page 2" GET /tasks/ \
    "teammate_id=1&user_id=u1&include_archived=true&limit=2&starting_after=2" ""
jqt "tasks.list page 2: reply" "$OUT" \
    '[.data[].id] == [1] and .has_more == false and
     .next_starting_after == null'
rpc_ok "tasks.list (no archived)" tasks.list \
    '{"user_id":"u1","include_archived":false}'
wire "tasks.list (no archived)" GET /tasks/ "user_id=u1" ""
jqt "tasks.list (no archived): reply" "$OUT" '[.data[].id] == [2,1]'

# ---- triggers.create: user_id in the body AND the query -------------------------
rpc_ok "tasks.triggers.create (cron)" tasks.triggers.create '{"task_id":2,
    "type":"schedule","cron":"0 9 * * 1","timezone":"America/New_York",
    "user_id":"u1","interval_seconds":0,"run_at":""}'
wire "tasks.triggers.create (cron)" POST /tasks/2/triggers/ "user_id=u1" \
    '{"type":"schedule","timezone":"America/New_York","cron":"0 9 * * 1",
      "user_id":"u1"}'
jqt "tasks.triggers.create (cron): reply" "$OUT" \
    '(.id | test("^schedule_[0-9]+$")) and .type == "schedule" and
     .cron == "0 9 * * 1" and .timezone == "America/New_York" and
     .task_id == 2'
sched=$(printf '%s' "$OUT" | jq -r .id)

rpc_ok "tasks.triggers.create (interval, default timezone)" \
    tasks.triggers.create '{"task_id":2,"type":"schedule",
    "interval_seconds":3600,"user_id":"u1"}'
wire "tasks.triggers.create (interval, default timezone)" POST \
    /tasks/2/triggers/ "user_id=u1" \
    '{"type":"schedule","timezone":"UTC","interval_seconds":3600,"user_id":"u1"}'
jqt "tasks.triggers.create (interval): reply" "$OUT" \
    '.type == "schedule" and .interval_seconds == 3600 and .timezone == "UTC"'

rpc_ok "tasks.triggers.create (webhook)" tasks.triggers.create \
    '{"task_id":2,"type":"webhook","user_id":"u1"}'
wire "tasks.triggers.create (webhook)" POST /tasks/2/triggers/ "user_id=u1" \
    '{"type":"webhook","timezone":"UTC","user_id":"u1"}'
jqt "tasks.triggers.create (webhook): reply with url" "$OUT" \
    '.id == "webhook" and .type == "webhook" and
     (.url | test("^https://api\\.m8tes\\.ai/api/v1/webhooks/tasks/2/whk_[0-9a-f]{24}$"))'

rpc_ok "tasks.triggers.create (email)" tasks.triggers.create \
    '{"task_id":2,"type":"email","user_id":"u1","allowed_senders":["a@b.c"]}'
wire "tasks.triggers.create (email)" POST /tasks/2/triggers/ "user_id=u1" \
    '{"type":"email","timezone":"UTC","user_id":"u1","allowed_senders":["a@b.c"]}'
jqt "tasks.triggers.create (email): reply with address" "$OUT" \
    '.id == "email" and .type == "email" and
     .allowed_senders == ["a@b.c"] and
     (.address | test("^task-2-[0-9a-f]+@notifications\\.m8tes\\.ai$"))'

# Account scope: an empty user_id is not truthy, so it goes nowhere.
mock_post /tasks/ '{"teammate_id":1,"instructions":"x","user_id":"u1"}' \
    >/dev/null # task 4, u1
mock_post /agents/ '{"name":"Acct"}' >/dev/null # teammate 2, account
mock_post /tasks/ '{"teammate_id":2,"instructions":"acct"}' >/dev/null # 5
rpc_ok "tasks.triggers.create (account scope)" tasks.triggers.create \
    '{"task_id":5,"type":"schedule","run_at":"2099-01-01T09:00:00Z",
      "user_id":""}'
wire "tasks.triggers.create (account scope)" POST /tasks/5/triggers/ "" \
    '{"type":"schedule","timezone":"UTC","run_at":"2099-01-01T09:00:00Z"}'

# ---- triggers.list: a bare array, or {data} normalised to the array ----------
rpc_ok "tasks.triggers.list" tasks.triggers.list '{"task_id":2,"user_id":"u1"}'
wire "tasks.triggers.list" GET /tasks/2/triggers/ "user_id=u1" ""
jqt "tasks.triggers.list: the four triggers" "$OUT" \
    'type == "array" and ([.[].type] | sort) ==
     ["email","schedule","schedule","webhook"]'
arr=$OUT
mock_config '{"triggers_list":"data"}'
rpc_ok "tasks.triggers.list ({data} upstream)" tasks.triggers.list \
    '{"task_id":2,"user_id":"u1","cache":"bypass"}'
wire "tasks.triggers.list ({data} upstream)" GET /tasks/2/triggers/ \
    "user_id=u1" ""
jeq "tasks.triggers.list ({data} upstream): the same array" "$OUT" "$arr"
mock_config '{"triggers_list":"array"}'

# ---- triggers.delete -------------------------------------------------------------
rpc_ok "tasks.triggers.delete" tasks.triggers.delete \
    "{\"task_id\":2,\"trigger_id\":\"$sched\",\"user_id\":\"u1\"}"
wire "tasks.triggers.delete" DELETE "/tasks/2/triggers/$sched" "user_id=u1" ""
jeq "tasks.triggers.delete: reply" "$OUT" '{"ok":true}'
left=$(mock_get '/tasks/2/triggers/?user_id=u1' | jq -c '[.[].id] | sort')
check "tasks.triggers.delete: the trigger is gone upstream" \
    test "$(jq -c "index(\"$sched\")" <<<"$left")" = null

check_daemon_end
finish

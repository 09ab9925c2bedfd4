#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# teammates.*: every method through the real client, asserting the reply
# and the exact request the mock recorded (method, raw path, query,
# headers, body); user_id in the body on create and in the query
# elsewhere; PATCH nulls; flags sent only when true; a two-page list.
. "$(dirname "$0")/lib.sh"

start_mock
start_daemon

# ---- create -------------------------------------------------------------
rpc_ok "teammates.create" teammates.create '{"name":"Ops Mate",
    "instructions":"Handle ops requests end to end.","tools":["gmail"],
    "user_id":"u1","metadata":{"team":"ops"},"webhook":true,
    "email_inbox":false,"inbound_slack_enabled":false,
    "enable_memory":false,"model":null}'
wire "teammates.create" POST /agents/ "" '{"name":"Ops Mate",
    "instructions":"Handle ops requests end to end.","tools":["gmail"],
    "user_id":"u1","metadata":{"team":"ops"},"webhook":true,
    "enable_memory":false}'
jqt "teammates.create: reply is the teammate" "$OUT" \
    '.id == 1 and .name == "Ops Mate" and .user_id == "u1" and
     .tools == ["gmail"] and .metadata == {"team":"ops"} and
     .enable_memory == false and .webhook_enabled == true and
     (.webhook_url | test("^https://api\\.m8tes\\.ai/api/v1/webhooks/mates/1/whk_[0-9a-f]{24}$"))'

rpc_ok "teammates.create (email_inbox, account scope)" teammates.create \
    '{"name":"Inbox Mate","email_inbox":true,"webhook":false}'
wire "teammates.create (email_inbox, account scope)" POST /agents/ "" \
    '{"name":"Inbox Mate","email_inbox":true}'
jqt "teammates.create (email_inbox): reply has the inbox" "$OUT" \
    '.id == 2 and .user_id == null and .inbound_email_enabled == true and
     (.email_address | test("^mate-2-[0-9a-f]+@notifications\\.m8tes\\.ai$"))'

# ---- get ------------------------------------------------------------------
rpc_ok "teammates.get" teammates.get '{"teammate_id":1,"user_id":"u1"}'
wire "teammates.get" GET /agents/1 "user_id=u1" ""
jqt "teammates.get: reply, webhook URL masked on reads" "$OUT" \
    '.id == 1 and .name == "Ops Mate" and
     (.webhook_url | test("/whk_[0-9a-f]{2}\\*\\*\\*\\*$"))'

rpc_ok "teammates.get (agent_id alias, string id)" teammates.get \
    '{"agent_id":"2"}'
wire "teammates.get (agent_id alias, string id)" GET /agents/2 "" ""
jqt "teammates.get (alias): reply" "$OUT" '.id == 2 and .name == "Inbox Mate"'

# ---- update: nullable fields are sent as null, the others never --------
rpc_ok "teammates.update" teammates.update '{"teammate_id":1,"user_id":"u1",
    "name":"Ops Mate 2","model":null,"effort":null,"display_order":null,
    "enable_memory":null,"prompt_profile":null,"disabled_builtin_tools":null,
    "role":null,"instructions":null,"visibility":"organization"}'
wire "teammates.update" PATCH /agents/1 "user_id=u1" '{"name":"Ops Mate 2",
    "model":null,"effort":null,"display_order":null,"enable_memory":null,
    "prompt_profile":null,"disabled_builtin_tools":null,
    "visibility":"organization"}'
jqt "teammates.update: reply (nulls reset to defaults)" "$OUT" \
    '.id == 1 and .name == "Ops Mate 2" and .model == null and
     .enable_memory == true and .prompt_profile == "platform" and
     .visibility == "organization" and
     .instructions == "Handle ops requests end to end."'

# ---- enable_webhook / enable_email_inbox -----------------------------------
rpc_ok "teammates.enable_webhook" teammates.enable_webhook \
    '{"teammate_id":1,"user_id":"u1"}'
wire "teammates.enable_webhook" POST /agents/1/webhook "user_id=u1" ""
jqt "teammates.enable_webhook: live URL shown once" "$OUT" \
    '.enabled == true and
     (.url | test("^https://api\\.m8tes\\.ai/api/v1/webhooks/mates/1/whk_[0-9a-f]{24}$"))'

rpc_ok "teammates.enable_email_inbox" teammates.enable_email_inbox \
    '{"teammate_id":1,"user_id":"u1"}'
wire "teammates.enable_email_inbox" POST /agents/1/email-inbox "user_id=u1" ""
jqt "teammates.enable_email_inbox: reply" "$OUT" \
    '.enabled == true and
     (.address | test("^mate-1-[0-9a-f]+@notifications\\.m8tes\\.ai$"))'

# ---- delete ---------------------------------------------------------------
rpc_ok "teammates.delete" teammates.delete '{"teammate_id":2}'
wire "teammates.delete" DELETE /agents/2 "" ""
jeq "teammates.delete: reply" "$OUT" '{"ok":true}'

# ---- list: user_id and flags in the query ---------------------------------
rpc_ok "teammates.list (user_id)" teammates.list '{"user_id":"u1"}'
wire "teammates.list (user_id)" GET /agents/ "user_id=u1" ""
jqt "teammates.list (user_id): page envelope" "$OUT" \
    'keys == ["data","has_more","next_starting_after"] and
     ([.data[].id] == [1]) and .has_more == false and
     .next_starting_after == null'

rpc_ok "teammates.list (include_archived false)" teammates.list \
    '{"include_archived":false}'
wire "teammates.list (include_archived false)" GET /agents/ "" ""
jqt "teammates.list (account scope): archived one hidden" "$OUT" \
    '.data == [] and .has_more == false'

rpc_ok "teammates.list (include_archived true)" teammates.list \
    '{"include_archived":true}'
wire "teammates.list (include_archived true)" GET /agents/ \
    "include_archived=true" ""
jqt "teammates.list (include_archived): the archived one" "$OUT" \
    '[.data[] | [.id, .status]] == [[2, "archived"]]'

# The SDK never sends limit when it equals the default (20). (The same
# list was read above: bypass the cache to see the wire request.)
rpc_ok "teammates.list (limit 20)" teammates.list \
    '{"limit":20,"user_id":"u1","cache":"bypass"}'
wire "teammates.list (limit 20 = default, omitted)" GET /agents/ \
    "user_id=u1" ""

# ---- two pages with limit and starting_after ------------------------------
for n in A B C; do
	rpc teammates.create "{\"name\":\"Page $n\",\"user_id\":\"pg\"}" \
	    >/dev/null
done
rpc_ok "teammates.list page 1" teammates.list '{"user_id":"pg","limit":2}'
wire "teammates.list page 1" GET /agents/ "user_id=pg&limit=2" ""
jqt "teammates.list page 1: two newest, more to come" "$OUT" \
    '[.data[].name] == ["Page C","Page B"] and .has_more == true and
     .next_starting_after == .data[1].id'
cursor=$(printf '%s' "$OUT" | jq -c .next_starting_after)
rpc_ok "teammates.list page 2" teammates.list \
    "{\"user_id\":\"pg\",\"limit\":2,\"starting_after\":$cursor}"
wire "teammates.list page 2" GET /agents/ \
    "user_id=pg&limit=2&starting_after=$cursor" ""
jqt "teammates.list page 2: the last one, no more" "$OUT" \
    '[.data[].name] == ["Page A"] and .has_more == false and
     .next_starting_after == null'

# ---- errors of this resource ------------------------------------------------
mock_clear
out=$(call teammates.get '{"teammate_id":1,"user_id":"u2"}')
rid=$(mock_requests | jq -r '.[-1].request_id')
jeq "teammates.get out of scope: m8tes.not_found with the request id" "$out" \
    "{\"id\":1,\"error\":{\"code\":\"m8tes.not_found\",
      \"message\":\"Teammate not found\",\"status\":404,
      \"request_id\":\"$rid\",\"retryable\":false}}"
mock_clear
out=$(call teammates.update '{"teammate_id":1,"name":5}')
jqt "teammates.update name:5: m8tesd.invalid_params" "$out" \
    '.error.code == "m8tesd.invalid_params" and .error.retryable == false'
eq "teammates.update name:5: nothing sent" "$(mock_requests | jq length)" 0
out=$(call teammates.get '{}')
jqt "teammates.get without teammate_id: m8tesd.invalid_params" "$out" \
    '.error.code == "m8tesd.invalid_params"'
eq "teammates.get without teammate_id: nothing sent" \
    "$(mock_requests | jq length)" 0

check_daemon_end
finish

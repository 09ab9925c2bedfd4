#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# apps.*, memories.*, permissions.*, users.*, webhooks.* and settings.*:
# every method through the real client, the reply and the exact wire
# request (user_id in the body or the query as upstream-api.md §11 says,
# none on settings and webhooks; {"tool":…,"user_id":null} on
# permissions.create; nulls that clear caps; paged lists).
. "$(dirname "$0")/lib.sh"

start_mock
start_daemon

# ---- apps -------------------------------------------------------------------
rpc_ok "apps.list" apps.list '{"user_id":"u1"}'
wire "apps.list" GET /apps/ "user_id=u1" ""
jqt "apps.list: the catalog envelope, nothing connected" "$OUT" \
    'keys == ["data","has_more"] and .has_more == false and
     ([.data[].name] == ["gmail","slack","github","notion","stripe","openai","twilio"])
     and ([.data[].connected] | all(. == false))'

rpc_ok "apps.connect (OAuth)" apps.connect '{"app_name":"gmail",
    "redirect_uri":"https://example.com/cb","user_id":"u1"}'
wire "apps.connect (OAuth)" POST /apps/gmail/connect "" \
    '{"redirect_uri":"https://example.com/cb","user_id":"u1"}'
jeq "apps.connect (OAuth): reply" "$OUT" \
    '{"authorization_url":"https://auth.m8tes.ai/oauth/gmail?connection_id=conn_1",
      "connection_id":"conn_1"}'

rpc_ok "apps.connect_complete" apps.connect_complete '{"app_name":"gmail",
    "connection_id":"conn_1","user_id":"u1","claim_ticket":""}'
wire "apps.connect_complete" POST /apps/gmail/connect/complete "" \
    '{"connection_id":"conn_1","user_id":"u1"}'
jeq "apps.connect_complete: reply" "$OUT" '{"status":"connected","app":"gmail"}'

rpc_ok "apps.connect (api_key)" apps.connect \
    '{"app_name":"stripe","api_key":"sk_test_1","user_id":"u1"}'
wire "apps.connect (api_key)" POST /apps/stripe/connect/api-key "" \
    '{"api_key":"sk_test_1","user_id":"u1"}'
jeq "apps.connect (api_key): reply" "$OUT" '{"status":"connected","app":"stripe"}'

rpc_ok "apps.connect_api_key (account scope)" apps.connect_api_key \
    '{"app_name":"stripe","api_key":"sk_test_2","user_id":""}'
wire "apps.connect_api_key (account scope)" POST /apps/stripe/connect/api-key "" \
    '{"api_key":"sk_test_2"}'

mock_clear
out=$(call apps.connect '{"app_name":"gmail","user_id":"u1"}')
jqt "apps.connect without redirect_uri or api_key: m8tesd.invalid_params" \
    "$out" '.error.code == "m8tesd.invalid_params"'
eq "apps.connect without redirect_uri or api_key: nothing sent" \
    "$(mock_requests | jq length)" 0

eq "set-up: u1 has gmail and stripe connected" \
    "$(mock_get '/apps/?user_id=u1' | jq -c '[.data[] | select(.connected) | .name]')" \
    '["gmail","stripe"]'

rpc_ok "apps.disconnect" apps.disconnect '{"app_name":"gmail","user_id":"u1"}'
wire "apps.disconnect" DELETE /apps/gmail/connections "user_id=u1" ""
jeq "apps.disconnect: reply" "$OUT" '{"ok":true}'
eq "apps.disconnect: gmail is disconnected upstream" \
    "$(mock_get '/apps/?user_id=u1' | jq -c '[.data[] | select(.connected) | .name]')" \
    '["stripe"]'

# ---- memories -------------------------------------------------------------------
rpc_ok "memories.create" memories.create \
    '{"content":"Prefers CSV reports","user_id":"u1","audience":"personal"}'
wire "memories.create" POST /memories/ "" \
    '{"content":"Prefers CSV reports","user_id":"u1","audience":"personal"}'
jqt "memories.create: reply" "$OUT" '.id == 1 and
    .content == "Prefers CSV reports" and .user_id == "u1" and
    .audience == "personal" and .scope == "personal"'

rpc_ok "memories.create (account scope)" memories.create \
    '{"content":"The company uses Slack"}'
wire "memories.create (account scope)" POST /memories/ "" \
    '{"content":"The company uses Slack"}'
jqt "memories.create (account scope): reply" "$OUT" \
    '.id == 2 and .user_id == null and .scope == "account"'

rpc_ok "memories.list" memories.list \
    '{"user_id":"u1","query":"csv reports & more","limit":10}'
wire "memories.list" GET /memories/ \
    "user_id=u1&query=csv+reports+%26+more&limit=10" ""
jqt "memories.list: nothing matches that query" "$OUT" \
    '.data == [] and .has_more == false'
rpc_ok "memories.list (query)" memories.list '{"user_id":"u1","query":"csv"}'
wire "memories.list (query)" GET /memories/ "user_id=u1&query=csv" ""
jqt "memories.list (query): the u1 memory" "$OUT" \
    '[.data[].id] == [1] and .has_more == false and .next_starting_after == null'

rpc_ok "memories.delete" memories.delete '{"memory_id":1,"user_id":"u1"}'
wire "memories.delete" DELETE /memories/1 "user_id=u1" ""
jeq "memories.delete: reply" "$OUT" '{"ok":true}'

# ---- permissions: user_id always in the create body ----------------------------
rpc_ok "permissions.create (account scope)" permissions.create '{"tool":"gmail"}'
wire "permissions.create (account scope)" POST /permissions/ "" \
    '{"tool":"gmail","user_id":null}'
check "permissions.create: body is exactly {\"tool\":…,\"user_id\":null}" \
    test "$(printf '%s' "$WIRE" | jq -r .body | jq -c 'to_entries | map(.key) | sort')" \
    = '["tool","user_id"]'
jqt "permissions.create (account scope): reply" "$OUT" \
    '.id == 1 and .tool_name == "gmail" and .user_id == null and .source == "api"'

rpc_ok "permissions.create (u1)" permissions.create \
    '{"tool":"slack","user_id":"u1"}'
wire "permissions.create (u1)" POST /permissions/ "" \
    '{"tool":"slack","user_id":"u1"}'
rpc permissions.create '{"tool":"github","user_id":"u1"}' >/dev/null

rpc_ok "permissions.list page 1" permissions.list '{"user_id":"u1","limit":1}'
wire "permissions.list page 1" GET /permissions/ "user_id=u1&limit=1" ""
jqt "permissions.list page 1: reply" "$OUT" \
    '[.data[].tool_name] == ["github"] and .has_more == true and
     .next_starting_after == 3'
rpc_ok "permissions.list page 2" permissions.list \
    '{"user_id":"u1","limit":1,"starting_after":3}'
wire "permissions.list page 2" GET /permissions/ \
    "user_id=u1&limit=1&starting_after=3" ""
jqt "permissions.list page 2: reply" "$OUT" \
    '[.data[].tool_name] == ["slack"] and .has_more == false and
     .next_starting_after == null'

rpc_ok "permissions.delete" permissions.delete \
    '{"permission_id":2,"user_id":"u1"}'
wire "permissions.delete" DELETE /permissions/2 "user_id=u1" ""
jeq "permissions.delete: reply" "$OUT" '{"ok":true}'

# ---- users: user_id is the path segment --------------------------------------
rpc_ok "users.create" users.create '{"user_id":"cust_42","name":"Ann",
    "email":"ann@example.com","run_limit":10,"metadata":{"plan":"pro"},
    "company":null}'
wire "users.create" POST /users/ "" '{"user_id":"cust_42","name":"Ann",
    "email":"ann@example.com","run_limit":10,"metadata":{"plan":"pro"}}'
jqt "users.create: reply" "$OUT" '.id == 1 and .user_id == "cust_42" and
    .name == "Ann" and .run_limit == 10 and .metadata == {"plan":"pro"}'

rpc_ok "users.create (non-ASCII id)" users.create '{"user_id":"ann bjørk"}'
wire "users.create (non-ASCII id)" POST /users/ "" '{"user_id":"ann bjørk"}'

rpc_ok "users.list" users.list '{"limit":1}'
wire "users.list" GET /users/ "limit=1" ""
jqt "users.list: reply" "$OUT" '[.data[].user_id] == ["ann bjørk"] and
    .has_more == true and .next_starting_after == 2'

rpc_ok "users.get" users.get '{"user_id":"cust_42"}'
wire "users.get" GET /users/cust_42 "" ""
jqt "users.get: reply" "$OUT" '.id == 1 and .email == "ann@example.com"'

rpc_ok "users.get (encoded segment)" users.get '{"user_id":"ann bjørk"}'
wire "users.get (encoded segment)" GET "/users/ann%20bj%C3%B8rk" "" ""
jqt "users.get (encoded segment): reply" "$OUT" \
    '.id == 2 and .user_id == "ann bjørk"'

rpc_ok "users.update" users.update '{"user_id":"cust_42","name":"Ann B",
    "run_limit":null,"cost_limit_cents":null,"rate_per_minute":5,
    "email":null}'
wire "users.update" PATCH /users/cust_42 "" '{"name":"Ann B",
    "run_limit":null,"cost_limit_cents":null,"rate_per_minute":5}'
jqt "users.update: reply" "$OUT" '.name == "Ann B" and .run_limit == null and
    .rate_per_minute == 5 and .email == "ann@example.com"'

rpc_ok "users.delete" users.delete '{"user_id":"cust_42"}'
wire "users.delete" DELETE /users/cust_42 "" ""
jeq "users.delete: reply" "$OUT" '{"ok":true}'

# ---- webhooks: no user_id anywhere ------------------------------------------
rpc_ok "webhooks.create" webhooks.create \
    '{"url":"https://example.com/hook","events":["run.completed"]}'
wire "webhooks.create" POST /webhooks/ "" \
    '{"url":"https://example.com/hook","events":["run.completed"]}'
jqt "webhooks.create: reply with the full secret" "$OUT" \
    '.id == 1 and .url == "https://example.com/hook" and
     .events == ["run.completed"] and .active == true and
     (.secret | test("^whsec_") and (contains("...") | not))'
secret1=$(printf '%s' "$OUT" | jq -r .secret)

rpc_ok "webhooks.create (default events)" webhooks.create \
    '{"url":"https://example.com/h2"}'
wire "webhooks.create (default events)" POST /webhooks/ "" \
    '{"url":"https://example.com/h2"}'
jqt "webhooks.create (default events): reply" "$OUT" \
    '.id == 2 and .events == ["run.completed","run.failed","run.cancelled"]'

rpc_ok "webhooks.list" webhooks.list '{"limit":1}'
wire "webhooks.list" GET /webhooks/ "limit=1" ""
jqt "webhooks.list: reply" "$OUT" '[.data[].id] == [2] and
    .has_more == true and .next_starting_after == 2'
rpc_ok "webhooks.list page 2" webhooks.list '{"limit":1,"starting_after":2}'
wire "webhooks.list page 2" GET /webhooks/ "limit=1&starting_after=2" ""
jqt "webhooks.list page 2: reply, secret masked" "$OUT" \
    '[.data[].id] == [1] and .has_more == false and
     .next_starting_after == null and (.data[0].secret != "'"$secret1"'")'

rpc_ok "webhooks.get" webhooks.get '{"webhook_id":1}'
wire "webhooks.get" GET /webhooks/1 "" ""
jqt "webhooks.get: reply, secret masked" "$OUT" \
    '.id == 1 and .url == "https://example.com/hook" and
     .secret != "'"$secret1"'"'

rpc_ok "webhooks.update (rotate)" webhooks.update '{"webhook_id":1,
    "events":["run.failed"],"active":false,"rotate_secret":true}'
wire "webhooks.update (rotate)" PATCH /webhooks/1 "" \
    '{"events":["run.failed"],"active":false,"rotate_secret":true}'
jqt "webhooks.update (rotate): reply with a new full secret" "$OUT" \
    '.id == 1 and .active == false and .events == ["run.failed"] and
     (.secret | test("^whsec_")) and .secret != "'"$secret1"'"'

rpc_ok "webhooks.update (no rotation)" webhooks.update \
    '{"webhook_id":2,"url":"https://example.com/h3","rotate_secret":false}'
wire "webhooks.update (no rotation)" PATCH /webhooks/2 "" \
    '{"url":"https://example.com/h3"}'

rpc_ok "webhooks.list_deliveries" webhooks.list_deliveries \
    '{"webhook_id":1,"limit":1}'
wire "webhooks.list_deliveries" GET /webhooks/1/deliveries "limit=1" ""
jqt "webhooks.list_deliveries: reply" "$OUT" \
    '(.data | length) == 1 and .has_more == true and
     (.data[0] | has("event_type") and has("event_id") and has("run_id") and
      .webhook_endpoint_id == 1) and .next_starting_after == .data[0].id'

rpc_ok "webhooks.delete" webhooks.delete '{"webhook_id":2}'
wire "webhooks.delete" DELETE /webhooks/2 "" ""
jeq "webhooks.delete: reply" "$OUT" '{"ok":true}'

# ---- settings ------------------------------------------------------------------
rpc_ok "settings.get" settings.get
wire "settings.get" GET /settings/ "" ""
jeq "settings.get: reply" "$OUT" '{"per_end_user_run_limit":null,
    "per_end_user_cost_limit_cents":null,"per_end_user_rate_per_minute":null,
    "retention_mode":"standard","require_end_user_id":false}'

rpc_ok "settings.update" settings.update '{"per_end_user_run_limit":null,
    "per_end_user_cost_limit_cents":500,"retention_mode":"metadata_only",
    "require_end_user_id":false}'
wire "settings.update" PATCH /settings/ "" '{"per_end_user_run_limit":null,
    "per_end_user_cost_limit_cents":500,"retention_mode":"metadata_only",
    "require_end_user_id":false}'
jeq "settings.update: reply" "$OUT" '{"per_end_user_run_limit":null,
    "per_end_user_cost_limit_cents":500,"per_end_user_rate_per_minute":null,
    "retention_mode":"metadata_only","require_end_user_id":false}'

rpc_ok "settings.update (null on a non-nullable field)" settings.update \
    '{"retention_mode":null}'
wire "settings.update (null on a non-nullable field)" PATCH /settings/ "" '{}'

check_daemon_end
finish

#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The response cache, end to end: what is cached (2xx GET pages and
# objects, per key fingerprint, tenant and canonical request; never errors
# or writes), how each reply was served, TTLs from the configuration,
# write-through invalidation (also of a GET in flight during the write),
# cache modes, stale answers while the upstream is unreachable, 1000
# concurrent identical calls sharing one upstream request, all: true on
# every paged list, and cache.stats / cache.clear / `m8tes cache`.
. "$(dirname "$0")/lib.sh"

OTHER_KEY=m8_other_test_key_9876543210
TEST_KEYS=$OTHER_KEY

# served REPLY: the reply's "cache" field, or "none".
served() { printf '%s' "$1" | jq -r '.cache // "none"'; }
# nreq: upstream requests recorded since the last mock_clear.
nreq() { mock_requests | jq length; }
# ids REPLY: the ids of a page reply's items.
ids() { printf '%s' "$1" | jq -c '[.result.data[].id]'; }
# mate NAME [USER]: creates a teammate straight on the mock (no daemon, so
# nothing is invalidated); prints its id.
mate() {
	local body
	body=$(jq -cn --arg n "$1" --arg u "${2:-}" \
	    '{name: $n, instructions: "x"} + (if $u == "" then {} else
	     {user_id: $u} end)')
	mock_post /agents/ "$body" | jq -r .id
}
# stats: cache.stats' result.
stats() { call cache.stats | jq -c .result; }

start_mock
mate "first" >/dev/null
mate "second" >/dev/null
start_daemon

# ---- what is cached ----------------------------------------------------
mock_clear
R1=$(call teammates.list '{"limit":5}')
eq "list: first call is a miss" "$(served "$R1")" miss
wire "list: the miss" GET /agents/ "limit=5" ""
mock_clear
R2=$(call teammates.list '{"limit":5}')
eq "list: second call is a hit" "$(served "$R2")" hit
eq "list: a hit makes no upstream request" "$(nreq)" 0
jeq "list: the hit is the miss's result" \
    "$(jq -c .result <<<"$R2")" "$(jq -c .result <<<"$R1")"
mate "third" >/dev/null
R3=$(call teammates.list '{"limit":5}')
eq "list: fresh entry served although the upstream changed" \
    "$(ids "$R3")" "[2,1]"
R4=$(call teammates.list '{"include_archived":false,"limit":5}')
eq "list: a parameter that is not sent is the same request" \
    "$(served "$R4")" hit
mock_clear
R5=$(call teammates.list '{"limit":5,"user_id":"alice"}')
eq "list: another tenant is another entry (miss)" "$(served "$R5")" miss
wire "list: the tenant's miss" GET /agents/ "limit=5&user_id=alice" ""
R5=$(call teammates.list '{"user_id":"alice","limit":5}')
eq "list: the tenant's entry, parameters in another order (hit)" \
    "$(served "$R5")" hit
mock_clear
G1=$(call teammates.get '{"teammate_id":1}')
G2=$(call teammates.get '{"teammate_id":"1"}')
eq "get: object miss then hit (number and string id)" \
    "$(served "$G1") $(served "$G2") $(nreq)" "miss hit 1"
jqt "get: the object" "$G2" '.result.id == 1 and .result.name == "first"'

# Errors are never cached: a 404 twice is two upstream requests.
mock_clear
E1=$(call teammates.get '{"teammate_id":999}')
E2=$(call teammates.get '{"teammate_id":999}')
eq "404: answered twice upstream" "$(nreq)" 2
eq "404: both errors, no cache field" \
    "$(jq -r '"\(.error.code) \(.cache // "none")"' <<<"$E1") $(jq -r \
    .error.code <<<"$E2")" "m8tes.not_found none m8tes.not_found"
# A 500 (after the retries) is not cached either: the next call fetches.
mock_fault '{"method":"GET","path":"/api/v2/agents/","status":500,"times":3}'
mock_clear
E3=$(call teammates.list '{"limit":7}')
eq "500: error after 3 attempts" \
    "$(jq -r .error.code <<<"$E3") $(nreq)" "m8tes.api_error 3"
mock_faults_clear
mock_clear
R6=$(call teammates.list '{"limit":7}')
eq "500: the next call is a miss, fetched" "$(served "$R6") $(nreq)" "miss 1"
# Writes are never answered from the cache.
mock_clear
W1=$(call teammates.update '{"teammate_id":3,"role":"r1"}')
W2=$(call teammates.update '{"teammate_id":3,"role":"r1"}')
eq "update: both sent upstream, no cache field" \
    "$(nreq) $(served "$W1") $(served "$W2")" "2 none none"

# ---- cache modes ---------------------------------------------------------
mock_clear
B1=$(call teammates.list '{"limit":5,"cache":"bypass"}')
eq "bypass: fetched although cached" "$(served "$B1") $(nreq)" "bypass 1"
eq "bypass: the fresh answer (3 teammates)" "$(ids "$B1")" "[3,2,1]"
B2=$(call teammates.list '{"limit":5}')
eq "bypass refreshed the entry" "$(served "$B2") $(ids "$B2")" "hit [3,2,1]"
mock_clear
O1=$(call teammates.list '{"limit":3,"cache":"only"}')
jqt "only: nothing cached is m8tesd.cache_miss" "$O1" \
    '.error.code == "m8tesd.cache_miss" and .error.retryable == false'
O2=$(call teammates.list '{"limit":5,"cache":"only"}')
eq "only: a cached entry is a hit" "$(served "$O2")" hit
eq "only: no upstream request" "$(nreq)" 0
S1=$(call teammates.list '{"limit":5,"cache":"stale-ok"}')
eq "stale-ok: a fresh entry is a hit" "$(served "$S1")" hit

# ---- write-through invalidation ---------------------------------------
call teammates.list '{"limit":5,"user_id":"bob"}' >/dev/null
call teammates.list '{"limit":5,"user_id":"alice"}' >/dev/null
call tasks.list '{}' >/dev/null
mock_clear
C1=$(call teammates.create '{"name":"fourth","instructions":"x"}')
NEW=$(jq -r .result.id <<<"$C1")
eq "create: through the daemon" "$NEW" 4
L1=$(call teammates.list '{"limit":5}')
eq "create: the next list is a miss" "$(served "$L1")" miss
eq "create: the next list shows the new teammate" "$(ids "$L1")" \
    "[4,3,2,1]"
T1=$(call tasks.list '{}')
eq "create: another resource's entry stays (hit)" "$(served "$T1")" hit
U1=$(call teammates.update '{"teammate_id":1,"name":"first renamed"}')
G3=$(call teammates.get '{"teammate_id":1}')
eq "update: the cached object is dropped (miss)" "$(served "$G3")" miss
jqt "update: the object shows the update" "$G3" \
    '.result.name == "first renamed"'
call teammates.delete '{"teammate_id":2}' >/dev/null
L2=$(call teammates.list '{"limit":5}')
eq "delete: the list no longer has it" \
    "$(served "$L2") $(ids "$L2")" "miss [4,3,1]"
# A tenant's write outdates its own and the unscoped views, not others'.
call teammates.list '{"limit":5,"user_id":"bob"}' >/dev/null
call teammates.list '{"limit":5,"user_id":"alice"}' >/dev/null
call teammates.list '{"limit":5}' >/dev/null
call teammates.create '{"name":"alice mate","user_id":"alice"}' >/dev/null
A1=$(call teammates.list '{"limit":5,"user_id":"alice"}')
B3=$(call teammates.list '{"limit":5,"user_id":"bob"}')
N1=$(call teammates.list '{"limit":5}')
eq "scoped create: tenant, other tenant, unscoped" \
    "$(served "$A1") $(served "$B3") $(served "$N1")" "miss hit miss"
# A write while a GET of the same resource is in flight: the GET's answer
# (from before the write: the mock answers a snapshot, late) is not
# stored, and a call after the write does not join it.
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":1500,"times":1,
    "status":200,"body":"{\"data\":[{\"id\":1,\"name\":\"snapshot\"}],\"has_more\":false}"}'
call teammates.list '{"limit":9}' >"$T/inflight.out" &
INFLIGHT=$!
wait_for 5 sh -c "curl -s '$MOCK/__mock/requests?method=GET&path=/api/v2/agents/' |
    jq -e 'map(select(.query == \"limit=9\")) | length == 1' >/dev/null"
call teammates.create '{"name":"during","instructions":"x"}' >/dev/null
L3=$(call teammates.list '{"limit":9}')
wait "$INFLIGHT"
eq "in flight: a call after the write gets the new teammate" \
    "$(jq -c '[.result.data[].name] | index("during") != null' <<<"$L3")" \
    true
jqt "in flight: the earlier call got its answer" "$(cat "$T/inflight.out")" \
    '.cache == "miss" and .result.data == [{"id":1,"name":"snapshot"}]'
L4=$(call teammates.list '{"limit":9}')
eq "in flight: the list now cached has the new teammate" \
    "$(served "$L4") $(jq -c '[.result.data[].name] | index("during") != null' \
    <<<"$L4")" "hit true"
mock_faults_clear

# ---- 1000 concurrent identical calls: one upstream request --------------
# Four connections of 250 calls each, all sent while the one upstream
# request is held for 2 s: every call joins it (each reply says miss).
mock_fault '{"method":"GET","path":"/api/v2/agents/","delay_ms":2000,"times":1}'
mock_clear
for c in 1 2 3 4; do
	printf '{"id":%d,"method":"teammates.list","params":{"limit":11}}\n' \
	    $(seq $((c * 1000 + 1)) $((c * 1000 + 250))) >"$T/burst.$c.in"
done
BURST=()
for c in 1 2 3 4; do
	socat -t 20 - UNIX-CONNECT:"$SOCK" <"$T/burst.$c.in" \
	    >"$T/burst.$c.out" &
	BURST+=($!)
done
wait "${BURST[@]}"
cat "$T"/burst.*.out >"$T/burst.out"
eq "1000 calls: one upstream request" \
    "$(mock_requests | jq -c '[.[] | "\(.method) \(.path)?\(.query)"]')" \
    '["GET /api/v2/agents/?limit=11"]'
NMATES=$(mock_get "/agents/?limit=11" | jq '.data | length')
eq "1000 calls: 1000 replies, each a miss with every teammate" \
    "$(jq -s --argjson n "$NMATES" 'map(select(.cache == "miss" and
        (.result.data | length) == $n)) | length' "$T/burst.out")" 1000
eq "1000 calls: every id answered once" \
    "$(jq -s 'map(.id) | unique | length' "$T/burst.out")" 1000
mock_faults_clear

# ---- all: true on every paged list ---------------------------------------
# Five objects of each resource, straight on the mock.
mock_reset
call cache.clear >/dev/null
for i in 1 2 3 4 5; do
	mate "m$i" >/dev/null
	mock_post /tasks/ '{"teammate_id":1,"instructions":"t'$i'"}' >/dev/null
	mock_post /runs/ '{"message":"r'$i'","stream":false}' >/dev/null
	mock_post /memories/ '{"content":"c'$i'"}' >/dev/null
	mock_post /permissions/ '{"tool":"tool'$i'"}' >/dev/null
	mock_post /users/ '{"user_id":"user'$i'"}' >/dev/null
	mock_post /webhooks/ '{"url":"https://example.com/h'$i'"}' >/dev/null
done
for spec in teammates.list:/agents/ tasks.list:/tasks/ runs.list:/runs/ \
    memories.list:/memories/ permissions.list:/permissions/ \
    users.list:/users/ webhooks.list:/webhooks/; do
	m=${spec%%:*} p=${spec#*:}
	want=$(mock_get "$p?limit=100" | jq -c '[.data[].id]')
	mock_clear
	out=$(raw "$(req_line "$m" '{"limit":2,"all":true}')")
	eq "$m all: every item as an event, in order" \
	    "$(jq -sc '[.[] | select(.event) | .event.id]' <<<"$out")" "$want"
	eq "$m all: seq 1..5, then the count" \
	    "$(jq -sc '[.[] | .seq // .result]' <<<"$out")" \
	    '[1,2,3,4,5,{"items":5,"pages":3}]'
	eq "$m all: three upstream pages" "$(nreq)" 3
done
want=$(mock_get "/webhooks/1/deliveries?limit=100" | jq -c '[.data[].id]')
out=$(raw "$(req_line webhooks.list_deliveries '{"webhook_id":1,"limit":1,"all":true}')")
eq "webhooks.list_deliveries all: every item, one page each" \
    "$(jq -sc '[.[] | .event.id // .result]' <<<"$out")" \
    "$(jq -c --argjson n "$(jq length <<<"$want")" \
    '. + [{"items": $n, "pages": $n}]' <<<"$want")"
# The cursors followed, and every filter re-sent with each page.
mock_clear
out=$(raw "$(req_line teammates.list '{"limit":2,"all":true,"user_id":"zed"}')")
eq "all: the wire request (empty tenant: one page)" \
    "$(nreq) $(qsort "$(mock_requests | jq -r '.[0].query')")" \
    "1 limit=2&user_id=zed"
eq "all: an empty list" "$(jq -sc '[.[] | .result]' <<<"$out")" \
    '[{"items":0,"pages":1}]'
R=$(mock_get "/runs/?limit=100" | jq -r '[.data[].id] | "\(.[1]) \(.[3])"')
mock_clear
raw "$(req_line runs.list '{"limit":2,"all":true,"cache":"bypass"}')" >/dev/null
eq "all: next page starts after the previous page's cursor" \
    "$(mock_requests | jq -c '[.[].query]')" \
    "[\"limit=2\",\"limit=2&starting_after=${R% *}\",\"limit=2&starting_after=${R#* }\"]"
# Pages are cached as they pass: a second walk makes no request, and a
# page on its own is a hit.
mock_clear
out=$(raw "$(req_line teammates.list '{"limit":2,"all":true}')")
eq "all again: served from the cache" "$(nreq)" 0
eq "all again: same items" \
    "$(jq -sc '[.[] | select(.event) | .event.id]' <<<"$out")" "[5,4,3,2,1]"
P2=$(call teammates.list '{"limit":2,"starting_after":4}')
eq "all: a page walked is cached on its own" \
    "$(served "$P2") $(ids "$P2")" "hit [3,2]"
# A cursor seen before stops the walk (a server repeating itself).
mock_fault '{"method":"GET","path":"/api/v2/memories/","status":200,"times":0,"body":"{\"data\":[{\"id\":7}],\"has_more\":true,\"next_starting_after\":7}"}'
mock_clear
out=$(raw "$(req_line memories.list '{"limit":3,"all":true}')")
eq "all: repeated cursor stops the walk" \
    "$(jq -sc '[.[] | .event.id // .result]' <<<"$out")" \
    '[7,7,{"items":2,"pages":2}]'
eq "all: repeated cursor: two requests" \
    "$(mock_requests | jq -c '[.[].query]')" \
    '["limit=3","limit=3&starting_after=7"]'
mock_faults_clear
# Without next_starting_after the last item's id is the cursor.
mock_fault '{"method":"GET","path":"/api/v2/permissions/","status":200,"times":2,"body":"{\"data\":[{\"id\":30},{\"id\":20}],\"has_more\":true}"}'
mock_clear
out=$(raw "$(req_line permissions.list '{"limit":2,"all":true,"cache":"bypass"}')")
eq "all: no next_starting_after: the last item's id is the cursor" \
    "$(mock_requests | jq -c '[.[].query]')" \
    '["limit=2","limit=2&starting_after=20"]'
mock_faults_clear
eq "all: a bad page ends the call with an error" "$(raw "$(req_line \
    users.list '{"all":true,"limit":2,"cache":"only","starting_after":"x"}')" |
    jq -r .error.code)" m8tesd.cache_miss

# ---- cache.stats and cache.clear ----------------------------------------
stop_daemon
start_daemon
call cache.clear >/dev/null
jqt "stats: empty after clear" "$(stats)" \
    '.entries == 0 and .bytes == 0 and .hits == 0 and .misses == 0 and
     .hit_ratio == 0 and .available == true and .max_bytes == 67108864'
M1=$(call teammates.list '{"limit":2}')
# What is stored is the result's text, as the reply carries it.
BODY_LEN=$(( ${#M1} - 17 - 16 ))  # {"id":1,"result": ... ,"cache":"miss"}
check "stats: the reply is the stored text, spliced" \
    test "${M1:0:17}${M1: -16}" = '{"id":1,"result":,"cache":"miss"}'
call teammates.list '{"limit":2}' >/dev/null
call teammates.list '{"limit":2}' >/dev/null
# body + key (64) + resource "agents" + path "/agents/?limit=2" + 64
jqt "stats: entries, bytes, hits, misses, hit ratio" "$(stats)" \
    ".entries == 1 and .bytes == $((BODY_LEN + 64 + 6 + 16 + 64)) and
     .hits == 2 and .misses == 1 and .stale == 0 and
     (.hit_ratio * 1000 | round) == 667"
call tasks.list '{"limit":2}' >/dev/null
call teammates.get '{"teammate_id":1}' >/dev/null
call teammates.get '{"teammate_id":2}' >/dev/null
eq "clear resource tasks: one removed" \
    "$(call cache.clear '{"resource":"tasks"}' | jq -c .result)" \
    '{"removed":1}'
eq "clear resource: tasks gone, teammates stay" \
    "$(served "$(call tasks.list '{"limit":2}')") $(served "$(call \
    teammates.list '{"limit":2}')")" "miss hit"
eq "clear prefix /agents/1: one removed" \
    "$(call cache.clear '{"prefix":"/agents/1"}' | jq -c .result)" \
    '{"removed":1}'
eq "clear prefix: /agents/1 gone, /agents/2 stays" \
    "$(served "$(call teammates.get '{"teammate_id":1}')") $(served \
    "$(call teammates.get '{"teammate_id":2}')")" "miss hit"
eq "m8tes cache clear --resource teammates" \
    "$("$BIN/m8tes" --socket "$SOCK" cache clear --resource teammates)" \
    '{"removed":3}'
eq "clear teammates: the list is a miss again" \
    "$(served "$(call teammates.list '{"limit":2}')")" miss
# On a terminal, a table.
OUT=$(script -qec "'$BIN/m8tes' --socket '$SOCK' cache stats" /dev/null |
    tr -d '\r')
jqt "m8tes cache stats --json" \
    "$("$BIN/m8tes" --socket "$SOCK" --json cache stats)" \
    '.entries == 2 and .hits == 4 and .misses == 7'
eq "m8tes cache stats: entries, hits, misses, ratio" \
    "$(grep -E '^(entries|hits|misses|hit ratio):' <<<"$OUT" |
    sed 's/ (.*//' | tr -s ' ')" \
    "$(printf 'entries: 2\nhits: 4\nmisses: 7\nhit ratio: 36.4%%')"
eq "m8tes cache clear (all), on a terminal" \
    "$(script -qec "'$BIN/m8tes' --socket '$SOCK' cache clear" /dev/null |
    tr -d '\r')" "removed 2 cached answers"

# m8tes --json prints a result as the daemon sent it (not parsed again).
call teammates.list '{"limit":3}' >/dev/null
R7=$(raw "$(req_line teammates.list '{"limit":3}')")
eq "m8tes --json: the result's bytes as sent" \
    "$("$BIN/m8tes" --socket "$SOCK" --json teammates list --limit 3)" \
    "$(R7=${R7#'{"id":1,"result":'}; printf '%s' "${R7%',"cache":"hit"}'}")"
OUT=$("$BIN/m8tes" --socket "$SOCK" --json teammates get 999 2>&1)
eq "m8tes --json: an error still exits 3" "$? $OUT" \
    "3 m8tes: Teammate not found (m8tes.not_found, status 404)"

# ---- keyed by the API key's fingerprint, never by the key ---------------
call teammates.list '{"limit":5}' >/dev/null
stop_daemon
DAEMON_KEY=$OTHER_KEY start_daemon
O3=$(call teammates.list '{"limit":5,"cache":"only"}')
eq "another key does not see the entry" "$(jq -r .error.code <<<"$O3")" \
    m8tesd.cache_miss
stop_daemon
eq "the key is nowhere in the cache directory" \
    "$(grep -rlF -e "$KEY" -e "$OTHER_KEY" "$T/cache" | wc -l)" 0
eq "entries are keyed by 64 hex digits (all 2 of them)" \
    "$(sqlite3 "$T/cache/cache.db" "SELECT count(*), sum(length(key) = 64
    AND key NOT GLOB '*[^0-9a-f]*') FROM entries")" "2|2"
start_daemon
O4=$(call teammates.list '{"limit":5,"cache":"only"}')
eq "the same key sees it again after a restart" "$(served "$O4")" hit

# ---- TTLs from the configuration, and stale answers ---------------------
stop_daemon
printf 'cache_ttl = teammates=2, tasks=0\n' >"$T/ttl.conf"
start_daemon --config "$T/ttl.conf"
mock_clear
X1=$(call teammates.list '{"limit":4}')
X2=$(call teammates.list '{"limit":4}')
eq "ttl 2 s: miss then hit" "$(served "$X1") $(served "$X2") $(nreq)" \
    "miss hit 1"
sleep 2.2
X3=$(call teammates.list '{"limit":4}')
eq "ttl 2 s: expired, fetched again" "$(served "$X3") $(nreq)" "miss 2"
mock_clear
Y1=$(call tasks.list '{"limit":4}')
Y2=$(call tasks.list '{"limit":4}')
eq "ttl 0: stored but never fresh" "$(served "$Y1") $(served "$Y2") $(nreq)" \
    "miss miss 2"
Y3=$(call tasks.list '{"limit":4,"cache":"only"}')
eq "ttl 0: only serves the stale entry" "$(served "$Y3")" stale
jeq "ttl 0: the stale entry is the last answer" \
    "$(jq -c .result <<<"$Y3")" "$(jq -c .result <<<"$Y2")"
# The upstream unreachable (connections reset): stale-ok answers stale.
mock_fault '{"method":"GET","path":"/api/v2/tasks/","reset":true,"times":0}'
Y4=$(call tasks.list '{"limit":4,"cache":"stale-ok"}')
eq "reset: stale-ok answers stale" "$(served "$Y4")" stale
jeq "reset: with the last answer" "$(jq -c .result <<<"$Y4")" \
    "$(jq -c .result <<<"$Y2")"
eq "reset: a default call fails" \
    "$(jq -r .error.code <<<"$(call tasks.list '{"limit":4}')")" \
    m8tesd.upstream_unreachable
mock_faults_clear
mock_fault '{"method":"GET","path":"/api/v2/tasks/","status":503,"times":0}'
eq "503: stale-ok answers stale" \
    "$(served "$(call tasks.list '{"limit":4,"cache":"stale-ok"}')")" stale
mock_faults_clear
mock_fault '{"method":"GET","path":"/api/v2/tasks/","status":404,"times":0}'
eq "404: stale-ok does not hide a refusal" \
    "$(call tasks.list '{"limit":4,"cache":"stale-ok"}' | jq -r .error.code)" \
    m8tes.not_found
mock_faults_clear
# The upstream gone altogether.
kill "$MOCK_PID"
wait "$MOCK_PID" 2>/dev/null
MOCK_PID=
Y5=$(call tasks.list '{"limit":4,"cache":"stale-ok"}')
eq "mock gone: stale-ok answers stale" "$(served "$Y5")" stale
jeq "mock gone: with the last answer" "$(jq -c .result <<<"$Y5")" \
    "$(jq -c .result <<<"$Y2")"
eq "mock gone: default call fails, uncached call fails" \
    "$(call tasks.list '{"limit":4}' | jq -r .error.code) $(call \
    tasks.list '{"limit":1,"cache":"stale-ok"}' | jq -r .error.code)" \
    "m8tesd.upstream_unreachable m8tesd.upstream_unreachable"
jqt "stats: stale answers counted" "$(stats)" '.stale == 4'

check_daemon_end
finish

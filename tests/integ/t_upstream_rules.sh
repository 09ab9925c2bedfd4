#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The upstream client rules of upstream-api.md §4-§5, seen on the wire:
# which requests are retried (GET/DELETE on 429/5xx/resets, keyed POSTs to
# the run routes with the same Idempotency-Key every attempt) and which
# never are (POST /tasks/, cancel, PATCH); Retry-After on 429 only; the
# backoff spacing at the default 0.5 s / 1 s; error envelopes mapped to
# stable codes with status, request_id and retry_after kept; and every
# path-encoding parity vector, encoded or refused before anything is sent.
. "$(dirname "$0")/lib.sh"

VECTORS=$(cd "$(dirname "$0")/../vectors" && pwd)/path_encoding_parity.json

# fcall FAULT METHOD PARAMS: with only FAULT armed and no records, one call
# on the socket; the reply in OUT, the recorded requests in REQS.
fcall() {
	mock_faults_clear
	mock_clear
	[ -n "$1" ] && mock_fault "$1"
	OUT=$(call "$2" "$3")
	REQS=$(mock_requests)
	mock_faults_clear
}
nreq() { printf '%s' "$REQS" | jq length; }
# gaps: milliseconds between consecutive recorded requests, as a JSON array.
gaps() {
	printf '%s' "$REQS" | jq -c '[.[].time_ms] as $t |
	    [range(1; $t | length) | $t[.] - $t[. - 1]]'
}
last_rid() { printf '%s' "$REQS" | jq -r '.[-1].request_id'; }
between() { # between NAME VALUE LO HI: LO <= VALUE < HI
	if [ "$2" -ge "$3" ] && [ "$2" -lt "$4" ]; then
		ok "$1 ($2 in [$3, $4))"
	else
		not_ok "$1 ($2 not in [$3, $4))"
	fi
}

start_mock
start_daemon
mock_post /agents/ '{"name":"Ops Mate"}' >/dev/null # teammate 1

# ---- GET: 3 attempts on every retryable status, then the error -------------
n=0
for s in 500 502 503 504; do
	n=$((n + 1))
	fcall "{\"method\":\"GET\",\"path\":\"/api/v2/agents/\",\"status\":$s,\"times\":3}" \
	    teammates.list "{\"limit\":$n}"
	eq "GET on $s: 3 attempts" "$(nreq)" 3
	eq "GET on $s: the same request each time" \
	    "$(printf '%s' "$REQS" | jq -c '[.[] | "\(.method) \(.path)?\(.query)"] | unique')" \
	    "[\"GET /api/v2/agents/?limit=$n\"]"
	jeq "GET on $s: m8tes.api_error with status and request_id" "$OUT" \
	    "{\"id\":1,\"error\":{\"code\":\"m8tes.api_error\",
	      \"message\":\"Mock fault: HTTP $s\",\"status\":$s,
	      \"request_id\":\"$(last_rid)\",\"retryable\":true,
	      \"details\":{}}}"
done

fcall '{"method":"GET","path":"/api/v2/agents/","status":503,"times":2}' \
    teammates.list '{"limit":11}'
eq "GET 503 twice then 200: 3 attempts" "$(nreq)" 3
jqt "GET 503 twice then 200: the page" "$OUT" \
    '.result.data | length == 1'

fcall '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":0,"times":3}' \
    teammates.list '{"limit":12}'
eq "GET on 429: 3 attempts" "$(nreq)" 3
jeq "GET on 429: m8tes.rate_limited with retry_after" "$OUT" \
    "{\"id\":1,\"error\":{\"code\":\"m8tes.rate_limited\",
      \"message\":\"Mock fault: HTTP 429\",\"status\":429,
      \"request_id\":\"$(last_rid)\",\"retry_after\":0,\"retryable\":true,
      \"details\":{}}}"

fcall '{"method":"GET","path":"/api/v2/agents/","status":400,"times":3}' \
    teammates.list '{"limit":13}'
eq "GET on 400: not retried" "$(nreq)" 1
jqt "GET on 400: m8tes.validation_error" "$OUT" \
    '.error.code == "m8tes.validation_error" and .error.status == 400 and
     .error.retryable == false'

# ---- Retry-After: honoured on 429 (uncapped float seconds), not on 503 ------
fcall '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"1","times":1}' \
    teammates.list '{"limit":14}'
eq "429 Retry-After: 1: retried once, then the page" \
    "$(nreq):$(printf '%s' "$OUT" | jq -c '.result.has_more')" "2:false"
between "429 Retry-After: 1: the retry waits >= 0.9 s (ms)" \
    "$(gaps | jq '.[0]')" 900 1600

fcall '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"0.3","times":1}' \
    teammates.list '{"limit":15}'
between "429 Retry-After: 0.3: the retry waits 0.3 s (ms)" \
    "$(gaps | jq '.[0]')" 280 900

fcall '{"method":"GET","path":"/api/v2/agents/","status":503,"retry_after":"5","times":1}' \
    teammates.list '{"limit":16}'
eq "503 with Retry-After: retried" "$(nreq)" 2
between "503 Retry-After: 5 is ignored: normal backoff (ms)" \
    "$(gaps | jq '.[0]')" 0 800

fcall '{"method":"GET","path":"/api/v2/agents/","status":429,"retry_after":"Wed, 21 Oct 2015 07:28:00 GMT","times":3}' \
    teammates.list '{"limit":17}'
eq "429 with an HTTP-date Retry-After: 3 attempts" "$(nreq)" 3
check "429 with an HTTP-date Retry-After: normal backoff" \
    test "$(gaps | jq 'max')" -lt 800
jqt "429 with an HTTP-date Retry-After: no retry_after in the error" "$OUT" \
    '.error.code == "m8tes.rate_limited" and (.error | has("retry_after") | not)'

# ---- connection reset: retried for GET, not for POST /tasks/ -----------------
fcall '{"method":"GET","path":"/api/v2/agents/","reset":true,"times":1}' \
    teammates.list '{"limit":18}'
eq "GET reset once: retried, then the page" \
    "$(nreq):$(printf '%s' "$OUT" | jq -c '.result.has_more')" "2:false"
fcall '{"method":"GET","path":"/api/v2/agents/","reset":true,"times":3}' \
    teammates.list '{"limit":19}'
eq "GET reset every time: 3 attempts" "$(nreq)" 3
jqt "GET reset every time: m8tesd.upstream_unreachable, retryable" "$OUT" \
    '.error.code == "m8tesd.upstream_unreachable" and .error.retryable == true
     and (.error | has("status") | not)'
fcall '{"method":"POST","path":"/api/v2/tasks/","reset":true,"times":3}' \
    tasks.create '{"teammate_id":1,"instructions":"reset me"}'
eq "POST /tasks/ reset: sent once" "$(nreq)" 1
jqt "POST /tasks/ reset: m8tesd.upstream_unreachable" "$OUT" \
    '.error.code == "m8tesd.upstream_unreachable" and .error.retryable == true'

# ---- DELETE retried, PATCH and plain POSTs never --------------------------
fcall '{"method":"DELETE","path":"/api/v2/agents/1","status":503,"times":1}' \
    teammates.delete '{"teammate_id":1}'
eq "DELETE on 503: retried, then ok" \
    "$(nreq):$(printf '%s' "$OUT" | jq -c .result)" '2:{"ok":true}'

fcall '{"method":"PATCH","path":"/api/v2/agents/1","status":503,"times":3}' \
    teammates.update '{"teammate_id":1,"name":"x"}'
eq "PATCH on 503: sent once" "$(nreq)" 1
jqt "PATCH on 503: m8tes.api_error, retryable" "$OUT" \
    '.error.code == "m8tes.api_error" and .error.status == 503 and
     .error.retryable == true'
fcall '{"method":"PATCH","path":"/api/v2/agents/1","status":429,"retry_after":0,"times":3}' \
    teammates.update '{"teammate_id":1,"name":"y"}'
eq "PATCH on 429: sent once" "$(nreq)" 1

fcall '{"method":"POST","path":"/api/v2/tasks/","status":503,"times":3}' \
    tasks.create '{"teammate_id":1,"instructions":"Once only"}'
eq "POST /tasks/ on 503: sent exactly once" "$(nreq)" 1
eq "POST /tasks/: no Idempotency-Key" \
    "$(printf '%s' "$REQS" | jq '.[0].headers | has("idempotency-key")')" false
jqt "POST /tasks/ on 503: m8tes.api_error 503" "$OUT" \
    '.error.code == "m8tes.api_error" and .error.status == 503'

mock_post /runs/ '{"message":"to cancel","stream":false}' >/dev/null # run 1
fcall '{"method":"POST","path":"/api/v2/runs/1/cancel","status":502,"times":3}' \
    runs.cancel '{"run_id":1}'
eq "POST /runs/1/cancel on 502: sent once" "$(nreq)" 1

# ---- keyed run POSTs: retried with the same key ------------------------------
fcall '{"method":"POST","path":"/api/v2/runs/","status":503,"times":2}' \
    runs.create '{"message":"Retry me","stream":false}'
eq "POST /runs/ on 503: 3 attempts" "$(nreq)" 3
keys=$(printf '%s' "$REQS" | jq -c '[.[].headers["idempotency-key"]] | unique')
eq "POST /runs/: one key on every attempt" "$(jq length <<<"$keys")" 1
check "POST /runs/: the key is not empty" \
    test -n "$(jq -r '.[0] // empty' <<<"$keys")"
eq "POST /runs/: the same body on every attempt" \
    "$(printf '%s' "$REQS" | jq -c '[.[].body] | unique')" \
    '["{\"message\":\"Retry me\",\"stream\":false}"]'
jqt "POST /runs/ on 503 twice: the run" "$OUT" \
    '.result.status == "running" and .result.id == 2'
key_a=$(jq -r '.[0]' <<<"$keys")

fcall '{"method":"POST","path":"/api/v2/runs/","status":500,"times":1}' \
    runs.create '{"message":"Retry me","stream":false}'
keys=$(printf '%s' "$REQS" | jq -c '[.[].headers["idempotency-key"]] | unique')
eq "a second call: 2 attempts, one key" "$(nreq):$(jq length <<<"$keys")" "2:1"
check "a second call: a different key than the first call" \
    test "$(jq -r '.[0]' <<<"$keys")" != "$key_a"

fcall '{"method":"POST","path":"/api/v2/runs/","status":502,"times":1}' \
    runs.create '{"message":"Keyed","stream":false,"idempotency_key":"job-42"}'
eq "caller's idempotency_key: on both attempts" \
    "$(printf '%s' "$REQS" | jq -c '[.[].headers["idempotency-key"]]')" \
    '["job-42","job-42"]'
jeq "caller's idempotency_key: never in the body" \
    "$(printf '%s' "$REQS" | jq -r '.[1].body')" '{"message":"Keyed","stream":false}'
run_k=$(printf '%s' "$OUT" | jq .result.id)
# The same key again: the mock replays the run (Idempotent-Replay).
fcall "" runs.create '{"message":"Keyed","stream":false,"idempotency_key":"job-42"}'
eq "the same idempotency_key again: the same run" \
    "$(printf '%s' "$OUT" | jq .result.id)" "$run_k"

fcall '{"method":"POST","path":"/api/v2/runs/2/reply","status":429,"retry_after":0,"times":1}' \
    runs.reply '{"run_id":2,"message":"More","stream":false}'
eq "POST /runs/2/reply on 429: retried with one key" \
    "$(nreq):$(printf '%s' "$REQS" | jq -c '[.[].headers["idempotency-key"]] | unique | length')" "2:1"
jeq "POST /runs/2/reply: body without user_id" \
    "$(printf '%s' "$REQS" | jq -r '.[0].body')" '{"message":"More","stream":false}'

fcall '{"method":"POST","path":"/api/v2/runs/","status":503,"times":3}' \
    runs.create '{"message":"Never","stream":false}'
eq "POST /runs/ on 503 every time: 3 attempts" "$(nreq)" 3
jqt "POST /runs/ on 503 every time: m8tes.api_error 503, retryable" "$OUT" \
    '.error.code == "m8tes.api_error" and .error.status == 503 and
     .error.retryable == true'

# ---- error envelopes -> stable codes -----------------------------------------
fcall "" teammates.get '{"teammate_id":999}'
jeq "404 envelope: m8tes.not_found" "$OUT" \
    "{\"id\":1,\"error\":{\"code\":\"m8tes.not_found\",
      \"message\":\"Teammate not found\",\"status\":404,
      \"request_id\":\"$(last_rid)\",\"retryable\":false}}"

fcall '{"method":"GET","path":"/api/v2/apps/","status":422,"error_code":"unknown_query_parameter","message":"Unknown query parameter '"'limit'"'."}' \
    apps.list '{"user_id":"q1"}'
jeq "422 unknown_query_parameter: m8tes.validation_error" "$OUT" \
    "{\"id\":1,\"error\":{\"code\":\"m8tes.validation_error\",
      \"message\":\"Unknown query parameter 'limit'.\",\"status\":422,
      \"request_id\":\"$(last_rid)\",\"upstream_code\":\"unknown_query_parameter\",
      \"retryable\":false,\"details\":{\"error_code\":\"unknown_query_parameter\"}}}"

fcall '{"method":"GET","path":"/api/v2/apps/","status":404,"envelope":"nested","error_code":"gate_not_found"}' \
    apps.list '{"user_id":"q2"}'
jqt "nested details.error_code: upstream_code kept" "$OUT" \
    '.error.code == "m8tes.not_found" and .error.upstream_code == "gate_not_found"'

fcall '{"method":"GET","path":"/api/v2/apps/","status":402,"envelope":"top","error_code":"RUN_LIMIT_REACHED","details":{"runs_used":100,"runs_limit":100},"message":"Run limit reached (100/month)."}' \
    apps.list '{"user_id":"q3"}'
jeq "402 top-level error_code with details: m8tes.billing_error" "$OUT" \
    "{\"id\":1,\"error\":{\"code\":\"m8tes.billing_error\",
      \"message\":\"Run limit reached (100/month).\",\"status\":402,
      \"request_id\":\"$(last_rid)\",\"upstream_code\":\"RUN_LIMIT_REACHED\",
      \"retryable\":false,\"details\":{\"runs_used\":100,\"runs_limit\":100}}}"

fcall '{"method":"GET","path":"/api/v2/apps/","status":400,"envelope":"string","message":"Plain string error"}' \
    apps.list '{"user_id":"q4"}'
jqt "{\"error\":\"…\"}: the string is the message" "$OUT" \
    '.error.code == "m8tes.validation_error" and
     .error.message == "Plain string error" and .error.status == 400'

fcall '{"method":"GET","path":"/api/v2/apps/","status":409,"envelope":"detail","message":"Detail only"}' \
    apps.list '{"user_id":"q5"}'
jqt "{\"detail\":\"…\"} 409: m8tes.conflict with that message" "$OUT" \
    '.error.code == "m8tes.conflict" and .error.message == "Detail only"'

fcall '{"method":"GET","path":"/api/v2/apps/","status":404,"body":"{\"detail\":\"Not Found\"}"}' \
    apps.list '{"user_id":"q6"}'
jqt "404 {\"detail\":\"Not Found\"}: m8tes.route_not_found" "$OUT" \
    '.error.code == "m8tes.route_not_found" and .error.status == 404 and
     .error.retryable == false'

fcall '{"method":"POST","path":"/api/v2/tasks/","status":502,"envelope":"html"}' \
    tasks.create '{"teammate_id":1,"instructions":"html"}'
jqt "HTML body: m8tes.api_error with a hint, request_id from the header" "$OUT" \
    '.error.code == "m8tes.api_error" and .error.status == 502 and
     .error.retryable == true and (.error.message | test("HTML")) and
     (.error.message | contains("/api/v2")) and
     .error.request_id == "'"$(last_rid)"'"'

for m in 400:m8tes.validation_error 401:m8tes.authentication_error \
    402:m8tes.billing_error 403:m8tes.permission_denied 404:m8tes.not_found \
    405:m8tes.api_error 409:m8tes.conflict 413:m8tes.api_error \
    422:m8tes.validation_error; do
	s=${m%%:*} code=${m#*:}
	fcall "{\"method\":\"POST\",\"path\":\"/api/v2/tasks/\",\"status\":$s}" \
	    tasks.create "{\"teammate_id\":1,\"instructions\":\"status $s\"}"
	jqt "HTTP $s: $code, not retryable" "$OUT" \
	    ".error.code == \"$code\" and .error.status == $s and
	     .error.retryable == false"
done

# The real route miss: a base URL without /api/v2.
stop_daemon
BASE_URL=$MOCK start_daemon
fcall "" teammates.list '{}'
jqt "base URL without /api/v2: m8tes.route_not_found" "$OUT" \
    '.error.code == "m8tes.route_not_found" and .error.status == 404 and
     (.error.message | contains("/api/v2"))'
eq "base URL without /api/v2: the path it tried" \
    "$(printf '%s' "$REQS" | jq -r '.[0].path')" /agents/
stop_daemon
start_daemon

# ---- path segments: the parity vectors through the daemon --------------------
# params_for RESOURCE METHOD VALUE: the daemon call for a vector.
params_for() {
	case "$1.$2" in
	users.get) jq -cn --arg v "$3" '{user_id: $v}' ;;
	apps.connect_api_key) jq -cn --arg v "$3" '{app_name: $v, api_key: "sk_test"}' ;;
	runs.get) jq -cn --arg v "$3" '{run_id: $v}' ;;
	runs.download_file) jq -cn --arg v "$3" '{run_id: 42, filename: $v}' ;;
	*) echo "unknown vector call $1.$2" >&2; echo '{}' ;;
	esac
}
ncases=$(jq '.cases | length' "$VECTORS")
nrefused=$(jq '.refused | length' "$VECTORS")
eq "vectors: 12 cases, 8 refused" "$ncases:$nrefused" "12:8"
for i in $(seq 0 $((ncases - 1))); do
	v=$(jq -c ".cases[$i]" "$VECTORS")
	name=$(jq -r .name <<<"$v")
	res=$(jq -r .python.resource <<<"$v") meth=$(jq -r .python.method <<<"$v")
	value=$(jq -r .value <<<"$v")
	fcall "" "$res.$meth" "$(params_for "$res" "$meth" "$value")"
	eq "vector \"$name\": raw path on the wire" \
	    "$(nreq):$(printf '%s' "$REQS" | jq -r '.[0].path')" \
	    "1:/api/v2$(jq -r .expected_path <<<"$v")"
done
for i in $(seq 0 $((nrefused - 1))); do
	v=$(jq -c ".refused[$i]" "$VECTORS")
	name=$(jq -r .name <<<"$v")
	res=$(jq -r .python.resource <<<"$v") meth=$(jq -r .python.method <<<"$v")
	value=$(jq -r .value <<<"$v")
	fcall "" "$res.$meth" "$(params_for "$res" "$meth" "$value")"
	eq "refused \"$name\": m8tesd.invalid_path_segment, nothing sent" \
	    "$(printf '%s' "$OUT" | jq -r '.error.code'):$(nreq)" \
	    "m8tesd.invalid_path_segment:0"
done

# ---- the default backoff: 0.5 s, then 1 s -------------------------------------
stop_daemon
BACKOFF=default start_daemon
fcall '{"method":"GET","path":"/api/v2/agents/","status":503,"times":3}' \
    teammates.list '{"limit":21}'
eq "default backoff: 3 attempts, then the error" \
    "$(nreq):$(printf '%s' "$OUT" | jq -r .error.code)" "3:m8tes.api_error"
between "default backoff: 1st retry after 0.5 s (ms)" "$(gaps | jq '.[0]')" 480 900
between "default backoff: 2nd retry after 1 s (ms)" "$(gaps | jq '.[1]')" 980 1500

check_daemon_end
finish

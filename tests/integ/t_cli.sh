#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The m8tes command line as a user meets it: resource commands with
# positional arguments and --options (checked on the wire), a table on a
# terminal and JSON when piped, --help for every command of every resource,
# usage errors, and daemon.shutdown from the client.
. "$(dirname "$0")/lib.sh"

start_mock
start_daemon

m8() { "$BIN/m8tes" --socket "$SOCK" "$@"; }
# tty CMD...: runs m8tes with its stdout on a pseudo-terminal.
tty_m8() {
	local q
	q=$(printf '%q ' "$BIN/m8tes" --socket "$SOCK" "$@")
	script -qec "$q" /dev/null | tr -d '\r'
}

# ---- resource commands: positional arguments and options -------------------------
mock_clear
out=$(m8 teammates create --name Alice --instructions "Be brief" \
    --tools gmail,slack --no-enable-memory)
eq "teammates create: exits 0" "$?" 0
jqt "teammates create: JSON when piped" "$out" \
    '.id == 1 and .name == "Alice" and .tools == ["gmail","slack"]'
jeq "teammates create: options become the body" \
    "$(last_request | jq -r .body)" \
    '{"name":"Alice","instructions":"Be brief","tools":["gmail","slack"],
      "enable_memory":false}'

mock_clear
out=$(m8 tasks create 1 "Weekly digest" --name Digest)
eq "tasks create TEAMMATE_ID INSTRUCTIONS: exits 0" "$?" 0
jeq "tasks create: positional arguments fill the required parameters" \
    "$(last_request | jq -r .body)" \
    '{"teammate_id":1,"instructions":"Weekly digest","name":"Digest"}'
out=$(m8 tasks create --teammate-id 1 --instructions "Daily digest")
jqt "tasks create --teammate-id --instructions" "$out" \
    '.teammate_id == 1 and .instructions == "Daily digest"'

mock_clear
out=$(m8 tasks get 1 --user-id u9)
eq "tasks get ID --user-id: the path and the query" \
    "$(last_request | jq -r '"\(.method) \(.path)?\(.query)"')" \
    "GET /api/v2/tasks/1?user_id=u9"

# ---- output: a table on a terminal, JSON when asked ----------------------------
out=$(tty_m8 tasks list)
eq "tasks list on a terminal: a table" "$(printf '%s\n' "$out" | head -n 1 |
    tr -s ' ')" "ID NAME TEAMMATE_ID STATUS"
eq "tasks list on a terminal: one row per task" \
    "$(printf '%s\n' "$out" | tail -n +2 | awk '{print $1}' | paste -sd,)" \
    "2,1"
out=$(tty_m8 --json tasks list)
jqt "--json on a terminal: the page envelope" "$out" \
    '(.data | length) == 2 and .has_more == false'
out=$(tty_m8 teammates get 1)
check "teammates get on a terminal: key: value lines" \
    grep -q '^name: *Alice$' <<<"$out"

# ---- --help everywhere ------------------------------------------------------------
out=$(m8 --help)
eq "m8tes --help: exits 0" "$?" 0
check "m8tes --help: usage first" grep -q '^usage: m8tes' <<<"$out"
bad=
n=0
for method in $(call daemon.describe |
    jq -r '.result.methods[].name |
    select(startswith("daemon.") or . == "cancel" | not)'); do
	# teammates.enable_webhook -> teammates enable-webhook
	words=$(printf '%s' "$method" | tr '._' ' -')
	# shellcheck disable=SC2086
	if ! m8 $words --help 2>&1 | grep -q '^usage: m8tes'; then
		bad="$bad $method"
	fi
	n=$((n + 1))
done
eq "COMMAND --help for all $n methods: usage, exit 0" "${bad:-none}" none
bad=
for r in teammates runs tasks apps memories permissions users webhooks \
    settings auth cache; do
	m8 "$r" --help 2>&1 | grep -q "^usage: m8tes $r" || bad="$bad $r"
done
eq "RESOURCE --help for every resource" "${bad:-none}" none

# ---- usage errors ---------------------------------------------------------------------
err=$(m8 bogus 2>&1 >/dev/null)
eq "unknown command: exit 2" "$?" 2
check "unknown command: says so" grep -q 'no such command: bogus' <<<"$err"
err=$(m8 tasks get 2>&1 >/dev/null)
eq "missing argument: exit 2" "$?" 2
check "missing argument: names it" grep -qi 'task.id' <<<"$err"
m8 tasks get 1 --no-such-option x >/dev/null 2>&1
eq "unknown option: exit 2" "$?" 2
mock_clear
m8 tasks get 1 --bogus >/dev/null 2>&1
eq "a usage error sends nothing upstream" "$(mock_requests | jq length)" 0

# ---- daemon.shutdown -------------------------------------------------------------------
check_daemon_end
start_daemon
out=$(m8 --json call daemon.shutdown)
eq "daemon.shutdown: exits 0" "$?" 0
jqt "daemon.shutdown: answered before stopping" "$out" '.stopping == true'
wait "$DAEMON_PID"
eq "daemon.shutdown: the daemon exits 0" "$?" 0
DAEMON_PID=
check "daemon.shutdown: the socket is gone" test ! -e "$SOCK"

# A second daemon on a live socket refuses to start and leaves it alone.
start_daemon
M8TES_API_KEY=$KEY "$BIN/m8tesd" --socket "$SOCK" --base-url "$MOCK_URL" \
    --state-dir "$T/state2" --cache-dir "$T/cache2" >"$T/second.log" 2>&1
eq "a second daemon on the same socket: exits 1" "$?" 1
check "a second daemon: says why" grep -q 'another daemon is listening' \
    "$T/second.log"
eq "the first daemon still answers" "$(call daemon.ping)" \
    '{"id":1,"result":{"pong":true}}'
check_daemon_end

finish

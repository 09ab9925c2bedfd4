#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The m8tes command line on streaming runs: `runs create` prints the text
# as it arrives and tool calls as in the SDK README's streaming example;
# `runs watch RUN_ID [--after-seq N]`; `mate task ID MESSAGE`; `mate chat
# ID` (each stdin line a turn, EOF ends); `--json` gives the raw event
# lines. On a terminal a permission request or question is shown and
# answered (approve/deny, an option), without one the answering command is
# printed and another client answers; a watcher that falls behind resumes
# by itself without a gap or a duplicate; a failed run exits 8.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_streams.sh"

start_mock
start_daemon
M=("$BIN/m8tes" --socket "$SOCK")
TM=$(rpc teammates.create '{"name":"revenue"}' | jq .id)

# out_text MESSAGE RUN: what runs create prints for a plain turn.
out_text() {
	printf '%s\n' "Done — I worked through \"$1\" and saved the numbers to report.csv, with a chart in chart.png." \
	    '  gmail' '  > {"status":"sent","message_id":"msg_mock_1"}' \
	    "  end_turn (run $2)"
}

# ---- runs create on a terminal: the README's streaming example ---------------------
mock_clear
on_pty "$T/c1" -- "${M[@]}" runs create --message "pull MRR, compare to last month" \
    --teammate-id "$TM" --tools stripe,slack
eq "runs create: exits 0" "$?" 0
wire "runs create" POST /runs/ "" "{\"message\":\"pull MRR, compare to last month\",
    \"stream\":true,\"teammate_id\":$TM,\"tools\":[\"stripe\",\"slack\"]}" idem
eq "runs create: text, each tool call and result, the stop reason" \
    "$(crlf "$T/c1")" "$(out_text "pull MRR, compare to last month" 1)"

# --json: the event lines as the daemon sent them, then the run.
mock_clear
"${M[@]}" --json runs create --message "Weekly recap" >"$T/j1.out"
eq "--json: exits 0" "$?" 0
eq "--json: 33 event lines, seq 1..33" "$(seqs <"$T/j1.out")" "$(seq_range 1 33)"
eq "--json: the lines of the protocol" \
    "$(head -n 1 "$T/j1.out")" \
    '{"id":1,"seq":1,"event":{"type":"metadata","payload":{"run_id":2,"teammate_id":null}}}'
jqt "--json: the accumulated run last" "$(tail -n 1 "$T/j1.out")" \
    '.run_id == 2 and .seq == 33 and .status == "completed" and
     (.text | startswith("Done — I worked through \"Weekly recap\""))'
"${M[@]}" --json runs create --message "Weekly recap" --text-only >"$T/j2.out"
eq "--text-only --json: only text-delta lines" \
    "$(types <"$T/j2.out" | tr , '\n' | sort -u)" text-delta

# ---- runs watch -------------------------------------------------------------------
mock_clear
on_pty "$T/w1" -- "${M[@]}" runs watch 1
eq "runs watch (finished): exits 0" "$?" 0
eq "runs watch (finished): the same text, from the daemon's log" \
    "$(crlf "$T/w1")" "$(out_text "pull MRR, compare to last month" 1)"
"${M[@]}" --json runs watch 2 --after-seq 30 >"$T/w2.out"
eq "runs watch --after-seq 30: events 31..33" "$(seqs <"$T/w2.out")" \
    "$(seq_range 31 33)"
eq "runs watch --after-seq 30: those lines" "$(head -n 3 "$T/w2.out")" \
    "$(sed -n 31,33p "$T/j1.out")"
eq "runs watch: no upstream request" "$(wire_list)" ""

# A run that ended out of the daemon's sight: its fetched output is shown.
run=$(mock_post /runs/ '{"message":"Polled","stream":false}' | jq .id)
mock_get "/runs/$run" >/dev/null
mock_get "/runs/$run" >/dev/null
on_pty "$T/w3" -- "${M[@]}" runs watch "$run"
eq "runs watch (ended upstream): exits 0" "$?" 0
eq "runs watch (ended upstream): the run's output and stop reason" \
    "$(crlf "$T/w3")" "$(out_text Polled "$run" | sed '2,3d')"

# Live, without a terminal: the answering command, then another client.
mock_clear
sub_start a '{"id":"a","method":"runs.create","params":{"message":"[approval] Send the recap"}}'
wait_line a awaiting_approval
R=$(run_of <"$T/a.out")
"${M[@]}" runs watch "$R" >"$T/w4.out" 2>"$T/w4.err" &
W=$!
wait_for 20 grep -q 'answer with' "$T/w4.err"
eq "runs watch (no terminal): says how to answer" "$(cat "$T/w4.err")" \
    "m8tes: run $R asks to use gmail (Send an email)
m8tes: answer with: m8tes runs approve $R 'req_${R}_1' allow   (or deny)"
"${M[@]}" runs approve "$R" "req_${R}_1" allow >/dev/null
eq "runs approve from another command: exits 0" "$?" 0
wait "$W"
eq "runs watch (no terminal): exits 0 when the run ends" "$?" 0
sub_wait a
eq "runs watch (no terminal): JSON lines, as the creator got them" \
    "$(events <"$T/w4.out")" "$(events <"$T/a.out")"
eq "runs watch (no terminal): one transfer, the approval" "$(wire_list)" \
    "POST /api/v2/runs/,POST /api/v2/runs/$R/approve"

# ---- permission requests and questions on a terminal ---------------------------------
mock_clear
on_pty "$T/h1" --expect 'allow? [y/N] ' --send 'y\n' -- \
    "${M[@]}" runs create --message "[approval] Send the recap"
eq "approval prompt: exits 0" "$?" 0
R=$(mock_requests | jq -r '.[1].path' | cut -d/ -f5)
eq "approval prompt: the request, the answer, then the run" "$(crlf "$T/h1")" \
    "  ? gmail: Send an email
    input: {\"to\":\"ops@example.com\",\"subject\":\"Weekly recap\"}
    consequence: Sends an email on your behalf
    Send the weekly recap to ops@example.com?
  allow? [y/N] y
  allowed
$(out_text "Send the recap" "$R")"
eq "approval prompt: wire" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path) \(.body)"] | join("|")')" \
    "POST /api/v2/runs/ {\"message\":\"[approval] Send the recap\",\"stream\":true}|GET /api/v2/runs/$R/permissions |POST /api/v2/runs/$R/approve {\"request_id\":\"req_${R}_1\",\"decision\":\"allow\",\"remember\":false}"

mock_clear
on_pty "$T/h2" --expect 'allow? [y/N] ' --send 'n\n' -- \
    "${M[@]}" runs create --message "[approval] Send the recap"
R=$(mock_requests | jq -r '.[1].path' | cut -d/ -f5)
check "deny: shown" grep -q '^  denied' <(crlf "$T/h2")
jeq "deny: sent as decision deny" "$(mock_requests | jq -r '.[2].body')" \
    "{\"request_id\":\"req_${R}_1\",\"decision\":\"deny\",\"remember\":false}"

mock_clear
on_pty "$T/h3" --expect 'choice [1-2]: ' --send '2\n' -- \
    "${M[@]}" runs create --message "[question] Build the report"
eq "question prompt: exits 0" "$?" 0
R=$(mock_requests | jq -r '.[1].path' | cut -d/ -f5)
eq "question prompt: the options, the choice, then the run" "$(crlf "$T/h3")" \
    "  ? Format:
    Which format should the report use?
    1) CSV
    2) PDF
  choice [1-2]: 2
  answered
$(out_text "Build the report" "$R")"
eq "question prompt: answered with the option's label" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path) \(.body)"] | join("|")')" \
    "POST /api/v2/runs/ {\"message\":\"[question] Build the report\",\"stream\":true}|GET /api/v2/runs/$R/permissions |POST /api/v2/runs/$R/answer {\"answers\":{\"Which format should the report use?\":\"PDF\"},\"request_id\":\"req_${R}_1\"}"

# ---- mate task, mate chat ---------------------------------------------------------------
mock_clear
on_pty "$T/m1" -- "${M[@]}" mate task "$TM" "Monthly numbers"
eq "mate task: exits 0" "$?" 0
R=$(grep -o 'run [0-9]*' "$T/m1" | cut -d' ' -f2)
wire "mate task" POST /runs/ "" \
    "{\"message\":\"Monthly numbers\",\"stream\":true,\"teammate_id\":$TM}" idem
eq "mate task: streamed" "$(crlf "$T/m1")" "$(out_text "Monthly numbers" "$R")"
mock_clear
"${M[@]}" --json mate task "Monthly numbers" >"$T/m2.out"
eq "mate task without ID: the first teammate" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path)?\(.query) \(.body)"] | join("|")')" \
    "GET /api/v2/agents/?limit=1 |POST /api/v2/runs/? {\"message\":\"Monthly numbers\",\"stream\":true,\"teammate_id\":$TM}"
eq "mate task --json: event lines, then the run" \
    "$(seqs <"$T/m2.out") $(tail -n 1 "$T/m2.out" | jq -c '[.status, .seq]')" \
    "$(seq_range 1 33) [\"completed\",33]"

mock_clear
printf 'first one\nsecond one\n' | "${M[@]}" --json mate chat "$TM" >"$T/c.out"
eq "mate chat (stdin): exits 0 at EOF" "$?" 0
R=$(run_of <"$T/c.out")
eq "mate chat (stdin): the first line starts a run, the next replies to it" \
    "$(mock_requests | jq -r '[.[] | "\(.method) \(.path) \(.body)"] | join("|")')" \
    "POST /api/v2/runs/ {\"message\":\"first one\",\"stream\":true,\"teammate_id\":$TM}|POST /api/v2/runs/$R/reply {\"message\":\"second one\",\"stream\":true}"
eq "mate chat (stdin): both turns streamed back (seq 1..66)" \
    "$(seqs <"$T/c.out")" "$(seq_range 1 66)"
eq "mate chat (stdin): each turn's run" \
    "$(jq -c 'select(.event | not) | [.run_id, .text[24:34]]' "$T/c.out" | paste -sd' ' -)" \
    "[$R,\"\\\"first one\"] [$R,\"\\\"second on\"]"

mock_clear
on_pty "$T/c2" --expect 'you> ' --send 'first one\n' --expect 'you> ' \
    --send 'second\n' --expect 'you> ' --send '\x04' -- "${M[@]}" mate chat "$TM"
eq "mate chat (terminal): exits 0 on Ctrl-D" "$?" 0
R=$(grep -o 'run [0-9]*' "$T/c2" | head -n 1 | cut -d' ' -f2)
eq "mate chat (terminal): prompts, each turn streamed" "$(crlf "$T/c2")" \
    "  each line is a message; /new starts a new run, /resume RUN_ID continues one,
  /exit or Ctrl-D ends the chat
you> first one
$(out_text "first one" "$R")
you> second
$(out_text second "$R")
you> "

# ---- a failed run --------------------------------------------------------------------------
"${M[@]}" runs create --message "[fail:SANDBOX_UNAVAILABLE] go" >/dev/null 2>"$T/f.err"
eq "failed run: exits 8" "$?" 8
eq "failed run: says why" "$(cat "$T/f.err")" \
    "m8tes: run failed: SANDBOX_UNAVAILABLE: Mock failure: SANDBOX_UNAVAILABLE"

# ---- a watcher that falls behind resumes by itself ------------------------------------------
mock_clear
lagged0=$(stats_of lagged)
sub_start a '{"id":"a","method":"runs.create","params":{"message":"[approval][long:20000] Flood"}}'
wait_line a awaiting_approval
R=$(run_of <"$T/a.out")
# Its stdout is a pipe nobody reads for a while, so it stops reading.
{ "${M[@]}" --json runs watch "$R" 2>"$T/lw.err"; echo $? >"$T/lw.rc"; } | { sleep 3; cat; } >"$T/lw.out" &
sleep 0.3
rpc runs.approve "{\"run_id\":$R,\"request_id\":\"req_${R}_1\",\"decision\":\"allow\"}" >/dev/null
sub_wait a
wait_for 30 test -s "$T/lw.rc"
N=$(final <"$T/a.out" | jq .result.seq)
eq "lagging watcher: exits 0" "$(cat "$T/lw.rc")" 0
eq "lagging watcher: was lagged once" "$(($(stats_of lagged) - lagged0))" 1
eq "lagging watcher: every event once, in order (1..$N)" \
    "$(seqs <"$T/lw.out")" "$(seq_range 1 "$N")"
jqt "lagging watcher: the run's result" "$(tail -n 1 "$T/lw.out")" \
    ".run_id == $R and .seq == $N and .status == \"completed\""
eq "lagging watcher: resumed from the daemon's log" "$(wire_list)" \
    "POST /api/v2/runs/,POST /api/v2/runs/$R/approve"

check_daemon_end
finish

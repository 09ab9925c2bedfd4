#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# `make run`: m8tesd in the foreground on the embedded mock upstream (an
# offline demo account), or on the real API when M8TES_API_KEY is set.
# Ctrl-C stops both.
set -euo pipefail

bin=${1:-build/bin}
run=${XDG_RUNTIME_DIR:-/tmp/m8tes-$(id -u)}
mkdir -p "$run/m8tes"
chmod 700 "$run/m8tes"
sock=${M8TES_SOCKET:-$run/m8tes/m8tesd.sock}
state=${M8TES_STATE_DIR:-$run/m8tes/state}
cache=${M8TES_CACHE_DIR:-$run/m8tes/cache}
mock_pid=

stop() {
	if [ -n "$mock_pid" ]; then
		kill "$mock_pid" 2>/dev/null || true # gone already on Ctrl-C
	fi
	wait 2>/dev/null || true
}
trap stop EXIT
# Ctrl-C reaches every process of the group: m8tesd stops cleanly on it and
# its exit status is ours; the shell itself just goes on to clean up.
trap : INT TERM

if [ -n "${M8TES_API_KEY:-}" ]; then
	base=${M8TES_BASE_URL:-https://api.m8tes.ai/api/v2}
	echo "m8tesd: using the real API at $base"
else
	demo_key=m8_demo_$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
	rm -f "$run/m8tes/mock.port"
	"$bin/m8tes-mockd" --listen 127.0.0.1:0 --api-key "$demo_key" \
	    --port-file "$run/m8tes/mock.port" 2>"$run/m8tes/mock.log" &
	mock_pid=$!
	for _ in $(seq 100); do
		[ -s "$run/m8tes/mock.port" ] && break
		sleep 0.05
	done
	base=http://127.0.0.1:$(cat "$run/m8tes/mock.port")/api/v2
	export M8TES_API_KEY=$demo_key
	echo "m8tesd: offline demo on the mock upstream at $base"
fi

cat <<MSG

  socket: $sock

  Try, in another terminal:
    export M8TES_SOCKET=$sock
    $bin/m8tes teammates create --name "support triage" --tools gmail,slack
    $bin/m8tes teammates list
    echo '{"id":1,"method":"teammates.list"}' | socat - UNIX-CONNECT:$sock

  Ctrl-C stops.

MSG
"$bin/m8tesd" --socket "$sock" --base-url "$base" --state-dir "$state" \
    --cache-dir "$cache" || exit

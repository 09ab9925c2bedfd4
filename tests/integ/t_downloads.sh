#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# runs.download_file through the file cache: files stored content-
# addressed (SHA-256) in the blob directory, served whole, as base64
# chunk events or as a descriptor (SCM_RIGHTS, through m8tes), a second
# download without an upstream request, a partial or failed download never
# stored or served, a 30 MB file streamed with the daemon's memory well
# below its size, the total size cap with least-recently-used eviction,
# and `m8tes runs download` with its progress bar on a terminal.
. "$(dirname "$0")/lib.sh"

# ASan keeps freed memory in quarantine (256 MB by default), which would
# show as resident memory that the daemon no longer holds; keep it small
# so that the memory check below sees the daemon's own use.
export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=2

served() { printf '%s' "$1" | jq -r '.cache // "none"'; }
nreq() { mock_requests | jq length; }
# b64file FILE: decodes the data_base64 of the reply on stdin into FILE.
b64file() { jq -r '.result.data_base64' | base64 -d >"$1"; }
# blobs: the files in the blob directory (names), sorted.
blobs() { find "$T/cache/blobs" -maxdepth 1 -type f -printf '%f\n' | sort; }
tmpfiles() { find "$T/cache/blobs/tmp" -type f | wc -l; }
# fault_file PATH FILE [TIMES]: the mock answers GET PATH with FILE's bytes
# (text only: the fault body is a JSON string).
fault_file() {
	jq -n --arg p "/api/v2$1" --rawfile b "$2" --argjson t "${3:-1}" \
	    '{method: "GET", path: $p, status: 200, times: $t, body: $b,
	      content_type: "application/octet-stream"}' >"$T/fault.json"
	curl -s -X POST --data-binary @"$T/fault.json" "$MOCK/__mock/faults" \
	    >/dev/null
}
m8() { "$BIN/m8tes" --socket "$SOCK" "$@"; }
rss_kb() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$DAEMON_PID/status"; }

start_mock
start_daemon
RUN=$(run_with_files)
RUN2=$(run_with_files)
curl -s -H "Authorization: Bearer $KEY" -o "$T/report.want" \
    "$MOCK_URL/runs/$RUN/files/report.csv/download"
curl -s -H "Authorization: Bearer $KEY" -o "$T/chart.want" \
    "$MOCK_URL/runs/$RUN/files/chart.png/download"
SHA=$(sha256sum <"$T/report.want" | cut -d' ' -f1)

# ---- whole, as base64 ----------------------------------------------------
mock_clear
D1=$(call runs.download_file "{\"run_id\":$RUN,\"filename\":\"report.csv\"}")
wire "download" GET "/runs/$RUN/files/report.csv/download" "" ""
jqt "download: the result" "$D1" \
    ".cache == \"miss\" and .result.filename == \"report.csv\" and
     .result.size == $(wc -c <"$T/report.want") and
     .result.content_type == \"text/csv\" and .result.sha256 == \"$SHA\""
b64file "$T/report.got" <<<"$D1"
check "download: the bytes" cmp -s "$T/report.got" "$T/report.want"
eq "download: stored as blobs/<sha256>, nothing left in tmp" \
    "$(blobs) $(tmpfiles)" "$SHA 0"
check "download: the blob holds the file" \
    cmp -s "$T/cache/blobs/$SHA" "$T/report.want"
mock_clear
D2=$(call runs.download_file "{\"run_id\":\"$RUN\",\"filename\":\"report.csv\"}")
eq "again: a hit without an upstream request" "$(served "$D2") $(nreq)" "hit 0"
jeq "again: the same result" "$(jq -c .result <<<"$D2")" \
    "$(jq -c .result <<<"$D1")"
# The same content from another run is the same blob.
D3=$(call runs.download_file "{\"run_id\":$RUN2,\"filename\":\"report.csv\"}")
eq "another run's identical file: fetched, one blob" \
    "$(served "$D3") $(blobs | wc -l)" "miss 1"
eq "cache only: a file not stored is m8tesd.cache_miss" \
    "$(call runs.download_file "{\"run_id\":$RUN,\"filename\":\"chart.png\",
    \"cache\":\"only\"}" | jq -r .error.code)" m8tesd.cache_miss
mock_clear
D4=$(call runs.download_file "{\"run_id\":$RUN,\"filename\":\"report.csv\",
    \"cache\":\"bypass\"}")
eq "bypass: fetched again" "$(served "$D4") $(nreq)" "bypass 1"

# ---- as chunk events ----------------------------------------------------
mock_clear
raw "$(req_line runs.download_file "{\"run_id\":$RUN,\"filename\":\"chart.png\",
    \"chunks\":true}")" >"$T/chunks.out"
jq -r 'select(.event) | .event.data_base64' "$T/chunks.out" |
    while read -r l; do printf '%s' "$l" | base64 -d; done >"$T/chart.got"
check "chunks: the bytes" cmp -s "$T/chart.got" "$T/chart.want"
jqt "chunks: one event, then the result with the count" \
    "$(jq -sc . "$T/chunks.out")" \
    '.[0].seq == 1 and .[0].event.type == "chunk" and
     .[0].event.offset == 0 and .[1].result.chunks == 1 and
     .[1].result.size == 2048 and .[1].result.content_type == "image/png"
     and .[1].cache == "miss" and length == 2'

# ---- m8tes runs download: a descriptor ---------------------------------
mock_clear
OUT=$(m8 --json runs download "$RUN" chart.png -o "$T/chart.fd")
jqt "m8tes runs download: by descriptor" "$OUT" \
    ".via == \"fd\" and .path == \"$T/chart.fd\" and .size == 2048 and
     .sha256 == \"$(sha256sum <"$T/chart.want" | cut -d' ' -f1)\""
check "m8tes runs download: the file" cmp -s "$T/chart.fd" "$T/chart.want"
eq "m8tes runs download: from the cache" "$(nreq)" 0
mkdir "$T/cwd"
(cd "$T/cwd" && m8 runs download "$RUN" report.csv >/dev/null)
check "m8tes runs download: the file's own name by default" \
    cmp -s "$T/cwd/report.csv" "$T/report.want"
OUT=$(cd "$T/cwd" && m8 runs download "$RUN" report.csv 2>&1)
eq "m8tes runs download: never over an existing file (exit 2)" \
    "$? $OUT" "2 m8tes: report.csv: exists; give -o PATH to replace it"
OUT=$(script -qec "'$BIN/m8tes' --socket '$SOCK' runs download $RUN \
    chart.png -o '$T/chart.tty'" /dev/null | tr '\r' '\n')
check "m8tes runs download: a progress bar on a terminal" \
    grep -qE "chart.tty +100% +2.0 KiB / 2.0 KiB" <<<"$OUT"
eq "m8tes runs download: then the summary" "$(tail -n 1 <<<"$OUT")" \
    "saved $T/chart.tty (2048 bytes)"

# ---- a reply may make new files: the run's files are fetched again ------
call runs.reply "{\"run_id\":$RUN,\"message\":\"again\",\"stream\":false}" \
    >/dev/null
mock_clear
D5=$(call runs.download_file "{\"run_id\":$RUN,\"filename\":\"report.csv\"}")
eq "after a reply: fetched again" "$(served "$D5") $(nreq)" "miss 1"

# ---- failures are never stored ---------------------------------------------
N0=$(blobs | wc -l)
printf 'fresh file\n' >"$T/fresh"
mock_fault "{\"method\":\"GET\",\"path\":\"/api/v2/runs/$RUN2/files/fresh.txt/download\",\"reset\":\"headers\",\"times\":3}"
mock_clear
F1=$(call runs.download_file "{\"run_id\":$RUN2,\"filename\":\"fresh.txt\"}")
eq "cut after the head (3 attempts): an error" \
    "$(jq -r .error.code <<<"$F1") $(nreq)" "m8tesd.upstream_unreachable 3"
eq "cut after the head: nothing stored, nothing left in tmp" \
    "$(blobs | wc -l) $(tmpfiles)" "$N0 0"
F2=$(call runs.download_file "{\"run_id\":$RUN2,\"filename\":\"nope.txt\"}")
eq "404: an error, nothing stored" \
    "$(jq -r .error.code <<<"$F2") $(blobs | wc -l) $(tmpfiles)" \
    "m8tes.not_found $N0 0"
fault_file "/runs/$RUN2/files/fresh.txt/download" "$T/fresh"
mock_clear
F3=$(call runs.download_file "{\"run_id\":$RUN2,\"filename\":\"fresh.txt\"}")
eq "after a failure: fetched, stored" \
    "$(served "$F3") $(nreq) $(blobs | wc -l)" "miss 1 $((N0 + 1))"
N0=$((N0 + 1))

# A body cut in the middle (fewer bytes than Content-Length).
if command -v python3 >/dev/null 2>&1; then
	python3 - "$T/short.port" <<'EOF' &
import socket, sys
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(8)
open(sys.argv[1] + ".tmp", "w").write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
while True:
    c, _ = s.accept()
    c.recv(65536)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: 1000000\r\n\r\n" + b"x" * 300000)
    c.close()
EOF
	SHORT_PID=$!
	wait_for 10 test -s "$T/short.port"
	stop_daemon
	BASE_URL=http://127.0.0.1:$(cat "$T/short.port")/api/v2 start_daemon
	F4=$(call runs.download_file '{"run_id":1,"filename":"cut.bin"}')
	jqt "cut mid-body: an error" "$F4" '.error.code != null'
	eq "cut mid-body: nothing stored, nothing left in tmp" \
	    "$(blobs | wc -l) $(tmpfiles)" "$N0 0"
	kill "$SHORT_PID"
	wait "$SHORT_PID" 2>/dev/null
	stop_daemon
	start_daemon
fi

# ---- a 30 MB file: streamed, never held in memory -------------------------
head -c 22500000 /dev/urandom | base64 -w 0 >"$T/big.want"
BIGSHA=$(sha256sum <"$T/big.want" | cut -d' ' -f1)
fault_file "/runs/$RUN/files/big.bin/download" "$T/big.want"
stop_daemon
start_daemon
RSS0=$(rss_kb VmRSS)
OUT=$(m8 --json runs download "$RUN" big.bin -o "$T/big.got")
HWM=$(rss_kb VmHWM)
jqt "30 MB: by descriptor" "$OUT" \
    ".via == \"fd\" and .size == 30000000 and .sha256 == \"$BIGSHA\""
check "30 MB: the bytes" cmp -s "$T/big.got" "$T/big.want"
check "30 MB: stored under its hash" cmp -s "$T/cache/blobs/$BIGSHA" \
    "$T/big.want"
check "30 MB: the daemon's peak memory grew by under 8 MB \
($(( (HWM - RSS0) / 1024 )) MB)" test $((HWM - RSS0)) -lt 8192
mock_clear
raw "$(req_line runs.download_file "{\"run_id\":$RUN,\"filename\":\"big.bin\",
    \"chunks\":true}")" >"$T/bigchunks.out"
HWM=$(rss_kb VmHWM)
eq "30 MB chunks: from the cache" "$(nreq)" 0
jqt "30 MB chunks: 611 chunks of 48 KiB at most, in order" \
    "$(jq -sc '[.[] | select(.event) | .event |
        [.offset, (.data_base64 | length)]]' "$T/bigchunks.out")" \
    'length == 611 and all(.[]; .[1] <= 65536) and
     ([.[] | .[0]] == [range(0; 611) | . * 49152])'
jq -r 'select(.event) | .event.data_base64' "$T/bigchunks.out" |
    base64 -d >"$T/big.chunks" 2>/dev/null
check "30 MB chunks: the bytes" cmp -s "$T/big.chunks" "$T/big.want"
check "30 MB chunks: the daemon's peak memory grew by under 8 MB \
($(( (HWM - RSS0) / 1024 )) MB)" test $((HWM - RSS0)) -lt 8192
eq "30 MB whole: too large to inline" \
    "$(call runs.download_file "{\"run_id\":$RUN,\"filename\":\"big.bin\"}" |
    jq -r .error.code)" m8tesd.too_large
rm -f "$T"/big.*

# ---- the size cap: least recently used files go -------------------------
stop_daemon
call_dl() { call runs.download_file "{\"run_id\":$RUN,\"filename\":\"$1\"${2-}}"; }
start_daemon --cache-max-file-bytes 64K
call cache.clear >/dev/null
for i in 1 2 3 4 5; do
	head -c 15000 /dev/urandom | base64 -w 0 >"$T/f$i"    # 20000 bytes
	fault_file "/runs/$RUN/files/f$i.bin/download" "$T/f$i"
done
for i in 1 2 3; do call_dl "f$i.bin" >/dev/null; done
call_dl f1.bin >/dev/null                          # f1 used: f2 is oldest
eq "cap: three files of 20000 bytes fit in 64 KiB" "$(blobs | wc -l)" 3
call_dl f4.bin >/dev/null
eq "cap: a fourth evicts the least recently used (f2)" \
    "$(for i in 1 2 3 4; do served "$(call_dl "f$i.bin" ',"cache":"only"')"
    done | tr '\n' ' ')" "hit none hit hit "
jqt "cap: stats within the cap" "$(call cache.stats | jq -c .result)" \
    '.blobs == 3 and .blob_bytes == 60000 and .max_blob_bytes == 65536 and
     .blob_evictions == 1'
eq "cap: three blob files on disk" "$(blobs | wc -l)" 3
head -c 60000 /dev/urandom | base64 -w 0 >"$T/huge"        # 80000 bytes
fault_file "/runs/$RUN/files/huge.bin/download" "$T/huge"
eq "cap: a file over the cap is refused" \
    "$(call_dl huge.bin | jq -r .error.code)" m8tesd.too_large
eq "cap: and leaves nothing behind" "$(blobs | wc -l) $(tmpfiles)" "3 0"
check "cap: the files kept are intact" \
    cmp -s "$T/cache/blobs/$(sha256sum <"$T/f4" | cut -d' ' -f1)" "$T/f4"

check_daemon_end
finish

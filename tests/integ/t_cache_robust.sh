#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The cache is disposable: a database that is garbage or of another schema
# at start, deleted or overwritten at run time, a blob directory or a blob
# file removed or cut short, leftovers of an interrupted download, a cache
# directory that cannot be used or is another daemon's: each is detected
# and rebuilt (or done without) and no request fails. Under a flood of
# distinct reads the cache stays within its byte cap.
. "$(dirname "$0")/lib.sh"

served() { printf '%s' "$1" | jq -r '.cache // "none"'; }
stat_of() { call cache.stats | jq -r ".result.$1"; }
list() { call teammates.list "{\"limit\":${1:-3}}"; }
# ok_reply NAME REPLY WANT_SERVED: a result (not an error) served so.
ok_reply() {
	jqt "$1" "$2" ".result.data != null and .cache == \"$3\""
}
download() {
	call runs.download_file "{\"run_id\":$RUN,\"filename\":\"report.csv\"}"
}
# got_report REPLY: the reply carries report.csv's bytes.
got_report() {
	jq -r .result.data_base64 <<<"$1" | base64 -d >"$T/report.got" &&
	    cmp -s "$T/report.got" "$T/report.want"
}
DB=$T/cache/cache.db

start_mock
for i in 1 2 3; do
	mock_post /agents/ "{\"name\":\"m$i\",\"instructions\":\"x\"}" >/dev/null
done
RUN=$(run_with_files)
curl -s -H "Authorization: Bearer $KEY" -o "$T/report.want" \
    "$MOCK_URL/runs/$RUN/files/report.csv/download"

# ---- at start: garbage, another schema -----------------------------------
mkdir -p "$T/cache"
head -c 20000 /dev/urandom >"$DB"
start_daemon
ok_reply "garbage database: the call works" "$(list)" miss
ok_reply "garbage database: then cached" "$(list)" hit
eq "garbage database: rebuilt once" "$(stat_of rebuilds) $(stat_of available)" \
    "1 true"
stop_daemon
eq "garbage database: now a database" "$(head -c 15 "$DB")" "SQLite format 3"
rm -f "$DB"*
sqlite3 "$DB" "PRAGMA user_version = 99; CREATE TABLE other (a);"
start_daemon
ok_reply "another schema version: the call works" "$(list)" miss
eq "another schema version: rebuilt" "$(stat_of rebuilds)" 1
stop_daemon
eq "another schema version: replaced" \
    "$(sqlite3 "$DB" "PRAGMA user_version; SELECT count(*) FROM
    sqlite_master WHERE name = 'other'" | tr '\n' ' ')" "2 0 "

# ---- leftovers: an interrupted download, unknown blob files ----------------
mkdir -p "$T/cache/blobs/tmp"
echo partial >"$T/cache/blobs/tmp/0123.part"
echo stray >"$T/cache/blobs/$(printf 'a%.0s' $(seq 64))"
start_daemon
eq "leftovers: removed at start" \
    "$(find "$T/cache/blobs" -type f | wc -l)" 0

# ---- at run time: the database deleted ---------------------------------
list >/dev/null
R0=$(stat_of rebuilds)
rm -f "$DB" "$DB-wal" "$DB-shm" "$DB-journal"
ok_reply "database deleted: the next call still works" "$(list 4)" miss
sleep 1.1
R1=$(list)
ok_reply "database deleted: detected, the entry is gone (miss)" "$R1" miss
ok_reply "database deleted: cached again" "$(list)" hit
eq "database deleted: rebuilt once, file back" \
    "$(($(stat_of rebuilds) - R0)) $(test -f "$DB" && echo yes)" "1 yes"

# ---- at run time: the database overwritten ---------------------------------
list 5 >/dev/null
call cache.clear '{"resource":"nothing"}' >/dev/null   # a write: WAL grows
R0=$(stat_of rebuilds)
dd if=/dev/urandom of="$DB" bs=4096 count=8 conv=notrunc status=none
[ -f "$DB-wal" ] && dd if=/dev/urandom of="$DB-wal" bs=4096 count=8 \
    conv=notrunc status=none
sleep 1.1
for i in 1 2 3 4 5 6; do echo "$(list $i)"; done >"$T/after.out"
eq "database overwritten: every call answered" \
    "$(jq -s 'map(select(.result.data != null)) | length' "$T/after.out")" 6
eq "database overwritten: rebuilt" "$(($(stat_of rebuilds) - R0))" 1
ok_reply "database overwritten: caching again" "$(list 6)" hit

# ---- at run time: blobs ------------------------------------------------------
D1=$(download)
check "blob: downloaded" got_report "$D1"
SHA=$(jq -r .result.sha256 <<<"$D1")
truncate -s 10 "$T/cache/blobs/$SHA"
D2=$(download)
eq "blob cut short: fetched again (miss)" "$(served "$D2")" miss
check "blob cut short: the right bytes" got_report "$D2"
eq "blob cut short: the blob is whole again" \
    "$(stat -c %s "$T/cache/blobs/$SHA")" "$(stat -c %s "$T/report.want")"
rm -f "$T/cache/blobs/$SHA"
D3=$(download)
eq "blob deleted: fetched again" "$(served "$D3")" miss
check "blob deleted: the right bytes" got_report "$D3"
R0=$(stat_of rebuilds)
rm -rf "$T/cache/blobs"
D4=$(download)
eq "blob directory deleted: fetched again" "$(served "$D4")" miss
check "blob directory deleted: the right bytes" got_report "$D4"
check "blob directory deleted: recreated with the blob" \
    test -f "$T/cache/blobs/$SHA"
sleep 1.1
ok_reply "blob directory deleted: the response cache is untouched" \
    "$(list 6)" hit
D5=$(download)
eq "blob directory deleted: then a hit" "$(served "$D5")" hit
check "blob directory deleted: the right bytes" got_report "$D5"

# ---- an entry edited by hand: a newline would break the protocol's framing
stop_daemon
sqlite3 "$DB" "UPDATE entries SET body = CAST('{\"data\":[],' || char(10) ||
    '\"has_more\":false}' AS BLOB)"
start_daemon
E1=$(call teammates.list '{"limit":6}')
ok_reply "an entry with a newline: a miss, fetched again" "$E1" miss
jqt "an entry with a newline: the real list" "$E1" '(.result.data | length) == 3'
ok_reply "an entry with a newline: replaced" "$(list 6)" hit

# ---- a cache directory that cannot be used ---------------------------------
stop_daemon
SOCK2=$T/other.sock
M8TES_API_KEY=$KEY "$BIN/m8tesd" --socket "$SOCK2" --base-url "$MOCK_URL" \
    --state-dir "$T/state2" --cache-dir "$T/report.want" --log-level info \
    >"$T/other.log" 2>&1 &
OTHER=$!
wait_for 10 test -S "$SOCK2"
O1=$(printf '%s\n' '{"id":1,"method":"teammates.list","params":{"limit":3}}' |
    socat -t 5 - UNIX-CONNECT:"$SOCK2")
jqt "cache directory is a file: calls work, uncached" "$O1" \
    '.result.data != null and .cache == null'
eq "cache directory is a file: cache.stats says unavailable" \
    "$(printf '%s\n' '{"id":1,"method":"cache.stats"}' |
    socat -t 5 - UNIX-CONNECT:"$SOCK2" | jq -r .error.code)" \
    m8tesd.unavailable
kill "$OTHER"
wait "$OTHER"
eq "cache directory is a file: the daemon stops cleanly" "$?" 0
check "cache directory is a file: logged" grep -q "no cache in" "$T/other.log"
# A second daemon on the same cache directory does without.
start_daemon
M8TES_API_KEY=$KEY "$BIN/m8tesd" --socket "$SOCK2" --base-url "$MOCK_URL" \
    --state-dir "$T/state2" --cache-dir "$T/cache" --log-level info \
    >"$T/other.log" 2>&1 &
OTHER=$!
wait_for 10 test -S "$SOCK2"
O2=$(printf '%s\n' '{"id":1,"method":"teammates.list","params":{"limit":3}}' |
    socat -t 5 - UNIX-CONNECT:"$SOCK2")
jqt "second daemon on the same cache: calls work, uncached" "$O2" \
    '.result.data != null and .cache == null'
kill "$OTHER"
wait "$OTHER"
check "second daemon on the same cache: logged" \
    grep -q "no cache in $T/cache" "$T/other.log"
ok_reply "the first daemon's cache is untouched" "$(list 6)" hit

# ---- a flood of distinct reads stays within the cap ------------------------
stop_daemon
rm -rf "$T/cache"
start_daemon --cache-max-bytes 256K
for i in $(seq 4 20); do
	mock_post /agents/ "{\"name\":\"m$i\",\"instructions\":\"x\"}" >/dev/null
done
# Two connections of 140 and 160 calls (a connection has at most 256 in flight).
for l in $(seq 15); do
	for s in $(seq 20); do
		printf '{"id":%d,"method":"teammates.list","params":{"limit":%d,"starting_after":%d}}\n' \
		    $((l * 100 + s)) "$l" "$s" >>"$T/flood.$((l % 2))"
	done
done
socat -t 30 - UNIX-CONNECT:"$SOCK" <"$T/flood.0" >"$T/flood.out.0" &
FLOOD=$!
socat -t 30 - UNIX-CONNECT:"$SOCK" <"$T/flood.1" >"$T/flood.out.1"
wait "$FLOOD"
cat "$T"/flood.out.* >"$T/flood.out"
eq "flood: 300 distinct reads, all answered" \
    "$(jq -s 'map(select(.result.data != null)) | length' "$T/flood.out")" 300
ST=$(call cache.stats | jq -c .result)
jqt "flood: within the cap, with evictions" "$ST" \
    '.max_bytes == 262144 and .bytes <= 262144 and .bytes > 131072 and
     .evictions > 0 and .entries < 300 and .misses == 300'
stop_daemon
eq "flood: the database agrees" \
    "$(sqlite3 "$DB" "SELECT count(*), sum(size) <= 262144 FROM entries" |
    tr '|' ' ')" "$(jq -r '"\(.entries) 1"' <<<"$ST")"
start_daemon --cache-max-bytes 256K
check_daemon_end
finish

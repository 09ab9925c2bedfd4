#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# The webhook receiver over HTTPS (webhook_tls_cert/webhook_tls_key, a
# self-signed certificate made here with openssl) and its limits: header
# size (16 KiB: 431), body size past the drain limit (connection closed), the
# connection count (1024: the next sender waits until a slot frees) and
# time (a silent connection is closed after the 10 s timeout).
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_webhooks.sh"

S1=whsec_limits_secret_000000001
BODY='{"event":"run.completed","run_id":7}'
start_mock

if ! command -v openssl >/dev/null; then
	echo "openssl is needed (apt-get install openssl)"
	exit 1
fi

# ---- TLS -------------------------------------------------------------------
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/key.pem" -out "$T/cert.pem" -days 2 -subj /CN=127.0.0.1 \
    -addext subjectAltName=IP:127.0.0.1 2>/dev/null
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
    -keyout "$T/other.key" -out "$T/other.pem" -days 2 -subj /CN=other \
    2>/dev/null
check "openssl made a certificate and a key" test -s "$T/cert.pem" -a -s "$T/key.pem"
chmod 600 "$T/key.pem"

wh_config "webhook_secret = $S1" "webhook_tls_cert = $T/cert.pem" \
    "webhook_tls_key = $T/key.pem"
wh_start
WH_URL=https://127.0.0.1:$WH_PORT/
r=$(wh_send "$S1" msg_tls_1 "$BODY" "" --cacert "$T/cert.pem")
weq "HTTPS delivery, certificate verified by the sender: 200" "${r%% *}" 200
jqt "HTTPS delivery: stored" "${r#* }" '.received == true and .duplicate == false'
seq1=$(printf '%s' "${r#* }" | jq -r '.seq // 0')
ev=$(wh_events "{\"after_seq\":$((seq1 - 1))}" 1)
jqt "HTTPS delivery reaches a local listener as sent" "$ev" \
    '.webhook_id == "msg_tls_1" and .payload.run_id == 7'
ts=$(date +%s)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 --cacert "$T/other.pem" \
    -H "Webhook-Id: msg_tls_2" -H "Webhook-Timestamp: $ts" \
    -H "Webhook-Signature: $(wh_sign "$S1" msg_tls_2 "$ts" "$BODY")" \
    --data-binary "$BODY" "$WH_URL")
weq "a sender that does not trust the certificate gets no answer" "$code" 000
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST -d x \
    "http://127.0.0.1:$WH_PORT/")
weq "plain HTTP on the HTTPS port: no HTTP answer" "$code" 000
r=$(wh_send "$S1" msg_tls_3 "$BODY" "" --cacert "$T/cert.pem")
weq "HTTPS still answers after the bad handshakes: 200" "${r%% *}" 200
r=$(wh_send whsec_wrong_secret_0000000001 msg_tls_4 "$BODY" "" \
    --cacert "$T/cert.pem")
weq "HTTPS, wrong secret: 401" "${r%% *}" 401
wh_stop
weq "HTTPS receiver: SIGTERM, exit status 0" "$WH_RC" 0

# A key that is not the certificate's, and a certificate that is not
# there: the daemon does not start, and says why.
bad_start() {
	rm -f "$T/bad.sock"
	M8TES_API_KEY=$KEY timeout 20 "$BIN/m8tesd" --socket "$T/bad.sock" \
	    --base-url "$MOCK_URL" --state-dir "$T/badstate" \
	    --cache-dir "$T/badcache" --config "$T/bad.conf" \
	    --log-level debug >"$T/bad.log" 2>&1
}
printf '%s\n' "webhook_listen = 127.0.0.1:0" "webhook_secret = $S1" \
    "webhook_tls_cert = $T/cert.pem" "webhook_tls_key = $T/other.key" \
    >"$T/bad.conf"
bad_start
rc=$?
check "key not matching the certificate: m8tesd exits non-zero (status $rc)" \
    test "$rc" -ne 0 -a "$rc" -ne 124
check "key not matching the certificate: the log says why" \
    grep -q 'webhook receiver: .*[Cc]ertificate\|webhook receiver: .*key' "$T/bad.log"
check "... and that webhooks cannot be received" \
    grep -q 'cannot receive webhooks on 127.0.0.1:0' "$T/bad.log"
printf '%s\n' "webhook_listen = 127.0.0.1:0" "webhook_secret = $S1" \
    "webhook_tls_cert = $T/missing.pem" "webhook_tls_key = $T/key.pem" \
    >"$T/bad.conf"
bad_start
rc=$?
check "missing certificate file: m8tesd exits non-zero (status $rc)" \
    test "$rc" -ne 0 -a "$rc" -ne 124
check "missing certificate file: the log names it" \
    grep -q "webhook_tls_cert $T/missing.pem: No such file" "$T/bad.log"
check "no sanitizer report from the failed starts" \
    sh -c "! grep -qE 'runtime error|AddressSanitizer|LeakSanitizer' '$T/bad.log'"

# ---- header and body size --------------------------------------------------
wh_config "webhook_secret = $S1" "webhook_max_body = 4K"
wh_start
pad8k=$(head -c 8000 /dev/zero | tr '\0' a)
r=$(wh_send "$S1" msg_hdr_8k "$BODY" "" -H "X-Pad: $pad8k")
weq "8000 bytes of headers: 200" "${r%% *}" 200
pad20k=$(head -c 20000 /dev/zero | tr '\0' a)
r=$(wh_send "$S1" msg_hdr_20k "$BODY" "" -H "X-Pad: $pad20k")
weq "20000 bytes of headers (over WEBHOOK_MAX_HEADER): 431" "${r%% *}" 431
long_url=$(head -c 40000 /dev/zero | tr '\0' a)
code=$(curl -s -o /dev/null -w '%{http_code}' -m 5 -X POST -d x \
    "${WH_URL}$long_url")
weq "a 40000-byte request line: 414" "$code" 414

# Chunked, no length: up to WEBHOOK_MAX_DRAIN (1 MiB) past the limit is
# read and dropped for a 413; far more and the connection is closed.
big=$(printf '{"pad":"%0100000d"}' 0)
ts=$(date +%s)
r=$(wh_post msg_chunk_1 "$ts" "$(wh_sign "$S1" msg_chunk_1 "$ts" "$big")" \
    "$big" -H 'Transfer-Encoding: chunked')
weq "chunked body 100 KB over a 4 KiB limit: 413" "${r%% *}" 413
head -c 3000000 /dev/zero >"$T/huge"
code=$(curl -s -o /dev/null -w '%{http_code}' -m 20 -H 'Expect:' \
    -H 'Transfer-Encoding: chunked' -H "Webhook-Id: msg_chunk_2" \
    -H "Webhook-Timestamp: $ts" -H "Webhook-Signature: v1=$(printf '%064d' 0)" \
    --data-binary @"$T/huge" "$WH_URL")
weq "chunked body 3 MB over a 4 KiB limit: closed unanswered" "$code" 000
r=$(wh_send "$S1" msg_after_limits "$BODY")
weq "deliveries still work after the size limits: 200" "${r%% *}" 200

# ---- connections and time ----------------------------------------------------
# One silent connection, then held ones with half a request line up to the
# limit of 1024 connections. At 1023 a delivery goes through; at 1024 the
# next waits in the backlog until a connection goes. Everything is well
# inside the 10 s every connection has to deliver a request.
exec {idle}<>"/dev/tcp/127.0.0.1/$WH_PORT"
idle_t0=$(now_ms)
held=()
for ((i = 0; i < 1022; i++)); do
	exec {fd}<>"/dev/tcp/127.0.0.1/$WH_PORT"
	printf 'POST / HT' >&"$fd"
	held+=("$fd")
done
r=$(wh_send "$S1" msg_conn_1023 "$BODY")
weq "1023 connections held: a delivery goes through (200)" "${r%% *}" 200
exec {fd}<>"/dev/tcp/127.0.0.1/$WH_PORT"
printf 'POST / HT' >&"$fd"
held+=("$fd")
(
	r=$(wh_send "$S1" msg_conn_1025 "$BODY")
	echo "${r%% *}" >"$T/conn.code"
) &
waiter=$!
sleep 2
check "1024 connections held: the next sender waits (no answer in 2 s)" \
    test ! -s "$T/conn.code"
for ((i = 0; i < 8; i++)); do
	fd=${held[i]}
	exec {fd}>&-
done
wait "$waiter"
weq "once some close, the waiting sender is answered (200)" \
    "$(cat "$T/conn.code" 2>/dev/null)" 200
for ((i = 8; i < ${#held[@]}; i++)); do
	fd=${held[i]}
	exec {fd}>&-
done

# The silent connection: closed (EOF, no answer) after the 10 s timeout.
idle_got=$(timeout 30 cat <&"$idle" 2>/dev/null | head -c 200)
idle_ms=$(($(now_ms) - idle_t0))
exec {idle}>&-
weq "silent connection: closed without an answer" "$idle_got" ""
check "silent connection closed after 9-20 s (took $((idle_ms / 1000)) s)" \
    test "$idle_ms" -ge 9000 -a "$idle_ms" -lt 20000
r=$(wh_send "$S1" msg_after_conns "$BODY")
weq "deliveries still work after the connection limits: 200" "${r%% *}" 200

wh_finish

#!/bin/bash
# SPDX-License-Identifier: MIT
#
# Peer identity and policy with real local users: the daemon reads every
# connection's uid, gid and pid with SO_PEERCRED (daemon.hello shows them,
# with the user name, the [peer] section, the tenant and the admin right),
# [peer] sections match by user name, uid or primary gid (first match
# wins; supplementary groups do not count), allow/deny globs, a forced
# tenant user_id (checked on the wire), per-uid connection caps, a per-uid
# request rate that survives reconnecting and reloads, admin methods for
# root, the daemon's own user and admin = true only, and default_deny.
# Needs root (creates the users m8t_alice, m8t_bob, m8t_carol, m8t_dave
# and m8t_svc, and the group m8t_ops); skips otherwise.

. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_peers.sh"

need_root
for u in m8t_alice m8t_bob m8t_dave m8t_svc; do
	ensure_user "$u" || { echo "cannot create user $u"; exit 1; }
done
ensure_user m8t_carol m8t_ops || { echo "cannot create user m8t_carol"; exit 1; }
ALICE=$(id -u m8t_alice) ALICE_GID=$(id -g m8t_alice)
BOB=$(id -u m8t_bob)
CAROL=$(id -u m8t_carol) OPS=$(getent group m8t_ops | cut -d: -f3)
DAVE=$(id -u m8t_dave) DAVE_GID=$(id -g m8t_dave)
NONAME=4242:4343 # an identity with no user name
SVC_PID=
trap '[ -n "$SVC_PID" ] && kill "$SVC_PID" 2>/dev/null; cleanup' EXIT

# The other users reach the socket through $T.
chmod 755 "$T"
CONF=$T/m8tesd.conf
write_conf() {
	cat >"$CONF" <<EOF
socket_mode = 0666
max_connections_per_uid = 2
$1
[peer alice]
match_user = m8t_alice
allow = teammates.* runs.* daemon.stats
deny = teammates.delete
tenant = cust_alice
max_connections = 2

[peer bob]
match_uid = $BOB
allow = *.list *.get
rate = 0.001
burst = 3

[peer ops]
match_gid = $OPS
admin = true

# Never used: carol matches [peer ops] first.
[peer carol_late]
match_user = m8t_carol
allow = daemon.ping

[peer root]
match_uid = 0
max_connections = 1000
EOF
}
write_conf ""
start_mock
start_daemon --config "$CONF"
check "socket is 0666 as configured" [ "$(stat -c %a "$SOCK")" = 666 ]

# ---- SO_PEERCRED: daemon.hello as each identity ---------------------------

# hello_as PEER [SETPRIV_GROUP_ARGS...]: daemon.hello as PEER; sets out
# to the reply's peer object and HELLO_PID to the client's pid (setpriv
# execs socat).
hello_as() {
	local p=$1
	shift
	req_line daemon.hello >"$T/hello.in"
	setpriv --reuid="$(peer_uid "$p")" --regid="$(peer_gid "$p")" \
	    "${@:---clear-groups}" -- socat -t 5 - UNIX-CONNECT:"$SOCK" \
	    <"$T/hello.in" >"$T/hello.out" &
	HELLO_PID=$!
	wait "$HELLO_PID"
	cat "$T/hello.out" >>"$T/replies.log"
	out=$(jq -c .result.peer "$T/hello.out")
}

hello_as m8t_alice
jeq "hello as alice: uid, gid, pid, name, section, tenant" "$out" \
    "{\"uid\":$ALICE,\"gid\":$ALICE_GID,\"pid\":$HELLO_PID,\"user\":\"m8t_alice\",
      \"rule\":\"alice\",\"tenant\":\"cust_alice\",\"admin\":false}"
hello_as m8t_carol
jeq "hello as carol: matched by primary gid, first section wins, admin" \
    "$out" "{\"uid\":$CAROL,\"gid\":$OPS,\"pid\":$HELLO_PID,\"user\":\"m8t_carol\",
      \"rule\":\"ops\",\"tenant\":null,\"admin\":true}"
hello_as m8t_dave
jeq "hello as dave: no section" "$out" \
    "{\"uid\":$DAVE,\"gid\":$DAVE_GID,\"pid\":$HELLO_PID,\"user\":\"m8t_dave\",
      \"rule\":null,\"tenant\":null,\"admin\":false}"
hello_as m8t_dave --groups="$OPS"
jeq "hello as dave with supplementary group m8t_ops: still no section" \
    "$out" "{\"uid\":$DAVE,\"gid\":$DAVE_GID,\"pid\":$HELLO_PID,\"user\":\"m8t_dave\",
      \"rule\":null,\"tenant\":null,\"admin\":false}"
hello_as "$NONAME"
jeq "hello as uid 4242 (no user name)" "$out" \
    "{\"uid\":4242,\"gid\":4343,\"pid\":$HELLO_PID,\"user\":null,
      \"rule\":null,\"tenant\":null,\"admin\":false}"
hello_as 0:0
jeq "hello as root" "$out" \
    "{\"uid\":0,\"gid\":0,\"pid\":$HELLO_PID,\"user\":\"root\",
      \"rule\":\"root\",\"tenant\":null,\"admin\":true}"
out=$(as_m8tes m8t_alice hello)
jqt "m8tes hello as alice shows the same identity" "$out" \
    ".peer | .uid == $ALICE and .user == \"m8t_alice\" and .rule == \"alice\""

# ---- forced tenant --------------------------------------------------------

for n in A1 A2 A3; do
	mock_post /agents/ "{\"name\":\"$n\",\"user_id\":\"cust_alice\"}" >/dev/null
done
B1=$(mock_post /agents/ '{"name":"B1","user_id":"cust_bob"}' | jq .id)
mock_post /agents/ '{"name":"N1"}' >/dev/null

mock_clear
out=$(as_call m8t_alice teammates.list)
wire "alice teammates.list" GET /agents/ "user_id=cust_alice" ""
jqt "alice sees only her tenant's teammates" "$out" \
    '[.result.data[].name] == ["A3","A2","A1"]'

mock_clear
out=$(as_call m8t_alice teammates.list '{"user_id":"cust_alice","limit":2}')
wire "alice naming her own tenant" GET /agents/ "user_id=cust_alice&limit=2" ""

mock_clear
out=$(as_call m8t_alice teammates.list '{"user_id":"cust_bob"}')
jeq "alice naming another user_id is refused" "$out" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"this peer may only use user_id \"cust_alice\" ([peer alice])","retryable":false}}'
out=$(as_raw m8t_alice \
    '{"id":2,"method":"teammates.list","params":{"user_id":"cust_alice","user_id":"cust_bob"}}')
jqt "a repeated user_id hiding another tenant is refused" "$out" \
    '.id == 2 and .error.code == "m8tesd.forbidden"'
out=$(as_call m8t_alice teammates.list '{"user_id":null}')
jqt "user_id null is refused too" "$out" '.error.code == "m8tesd.forbidden"'
eq "refused calls sent nothing upstream" "$(mock_requests | jq length)" 0

mock_clear
out=$(as_call m8t_alice runs.create '{"message":"hi","stream":false}')
wire "alice runs.create: tenant in the body" POST /runs/ "" \
    '{"message":"hi","stream":false,"user_id":"cust_alice"}' idem
jqt "the run belongs to the tenant" "$out" '.result.user_id == "cust_alice"'

mock_clear
out=$(as_call m8t_alice teammates.get "{\"teammate_id\":$B1}")
wire "alice teammates.get of another tenant's teammate" GET "/agents/$B1" \
    "user_id=cust_alice" ""
jqt "... is not found for her" "$out" '.error.code == "m8tes.not_found"'

mock_clear
out=$(as_raw m8t_alice "$(req_line teammates.list '{"all":true,"limit":1}' 3)")
jqt "alice all:true pages through her 3 teammates" \
    "$(printf '%s\n' "$out" | jq -cs .)" \
    '[.[] | select(.event) | .event.name] == ["A3","A2","A1"] and
     (.[-1].result == {"items":3,"pages":3})'
jqt "every page request carries the tenant" "$(mock_requests)" \
    'length == 3 and all(.[]; .query | test("(^|&)user_id=cust_alice(&|$)"))'

# ---- allow, deny, always-allowed, admin -----------------------------------

mock_clear
jeq "deny wins over allow" "$(as_call m8t_alice teammates.delete '{"teammate_id":1}')" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"teammates.delete is denied by [peer alice]","retryable":false}}'
jeq "a method outside allow is refused" "$(as_call m8t_alice tasks.list)" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"tasks.list is not allowed by [peer alice]","retryable":false}}'
jeq "auth.status is outside alice's allow" "$(as_call m8t_alice auth.status)" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"auth.status is not allowed by [peer alice]","retryable":false}}'
jeq "daemon.ping is always allowed" "$(as_call m8t_alice daemon.ping)" \
    '{"id":1,"result":{"pong":true}}'
jqt "daemon.describe is always allowed" \
    "$(as_call m8t_alice daemon.describe '{"method":"runs.get"}')" \
    '.result.methods[0].name == "runs.get"'
jqt "daemon.stats is in alice's allow" "$(as_call m8t_alice daemon.stats)" \
    '.result.connections.open >= 1'
eq "nothing refused reached upstream" "$(mock_requests | jq length)" 0

admin_refused() { # admin_refused PEER METHOD [PARAMS]
	jeq "$2 as $1 is refused" "$(as_call "$@")" \
	    "{\"id\":1,\"error\":{\"code\":\"m8tesd.forbidden\",\"message\":\"$2 needs root, the daemon's own user or admin = true\",\"retryable\":false}}"
}
# bob's allow (*.list *.get) matches audit.list: refused as admin only.
admin_refused m8t_bob audit.list
for m in auth.status auth.logout cache.clear daemon.shutdown daemon.reload \
    audit.list; do
	admin_refused m8t_dave "$m"
done
admin_refused m8t_dave auth.login '{"api_key":"m8_not_sent_anywhere"}'
admin_refused "$NONAME" auth.status
as_m8tes m8t_dave auth status >/dev/null 2>"$T/err"
eq "m8tes auth status as dave exits 4" "$?" 4
eq "... saying why" "$(cat "$T/err")" \
    "m8tes: auth.status needs root, the daemon's own user or admin = true (m8tesd.forbidden)"
check "the daemon is still running after dave's daemon.shutdown" daemon_alive

out=$(as_call m8t_carol auth.status)
jeq "carol (admin = true by gid) reads auth.status" "$out" \
    "{\"id\":1,\"result\":{\"key_set\":true,\"fingerprint\":\"$(printf %s "$KEY" | sha256sum | cut -c1-12)\",\"source\":\"env\"}}"
jqt "carol clears the cache" "$(as_call m8t_carol cache.clear)" '.result.removed >= 0'
jqt "carol reads the audit log" "$(as_call m8t_carol audit.list)" '.result.data | length >= 1'
jeq "carol reloads" "$(as_call m8t_carol daemon.reload)" \
    '{"id":1,"result":{"reloaded":true}}'
mock_clear
as_call m8t_dave teammates.list >/dev/null
wire "dave (no section) calls without a tenant" GET /agents/ "" ""

# ---- per-uid request rate -------------------------------------------------

mock_clear
out=$(as_raw m8t_bob \
    "$(req_line teammates.list '{"limit":1}' 1)" \
    "$(req_line teammates.list '{"limit":2}' 2)" \
    "$(req_line teammates.list '{"limit":3}' 3)" \
    "$(req_line teammates.list '{"limit":4}' 4)" \
    "$(req_line daemon.ping '' 5)")
all=$(printf '%s\n' "$out" | jq -cs 'sort_by(.id)')
jqt "bob's burst of 3: three answered" "$all" \
    '[.[] | select(.result.data) | .id] == [1,2,3]'
jqt "the 4th is over the rate: m8tesd.busy, retryable, retry_after ~1000 s" \
    "$all" '.[3] | .id == 4 and .error.code == "m8tesd.busy" and
        .error.retryable == true and .error.retry_after > 990 and
        .error.retry_after <= 1000'
jqt "local methods do not count against the rate" "$all" \
    '.[4] == {"id":5,"result":{"pong":true}}'
eq "three requests upstream" "$(mock_requests | jq length)" 3
jqt "the limit survives reconnecting" "$(as_call m8t_bob teammates.get '{"teammate_id":1}')" \
    '.error.code == "m8tesd.busy"'
jqt "another uid is not limited by bob's rate" \
    "$(as_call m8t_dave teammates.list '{"limit":5}')" '[.result.data[].name] == ["N1"]'

# ---- per-uid connection caps ----------------------------------------------

BUSY='{"error":{"code":"m8tesd.busy","message":"too many connections for this user","retryable":true}}'
conn_open a1 m8t_alice
conn_open a2 m8t_alice
conn_send a1 '{"id":1,"method":"daemon.ping"}'
conn_send a2 '{"id":1,"method":"daemon.ping"}'
check "alice: first connection" conn_wait a1 '.id == 1'
check "alice: second connection" conn_wait a2 '.id == 1'
eq "alice: a third connection is refused ([peer alice] max_connections = 2)" \
    "$(as_refused m8t_alice)" "$BUSY"
as_m8tes m8t_alice ping >/dev/null 2>"$T/err"
eq "m8tes as alice meanwhile: exit status 2 (m8tesd.busy)" "$?" 2
eq "... with the daemon's reason" "$(cat "$T/err")" \
    "m8tes: too many connections for this user (m8tesd.busy)"
eq "dave connects meanwhile" "$(as_call m8t_dave daemon.ping)" \
    '{"id":1,"result":{"pong":true}}'
conn_send a1 '{"id":2,"method":"daemon.ping"}'
check "alice's open connections still work" conn_wait a1 '.id == 2'
conn_close a1
alice_pings() { [ "$(as_call m8t_alice daemon.ping)" = '{"id":1,"result":{"pong":true}}' ]; }
check "alice connects again once one of hers closed" wait_for 10 alice_pings
conn_close a2

conn_open n1 "$NONAME"
conn_open n2 "$NONAME"
conn_send n1 '{"id":1,"method":"daemon.ping"}'
conn_send n2 '{"id":1,"method":"daemon.ping"}'
conn_wait n1 '.id == 1' && conn_wait n2 '.id == 1'
eq "uid 4242: a third connection is refused (max_connections_per_uid = 2)" \
    "$(as_refused "$NONAME")" "$BUSY"
conn_close n1
conn_close n2
jqt "refused connections are counted" "$(daemon_stats)" '.connections.refused == 3'
eq "the log says whose connections were refused, and why" \
    "$(grep -o 'refusing a connection of uid.*' "$T/daemon.log" | sort | uniq -c |
        sed 's/^ *//')" \
    "2 refusing a connection of uid $ALICE: too many connections for this user
1 refusing a connection of uid 4242: too many connections for this user"

# ---- reload: default_deny, limits kept ------------------------------------

write_conf "default_deny = true"
jeq "reload with default_deny" "$(call daemon.reload)" \
    '{"id":1,"result":{"reloaded":true}}'
jeq "default_deny: dave (no section) is refused" "$(as_call m8t_dave teammates.list)" \
    '{"id":1,"error":{"code":"m8tesd.forbidden","message":"no [peer] section of the configuration matches this peer and default_deny is on","retryable":false}}'
jqt "default_deny: dave may still say hello" "$(as_call m8t_dave daemon.hello)" \
    '.result.peer.rule == null'
jqt "default_deny: alice's section still applies" \
    "$(as_call m8t_alice teammates.list)" '.result.data | length == 3'
jqt "bob's rate limit survived the reloads" \
    "$(as_call m8t_bob teammates.get '{"teammate_id":1}')" '.error.code == "m8tesd.busy"'

# ---- the daemon's own user is admin ---------------------------------------

SVC=$T/svc
mkdir -p "$SVC"
printf 'socket_mode = 0666\n' >"$SVC/m8tesd.conf"
chown -R m8t_svc "$SVC"
M8TES_API_KEY=$KEY setpriv --reuid=m8t_svc --regid="$(id -g m8t_svc)" \
    --clear-groups -- "$BIN/m8tesd" --config "$SVC/m8tesd.conf" \
    --socket "$SVC/m8tesd.sock" --base-url "$MOCK_URL" \
    --state-dir "$SVC/state" --cache-dir "$SVC/cache" \
    >>"$T/daemon.log" 2>&1 &
SVC_PID=$!
MAIN_SOCK=$SOCK
SOCK=$SVC/m8tesd.sock
svc_up() { [ "$(call daemon.ping)" = '{"id":1,"result":{"pong":true}}' ]; }
check "a daemon running as m8t_svc starts" wait_for 10 svc_up
jqt "as m8t_svc on its daemon: admin" "$(as_call m8t_svc daemon.hello)" \
    ".result.peer | .uid == $(id -u m8t_svc) and .admin == true and .rule == null"
jqt "m8t_svc may call auth.status" "$(as_call m8t_svc auth.status)" \
    '.result.key_set == true and .result.source == "env"'
jqt "root may call auth.status" "$(call auth.status)" '.result.key_set == true'
admin_refused m8t_alice auth.status
admin_refused m8t_alice daemon.shutdown
jeq "m8t_svc may shut its daemon down" "$(as_call m8t_svc daemon.shutdown)" \
    '{"id":1,"result":{"stopping":true}}'
wait "$SVC_PID"
eq "the m8t_svc daemon exits 0" "$?" 0
SVC_PID=
SOCK=$MAIN_SOCK

check_daemon_end
finish

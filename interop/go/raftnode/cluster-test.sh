#!/usr/bin/env bash
# An all-Go go-libp2p-raft cluster driven through raftnode's control
# interface, to show the Go side works before C nodes join it (issue 10).
#
#   interop/go/raftnode/cluster-test.sh RAFTNODE [mem|bolt]
#
# Consensus mode, three nodes on 127.0.0.1 (port 0), 300 ms raft timeouts:
#   example       the seed example (1000 CommitState) on the leader; every
#                 node ends at {"Value":1998}
#   kill-leader   kill -9 the leader; the two survivors elect a new one,
#                 which commits; both apply it
#   add-voter     a fourth node joins with AddVoter, catches up, and counts
#                 in the quorum (the dead node is still a member)
#   remove        RemoveServer of the dead node
#   snapshot      low thresholds, a snapshot, more commits: a fifth node
#                 added as nonvoter is sent InstallSnapshot and reaches the
#                 same state
#   transfer      LeadershipTransfer to another voter; it commits
# OpLog modes (three fresh nodes each), the seed's TestOpLog and
# TestBadApplyAt:
#   oplog         four appendOps then Rollback, seen on every node
#   oplog-bad     a failing op makes every node inconsistent; Rollback heals
# Prints "ok NAME" or "FAIL NAME: why" per check and
# "raftnode cluster (VERSION, STORE): N passed, M failed"; exits non-zero on
# any failure. Waits on events with bounded timeouts, never fixed sleeps.
set -uo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
store="${2:-mem}"
work="$(mktemp -d)"
declare -A PID MA ID
allpids=()
passed=0
failed=0
cleanup() {
    for p in "${allpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
t0=$SECONDS
ok() { echo "ok   $1 ($((SECONDS - t0)) s)"; passed=$((passed + 1)); t0=$SECONDS; }
fail() { echo "FAIL $1: $2 ($((SECONDS - t0)) s)"; failed=$((failed + 1)); t0=$SECONDS; }

ctl() { "$bin" ctl -sock "$work/$1.sock" "${@:2}"; }
start() { # name mode
    local n="$1" mode="$2"
    "$bin" keygen -o "$work/$n.key" >/dev/null || return 1
    "$bin" node -key "$work/$n.key" -control "$work/$n.sock" -mode "$mode" -store "$store" \
        -dir "$work/$n.data" -log error -heartbeat 300ms -election 300ms -lease 300ms \
        >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    PID[$n]=$!
    allpids+=($!)
    local deadline=$((SECONDS + 60))
    until grep -q '^ready' "$work/$n.out" 2>/dev/null; do
        if [ $SECONDS -ge $deadline ] || ! kill -0 "${PID[$n]}" 2>/dev/null; then
            echo "node $n did not start:"; cat "$work/$n.err"; return 1
        fi
        sleep 0.05
    done
    MA[$n]="$(awk '$1=="listen"{print $2; exit}' "$work/$n.out")"
    ID[$n]="$(awk '$1=="id"{print $2}' "$work/$n.out")"
}
# name_of ID: the node name with that peer ID.
name_of() {
    local n
    for n in "${!ID[@]}"; do [ "${ID[$n]}" = "$1" ] && { echo "$n"; return 0; }; done
    return 1
}
# leader_of NODE: the leader's name as NODE sees it (waits up to 20 s).
leader_of() { local r; r="$(ctl "$1" wait-leader 20s)" || return 1; name_of "${r#ok }"; }
# value NODE: the node's agreed state (the JSON after "ok"), or its error.
value() { ctl "$1" state | sed 's/^ok //'; }
# wait_value NODE WANT: until NODE's state is WANT (bounded).
wait_value() {
    local i v
    for i in $(seq 1 400); do
        v="$(value "$1")"
        [ "$v" = "$2" ] && return 0
        sleep 0.05
    done
    echo "$1 has $v, want $2" >&2
    return 1
}
last_index() { ctl "$1" status | sed 's/.*last_index=\([0-9]*\).*/\1/'; }
peer_all() { # make every pair of the given nodes know each other's address
    local a b
    for a in "$@"; do for b in "${!MA[@]}"; do [ "$a" = "$b" ] || { ctl "$a" peer-add "${MA[$b]}" >/dev/null; ctl "$b" peer-add "${MA[$a]}" >/dev/null; }; done; done
}
# boot NODE bootstrap MA...: bootstrap NODE with itself and the peers as voters.
# A node that already got the configuration from a leader elected by the
# others ("bootstrap only works on new clusters") is a member all the same.
boot() {
    local r
    r="$(ctl "$@")" || [[ "$r" == *"only works on new clusters"* ]] || { echo "$1: $r"; return 1; }
}
bootstrap3() { # three running nodes bootstrap {all voters}, as the seed example does
    local a="$1" b="$2" c="$3"
    boot "$a" bootstrap "${MA[$b]}" "${MA[$c]}" && boot "$b" bootstrap "${MA[$a]}" "${MA[$c]}" &&
        boot "$c" bootstrap "${MA[$a]}" "${MA[$b]}"
}
stop_all() {
    local n
    for n in "${!PID[@]}"; do ctl "$n" shutdown >/dev/null 2>&1 || true; done
    for n in "${!PID[@]}"; do wait "${PID[$n]}" 2>/dev/null || true; done
    PID=(); MA=(); ID=()
}

ver="$("$bin" version | tr ' ' '\n' | sed -n 's|github.com/hashicorp/raft@||p')"
echo "raftnode cluster: hashicorp/raft $ver, store $store"

# ---- consensus ---------------------------------------------------------------
for n in n1 n2 n3; do start $n consensus || exit 1; done
peer_all n1 n2 n3
bootstrap3 n1 n2 n3 || { echo "bootstrap failed"; exit 1; }
L="$(leader_of n1)" || { echo "no leader"; exit 1; }

r="$(ctl "$L" example 1000)"
if [ "$r" = "ok 1998" ] && wait_value n1 '{"Value":1998}' && wait_value n2 '{"Value":1998}' &&
    wait_value n3 '{"Value":1998}'; then
    ok "example: 1000 CommitState on $L; Raft1..3 final state 1998"
else
    fail example "leader said '$r'"
fi

old="$L"
{ kill -9 "${PID[$old]}"; wait "${PID[$old]}"; } 2>/dev/null
unset "PID[$old]" "MA[$old]"
survivors=()
for n in n1 n2 n3; do [ "$n" = "$old" ] || survivors+=("$n"); done
L=""
for i in $(seq 1 200); do
    l="$(leader_of "${survivors[0]}")"
    if [ -n "$l" ] && [ "$l" != "$old" ]; then L="$l"; break; fi
    sleep 0.05
done
if [ -n "$L" ] && [ "$(ctl "$L" commit-state 2000)" = 'ok {"Value":2000}' ] &&
    wait_value "${survivors[0]}" '{"Value":2000}' && wait_value "${survivors[1]}" '{"Value":2000}'; then
    ok "kill-leader: kill -9 $old, $L elected, commits 2000 on both survivors"
else
    fail kill-leader "new leader '$L'"
fi

start n4 consensus || exit 1
peer_all n4
r="$(ctl "$L" add-voter "${MA[n4]}")"
if [[ "$r" == ok* ]] && wait_value n4 '{"Value":2000}' &&
    ctl "$L" config | grep -q "${ID[n4]}=voter" && [ "$(ctl "$L" commit-state 2002)" = 'ok {"Value":2002}' ] &&
    wait_value n4 '{"Value":2002}'; then
    ok "add-voter: n4 joined as voter, caught up, commits go on with 3 of 4 alive"
else
    fail add-voter "$r"
fi

r="$(ctl "$L" remove "${ID[$old]}")"
if [[ "$r" == ok* ]] && ! ctl "$L" config | grep -q "${ID[$old]}" &&
    [ "$(ctl "$L" config | wc -w)" -eq 4 ]; then
    ok "remove: RemoveServer of the dead $old; 3 voters left"
else
    fail remove "$r; config $(ctl "$L" config)"
fi

r="$(ctl "$L" set-snapshot 8 1h 4)"
# hashicorp refuses a snapshot until its FSM has seen an index at or past the
# latest configuration entry (the removal): commit once more first.
ctl "$L" commit-state 2003 >/dev/null
s="$(ctl "$L" snapshot)"
for v in $(seq 2004 2 2040); do ctl "$L" commit-state $v >/dev/null; done
start n5 consensus || exit 1
peer_all n5
r2="$(ctl "$L" add-nonvoter "${MA[n5]}")"
st5=""
if [[ "$r" == ok && "$s" == ok* && "$r2" == ok* ]] && wait_value n5 '{"Value":2040}'; then
    st5="$(ctl n5 status)"
fi
snap5="$(echo "$st5" | sed -n 's/.*last_snapshot=\([0-9]*\)\/.*/\1/p')"
if [ -n "$snap5" ] && [ "$snap5" -gt 0 ] && ctl "$L" config | grep -q "${ID[n5]}=nonvoter"; then
    ok "snapshot: leader $s; n5 added as nonvoter got InstallSnapshot (its last snapshot $snap5) and has 2040"
else
    fail snapshot "set '$r' snapshot '$s' add '$r2' n5 '$st5'"
fi

target=""
for n in "${survivors[@]}" n4; do [ "$n" = "$L" ] || { target="$n"; break; }; done
r="$(ctl "$L" transfer "${ID[$target]}")"
nl=""
for i in $(seq 1 200); do
    nl="$(leader_of n5)"
    [ "$nl" = "$target" ] && break
    sleep 0.05
done
if [[ "$r" == ok ]] && [ "$nl" = "$target" ] && [ "$(ctl "$target" commit-state 2042)" = 'ok {"Value":2042}' ] &&
    wait_value n5 '{"Value":2042}'; then
    ok "transfer: LeadershipTransfer $L -> $target (TimeoutNow); it commits"
else
    fail transfer "'$r', leader now '$nl', wanted $target"
fi
stop_all

# ---- OpLog (seed TestOpLog and TestBadApplyAt) ---------------------------------
for n in o1 o2 o3; do start $n oplog || exit 1; done
peer_all o1 o2 o3
bootstrap3 o1 o2 o3 || { echo "bootstrap failed"; exit 1; }
L="$(leader_of o1)"
for s in '"I have "' '"appended "' '"this sentence "' '"to the state Msg."'; do ctl "$L" commit-op "$s" >/dev/null; done
want='{"Msg":"I have appended this sentence to the state Msg."}'
if wait_value o1 "$want" && wait_value o2 "$want" && wait_value o3 "$want"; then
    ctl "$L" rollback "Good as new" >/dev/null
    if wait_value o1 '{"Msg":"Good as new"}' && wait_value o2 '{"Msg":"Good as new"}' && wait_value o3 '{"Msg":"Good as new"}'; then
        ok "oplog: four appendOps then Rollback, identical on the three nodes"
    else
        fail oplog "rollback not seen everywhere"
    fi
else
    fail oplog "ops not applied everywhere"
fi
stop_all

for n in b1 b2 b3; do start $n oplog-bad || exit 1; done
peer_all b1 b2 b3
bootstrap3 b1 b2 b3 || { echo "bootstrap failed"; exit 1; }
L="$(leader_of b1)"
# A state first: on a node that has none, GetCurrentState reports "no
# state" before "inconsistent".
ctl "$L" commit-state start >/dev/null
r="$(ctl "$L" commit-op x)"
incons='err the state on this node is not consistent'
if [ "$r" = "ok null" ] && wait_value b1 "$incons" && wait_value b2 "$incons" && wait_value b3 "$incons" &&
    [ "$(ctl "$L" rollback 'Good as new')" = ok ] && wait_value b1 '{"Msg":"Good as new"}' &&
    wait_value b2 '{"Msg":"Good as new"}' && wait_value b3 '{"Msg":"Good as new"}'; then
    ok "oplog-bad: a failing op (CommitOp returns nil, no error) makes all three inconsistent; Rollback heals"
else
    fail oplog-bad "commit-op said '$r'"
fi
stop_all

echo "raftnode cluster (hashicorp/raft $ver, $store): $passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/usr/bin/env bash
# Mixed clusters of go-libp2p-raft nodes (raftnode) and p2praft nodes on the
# hashicorp wire (build/interop/c-raftnode), driven through the same control
# protocol (issue 10).
#
#   interop/go/raftnode/mixed-test.sh GO_RAFTNODE C_RAFTNODE [prevote]
#
# With `prevote` (a hashicorp/raft 1.7 build), every node runs pre-vote: Go
# sends RequestPreVote (rpc type 4) to C nodes and C nodes to Go nodes.
#
# Every node keeps its state in memory; 300 ms raft timeouts on both sides
# (Go: -heartbeat/-election/-lease 300ms; C: election 300 ms, heartbeat
# 30 ms, which is what a Go leader sends). Checks:
#   go-leader     2 Go + 1 C, a Go leader: the seed example (1000
#                 CommitState), every node at {"Value":1998}
#   snap-go-c     the Go leader snapshots (low thresholds); the C node is
#                 killed and restarted empty (a lagging node): InstallSnapshot
#                 Go -> C, it reaches the leader's state
#   kill-go       kill -9 the Go leader: the Go and C survivors elect one of
#                 them, which commits; both apply it
#   c-leader      1 Go + 2 C, a C leader: the seed example, 1998 everywhere
#   snap-c-go     the C leader snapshots (low threshold); the Go node is
#                 killed and restarted empty: InstallSnapshot C -> Go
#   xfer-c-go     leadership transfer C -> Go (TimeoutNow); the Go node commits
#   xfer-go-c     leadership transfer Go -> C; the C node commits
#   kill-c        kill -9 the C leader: survivors elect, commit
#   add-voter-c   Go leader AddVoter of a C node: it catches up, and its
#                 vote makes the quorum once a Go node is dead
#   add-voter-go  C leader adds a Go node (raft_add + raft_assign voter)
#   remove-go     C leader removes the dead Go node
#   remove-c      Go leader removes the C node (after a transfer)
#   oplog         2 Go + 1 C OpLog (the seed's TestOpLog): four appendOps on
#                 the Go leader, then Rollback; the C node sees every step
#                 identically; then a C leader (transfer) commits an op and
#                 a Rollback that the Go nodes apply
#   oplog-bad     1 Go + 2 C, TestBadApplyAt: a failing op makes every node
#                 inconsistent; Rollback heals them all
# Prints "ok NAME" / "FAIL NAME: why" and a summary; exits non-zero on any
# failure. Waits on events with bounded timeouts, never fixed sleeps.
set -uo pipefail
gbin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cbin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
prevote=()
[ "${3:-}" = prevote ] && prevote=(-prevote)
work="$(mktemp -d)"
declare -A PID MA ID KIND
allpids=()
passed=0
failed=0
cleanup() {
    for p in "${allpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    if [ "$failed" -gt 0 ] && [ -n "${KEEP_LOGS:-}" ]; then
        echo "logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
t0=$SECONDS
ok() { echo "ok   $1 ($((SECONDS - t0)) s)"; passed=$((passed + 1)); t0=$SECONDS; }
fail() {
    echo "FAIL $1: $2 ($((SECONDS - t0)) s)"; failed=$((failed + 1)); t0=$SECONDS
    local n
    for n in "${!PID[@]}"; do echo "  $n (${KIND[$n]}): $(ctl "$n" status 2>&1)"; done
}

ctl() { "$gbin" ctl -sock "$work/$1.sock" "${@:2}"; }
# start NAME go|c MODE [extra args...]: the key is kept across restarts
start() {
    local n="$1" kind="$2" mode="$3"
    shift 3
    [ -f "$work/$n.key" ] || "$gbin" keygen -o "$work/$n.key" >/dev/null || return 1
    local listen="/ip4/127.0.0.1/tcp/0"
    [ -n "${MA[$n]:-}" ] && listen="${MA[$n]%/p2p/*}"
    : >"$work/$n.out"
    if [ "$kind" = go ]; then
        "$gbin" node -key "$work/$n.key" -listen "$listen" -control "$work/$n.sock" -mode "$mode" \
            -store mem -log error -heartbeat 300ms -election 300ms -lease 300ms "${prevote[@]}" "$@" \
            >"$work/$n.out" 2>>"$work/$n.err" </dev/null &
    else
        "$cbin" -key "$work/$n.key" -listen "$listen" -control "$work/$n.sock" -mode "$mode" \
            -heartbeat 30 -election 300 "${prevote[@]}" "$@" >"$work/$n.out" 2>>"$work/$n.err" </dev/null &
    fi
    PID[$n]=$!
    KIND[$n]=$kind
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
kill9() { { kill -9 "${PID[$1]}"; wait "${PID[$1]}"; } 2>/dev/null; unset "PID[$1]"; }
name_of() {
    local n
    for n in "${!ID[@]}"; do [ "${ID[$n]}" = "$1" ] && { echo "$n"; return 0; }; done
    return 1
}
leader_of() { local r; r="$(ctl "$1" wait-leader 20s)" || return 1; name_of "${r#ok }"; }
# new_leader NODE OLD: a leader other than OLD, as NODE sees it (bounded)
new_leader() {
    local i l
    for i in $(seq 1 300); do
        l="$(leader_of "$1" 2>/dev/null)"
        if [ -n "$l" ] && [ "$l" != "$2" ] && [ -n "${PID[$l]:-}" ]; then echo "$l"; return 0; fi
        sleep 0.05
    done
    return 1
}
value() { ctl "$1" state | sed 's/^ok //'; }
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
all_value() { local n; for n in "${@:2}"; do wait_value "$n" "$1" || return 1; done; }
# know NODE...: every listed node learns every other's address
know() {
    local a b
    for a in "$@"; do for b in "$@"; do
        [ "$a" = "$b" ] || ctl "$a" peer-add "${MA[$b]}" >/dev/null
    done; done
}
# go_boot NODE PEERS...: BootstrapCluster(self + peers) on a Go node
go_boot() {
    local n="$1" r m=()
    shift
    for p in "$@"; do m+=("${MA[$p]}"); done
    r="$(ctl "$n" bootstrap "${m[@]}")" || [[ "$r" == *"only works on new clusters"* ]] || { echo "$n: $r"; return 1; }
}
peer_args() { local p; for p in "$@"; do printf -- '-peer %s ' "${MA[$p]}"; done; }
stop_all() {
    local n
    for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
    wait 2>/dev/null
    PID=(); MA=(); ID=(); KIND=()
}
snap_count() { ctl "$1" status | sed -n 's/.*last_snapshot=\([0-9]*\)\/.*/\1/p'; }

echo "mixed cluster: $("$gbin" version | tr ' ' '\n' | grep hashicorp/raft@) and p2praft${prevote:+, pre-vote on}"

# ---- 2 Go + 1 C, a Go leader ---------------------------------------------------
start g1 go consensus && start g2 go consensus || exit 1
# c1 does not bootstrap: it learns the configuration from the Go leader.
start c1 c consensus $(peer_args g1 g2) || exit 1
know g1 g2 c1
go_boot g1 g2 c1 && go_boot g2 g1 c1 || exit 1
L="$(leader_of c1)"
r="$(ctl "$L" example 1000)"
if [ "${KIND[$L]:-}" = go ] && [ "$r" = "ok 1998" ] && all_value '{"Value":1998}' g1 g2 c1; then
    ok "go-leader: 2 Go + 1 C, Go leader $L: 1000 CommitState, Raft1..3 final state 1998"
else
    fail go-leader "leader $L (${KIND[$L]:-?}) said '$r'"
fi

# snapshot Go -> C: the C node restarts empty while the leader compacts.
kill9 c1
ctl "$L" set-snapshot 16 1h 8 >/dev/null
for v in $(seq 2000 2 2040); do ctl "$L" commit-state $v >/dev/null; done
s="$(ctl "$L" snapshot)"
for v in $(seq 2042 2 2060); do ctl "$L" commit-state $v >/dev/null; done
start c1 c consensus $(peer_args g1 g2) || exit 1
if [[ "$s" == ok* ]] && wait_value c1 '{"Value":2060}' && [ "$(snap_count c1)" -gt 0 ]; then
    ok "snap-go-c: Go leader snapshot ($s); the restarted C node got InstallSnapshot and has 2060"
else
    fail snap-go-c "snapshot '$s', c1 $(value c1)"
fi

old="$L"
kill9 "$old"
survivors=()
for n in g1 g2 c1; do [ "$n" = "$old" ] || survivors+=("$n"); done
L="$(new_leader "${survivors[0]}" "$old")"
if [ -n "$L" ] && [ "$(ctl "$L" commit-state 3000)" = 'ok {"Value":3000}' ] &&
    all_value '{"Value":3000}' "${survivors[@]}"; then
    ok "kill-go: kill -9 the Go leader $old; ${KIND[$L]} node $L elected, commits 3000 on Go and C"
else
    fail kill-go "new leader '$L'"
fi
stop_all

# ---- 1 Go + 2 C, a C leader ----------------------------------------------------
start g1 go consensus || exit 1
start c1 c consensus $(peer_args g1) -snapshot-threshold 32 -trailing-logs 8 || exit 1
start c2 c consensus $(peer_args g1 c1) -snapshot-threshold 32 -trailing-logs 8 || exit 1
know g1 c1 c2
# the C nodes bootstrap {g1, c1, c2} (the Go node learns it from them)
kill9 c1; kill9 c2
start c1 c consensus $(peer_args g1 c2) -bootstrap -snapshot-threshold 32 -trailing-logs 8 || exit 1
start c2 c consensus $(peer_args g1 c1) -bootstrap -snapshot-threshold 32 -trailing-logs 8 || exit 1
L="$(leader_of g1)"
if [ "${KIND[$L]:-}" != c ]; then
    # the Go node cannot lead (no configuration yet); should not happen
    fail c-leader "leader $L is not a C node"
fi
r="$(ctl "$L" example 1000)"
# A Go follower that installs a snapshot (here the C leader's, threshold 32)
# while its commit index is already past the snapshot does not apply the
# entries in between until the commit index moves again: hashicorp/raft's
# installSnapshot sets lastApplied and leaves commitIndex as it is, and
# processLogs runs only when a later AppendEntries raises it. Seen once
# under load (g1 at applied 992, commit 1001, snapshot 992). One barrier
# then heals it, and that is checked too.
healed=""
if [ "$r" = "ok 1998" ] && all_value '{"Value":1998}' c1 c2 && ! wait_value g1 '{"Value":1998}' 2>/dev/null; then
    ctl "$L" barrier >/dev/null
    healed=" (g1 applied the last entries after one more commit: $(ctl g1 status | grep -o 'last_snapshot=[^ ]*'))"
fi
if [ "$r" = "ok 1998" ] && all_value '{"Value":1998}' g1 c1 c2; then
    ok "c-leader: 1 Go + 2 C, C leader $L: 1000 CommitState, Raft1..3 final state 1998$healed"
else
    fail c-leader "leader $L said '$r'"
fi

kill9 g1
for v in $(seq 4000 2 4100); do ctl "$L" commit-state $v >/dev/null; done
start g1 go consensus || exit 1
know g1 c1 c2
if wait_value g1 '{"Value":4100}' && [ "$(snap_count g1)" -gt 0 ]; then
    ok "snap-c-go: C leader snapshots every 32 entries; the restarted Go node got InstallSnapshot ($(ctl g1 status | grep -o 'last_snapshot=[^ ]*')) and has 4100"
else
    fail snap-c-go "g1 $(value g1); $(ctl g1 status)"
fi

r="$(ctl "$L" transfer "${ID[g1]}")"
nl="$(new_leader c1 "$L")"
if [ "$r" = ok ] && [ "$nl" = g1 ] && [ "$(ctl g1 commit-state 4102)" = 'ok {"Value":4102}' ] &&
    all_value '{"Value":4102}' g1 c1 c2; then
    ok "xfer-c-go: leadership transfer C $L -> Go g1 (TimeoutNow); g1 commits"
else
    fail xfer-c-go "transfer '$r', leader now '$nl'"
fi
L=g1
r="$(ctl g1 transfer "${ID[c2]}")"
nl="$(new_leader c1 g1)"
if [ "$r" = ok ] && [ "$nl" = c2 ] && [ "$(ctl c2 commit-state 4104)" = 'ok {"Value":4104}' ] &&
    all_value '{"Value":4104}' g1 c1 c2; then
    ok "xfer-go-c: leadership transfer Go g1 -> C c2 (TimeoutNow); c2 commits"
    L=c2
else
    fail xfer-go-c "transfer '$r', leader now '$nl'"
    L="$(leader_of c1)"
fi

old="$L"
kill9 "$old"
survivors=()
for n in g1 c1 c2; do [ "$n" = "$old" ] || survivors+=("$n"); done
L="$(new_leader "${survivors[0]}" "$old")"
if [ -n "$L" ] && [ "$(ctl "$L" commit-state 5000)" = 'ok {"Value":5000}' ] &&
    all_value '{"Value":5000}' "${survivors[@]}"; then
    ok "kill-c: kill -9 the leader $old (${KIND[$old]}); ${KIND[$L]} node $L elected, commits 5000 on both survivors"
else
    fail kill-c "new leader '$L'"
fi
stop_all

# ---- membership: raft-level AddVoter / RemoveServer across the wire --------------
start m1 go consensus && start m2 go consensus || exit 1
know m1 m2
go_boot m1 m2 && go_boot m2 m1 || exit 1
L="$(leader_of m1)"
ctl "$L" commit-state 10 >/dev/null
start m3 c consensus $(peer_args m1 m2) || exit 1
know m1 m2 m3
r="$(ctl "$L" add-voter "${MA[m3]}")"
other=m1; [ "$L" = m1 ] && other=m2
if [[ "$r" == ok* ]] && wait_value m3 '{"Value":10}' && ctl "$L" config | grep -q "${ID[m3]}=voter" &&
    kill9 "$other" && [ "$(ctl "$L" commit-state 12)" = 'ok {"Value":12}' ] && wait_value m3 '{"Value":12}'; then
    ok "add-voter-c: Go leader $L AddVoter of C node m3: it catches up, and with the other Go node dead its vote makes the quorum"
else
    fail add-voter-c "add-voter '$r'; config $(ctl "$L" config)"
fi
r="$(ctl "$L" transfer "${ID[m3]}")"
nl="$(new_leader m3 "$L")"
start m4 go consensus || exit 1
know m3 m4 "$L"
r2="$(ctl m3 add-voter "${MA[m4]}")"
if [ "$r" = ok ] && [ "$nl" = m3 ] && [[ "$r2" == ok* ]] && wait_value m4 '{"Value":12}' &&
    ctl m3 config | grep -q "${ID[m4]}=voter" && ctl m4 config | grep -q "${ID[m3]}=voter"; then
    ok "add-voter-go: C leader m3 adds Go node m4 as voter (raft_add + raft_assign); m4 catches up"
else
    fail add-voter-go "transfer '$r' (leader '$nl'), add '$r2'; config $(ctl m3 config)"
fi
r="$(ctl m3 remove "${ID[$other]}")"
if [[ "$r" == ok* ]] && ! ctl m3 config | grep -q "${ID[$other]}" && ! ctl m4 config | grep -q "${ID[$other]}"; then
    ok "remove-go: C leader m3 removes the dead Go node $other; Go nodes agree"
else
    fail remove-go "'$r'; config $(ctl m4 config)"
fi
r="$(ctl m3 transfer "${ID[m4]}")"
nl="$(new_leader "$L" m3)"
r2="$(ctl m4 remove "${ID[m3]}")"
if [ "$r" = ok ] && [ "$nl" = m4 ] && [[ "$r2" == ok* ]] && ! ctl "$L" config | grep -q "${ID[m3]}" &&
    [ "$(ctl m4 commit-state 14)" = 'ok {"Value":14}' ] && wait_value "$L" '{"Value":14}'; then
    ok "remove-c: Go leader m4 removes C node m3; the Go pair commits on"
else
    fail remove-c "transfer '$r' (leader '$nl'), remove '$r2'; config $(ctl m4 config)"
fi
stop_all

# ---- OpLog: the seed's TestOpLog on 2 Go + 1 C ----------------------------------
start o1 go oplog && start o2 go oplog || exit 1
start o3 c oplog $(peer_args o1 o2) || exit 1
know o1 o2 o3
go_boot o1 o2 o3 && go_boot o2 o1 o3 || exit 1
L="$(leader_of o3)"
for s in '"I have "' '"appended "' '"this sentence "' '"to the state Msg."'; do ctl "$L" commit-op "$s" >/dev/null; done
want='{"Msg":"I have appended this sentence to the state Msg."}'
if all_value "$want" o1 o2 o3 && [ "$(ctl "$L" rollback 'Good as new')" = ok ] &&
    all_value '{"Msg":"Good as new"}' o1 o2 o3 && [ "$(ctl "$L" transfer "${ID[o3]}")" = ok ] &&
    [ "$(new_leader o1 "$L")" = o3 ] && [ "$(ctl o3 commit-op '" again"')" = 'ok {"Msg":"Good as new again"}' ] &&
    all_value '{"Msg":"Good as new again"}' o1 o2 o3 && [ "$(ctl o3 rollback 'Healed')" = ok ] &&
    all_value '{"Msg":"Healed"}' o1 o2 o3; then
    ok "oplog: four appendOps and Rollback on Go leader $L, then an op and a Rollback on the C leader: identical on Go and C"
else
    fail oplog "o1 $(value o1), o3 $(value o3)"
fi
stop_all

# ---- OpLog, TestBadApplyAt on 1 Go + 2 C ----------------------------------------
start b1 go oplog-bad || exit 1
start b2 c oplog-bad $(peer_args b1) || exit 1
start b3 c oplog-bad $(peer_args b1 b2) || exit 1
# the C nodes bootstrap {b1, b2, b3}; they need each other's addresses first
kill9 b2; kill9 b3
start b2 c oplog-bad $(peer_args b1 b3) -bootstrap || exit 1
start b3 c oplog-bad $(peer_args b1 b2) -bootstrap || exit 1
know b1 b2 b3
L="$(leader_of b1)"
ctl "$L" commit-state start >/dev/null
r="$(ctl "$L" commit-op x)"
incons='err the state on this node is not consistent'
if [ "$r" = "ok null" ] && all_value "$incons" b1 b2 b3 &&
    [ "$(ctl "$L" rollback 'Good as new')" = ok ] && all_value '{"Msg":"Good as new"}' b1 b2 b3; then
    ok "oplog-bad: a failing op committed by $L (${KIND[$L]}) makes Go and C nodes inconsistent alike; Rollback heals all three"
else
    fail oplog-bad "commit-op said '$r'; b1 $(value b1), b2 $(value b2)"
fi
stop_all

echo "mixed cluster${prevote:+ (pre-vote)}: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

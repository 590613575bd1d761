#!/usr/bin/env bash
# Membership across implementations through the real p2praft CLI node:
# `p2praft node --wire hashicorp` (the key-value store) and go-libp2p-raft
# nodes running the same store (raftnode -mode kv, kv.go) in one cluster
# (issue 10).
#
#   interop/go/raftnode/mixed-kv-test.sh GO_RAFTNODE P2PRAFT [mem|disk]
#
# The p2praft nodes keep raft's state in memory (default) or on disk (the
# third argument, their --store). Raft timeouts are 300 ms on both sides
# (p2praft: --election-ms 300 --heartbeat-ms 30). Checks:
#   c-cluster      3 p2praft nodes bootstrap a cluster; `p2praft kv`
#                  set, del and cas through it; snapshots every 32 entries
#   peers-add-go   `p2praft peers add` of a Go node's multiaddr: the C
#                  leader promotes it to voter; it catches up by
#                  InstallSnapshot C -> Go and the log, and holds exactly
#                  the C nodes' keys and values
#   addr-is-id     every member's address in the Go node's configuration
#                  is its peer ID (what go-libp2p-raft dials), not the
#                  multiaddr given to `peers add`
#   go-votes       kill -9 the C leader: with 3 of 4 voters left, the new
#                  leader (C or Go) is elected only with the Go node's vote
#                  and commits only with its acknowledgement
#   peers-rm-go    `p2praft peers rm` of the Go node: out of every C node's
#                  configuration; the C nodes commit on without it
#   go-cluster     2 Go nodes bootstrap; Go commits kv-set ops and snapshots
#   add-voter-c    Go AddVoter of an empty `p2praft node --wire hashicorp
#                  --join ...`: it installs the Go snapshot, catches up,
#                  serves `p2praft kv get` and `ls` with the Go nodes' data
#   c-write-refused  `p2praft kv set` through the C node: the Go leader
#                  speaks no /p2praft/forward/1.0.0, so it is refused at
#                  once, not applied (exit 5)
#   c-votes        kill -9 the other Go node: the Go leader commits with the
#                  C node's vote; `p2praft kv get` on it sees the write
#   remove-c       Go RemoveServer of the dead Go node, then of the C node
#                  (with the C node's vote): it logs that it was
#                  removed (once) and exits 8 by itself, and the Go
#                  leader commits alone
# Prints "ok NAME" / "FAIL NAME: why" and a summary; exits non-zero on any
# failure. Every wait is bounded and waits for the event itself. With
# TRANSCRIPT=FILE, the `peers add` step is written to FILE as a terminal
# session (the README's transcript).
set -uo pipefail
gbin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
pbin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
store="${3:-mem}"
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
    for n in "${!PID[@]}"; do
        if [ "${KIND[$n]}" = go ]; then
            echo "  $n (go): $(ctl "$n" status 2>&1)"
        else
            echo "  $n (c): $(pk status "$n" 2>&1 | grep -E '^(role|leader|term|commit_index|applied_index|caught_up|removed):' | tr '\n' ' ')"
            tail -3 "$work/$n.err" | sed 's/^/    /'
        fi
    done
}

ctl() { "$gbin" ctl -timeout 20s -sock "$work/$1.sock" "${@:2}"; }
# pk CMD NODE ARGS...: a p2praft client command on a C node's API socket
pk() { "$pbin" "$1" --data-dir "$work/$2" --timeout-ms 5000 "${@:3}"; }
# until_ok SECONDS CMD...: run CMD until it succeeds, at most SECONDS
until_ok() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}
# until_eq SECONDS WANT CMD...: run CMD until it prints WANT, at most SECONDS
until_eq() {
    local deadline=$((SECONDS + $1)) want="$2"
    shift 2
    until [ "$("$@" 2>/dev/null)" = "$want" ]; do
        [ $SECONDS -ge $deadline ] && return 1
        sleep 0.1
    done
}
# free_port: a port nothing listens on now (a C node's multiaddr must be
# known before it starts, for --bootstrap and the others' --peer)
free_port() {
    local f="$work/port.out" pid
    "$pbin" host --listen /ip4/127.0.0.1/tcp/0 >"$f" 2>/dev/null </dev/null &
    pid=$!
    until_ok 20 grep -q '^/ip4/127.0.0.1/tcp/' "$f"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    sed -n 's|^/ip4/127\.0\.0\.1/tcp/\([0-9]*\)/.*|\1|p' "$f" | head -1
}

# go_start NAME [args...]: a Go kv node; its identity from its output
go_start() {
    local n="$1"
    shift
    "$gbin" node -control "$work/$n.sock" -mode kv -store mem -log error \
        -heartbeat 300ms -election 300ms -lease 300ms "$@" \
        >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    PID[$n]=$!
    KIND[$n]=go
    allpids+=($!)
    if ! until_ok 60 grep -q '^ready' "$work/$n.out"; then
        echo "node $n did not start:"; cat "$work/$n.err"; return 1
    fi
    MA[$n]="$(awk '$1=="listen"{print $2; exit}' "$work/$n.out")"
    ID[$n]="$(awk '$1=="id"{print $2}' "$work/$n.out")"
}
# c_key NAME: a key and a free port for a C node, so that its multiaddr is
# known before it starts (--bootstrap and --peer need them)
c_key() {
    local n="$1" port
    "$pbin" keygen -o "$work/$n.key" >/dev/null || return 1
    ID[$n]="$("$pbin" id -k "$work/$n.key")"
    port="$(free_port)"
    MA[$n]="/ip4/127.0.0.1/tcp/$port/p2p/${ID[$n]}"
}
# c_start NAME [args...]: `p2praft node --wire hashicorp` on its key
c_start() {
    local n="$1"
    shift
    "$pbin" node --key "$work/$n.key" --data-dir "$work/$n" \
        --listen "${MA[$n]%/p2p/*}" --wire hashicorp --store "$store" \
        --election-ms 300 --heartbeat-ms 30 \
        --snapshot-threshold 32 --snapshot-trailing 8 "$@" \
        >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    PID[$n]=$!
    KIND[$n]=c
    allpids+=($!)
    if ! until_ok 60 grep -q '^ready' "$work/$n.out"; then
        echo "node $n did not start:"; cat "$work/$n.err"; return 1
    fi
}
kill9() { { kill -9 "${PID[$1]}"; wait "${PID[$1]}"; } 2>/dev/null; unset "PID[$1]"; }
stop_all() {
    local n
    for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
    wait 2>/dev/null
    PID=(); MA=(); ID=(); KIND=()
}

# Every key and value in byte order: {"key":K,"value":V} ..., one line
c_dump() { local d; d="$(pk kv "$1" --json ls)" || return 1; echo $d; }
nkeys() { grep -o '{"key":' <<<"$1" | wc -l; }
go_dump() { local r; r="$(ctl "$1" kv-dump)" || return 1; echo "${r#ok }"; }
dump() { if [ "${KIND[$1]}" = go ]; then go_dump "$1"; else c_dump "$1"; fi; }
same_dump() { [ "$(dump "$1")" = "$2" ]; }
# c_leader NODES...: the C node among NODES that says it leads
c_leader() {
    local n
    for n in "$@"; do
        pk status "$n" 2>/dev/null | grep -q '^role: leader$' && { echo "$n"; return 0; }
    done
    return 1
}
c_role_of() { pk peers "$1" ls 2>/dev/null | awk -v id="$2" '$1==id{print $2}'; }
go_snap() { ctl "$1" status | sed -n 's/.*last_snapshot=\([0-9]*\)\/.*/\1/p'; }
c_field() { pk status "$1" 2>/dev/null | sed -n "s/^$2: //p"; }

echo "mixed kv cluster: $("$gbin" version | tr ' ' '\n' | grep hashicorp/raft@) and p2praft node --wire hashicorp --store $store"

# ---- a C-led cluster: p2praft peers add / rm of a Go node --------------------
for n in c1 c2 c3; do c_key "$n" || exit 1; done
for n in c1 c2 c3; do
    peers=()
    for p in c1 c2 c3; do [ "$p" = "$n" ] || peers+=(--peer "${MA[$p]}"); done
    c_start "$n" --bootstrap "${peers[@]}" || exit 1
done
writes_ok=true
if until_ok 20 c_leader c1 c2 c3; then
    L="$(c_leader c1 c2 c3)"
    for i in $(seq 1 60); do pk kv c2 set "key$i" "value $i" >/dev/null || writes_ok=false; done
    pk kv c3 del key7 >/dev/null || writes_ok=false
    pk kv c1 cas key8 "value 8" "swapped" >/dev/null || writes_ok=false
    pk kv c1 set empty "" >/dev/null || writes_ok=false
    want="$(c_dump "$L")"
else
    L=""; writes_ok=false; want=""
fi
if $writes_ok && [ "$(nkeys "$want")" = 60 ] && [ "$(pk kv c2 get key8)" = swapped ] &&
    until_ok 10 same_dump c1 "$want" && until_ok 10 same_dump c2 "$want" && until_ok 10 same_dump c3 "$want" &&
    [ "$(c_field "$L" snapshots_taken)" -gt 0 ]; then
    ok "c-cluster: 3 p2praft nodes (leader $L), 63 writes through p2praft kv set/del/cas, snapshots taken"
else
    fail c-cluster "leader '$L', writes ok: $writes_ok, $(nkeys "$want") keys"
fi

# The Go node knows the C members' addresses (to dial them as a voter);
# they learn nothing from it: `peers add` gives the leader its address.
go_start g1 -peer "${MA[c1]}" -peer "${MA[c2]}" -peer "${MA[c3]}" || exit 1
r="$(pk peers c2 add "${MA[g1]}" 2>&1)"
rc=$?
if [ -n "${TRANSCRIPT:-}" ]; then
    {
        echo "\$ p2praft kv --data-dir c1 get key8"
        pk kv c1 get key8
        echo "\$ go-raftnode node -mode kv -control g1.sock -heartbeat 300ms -election 300ms -lease 300ms -peer \$C1 -peer \$C2 -peer \$C3 &"
        cat "$work/g1.out"
        echo "\$ p2praft peers --data-dir c2 add ${MA[g1]}"
        echo "$r"
    } >"$TRANSCRIPT"
fi
if [ $rc -eq 0 ] && until_eq 30 voter c_role_of c1 "${ID[g1]}" &&
    until_ok 30 same_dump g1 "$want" && [ "$(go_snap g1)" -gt 0 ]; then
    ok "peers-add-go: p2praft peers add of Go node g1: promoted to voter, InstallSnapshot C -> Go (last_snapshot=$(go_snap g1)), same $(nkeys "$want") keys and values"
else
    fail peers-add-go "peers add said ($rc) '$r'; role '$(c_role_of c1 "${ID[g1]}")'; g1 $(go_dump g1 | cut -c1-80)"
fi
if [ -n "${TRANSCRIPT:-}" ]; then
    {
        echo "\$ p2praft peers --data-dir c1 ls"
        pk peers c1 ls
        echo "\$ go-raftnode ctl -sock g1.sock get key8"
        ctl g1 get key8
        echo "\$ go-raftnode ctl -sock g1.sock config"
        ctl g1 config
    } >>"$TRANSCRIPT"
fi

conf="$(ctl g1 config)"
n_ids=0
for n in c1 c2 c3 g1; do [[ " ${conf#ok } " == *" ${ID[$n]}=voter "* ]] && n_ids=$((n_ids + 1)); done
if [ "$n_ids" = 4 ] && [[ "$conf" != *@* ]]; then
    ok "addr-is-id: the Go node's configuration names every member by its peer ID, address = ID"
else
    fail addr-is-id "g1 config: $conf"
fi

L="$(c_leader c1 c2 c3)"
victim="$L"
others=()
for n in c1 c2 c3; do [ "$n" != "$victim" ] && others+=("$n"); done
kill9 "$victim"
# 3 of 4 voters left: whoever wins the election (a C node or the Go node)
# needs the Go node's vote, and every commit its acknowledgement.
go_leads() { [[ "$(ctl g1 status)" == *"state=Leader "* ]]; }
some_leader() { c_leader "${others[@]}" >/dev/null || go_leads; }
NL=""
if until_ok 30 some_leader; then
    NL="$(c_leader "${others[@]}")" || NL=g1
fi
if [ "$NL" = g1 ]; then
    r="$(ctl g1 kv-set voted-by-go yes 2>&1)"
    rc=$?
else
    r="$(pk kv "${others[0]}" set voted-by-go yes 2>&1)"
    rc=$?
fi
if [ -n "$NL" ] && [ $rc -eq 0 ] && until_eq 10 'ok "yes"' ctl g1 get voted-by-go &&
    until_eq 10 yes pk kv "${others[0]}" get voted-by-go && until_eq 10 yes pk kv "${others[1]}" get voted-by-go; then
    ok "go-votes: kill -9 the C leader $victim; 3 of 4 voters left: ${KIND[$NL]} node $NL elected with the Go node's vote, the write commits with its acknowledgement"
else
    fail go-votes "old leader $victim, new leader '$NL', set said '$r', g1 $(ctl g1 get voted-by-go)"
fi
if [ "$NL" = g1 ]; then
    # peers rm is carried out by a C leader: hand leadership to one
    ctl g1 transfer "${ID[${others[0]}]}" >/dev/null
    until_ok 20 c_leader "${others[@]}"
fi

r="$(pk peers "${others[0]}" rm "${ID[g1]}" 2>&1)"
rc=$?
in_conf() { pk peers "$1" ls 2>/dev/null | grep -q "^${ID[g1]} "; }
if [ $rc -eq 0 ] && ! in_conf "${others[0]}" && ! in_conf "${others[1]}" &&
    pk kv "${others[1]}" set after-rm 1 >/dev/null &&
    until_eq 10 1 pk kv "${others[0]}" get after-rm &&
    [ "$(ctl g1 get after-rm)" = "err not found" ]; then
    ok "peers-rm-go: p2praft peers rm of Go node g1 ('$r'); the C nodes commit on without it"
else
    fail peers-rm-go "peers rm said ($rc) '$r'; $(pk peers "${others[0]}" ls 2>&1 | tr '\n' ' ')"
fi
stop_all

# ---- a Go-led cluster: AddVoter / RemoveServer of a p2praft node --------------
go_start g1 -snapshot-threshold 16 -trailing-logs 8 && go_start g2 -snapshot-threshold 16 -trailing-logs 8 || exit 1
ctl g1 peer-add "${MA[g2]}" >/dev/null && ctl g2 peer-add "${MA[g1]}" >/dev/null
ctl g1 bootstrap "${MA[g2]}" >/dev/null && ctl g2 bootstrap "${MA[g1]}" >/dev/null
r="$(ctl g1 wait-leader 20s)"
GL=g1; [ "${r#ok }" = "${ID[g2]}" ] && GL=g2
GF=g2; [ "$GL" = g2 ] && GF=g1
writes_ok=true
for i in $(seq 1 40); do ctl "$GL" kv-set "k$i" "v$i" >/dev/null || writes_ok=false; done
ctl "$GL" kv-del k3 >/dev/null || writes_ok=false
ctl "$GL" kv-cas k4 v4 four >/dev/null || writes_ok=false
s="$(ctl "$GL" snapshot)"
for i in $(seq 41 45); do ctl "$GL" kv-set "k$i" "v$i" >/dev/null || writes_ok=false; done
want="$(go_dump "$GL")"
if [[ "$r" == ok* ]] && $writes_ok && [[ "$s" == ok* ]] && [ "$(nkeys "$want")" = 44 ] &&
    until_ok 10 same_dump "$GF" "$want"; then
    ok "go-cluster: 2 Go kv nodes, leader $GL: 47 ops, snapshot ($s)"
else
    fail go-cluster "leader '$r', writes ok: $writes_ok, snapshot '$s'"
fi

c_key c4 || exit 1
r="$(ctl "$GL" add-voter "${MA[c4]}")"
c_start c4 --join "${MA[g1]}" --join "${MA[g2]}" || exit 1
if [[ "$r" == ok* ]] && until_eq 30 four pk kv c4 get k4 &&
    until_ok 10 same_dump c4 "$want" && ctl "$GL" config | grep -q "${ID[c4]}=voter" &&
    [ "$(c_field c4 snapshots_installed)" -gt 0 ]; then
    ok "add-voter-c: Go AddVoter of p2praft node c4 (--join): InstallSnapshot Go -> C, caught up, p2praft kv get/ls give the Go nodes' 44 keys"
else
    fail add-voter-c "add-voter said '$r'; c4 get k4: $(pk kv c4 get k4 2>&1)"
fi

# A write through the C node: the Go leader speaks no forward protocol, so
# it is refused at once, surely not applied (exit 5), not after a timeout.
t=$SECONDS
r="$(pk kv c4 set via-c 1 2>&1)"
rc=$?
if [ $rc -eq 5 ] && [ $((SECONDS - t)) -le 2 ] && [[ "$r" == *"refused /p2praft/forward/1.0.0"* ]] &&
    [ "$(ctl "$GL" get via-c)" = "err not found" ]; then
    ok "c-write-refused: p2praft kv set through c4 under a Go leader: refused at once, not applied (exit 5)"
else
    fail c-write-refused "exit $rc after $((SECONDS - t)) s: $r"
fi

kill9 "$GF"
r="$(ctl "$GL" kv-set voted-by-c yes)"
if [[ "$r" == ok* ]] && until_eq 10 yes pk kv c4 get voted-by-c; then
    ok "c-votes: kill -9 Go node $GF; Go leader $GL commits with the C node's vote"
else
    fail c-votes "kv-set said '$r'"
fi

# The dead Go node leaves first (committed with the C node's vote), so that
# the Go leader keeps a quorum once c4 is gone too.
r0="$(ctl "$GL" remove "${ID[$GF]}")"
r="$(ctl "$GL" remove "${ID[c4]}")"
# A removed p2praft node stops campaigning, logs it once and exits 8 by
# itself (the service unit does not restart it).
if [[ "$r0" == ok* ]] && [[ "$r" == ok* ]] && until_ok 20 grep -q 'was removed from the cluster' "$work/c4.err" &&
    ! ctl "$GL" config | grep -q "${ID[c4]}" &&
    [[ "$(ctl "$GL" kv-set alone 1)" == ok* ]]; then
    deadline=$((SECONDS + 20))
    while kill -0 "${PID[c4]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    if kill -0 "${PID[c4]}" 2>/dev/null; then
        fail remove-c "c4 did not exit within 20 s of its removal"
    else
        wait "${PID[c4]}"
        rc=$?
        unset "PID[c4]"
        if [ "$rc" -eq 8 ] && [ "$(grep -c 'was removed from the cluster' "$work/c4.err")" -eq 1 ]; then
            ok "remove-c: Go RemoveServer of c4: it logs its removal once ($(grep -o 'was removed from the cluster by [^ ]*' "$work/c4.err")) and exits 8; the Go leader commits alone"
        else
            fail remove-c "c4 exited $rc (not 8), or logged its removal other than once: $(tail -3 "$work/c4.err")"
        fi
    fi
else
    fail remove-c "remove $GF said '$r0', remove c4 said '$r'; c4: $(tail -2 "$work/c4.err")"
fi
stop_all

echo "mixed kv cluster: $passed passed, $failed failed"
[ "$failed" -eq 0 ]

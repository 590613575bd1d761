#!/usr/bin/env bash
# Capture hashicorp/raft's wire bytes from real go-libp2p-raft nodes.
#
#   interop/go/raftnode/capture.sh RAFTNODE OUTDIR
#
# RAFTNODE is a raftnode binary (build/interop/go-raftnode for hashicorp/raft
# 1.6.1, build/interop/go-raftnode-17 for 1.7.x). Five nodes (in-memory
# stores, 300 ms timeouts) record every raft stream they open (node -record);
# a scenario makes each kind of RPC happen; then `raftnode split` keeps the
# first message of each class, with its response, in OUTDIR (see
# test/vectors/hashicorp/README.md). Exits non-zero if a class is missing.
#
# Scenario: A and B bootstrap {A voter, B voter, C staging}; C replicates
# (it gets the bootstrap LogConfiguration with Staging); CommitState x5
# (LogCommand); Barrier (LogBarrier); AddNonvoter D; snapshot with 2 trailing
# logs; AddVoter E (too far behind: InstallSnapshot); LeadershipTransfer
# (TimeoutNow, RequestVote with LeadershipTransfer); a voter made deaf to
# inbound raft streams campaigns against a live leader (denied RequestVote;
# with 1.7 a denied RequestPreVote, and E runs without pre-vote so that a
# denied RequestVote is still seen); D is killed
# and restarted empty (its leader's next AppendEntries is rejected, then
# InstallSnapshot again).
set -euo pipefail
bin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
out="$2"
work="$(mktemp -d)"
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
rec="$work/rec"
mkdir -p "$rec"
ver="$("$bin" version)"
echo "capture: $ver"
prevote17=false
case "$ver" in *hashicorp/raft@v1.7*) prevote17=true ;; esac

declare -A PID MA ID
ctl() { "$bin" ctl -sock "$work/$1.sock" "${@:2}"; }
start() { # name [extra node flags]
    local n="$1"
    shift
    [ -f "$work/$n.key" ] || "$bin" keygen -o "$work/$n.key" >/dev/null
    "$bin" node -key "$work/$n.key" -control "$work/$n.sock" -record "$rec" -log error \
        -heartbeat 300ms -election 300ms -lease 300ms "$@" >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    PID[$n]=$!
    pids+=($!)
    local deadline=$((SECONDS + 30))
    until grep -q '^ready' "$work/$n.out" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] && kill -0 "${PID[$n]}" 2>/dev/null || { cat "$work/$n.err"; echo "capture: $n did not start"; exit 1; }
        sleep 0.05
    done
    MA[$n]="$(awk '$1=="listen"{print $2; exit}' "$work/$n.out")"
    ID[$n]="$(awk '$1=="id"{print $2}' "$work/$n.out")"
}
leader() { # prints the name of the node that leads, per node A's view
    local id
    id="$(ctl "$1" wait-leader 20s | cut -d' ' -f2)"
    for n in A B C D E; do [ "${ID[$n]:-}" = "$id" ] && echo "$n" && return 0; done
    echo "capture: unknown leader $id" >&2
    return 1
}
on_leader() { # retries CMD on the current leader (leadership can move)
    local i l
    for i in 1 2 3 4 5; do
        l="$(leader A)"
        if ctl "$l" "$@"; then return 0; fi
        sleep 0.5
    done
    return 1
}

for n in A B C D; do start $n; done
if $prevote17; then start E -prevote=false; else start E; fi
for a in A B C D E; do for b in A B C D E; do [ $a = $b ] || ctl $a peer-add "${MA[$b]}" >/dev/null; done; done
ctl A bootstrap "voter:${MA[B]}" "staging:${MA[C]}"
# B may already have the configuration from A, if A was elected first.
r="$(ctl B bootstrap "voter:${MA[A]}" "staging:${MA[C]}")" || [[ "$r" == *"only works on new clusters"* ]]
echo "capture: leader $(leader A)"
for v in 1 2 3 4 5; do on_leader commit-state $v >/dev/null; done
on_leader barrier
on_leader add-nonvoter "${MA[D]}"
on_leader set-snapshot 4 1h 2
on_leader commit-state 6 >/dev/null
on_leader snapshot
on_leader commit-state 7 >/dev/null
on_leader commit-state 8 >/dev/null
on_leader add-voter "${MA[E]}"
idx="$(ctl "$(leader A)" status | sed 's/.*last_index=\([0-9]*\).*/\1/')"
ctl E wait-applied "$idx" 20s
# Leadership transfer to B, or to A if B leads.
l="$(leader A)"
if [ "$l" = B ]; then ctl B transfer "${ID[A]}"; else ctl "$l" transfer "${ID[B]}"; fi
echo "capture: after transfer, leader $(leader A)"
on_leader commit-state 9 >/dev/null
# A voter that stops hearing its leader (deaf: inbound raft streams reset)
# campaigns while the others still have a leader: its RequestVote (1.6.1,
# and E in 1.7, which runs without pre-vote) or RequestPreVote (1.7) is
# denied. It hears again once it is a candidate; the cluster settles.
campaign() { # name
    local i
    ctl "$1" deaf on >/dev/null
    for i in $(seq 1 200); do
        ctl "$1" status | grep -q 'state=Candidate' && break
        sleep 0.05
    done
    echo "capture: $1 $(ctl "$1" status)"
    sleep 0.5 # a few rounds of votes
    ctl "$1" deaf off >/dev/null
    ctl A wait-leader 20s >/dev/null
}
[ "$(leader A)" = E ] || campaign E
l="$(leader A)"
for n in A B; do [ "$n" = "$l" ] || { campaign $n; break; }; done
# D restarts with an empty store: the leader's next AppendEntries is rejected.
{ kill -9 "${PID[D]}"; wait "${PID[D]}"; } 2>/dev/null || true
start D
for a in A B C E; do ctl $a peer-add "${MA[D]}" >/dev/null; done
ctl D peer-add "${MA[A]}" >/dev/null
on_leader commit-state 10 >/dev/null
idx="$(ctl "$(leader A)" status | sed 's/.*last_index=\([0-9]*\).*/\1/')"
ctl D wait-applied "$idx" 20s
for n in A B C D E; do ctl $n shutdown >/dev/null || true; done
for n in A B C D E; do wait "${PID[$n]}" 2>/dev/null || true; done
pids=()
rm -rf "$out"
"$bin" split -in "$rec" -out "$out"

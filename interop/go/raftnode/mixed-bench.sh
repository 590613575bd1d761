#!/usr/bin/env bash
# Commit numbers of go-libp2p-raft clusters with and without p2praft nodes
# on the hashicorp wire (issue 10): three nodes, in-memory stores, 300 ms
# raft timeouts (as mixed-test.sh), the leader driven through the control
# protocol.
#
#   interop/go/raftnode/mixed-bench.sh GO_RAFTNODE C_RAFTNODE
#
# Clusters: go3 (3 Go), mixed-go (2 Go + 1 C, Go leader), mixed-c (1 Go +
# 2 C, C leader), c3-hc (3 C on the hashicorp wire, seed log format) and,
# for reference, c3-p2p (3 C on p2praft's own wire and format). Per
# cluster, BENCH_REPS runs (default 3), medians:
#   seq   N CommitState one after the other (the seed example's loop,
#         `example N`, N = BENCH_N, default 1000)
#   conc  BENCH_CONC control connections (default 8) each running
#         `example N/BENCH_CONC` at once on the leader
# BENCH_CLUSTERS picks clusters (default: all five, in that order).
# Prints: bench <cluster> seq_commits_per_s <v> conc_commits_per_s <v> leader=<go|c>
set -uo pipefail
gbin="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
cbin="$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"
reps="${BENCH_REPS:-3}"
N="${BENCH_N:-1000}"
conc="${BENCH_CONC:-8}"
work="$(mktemp -d)"
declare -A PID MA ID KIND
allpids=()
cleanup() {
    for p in "${allpids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
    # by PID: a bare `wait` leaves bash's "Killed" notice pending
    { wait "${allpids[@]}"; } 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
ctl() { "$gbin" ctl -sock "$work/$1.sock" "${@:2}"; }
start() { # NAME go|c WIRE [args]
    local n="$1" kind="$2" wire="$3"
    shift 3
    [ -f "$work/$n.key" ] || "$gbin" keygen -o "$work/$n.key" >/dev/null
    if [ "$kind" = go ]; then
        "$gbin" node -key "$work/$n.key" -control "$work/$n.sock" -mode consensus -store mem -log error \
            -heartbeat 300ms -election 300ms -lease 300ms "$@" >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    else
        "$cbin" -key "$work/$n.key" -control "$work/$n.sock" -mode consensus -wire "$wire" \
            -heartbeat 30 -election 300 "$@" >"$work/$n.out" 2>"$work/$n.err" </dev/null &
    fi
    PID[$n]=$!
    KIND[$n]=$kind
    allpids+=($!)
    local deadline=$((SECONDS + 60))
    until grep -q '^ready' "$work/$n.out" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] && kill -0 "${PID[$n]}" 2>/dev/null || { cat "$work/$n.err"; return 1; }
        sleep 0.05
    done
    MA[$n]="$(awk '$1=="listen"{print $2; exit}' "$work/$n.out")"
    ID[$n]="$(awk '$1=="id"{print $2}' "$work/$n.out")"
}
peer_args() { local p; for p in "$@"; do printf -- '-peer %s ' "${MA[$p]}"; done; }
know() { local a b; for a in "$@"; do for b in "$@"; do [ "$a" = "$b" ] || ctl "$a" peer-add "${MA[$b]}" >/dev/null; done; done; }
go_boot() {
    local n="$1" r m=() p
    shift
    for p in "$@"; do m+=("${MA[$p]}"); done
    r="$(ctl "$n" bootstrap "${m[@]}")" || [[ "$r" == *"only works on new clusters"* ]]
}
stop_all() {
    local n
    for n in "${!PID[@]}"; do kill -9 "${PID[$n]}" 2>/dev/null; done
    { wait "${PID[@]}"; } 2>/dev/null
    PID=(); MA=(); ID=(); KIND=()
}
leader() { # a node name; prints the leader's name
    local r n
    r="$(ctl "$1" wait-leader 20s)" || return 1
    for n in "${!ID[@]}"; do [ "${ID[$n]}" = "${r#ok }" ] && echo "$n"; done
}
now_ns() { date +%s%N; }
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# build CLUSTER: start the three nodes of a cluster; sets L
build() {
    case "$1" in
    go3)
        start a go hc && start b go hc && start c go hc || return 1
        know a b c; go_boot a b c && go_boot b a c && go_boot c a b ;;
    mixed-go)
        start a go hc && start b go hc && start c c hashicorp || return 1
        know a b c; go_boot a b c && go_boot b a c ;;
    mixed-c)
        start a go hc && start b c hashicorp && start c c hashicorp || return 1
        know a b c
        kill -9 "${PID[b]}" "${PID[c]}"; { wait "${PID[b]}" "${PID[c]}"; } 2>/dev/null
        local mb="${MA[b]}" mc="${MA[c]}"
        start b c hashicorp -listen "${mb%/p2p/*}" -key "$work/b.key" $(peer_args a c) -bootstrap >/dev/null || return 1
        start c c hashicorp -listen "${mc%/p2p/*}" -key "$work/c.key" $(peer_args a b) -bootstrap >/dev/null || return 1
        know a b c ;;
    c3-hc | c3-p2p)
        local w=hashicorp
        [ "$1" = c3-p2p ] && w=p2praft
        start a c $w && start b c $w && start c c $w || return 1
        kill -9 "${PID[a]}" "${PID[b]}" "${PID[c]}"
        { wait "${PID[a]}" "${PID[b]}" "${PID[c]}"; } 2>/dev/null
        local ma="${MA[a]}" mb="${MA[b]}" mc="${MA[c]}" n
        for n in a b c; do
            local others=()
            for o in a b c; do [ "$o" = "$n" ] || others+=("$o"); done
            start "$n" c $w -listen "$(eval echo \${MA[$n]%/p2p/*})" -key "$work/$n.key" \
                $(peer_args "${others[@]}") -bootstrap || return 1
        done ;;
    esac
    L="$(leader a)"
    [ -n "$L" ]
}

echo "mixed-bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); N=$N conc=$conc reps=$reps"
for cl in ${BENCH_CLUSTERS:-go3 mixed-go mixed-c c3-hc c3-p2p}; do
    seqs=(); concs=()
    for rep in $(seq 1 "$reps"); do
        build "$cl" || { echo "bench $cl: cluster did not start"; stop_all; continue 2; }
        ctl "$L" commit-state 1 >/dev/null
        t0=$(now_ns)
        r="$(ctl "$L" example "$N")"
        t1=$(now_ns)
        [ "$r" = "ok $(( (N - 1) * 2 ))" ] || { echo "bench $cl: example said '$r'"; stop_all; continue 2; }
        seqs+=("$(awk -v n="$N" -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}')")
        per=$((N / conc))
        t0=$(now_ns)
        cp=()
        for k in $(seq 1 "$conc"); do ctl "$L" example "$per" >"$work/conc.$k" & cp+=($!); done
        wait "${cp[@]}"
        t1=$(now_ns)
        okc=$(cat "$work"/conc.* | grep -c '^ok')
        [ "$okc" -eq "$conc" ] || { echo "bench $cl: $okc of $conc concurrent runs ok"; }
        concs+=("$(awk -v n=$((per * conc)) -v d=$((t1 - t0)) 'BEGIN {printf "%.0f", n / (d / 1e9)}')")
        lk="${KIND[$L]}"
        stop_all
        rm -f "$work"/*.key "$work"/conc.*
    done
    echo "bench $cl seq_commits_per_s $(printf '%s\n' "${seqs[@]}" | median) conc_commits_per_s $(printf '%s\n' "${concs[@]}" | median) leader=$lk"
done

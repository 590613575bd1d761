#!/usr/bin/env bash
# Host benchmarks (issue 3): p2praft and go-libp2p measured in the same run,
# on loopback, each implementation dialing a listener of its own kind:
#   throughput   one stream, BENCH_BYTES (1 GiB) to the sink protocol
#   rtt          64-byte echo round trips on one stream (p50, p99)
#   connect      TCP connect until a new stream has echoed one byte
#   rtt, 1 core  the rtt run again with listener and dialer pinned to one
#                CPU (taskset), for both implementations. On a VM a wakeup
#                that crosses CPUs costs tens of microseconds, so the
#                unpinned p50 mostly measures where the scheduler put the
#                two processes; the pinned run measures the stacks.
#   syscalls     system calls per 64 B round trip, both processes together
#                (strace -f -c over a 10000-round run; skipped without
#                strace). Unlike the times, it does not move with the load.
# The drivers are `build/p2praft interop bench-*` and the go reference peer
# (interop/go/peer, built through the Go module proxy with go.sum pinned);
# both print `bench <metric> <value> <unit>` lines (interop/README.md).
# Prints one table with the ratio p2praft / go-libp2p (for latencies,
# go / p2praft, so > 1 always means p2praft is better).
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
out="$root/build/bench-host"
mkdir -p "$out"
export GOFLAGS=-mod=readonly
# An older go (Debian's) fetches the toolchain go.mod names from the Go module proxy.
export GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
BYTES="${BENCH_BYTES:-1073741824}"
RTT_COUNT="${BENCH_RTT_COUNT:-10000}"
CONNECT_COUNT="${BENCH_CONNECT_COUNT:-200}"

[ -x build/p2praft ] || { echo "bench/host: build/p2praft missing (make)"; exit 1; }
have_go=1
if ! command -v go >/dev/null 2>&1 || \
   ! (cd interop/go/peer && go build -trimpath -o "$out/go-peer" . >"$out/go-build.log" 2>&1); then
    echo "bench/host: go peer unavailable ($(tail -1 "$out/go-build.log" 2>/dev/null)); p2praft only"
    have_go=0
fi

# start_listener CMD: sets lpid, lma
start_listener() {
    local log="$out/listen"
    lma=""
    bash -c "exec $1" >"$log.out" 2>"$log.err" &
    lpid=$!
    local deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ] && kill -0 "$lpid" 2>/dev/null; do
        lma="$(grep -m1 -E '^/ip4/127\.0\.0\.1/tcp/[0-9]+/p2p/' "$log.out" || true)"
        [ -n "$lma" ] && return 0
        sleep 0.05
    done
    echo "bench/host: listener '$1' printed no address: $(cat "$log.err")"
    return 1
}

stop_listener() {
    kill -TERM "$lpid" 2>/dev/null
    wait "$lpid" 2>/dev/null
}

declare -A val
status=0
# run NAME DIALER LISTENER [BENCHES]
run() {
    local name="$1" dialer="$2" listener="$3" args line
    local benches="${4:-throughput rtt connect}" list=()
    for args in $benches; do
        case $args in
            throughput) list+=("bench-throughput --bytes $BYTES") ;;
            rtt) list+=("bench-rtt --count $RTT_COUNT") ;;
            connect) list+=("bench-connect --count $CONNECT_COUNT") ;;
        esac
    done
    start_listener "$listener" || { status=1; return; }
    for args in "${list[@]}"; do
        # shellcheck disable=SC2086
        if ! timeout 600 $dialer $args "$lma" >"$out/bench.tmp" 2>"$out/bench.err"; then
            echo "bench/host: $name $args failed: $(tail -3 "$out/bench.err")"
            status=1
        fi
        while read -r _ metric value _; do
            val["$name,$metric"]="$value"
        done < <(grep '^bench ' "$out/bench.tmp" | sed "s/^bench \([a-z0-9_]*\)/bench \1$suffix/")
    done
    stop_listener
}

suffix=""
run p2praft "$root/build/p2praft interop" "$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0"
if [ $have_go -eq 1 ]; then
    run go "$out/go-peer" "$out/go-peer listen"
fi
if command -v taskset >/dev/null 2>&1; then
    suffix="_1core"
    run p2praft "taskset -c 0 $root/build/p2praft interop" \
        "taskset -c 0 $root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0" rtt
    if [ $have_go -eq 1 ]; then
        run go "taskset -c 0 $out/go-peer" "taskset -c 0 $out/go-peer listen" rtt
    fi
fi

# sc_run NAME DIALER LISTENER: system calls per round trip, both sides.
sc_run() {
    local name="$1" n=10000 d l
    command -v strace >/dev/null 2>&1 || return 0
    start_listener "strace -f -c -o $out/sc-listen $3" || { status=1; return; }
    # shellcheck disable=SC2086
    strace -f -c -o "$out/sc-dial" $2 bench-rtt --count $n "$lma" >/dev/null 2>&1
    # strace detaches on SIGTERM: stop the traced listener itself.
    for c in $(pgrep -P "$lpid"); do kill -TERM "$c" 2>/dev/null; done
    wait "$lpid" 2>/dev/null
    d=$(awk '$NF == "total" {print $4}' "$out/sc-dial")
    l=$(awk '$NF == "total" {print $4}' "$out/sc-listen")
    # warm-up rounds: min(1000, count), as both drivers do
    [ -n "$d" ] && [ -n "$l" ] &&
        val["$name,syscalls_rtt"]=$(awk -v d="$d" -v l="$l" -v n=$((n + 1000)) \
                                    'BEGIN{printf "%.2f", (d + l) / n}')
}
sc_run p2praft "$root/build/p2praft interop" "$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0"
if [ $have_go -eq 1 ]; then
    sc_run go "$out/go-peer" "$out/go-peer listen"
fi

printf '%-22s %14s %14s %10s   %s\n' metric p2praft go-libp2p ratio target
row() { # metric unit higher_is_better target
    local c="${val[p2praft,$1]:-}" g="${val[go,$1]:-}" r="-"
    if [ -n "$c" ] && [ -n "$g" ]; then
        if [ "$3" = 1 ]; then r=$(awk -v a="$c" -v b="$g" 'BEGIN{printf "%.2fx", a/b}')
        else r=$(awk -v a="$c" -v b="$g" 'BEGIN{printf "%.2fx", b/a}'); fi
    fi
    printf '%-22s %14s %14s %10s   %s\n' "$1 ($2)" "${c:--}" "${g:--}" "$r" "$4"
}
row throughput Gbit/s 1 ">= 4 Gbit/s and >= 1.5x go"
row rtt_p50 us 0 "<= 60 us"
row rtt_p99 us 0 ""
row rtt_p50_1core us 0 "<= 60 us"
row rtt_p99_1core us 0 ""
row syscalls_rtt calls 0 "6: send, recv, epoll_wait per side"
row connect_p50 ms 0 "<= 2 ms"
row connect_p99 ms 0 ""
echo "(ratio: p2praft/go for throughput, go/p2praft for latencies: > 1 means p2praft is better)"
exit $status

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
#   rtt, busy    the unpinned rtt run of p2praft again with busy polling
#                (--busy-poll-us BENCH_BUSY_POLL_US, default 50, on dialer
#                and listener; 0 skips it): rows *_busy50, compared with
#                go-libp2p's unpinned numbers, with its own profile (cpu,
#                context switches; no syscalls row).
#   syscalls     system calls per 64 B round trip, both processes together
#                (strace -f -c over a 10000-round run; skipped without
#                strace). Unlike the times, it does not move with the load.
#   profile      for the unpinned rtt run: CPU time (user + sys) and context
#                switches (voluntary + involuntary) per round trip of each
#                process, all its threads summed; the table sums dialer and
#                listener, a line below splits them (with the listener's
#                CPU migrations). Both implementations are measured from
#                outside, the same way, and nothing hooks them while they
#                run: the dialer through rusage (bench/host/rusage.c:
#                wait4()'s rusage at its exit), the listener through /proc/<pid>/task/*/
#                {schedstat,status,sched}, read before and after the
#                dialer's run. Set-up (process start, connection, handshake)
#                is removed by subtracting a second dialer run of PROF_SMALL
#                rounds; the difference is divided by the difference in
#                round trips, warm-up rounds included.
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
BUSY_US="${BENCH_BUSY_POLL_US:-50}"

[ -x build/p2praft ] || { echo "bench/host: build/p2praft missing (make)"; exit 1; }
have_go=1
if ! command -v go >/dev/null 2>&1 || \
   ! (cd interop/go/peer && go build -trimpath -o "$out/go-peer" . >"$out/go-build.log" 2>&1); then
    echo "bench/host: go peer unavailable ($(tail -1 "$out/go-build.log" 2>/dev/null)); p2praft only"
    have_go=0
fi

have_prof=1
PROF_SMALL=10
if ! ${CC:-cc} -std=c11 -O2 -Wall -Wextra -o "$out/rusage" bench/host/rusage.c \
     >"$out/rusage-build.log" 2>&1; then
    echo "bench/host: bench/host/rusage.c does not build; no cpu_rtt, ctxsw_rtt"
    have_prof=0
fi

# start_listener, stop_listener
# shellcheck source=bench/lib/listener.sh
. bench/lib/listener.sh

# proc_prof PID: "ns ctxsw migrations" of a running process, summed over its
# threads (run time from schedstat; migrations "-" without /proc/PID/sched)
proc_prof() {
    local t="/proc/$1/task" ns cs mig
    ns=$(cat "$t"/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f", s}')
    cs=$(cat "$t"/*/status 2>/dev/null |
         awk '/^(non)?voluntary_ctxt_switches:/ {s += $2} END {print s + 0}')
    mig=$(cat "$t"/*/sched 2>/dev/null |
          awk '$1 == "se.nr_migrations" {s += $3; n++} END {print n ? s : "-"}')
    echo "$ns $cs $mig"
}

# prof_dial NAME DIALER COUNT OUT: bench-rtt --count COUNT against the
# listener (lpid, lma) under rusage, stdout to OUT; appends the round trips,
# the dialer's "ns ctxsw" and the listener's "ns ctxsw migrations" before and
# after (9 fields) to prof[NAME] and returns the dialer's status.
declare -A prof
prof_dial() {
    local l0 l1 d rv
    rm -f "$out/rusage-dial"
    l0=$(proc_prof "$lpid")
    # shellcheck disable=SC2086
    "$out/rusage" "$out/rusage-dial" \
        timeout 600 $2 bench-rtt --count "$3" $dial_extra "$lma" >"$4" 2>"$out/bench.err"
    rv=$?
    sleep 0.1 # the listener sees the connection close
    l1=$(proc_prof "$lpid")
    d=$(awk '{print $1, $2 + $3}' "$out/rusage-dial" 2>/dev/null)
    # warm-up rounds: min(1000, count), as both drivers do
    prof["$1"]+="$(($3 + ($3 < 1000 ? $3 : 1000))) ${d:-- -} $l0 $l1 "
    return $rv
}

# prof_rows NAME [SUFFIX]: per round trip, from the two prof_dial runs of
# prof[NAME SUFFIX] (full, then small): sets cpu_rtt SUFFIX and
# ctxsw_rtt SUFFIX of NAME (both sides) and side[NAME SUFFIX] (each side).
declare -A side
prof_rows() {
    local r c x
    local s="${2:-}"
    [ -n "${prof[$1$s]:-}" ] || return 0
    # shellcheck disable=SC2086
    r=$(echo ${prof[$1$s]} | awk '
        function f(x, p,  s) { s = sprintf("%." p "f", x); return s ~ /^-0\.0*$/ ? substr(s, 2) : s }
        {
        if (NF != 18 || $2 == "-" || $11 == "-") exit 1
        n = $1 - $10
        for (i = 0; i < 3; i++) {
            d[i] = ($(2 + i) - $(11 + i)) / n
            l[i] = (($(7 + i) - $(4 + i)) - ($(16 + i) - $(13 + i))) / n
        }
        printf "%s %s ", f((d[0] + l[0]) / 1e3, 1), f(d[1] + l[1], 2)
        printf "dialer cpu %s us, ctxsw %s; listener cpu %s us, ctxsw %s, migrations %s\n",
               f(d[0] / 1e3, 1), f(d[1], 2), f(l[0] / 1e3, 1), f(l[1], 2),
               $6 != "-" && $9 != "-" ? f(l[2], 2) : "-" }') || return 0
    read -r c x side["$1$s"] <<<"$r"
    val["$1,cpu_rtt$s"]=$c
    val["$1,ctxsw_rtt$s"]=$x
}

declare -A val
status=0
# run NAME DIALER LISTENER [BENCHES]
run() {
    local name="$1" dialer="$2" listener="$3" args line rv
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
        if [ "$args" = "bench-rtt --count $RTT_COUNT" ] &&
           { [ -z "$suffix" ] || [ "$suffix" = "$busy_suffix" ]; } &&
           [ $have_prof -eq 1 ]; then
            # the profile: this run, then a PROF_SMALL one to subtract
            prof_dial "$name$suffix" "$dialer" "$RTT_COUNT" "$out/bench.tmp" &&
                prof_dial "$name$suffix" "$dialer" "$PROF_SMALL" /dev/null
            rv=$?
        else
            # shellcheck disable=SC2086
            timeout 600 $dialer $args $dial_extra "$lma" >"$out/bench.tmp" 2>"$out/bench.err"
            rv=$?
        fi
        if [ $rv -ne 0 ]; then
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
dial_extra=""
busy_suffix="_busy$BUSY_US"
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

# Busy polling: the unpinned rtt run of p2praft with --busy-poll-us on both
# sides (bench-rtt takes options after its mode).
if [ "$BUSY_US" != 0 ]; then
    suffix="$busy_suffix"
    dial_extra="--busy-poll-us $BUSY_US"
    run p2praft "$root/build/p2praft interop" \
        "$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0 --busy-poll-us $BUSY_US" rtt
    dial_extra=""
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

prof_rows p2praft
prof_rows go
[ "$BUSY_US" != 0 ] && prof_rows p2praft "$busy_suffix"

printf '%-28s %14s %14s %10s   %s\n' metric p2praft go-libp2p ratio target
row() { # metric unit higher_is_better target [go's metric]
    local c="${val[p2praft,$1]:-}" g="${val[go,${5:-$1}]:-}" r="-"
    if [ -n "$c" ] && [ -n "$g" ]; then
        if [ "$3" = 1 ]; then r=$(awk -v a="$c" -v b="$g" 'BEGIN{print (b > 0 ? sprintf("%.2fx", a/b) : "-")}')
        else r=$(awk -v a="$c" -v b="$g" 'BEGIN{print (a > 0 ? sprintf("%.2fx", b/a) : "-")}'); fi
    fi
    printf '%-28s %14s %14s %10s   %s\n' "$1 ($2)" "${c:--}" "${g:--}" "$r" "$4"
}
row throughput Gbit/s 1 ">= 4 Gbit/s and >= 1.5x go"
row rtt_p50 us 0 "<= 60 us"
row rtt_p99 us 0 ""
row rtt_p50_1core us 0 "<= 60 us"
row rtt_p99_1core us 0 ""
if [ "$BUSY_US" != 0 ]; then
    row "rtt_p50$busy_suffix" us 0 "go: unpinned" rtt_p50
    row "rtt_p99$busy_suffix" us 0 "go: unpinned" rtt_p99
fi
row syscalls_rtt calls 0 "6: send, recv, epoll_wait per side"
row cpu_rtt us 0 ""
row ctxsw_rtt switches 0 ""
if [ "$BUSY_US" != 0 ]; then
    row "cpu_rtt$busy_suffix" us 0 "go: unpinned" cpu_rtt
    row "ctxsw_rtt$busy_suffix" switches 0 "go: unpinned" ctxsw_rtt
fi
row connect_p50 ms 0 "<= 2 ms"
row connect_p99 ms 0 ""
echo "(ratio: p2praft/go for throughput, go/p2praft for latencies and costs: > 1 means p2praft is better)"
if [ -n "${side[p2praft]:-}${side[go]:-}" ]; then
    echo "(cpu_rtt: CPU time, user + sys; ctxsw_rtt: context switches, voluntary + involuntary;"
    echo " per round trip of the unpinned rtt run, dialer and listener summed, all threads,"
    echo " set-up subtracted. Each side, with the listener's CPU migrations per round trip:)"
    [ -n "${side[p2praft]:-}" ] && echo "  p2praft    ${side[p2praft]}"
    [ -n "${side[p2praft$busy_suffix]:-}" ] &&
        echo "  p2praft, --busy-poll-us $BUSY_US  ${side[p2praft$busy_suffix]}"
    [ -n "${side[go]:-}" ] && echo "  go-libp2p  ${side[go]}"
fi
exit $status

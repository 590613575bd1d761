#!/usr/bin/env bash
# What the VM's idle policy costs (issue 9): the unpinned latencies with the
# guest's halt polling as the machine has it, and with it on.
#
# In a KVM guest with the cpuidle haltpoll driver, guest_halt_poll_ns is how
# long an idle vCPU polls for work before it halts. At 0 every idle vCPU halts
# at once, so every wakeup that crosses CPUs (a socket write that wakes the
# peer's loop, libuv's thread pool taking raft_uv's write and handing it
# back) waits for an interrupt into a halted vCPU. This script measures, in
# turns (IDLE_REPS rounds, default 3): the sequential commit p50 of
# bench_e2e on tmpfs (p2praft's raft I/O and libraft's own TCP transport,
# both on raft_uv) and on disk ($TMPDIR or /tmp, p2praft), and the 64 B
# round trip p50 of the two libp2p hosts (p2praft and go-libp2p), once with
# the setting found and once with IDLE_POLL_NS (default 200000), and prints
# the medians. It puts the setting back on exit, whatever happens. Beside
# them, p2praft's own answer to the same cost, its opt-in busy polling
# (--busy-poll-us IDLE_BUSY_POLL_US, default 50), on tmpfs and on the host.
#
# It changes a kernel setting while it runs, so `make bench` leaves it out:
# run it alone, as root, on a quiet machine (`make bench-idle`). Without the
# haltpoll driver (bare metal, another hypervisor) it says so and exits 0.
set -uo pipefail
cd "$(dirname "$0")/../.."
root="$(pwd)"
out="$root/build/bench-idle"
mkdir -p "$out"
param=/sys/module/haltpoll/parameters/guest_halt_poll_ns
poll_on="${IDLE_POLL_NS:-200000}"
reps="${IDLE_REPS:-3}"
count="${IDLE_RTT_COUNT:-5000}"
busy="${IDLE_BUSY_POLL_US:-50}"

driver="$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
if [ ! -w "$param" ]; then
    echo "bench/idle: no writable $param (cpuidle driver: $driver; root: $([ "$(id -u)" = 0 ] && echo yes || echo no)): nothing to compare"
    exit 0
fi
found="$(cat "$param")"
if [ "$found" = "$poll_on" ]; then
    echo "bench/idle: guest_halt_poll_ns is already $poll_on; set IDLE_POLL_NS to another value"
    exit 0
fi
trap 'echo "$found" > "$param"' EXIT

[ -x build/bench/bench_e2e ] && [ -x build/p2praft ] ||
    { echo "bench/idle: build/bench/bench_e2e or build/p2praft missing (make all, make build/bench/bench_e2e)"; exit 1; }
export GOFLAGS=-mod=readonly GOTOOLCHAIN="${GOTOOLCHAIN:-auto}"
gopeer=""
if command -v go >/dev/null 2>&1 &&
   (cd interop/go/peer && go build -trimpath -o "$out/go-peer" . >"$out/go-build.log" 2>&1); then
    gopeer="$out/go-peer"
else
    echo "bench/idle: go peer unavailable; p2praft only"
fi
# shellcheck source=bench/lib/listener.sh
. bench/lib/listener.sh

# rtt_p50 DIALER LISTENER [DIALER_ARGS]: prints the dialer's round trip p50 (us)
rtt_p50() {
    start_listener "$2" || return 1
    # shellcheck disable=SC2086
    timeout 300 $1 bench-rtt --count "$count" ${3:-} "$lma" 2>"$out/rtt.err" |
        awk '$1 == "bench" && $2 == "rtt_p50" {print $3}'
    stop_listener
}

# e2e_p50 STORE [DIR [ARGS]]: prints bench_e2e's sequential commit p50 (us)
e2e_p50() {
    # shellcheck disable=SC2086
    build/bench/bench_e2e --store "$1" --dir "${2:-/dev/shm}" ${3:-} 2>"$out/e2e.err" |
        awk '$3 == "seq_commit_p50" {print $4}'
}

: >"$out/samples.txt"
echo "bench/idle: cpuidle driver $driver, guest_halt_poll_ns found at $found; $reps rounds, alternating with $poll_on; load $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$reps"); do
    for ns in "$found" "$poll_on"; do
        echo "$ns" > "$param"
        echo "$ns e2e_shm $(e2e_p50 shm)" >>"$out/samples.txt"
        echo "$ns e2e_libraft_tcp $(e2e_p50 tcp)" >>"$out/samples.txt"
        echo "$ns e2e_disk $(e2e_p50 disk "${TMPDIR:-/tmp}")" >>"$out/samples.txt"
        echo "$ns e2e_shm_busy$busy $(e2e_p50 shm /dev/shm "--busy-poll-us $busy")" >>"$out/samples.txt"
        echo "$ns rtt_p2praft $(rtt_p50 "$root/build/p2praft interop" "$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0")" >>"$out/samples.txt"
        echo "$ns rtt_p2praft_busy$busy $(rtt_p50 "$root/build/p2praft interop" "$root/build/p2praft host --listen /ip4/127.0.0.1/tcp/0 --busy-poll-us $busy" "--busy-poll-us $busy")" >>"$out/samples.txt"
        if [ -n "$gopeer" ]; then
            echo "$ns rtt_go $(rtt_p50 "$gopeer" "$gopeer listen")" >>"$out/samples.txt"
        fi
    done
done
echo "$found" > "$param"

# Medians per (setting, metric); a failed sample (empty) is left out and shown.
awk -v off="$found" -v on="$poll_on" -v disk="${TMPDIR:-/tmp}" -v busy="$busy" '
NF < 3 { failed[$2]++; names[$2] = 1; next }
{ v[$1 " " $2] = v[$1 " " $2] " " $3; names[$2] = 1 }
function median(s,   a, n, i, j, t) {
    n = split(s, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) { t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n == 0 ? "-" : (n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2)
}
END {
    printf "%-22s %16s %16s %8s\n", "p50 (us), medians", "poll_ns=" off, "poll_ns=" on, "ratio"
    n = split("e2e_shm e2e_libraft_tcp e2e_disk e2e_shm_busy" busy " rtt_p2praft rtt_p2praft_busy" busy " rtt_go", order, " ")
    for (k = 1; k <= n; k++) {
        m = order[k]; if (!(m in names)) continue
        a = median(v[off " " m]); b = median(v[on " " m])
        r = (a != "-" && b != "-" && b + 0 > 0) ? sprintf("%7.2fx", a / b) : "       -"
        printf "%-22s %16s %16s %s%s\n", m, a, b, r, (m in failed ? "  (" failed[m] " failed)" : "")
    }
    print "(ratio: time with the setting found / time with polling on; e2e: 3 nodes in one process,"
    print " raft_uv on /dev/shm (e2e_disk: on " disk "); rtt: 64 B echo on one stream, listener and dialer processes;"
    print " *_busy" busy ": p2praft with --busy-poll-us " busy ", its own polling, on every host)"
}' "$out/samples.txt"

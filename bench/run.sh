#!/usr/bin/env bash
# Run every benchmark binary (build/bench/bench_*), each of which measures
# p2praft and its baseline in the same run and prints its own table.
# Prints the machine first, since numbers mean nothing without it.
set -u
cd "$(dirname "$0")/.."
echo "machine: $(nproc) cores, $(awk -F: '/model name/{print $2; exit}' /proc/cpuinfo | sed 's/^ *//')," \
     "$(free -g | awk '/Mem:/{print $2}') GiB, $(uname -sr)"
idle="$(cat /sys/devices/system/cpu/cpuidle/current_driver 2>/dev/null || echo none)"
[ -r /sys/module/haltpoll/parameters/guest_halt_poll_ns ] &&
    idle="$idle, guest_halt_poll_ns $(cat /sys/module/haltpoll/parameters/guest_halt_poll_ns)"
echo "cpuidle: $idle (see bench/idle/run.sh)"
echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)  commit: $(git rev-parse --short HEAD 2>/dev/null || echo none)"
status=0
for b in build/bench/bench_*; do
    [ -x "$b" ] || continue
    echo
    echo "== $(basename "$b")"
    "$b" || status=1
done
for s in bench/*/run.sh; do
    [ -x "$s" ] || continue
    # bench/e2e/run.sh runs the seed itself, in the same run as p2praft's
    # side; bench/seed/run.sh stays runnable alone for its tuned modes.
    [ "$s" = bench/seed/run.sh ] && [ -x bench/e2e/run.sh ] && continue
    # bench/idle/run.sh changes a kernel setting while it runs: alone only
    # (make bench-idle).
    [ "$s" = bench/idle/run.sh ] && continue
    echo
    echo "== $s"
    "$s" || status=1
done
exit $status

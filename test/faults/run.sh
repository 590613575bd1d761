#!/usr/bin/env bash
# One fault run: a cluster of `p2praft node` processes, each in its own
# network namespace, under a concurrent workload (build/faults-client)
# while one nemesis (test/faults/nemesis.sh) injects faults; then every
# fault is healed, the cluster must elect a leader and serve again, every
# key is read one last time, and the whole history is checked by porcupine
# (build/interop/linearize) for linearizability and lost writes.
#
# Usage (root: namespaces, veth links and tmpfs mounts):
#   test/faults/run.sh --nemesis NAME [--nodes N] [--secs S] [--out DIR]
#                      [--seed S] [--rate OPS] [--settle S]
#                      [--snapshot-threshold N] [--store disk|mem]
# --snapshot-threshold N and --store go to every `p2praft node` (their
# defaults are the node's: 1024, and disk on the node's tmpfs). A memory
# node forgets its raft state when it stops, and refuses to start again
# under the same key (README, Limits): --store mem takes no nemesis that
# kills nodes, and a memory node that crashes stays down (a finding).
# Prints a RESULT line; leaves in DIR: history.jsonl, nemesis.log, each
# node's log (n<i>/node.log), status.log (every node's role, term, leader
# and indexes twice a second), check.txt, result, and
# linearizability-KEY.html on failure. Every log line starts with the epoch
# time in seconds, the clock of nemesis.log.
# Exit status: 0 PASS, 1 FAIL, 2 INCONCLUSIVE, 3 the harness could not run.
#
# Environment: FAULTS_RATE (ops/s, 1000), FAULTS_TMPFS_MB (each node's
# data tmpfs, 64), FAULTS_LOG (the nodes' P2PRAFT_LOG level),
# FAULTS_CLIENT_FLAGS (more build/faults-client options, e.g.
# --plain-reads, which must make a partition run fail).
#
# Only one run at a time on a machine (a lock); what a killed run left
# behind (namespaces p2pf*, their processes, tmpfs mounts) is removed
# first. Everything it creates is removed on every exit path.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
CLI=$BUILD/p2praft
CLIENT=$BUILD/faults-client
CHECKER=$ROOT/build/interop/linearize

NEMESIS=""
N=3
SECS=60
RUN=""
SEED=$((RANDOM * 32768 + RANDOM))
RATE=${FAULTS_RATE:-1000}
SETTLE=5
TMPFS_MB=${FAULTS_TMPFS_MB:-64}
SNAP_THRESHOLD=""
STORE=disk

usage() {
    sed -n '2,/^set -u/p' "$0" | sed -e '/^set -u/d' -e 's/^# \{0,1\}//'
}

while [ $# -gt 0 ]; do
    case "$1" in
    --nemesis) NEMESIS=$2; shift 2 ;;
    --nodes) N=$2; shift 2 ;;
    --secs) SECS=$2; shift 2 ;;
    --out) RUN=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --rate) RATE=$2; shift 2 ;;
    --settle) SETTLE=$2; shift 2 ;;
    --snapshot-threshold) SNAP_THRESHOLD=$2; shift 2 ;;
    --store) STORE=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "faults: unknown argument $1" >&2; usage >&2; exit 3 ;;
    esac
done

# shellcheck source=test/faults/net.sh
. "$HERE/net.sh"
# shellcheck source=test/faults/cluster.sh
. "$HERE/cluster.sh"
# shellcheck source=test/faults/nemesis.sh
. "$HERE/nemesis.sh"

case " $NEMESES " in
*" $NEMESIS "*) ;;
*) echo "faults: --nemesis is one of: $NEMESES" >&2; exit 3 ;;
esac
case "$STORE" in
disk | mem) ;;
*) echo "faults: --store is disk or mem" >&2; exit 3 ;;
esac
if [ "$STORE" = mem ]; then
    case "$NEMESIS" in
    kill-*)
        echo "faults: --store mem cannot take $NEMESIS: a killed memory node may not rejoin under its key" >&2
        exit 3
        ;;
    esac
fi
if [ -n "$SNAP_THRESHOLD" ] && ! [[ "$SNAP_THRESHOLD" =~ ^[1-9][0-9]*$ ]]; then
    echo "faults: --snapshot-threshold is a positive number" >&2
    exit 3
fi
if ! [[ "$N" =~ ^[0-9]+$ ]] || [ "$N" -lt 3 ] || [ "$N" -gt 9 ]; then
    echo "faults: --nodes is 3 to 9" >&2
    exit 3
fi
if [ "$(id -u)" -ne 0 ]; then
    echo "faults: needs root (network namespaces, veth links, tmpfs mounts)" >&2
    exit 3
fi
for f in "$CLI" "$CLIENT" "$CHECKER"; do
    [ -x "$f" ] || { echo "faults: $f is missing: make faults-build" >&2; exit 3; }
done
command -v ip >/dev/null || { echo "faults: no 'ip': scripts/install-deps.sh --faults" >&2; exit 3; }
RUN=${RUN:-$BUILD/faults/$NEMESIS-$N}
RANDOM=$SEED

# One run at a time: the namespace names are fixed.
mkdir -p /run/lock
exec 9>/run/lock/p2praft-faults.lock
if ! flock -n 9; then
    echo "faults: another fault run holds /run/lock/p2praft-faults.lock" >&2
    exit 3
fi
net_leftovers

CLIENT_PID=""
MONITOR_PID=""
cleanup() {
    local i
    trap - EXIT INT TERM HUP
    [ -n "$CLIENT_PID" ] && kill -9 "$CLIENT_PID" 2>/dev/null
    [ -n "$MONITOR_PID" ] && kill -9 "$MONITOR_PID" 2>/dev/null
    for ((i = 0; i < N; i++)); do
        if [ -n "${NODE_PID[i]:-}" ]; then
            kill -9 "${NODE_PID[i]}" 2>/dev/null
            wait "${NODE_PID[i]}" 2>/dev/null
        fi
    done
    net_teardown "$N"
    cluster_unmount
    net_leftovers >/dev/null
}
trap cleanup EXIT
# A closed stdout (`| head`) must not kill the run before its cleanup.
trap '' PIPE
trap 'echo "faults: interrupted" >&2; exit 3' INT TERM HUP

# --out is emptied: refuse anything but an empty directory or an earlier
# run's output.
if [ -e "$RUN" ] && [ ! -f "$RUN/nemesis.log" ] && [ ! -f "$RUN/result" ] && [ -n "$(ls -A "$RUN" 2>/dev/null)" ]; then
    echo "faults: $RUN is not empty and holds no earlier run: not removing it" >&2
    exit 3
fi
rm -rf "$RUN"
mkdir -p "$RUN" || exit 3
# Microseconds since the epoch, and a duration in seconds with 2 decimals.
now_us() { local t=$EPOCHREALTIME; echo "${t/./}"; }
secs_since() {
    local d=$(($(now_us) - $1))
    printf '%d.%02d' $((d / 1000000)) $((d % 1000000 / 10000))
}
T0=$(now_us)
log_event() {
    echo "$EPOCHREALTIME $*" >>"$RUN/nemesis.log"
    printf '  %7ss  %s\n' "$(secs_since "$T0")" "$*"
}

die() {
    echo "faults: $*" >&2
    echo "RESULT name=$NEMESIS-$N verdict=ERROR reason=\"$*\"" | tee "$RUN/result"
    exit 3
}

echo "== $NEMESIS, $N nodes, $SECS s (seed $SEED, rate $RATE ops/s, store $STORE${SNAP_THRESHOLD:+, snapshot threshold $SNAP_THRESHOLD}) -> $RUN"
net_setup "$N" || die "cannot set up the network namespaces"
cluster_prepare || die "cannot prepare the nodes"
for ((i = 0; i < N; i++)); do
    node_start "$i" bootstrap || die "node $i did not start"
done
cluster_wait_leader 30 >/dev/null || die "no leader 30 s after the start"
log_event "cluster up, leader: node $(cluster_leader)"

VALUE_SIZE=256
[ "$NEMESIS" = disk-full ] && VALUE_SIZE=4000
ip netns exec "$(ns_of c)" "$CLIENT" --history "$RUN/history.jsonl" \
    --seed "$SEED" --rate "$RATE" --value-size "$VALUE_SIZE" ${FAULTS_CLIENT_FLAGS:-} \
    $(for ((i = 0; i < N; i++)); do echo --api "$(node_api "$i")"; done) \
    2>"$RUN/client.log" &
CLIENT_PID=$!
ip netns exec "$(ns_of c)" "$HERE/monitor.sh" "$CLI" "$RUN" "$N" >"$RUN/status.log" 2>&1 &
MONITOR_PID=$!

END=$((SECONDS + SECS))
CYCLES=0
while [ "$SECONDS" -lt "$END" ]; do
    "nemesis_$NEMESIS"
    CYCLES=$((CYCLES + 1))
    node_check_crashes
    kill -0 "$CLIENT_PID" 2>/dev/null || die "the client died (see $RUN/client.log)"
done

# Heal everything, whatever the nemesis did.
net_heal "$N"
for ((i = 0; i < N; i++)); do
    rm -f "$(node_dir "$i")/data/fill"
    [ "${NODE_STATE[i]}" = paused ] && node_resume "$i"
done
node_check_crashes
for ((i = 0; i < N; i++)); do
    if [ "${NODE_STATE[i]}" = down ] && ! node_start "$i"; then
        echo "node $i did not restart after the heal" >>"$RUN/crashes"
    fi
done
mark_faulted
log_event "healed after $CYCLES cycles"
HEAL=$(now_us)
RECOVERY=none
if L=$(cluster_wait_leader 30); then
    RECOVERY=$(secs_since "$HEAL")
    log_event "leader after the heal: node $L (${RECOVERY} s)"
else
    log_event "NO LEADER 30 s after the heal"
fi
sleep "$SETTLE" # the workload keeps going on the healed cluster

kill "$MONITOR_PID" 2>/dev/null
wait "$MONITOR_PID" 2>/dev/null
MONITOR_PID=""
log_event "stopping the workload; final reads"
kill -TERM "$CLIENT_PID"
wait "$CLIENT_PID"
rc=$?
CLIENT_PID=""
[ "$rc" -eq 0 ] || die "the client exited with status $rc (see $RUN/client.log)"
node_check_crashes
STOP_BAD=""
for ((i = 0; i < N; i++)); do
    node_stop "$i" || STOP_BAD="$STOP_BAD $i"
done
[ -n "$STOP_BAD" ] && log_event "nodes that did not exit 0 on SIGTERM:$STOP_BAD"

"$CHECKER" -history "$RUN/history.jsonl" -nemesis "$RUN/nemesis.log" \
    -out "$RUN" -name "$NEMESIS-$N" >"$RUN/check.txt" 2>&1
CHECK_RC=$?
grep -v '^RESULT ' "$RUN/check.txt" | head -n 20 | sed 's/^/  /'
RESULT=$(grep '^RESULT ' "$RUN/check.txt")
[ -n "$RESULT" ] || die "the checker gave no result (exit $CHECK_RC, see $RUN/check.txt)"
CRASHES=0
if [ -f "$RUN/crashes" ]; then
    CRASHES=$(wc -l <"$RUN/crashes")
    sed 's/^/  CRASH: /' "$RUN/crashes"
fi
VERDICT_RC=$CHECK_RC
EXTRA="store=$STORE snapshot_threshold=${SNAP_THRESHOLD:-default} secs=$SECS cycles=$CYCLES recovery_s=$RECOVERY crashes=$CRASHES bad_exit=${STOP_BAD:+$(echo $STOP_BAD | tr ' ' ,)}"
if [ "$RECOVERY" = none ] || [ "$CRASHES" -gt 0 ] || [ -n "$STOP_BAD" ]; then
    RESULT=${RESULT/verdict=PASS/verdict=FAIL}
    RESULT=${RESULT/verdict=INCONCLUSIVE/verdict=FAIL}
    VERDICT_RC=1
fi
echo "${RESULT/ verdict=/ $EXTRA verdict=}" | tee "$RUN/result"
exit "$VERDICT_RC"

#!/usr/bin/env bash
# `make faults`: every nemesis, one run each (test/faults/run.sh), then
# one table of the results (also in build/faults/summary.md).
#
#   test/faults/all.sh [--secs N] [--ci] [--nemeses "a b ..."] [--sizes "3 5"]
#                      [--snapshot-threshold N] [--store disk|mem]
#
# By default every nemesis runs on 3 and on 5 nodes. --ci is the .ci/run
# plan: each nemesis once, the cluster sizes shared out between them.
# --snapshot-threshold and --store go to every run (run.sh); with --store
# mem the nemeses that kill nodes are left out of the plan. Exit status 0
# when every run passed.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
OUT=$ROOT/build/faults
SECS=60
CI_PLAN=0
SIZES="3 5"
NEMESES=""
RUN_FLAGS=()
STORE=disk

while [ $# -gt 0 ]; do
    case "$1" in
    --secs) SECS=$2; shift 2 ;;
    --ci) CI_PLAN=1; shift ;;
    --nemeses) NEMESES=$2; shift 2 ;;
    --sizes) SIZES=$2; shift 2 ;;
    --snapshot-threshold) RUN_FLAGS+=(--snapshot-threshold "$2"); shift 2 ;;
    --store) STORE=$2; RUN_FLAGS+=(--store "$2"); shift 2 ;;
    *) echo "usage: $0 [--secs N] [--ci] [--nemeses LIST] [--sizes LIST] [--snapshot-threshold N] [--store disk|mem]" >&2; exit 2 ;;
    esac
done
if [ -z "$NEMESES" ]; then
    NEMESES=$(sed -n 's/^NEMESES="\(.*\)"$/\1/p' "$HERE/nemesis.sh")
fi

# The plan: "nemesis:nodes" pairs.
plan=()
for nm in $NEMESES; do
    case "$STORE:$nm" in mem:kill-*) continue ;; esac
    if [ "$CI_PLAN" -eq 1 ]; then
        case "$nm" in
        kill-majority | partition-bridge) plan+=("$nm:5") ;;
        *) plan+=("$nm:3") ;;
        esac
    else
        for n in $SIZES; do plan+=("$nm:$n"); done
    fi
done

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
mkdir -p "$OUT"
summary=$OUT/summary.md
{
    echo "| nemesis | nodes | s | ops | ok | failed | unknown | write p50 / p99 / p99.9 (ms) | p99.9 via healthy nodes (ms) | longest write stall (s) | leader after heal (s) | linearizable | lost | verdict |"
    echo "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
} >"$summary"
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<" $2"; }
failed=0
start=$SECONDS
for p in "${plan[@]}"; do
    nm=${p%%:*}
    n=${p##*:}
    $SUDO nice -n 10 "$HERE/run.sh" --nemesis "$nm" --nodes "$n" --secs "$SECS" \
        --out "$OUT/$nm-$n" "${RUN_FLAGS[@]}"
    rc=$?
    r=$(cat "$OUT/$nm-$n/result" 2>/dev/null)
    v=$(field verdict "$r")
    [ "$rc" -eq 0 ] && [ "$v" = PASS ] || failed=$((failed + 1))
    stall=$(field longest_stall_ms "$r")
    [[ "$stall" =~ ^[0-9]+$ ]] && stall=$(printf '%d.%d' $((stall / 1000)) $((stall % 1000 / 100)))
    printf '| %s | %s | %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s | %s | %s | %s |\n' \
        "$nm" "$n" "$SECS" "$(field ops "$r")" "$(field ok "$r")" "$(field failed "$r")" \
        "$(field unknown "$r")" "$(field write_p50_ms "$r")" "$(field write_p99_ms "$r")" \
        "$(field write_p999_ms "$r")" "$(field healthy_write_p999_ms "$r")" "$stall" \
        "$(field recovery_s "$r")" \
        "$(field linearizable "$r")" "$(field lost "$r")" "${v:-ERROR}" >>"$summary"
done
echo
echo "== fault runs ($((SECONDS - start)) s; outputs in $OUT/NEMESIS-NODES/)"
cat "$summary"
echo "faults: $((${#plan[@]} - failed)) passed, $failed failed"
[ "$failed" -eq 0 ]

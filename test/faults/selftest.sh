#!/usr/bin/env bash
# The fault harness's checker must be able to fail: run it on crafted
# histories (test/faults/histories/) and compare with what each expects.
#   pass-*.jsonl, fail-*.jsonl: the start record's "expect" lists key=value
#     pairs that the checker's RESULT line must contain; a history that is
#     not linearizable must also leave porcupine's HTML visualization.
#   bad-*.jsonl: malformed input, which must be refused (exit 3).
# Usage: test/faults/selftest.sh [LINEARIZE_BINARY [HISTORY_DIR]]
# (defaults: build/interop/linearize, test/faults/histories). Prints one
# "ok"/"FAIL" line per history and "N passed, N failed", as the test
# runners do (scripts/run-tests.sh runs it in `make test`).
set -u
cd "$(dirname "$0")/../.."
checker=${1:-build/interop/linearize}
dir=${2:-test/faults/histories}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
pass=0
fail=0
for h in "$dir"/*.jsonl; do
    name=$(basename "$h" .jsonl)
    mkdir -p "$out/$name"
    "$checker" -history "$h" -out "$out/$name" -name "$name" -timeout 10s \
        >"$out/$name/report" 2>&1
    rc=$?
    why=""
    case "$name" in
    bad-*)
        [ "$rc" -eq 3 ] || why="exit $rc, expected 3 (malformed input)"
        ;;
    *)
        expect=$(sed -n '1s/.*"expect":"\([^"]*\)".*/\1/p' "$h")
        result=$(grep '^RESULT ' "$out/$name/report")
        if [ -z "$expect" ]; then
            why="no \"expect\" in its start record"
        elif [ -z "$result" ]; then
            why="no RESULT line (exit $rc)"
        fi
        for kv in $expect; do
            [ -n "$why" ] && break
            case " $result " in
            *" $kv "*) ;;
            *) why="expected $kv" ;;
            esac
        done
        case "$result" in
        *verdict=PASS*) want_rc=0 ;;
        *) want_rc=1 ;;
        esac
        if [ -z "$why" ] && [ "$rc" -ne "$want_rc" ]; then
            why="exit $rc, expected $want_rc"
        fi
        if [ -z "$why" ] && [[ " $expect " == *" linearizable=no "* ]] &&
            ! ls "$out/$name"/linearizability-*.html >/dev/null 2>&1; then
            why="no visualization written"
        fi
        ;;
    esac
    if [ -z "$why" ]; then
        echo "ok   checker/$name"
        pass=$((pass + 1))
    else
        echo "FAIL checker/$name ($why)"
        sed 's/^/    /' "$out/$name/report"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]

#!/usr/bin/env bash
# Run each test tier's runner, then print the combined "N passed, N failed"
# as the last line. Exit non-zero if any runner failed or a tier ran none.
#   scripts/run-tests.sh [--valgrind] RUNNER...
set -u
vg=()
if [ "${1:-}" = "--valgrind" ]; then
    shift
    vg=(valgrind -q --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
        --track-fds=no --suppressions=test/valgrind.supp)
fi
total_p=0
total_f=0
status=0
for runner in "$@"; do
    echo "== $runner ${vg:+(valgrind)}"
    out=$(mktemp)
    "${vg[@]}" "$runner" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "$runner: no summary line (exit $rc)"
        total_f=$((total_f + 1))
        status=1
        continue
    fi
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed*}
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$f" -eq 0 ]; then
            echo "$runner: exit status $rc with no failed test (memory error or leak?)"
            total_f=$((total_f + 1))
        fi
    fi
done
echo "${total_p} passed, ${total_f} failed"
exit $status

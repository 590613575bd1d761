#!/usr/bin/env bash
# Run each test tier's runner, then print the names of the failed tests and
# the combined "N passed, N failed" as the last line. Exit non-zero if any
# runner failed or a tier ran none.
#   scripts/run-tests.sh [--valgrind] RUNNER...
# A runner is a test binary (test/lib/runner.c) or a script that prints
# the same "ok"/"FAIL" lines and summary (scripts/test-install.sh).
#
# Time limits: every test runs under one (test/lib/runner.c names a hung
# test, kills it and goes on; under valgrind it names it and ends the run).
# P2PRAFT_TEST_TIMEOUT sets the default limit in seconds (30; 0 turns
# limits off), P2PRAFT_TEST_TIMEOUT_SCALE multiplies every limit;
# --valgrind makes it 20 unless it is set.
set -u
vg=()
if [ "${1:-}" = "--valgrind" ]; then
    shift
    vg=(valgrind -q --error-exitcode=99 --leak-check=full
        --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect
        --track-fds=no --suppressions=test/valgrind.supp)
    export P2PRAFT_TEST_TIMEOUT_SCALE=${P2PRAFT_TEST_TIMEOUT_SCALE:-20}
fi
total_p=0
total_f=0
status=0
failed_names=""
for runner in "$@"; do
    echo "== $runner ${vg:+(valgrind)}"
    out=$(mktemp)
    "${vg[@]}" "$runner" 2>&1 | tee "$out"
    rc=${PIPESTATUS[0]}
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$out" | tail -n 1)
    names=$(sed -n 's/^FAIL \([^ ]*\).*/\1/p' "$out" | tr '\n' ' ')
    rm -f "$out"
    if [ -z "$line" ]; then
        echo "$runner: no summary line (exit $rc)"
        total_f=$((total_f + 1))
        failed_names="$failed_names $runner${names:+ ($names)}"
        status=1
        continue
    fi
    p=${line%% passed*}
    f=${line#*, }
    f=${f%% failed*}
    total_p=$((total_p + p))
    total_f=$((total_f + f))
    failed_names="$failed_names ${names% }"
    if [ "$rc" -ne 0 ]; then
        status=1
        if [ "$f" -eq 0 ]; then
            echo "$runner: exit status $rc with no failed test (memory error or leak?)"
            total_f=$((total_f + 1))
            failed_names="$failed_names $runner"
        fi
    fi
done
failed_names=$(echo $failed_names)
if [ -n "$failed_names" ]; then
    echo "failed: $failed_names"
fi
echo "${total_p} passed, ${total_f} failed"
exit $status

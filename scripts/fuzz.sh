#!/usr/bin/env bash
# Build each fuzz target with libFuzzer (clang, ASan+UBSan) and run it for
# SECS seconds. The checked-in corpus under test/fuzz/corpus/<target> seeds
# it; new inputs go to build/fuzz/new/<target> (copy the interesting ones
# into the corpus by hand). Prints runs, coverage and crashes per target.
#   scripts/fuzz.sh SECS test/fuzz/fuzz_<target>.c...
set -u
secs=$1
shift
cc=${FUZZ_CC:-clang}
flags=(-std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -DP2PRAFT_LIBFUZZER -Iinclude -Isrc -Itest/lib)
libs=$(pkg-config --cflags --libs libuv libcrypto raft)
srcs=$(ls src/util/*.c src/p2p/*.c src/raft/*.c 2>/dev/null)
mkdir -p build/fuzz
fail=0
printf '%-16s %10s %8s %8s %s\n' target runs secs cov result
for f in "$@"; do
    t=$(basename "$f" .c)
    t=${t#fuzz_}
    bin=build/fuzz/$t
    # shellcheck disable=SC2086
    if ! $cc "${flags[@]}" -o "$bin" "$f" test/lib/fuzz_main.c $srcs $libs -lpthread -lm \
            2> "build/fuzz/$t.build.log"; then
        echo "$t: build failed, see build/fuzz/$t.build.log"
        fail=1
        continue
    fi
    mkdir -p "build/fuzz/new/$t" "test/fuzz/corpus/$t"
    log=build/fuzz/$t.log
    "$bin" -max_total_time="$secs" -print_final_stats=1 -artifact_prefix="build/fuzz/$t-" \
        "build/fuzz/new/$t" "test/fuzz/corpus/$t" > "$log" 2>&1
    rc=$?
    runs=$(grep -E '^stat::number_of_executed_units' "$log" | awk '{print $2}')
    cov=$(grep -oE 'cov: [0-9]+' "$log" | tail -n1 | awk '{print $2}')
    res=ok
    if [ $rc -ne 0 ]; then
        res="CRASH (see $log, build/fuzz/$t-*)"
        fail=1
    fi
    printf '%-16s %10s %8s %8s %s\n' "$t" "${runs:-?}" "$secs" "${cov:-?}" "$res"
done
exit $fail

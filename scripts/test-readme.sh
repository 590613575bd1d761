#!/usr/bin/env bash
# The README's consensus outline, as a reader copies it: extract the first
# ```c block under "### Consensus", compile it as it stands against the
# built library (build/libp2praft.a, or $BUILD), with warnings as errors,
# and run it (a one-member group: it elects itself, commits, snapshots and
# shuts down). Prints "ok"/"FAIL" lines and "N passed, N failed" last,
# like the test runners.
#   scripts/test-readme.sh        (from the top of the repository, after make)
set -u
cd "$(dirname "$0")/.."
build=${BUILD:-build}
cc=${CC:-cc}
passed=0
failed=0
failed_names=""
work=$(mktemp -d "${TMPDIR:-/tmp}/p2praft-readme.XXXXXX")
trap 'rm -rf "$work"' EXIT
log=$work/log
ok() { echo "ok   readme/$1"; passed=$((passed + 1)); }
fail() {
    local name=$1
    shift
    echo "FAIL readme/$name"
    echo "     $*"
    if [ -s "$log" ]; then sed 's/^/     | /' "$log" | tail -n 30; fi
    failed=$((failed + 1))
    failed_names="$failed_names readme/$name"
}
finish() {
    if [ "$failed" -gt 0 ]; then echo "failed:$failed_names"; fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit $?
}

: >"$log"
awk '/^### Consensus \(`include\/p2praft.h`\)/ {sec = 1; next}
     sec && /^```c$/ && !done {inb = 1; next}
     inb && /^```$/ {inb = 0; done = 1; exit}
     inb {print}' README.md >"$work/outline.c"
if ! grep -q '^int main' "$work/outline.c"; then
    fail outline_found "no complete program in the README's consensus block"
    finish
fi
ok outline_found

# -fsanitize flags follow the library's build (BUILD=build/asan SAN=1).
san=""
if [ "${SAN:-0}" = 1 ]; then
    san="-fsanitize=address,undefined -fno-sanitize-recover=all"
fi
# shellcheck disable=SC2046
if ! "$cc" -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror $san -Iinclude \
    $(pkg-config --cflags libuv raft) -o "$work/outline" "$work/outline.c" \
    "$build/libp2praft.a" $(pkg-config --libs libuv libcrypto raft) \
    -lpthread -lm >"$log" 2>&1; then
    fail outline_compiles "the README's consensus outline does not compile"
    finish
fi
ok outline_compiles

: >"$log"
if ! timeout 60 "$work/outline" >"$log" 2>&1; then
    fail outline_runs "the outline exited non-zero (or hung)"
elif ! grep -q '^agreed: 42$' "$log" || ! grep -q '(this node)$' "$log"; then
    fail outline_runs "the outline ran, but did not commit as a leader"
else
    ok outline_runs
fi
finish

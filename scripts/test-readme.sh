#!/usr/bin/env bash
# The README's consensus outline, as a reader copies it: extract the first
# ```c block under "### Consensus", compile it as it stands against the
# built library (build/libp2praft.a, or $BUILD), with warnings as errors,
# and run it (a one-member group: it elects itself, commits, snapshots and
# shuts down). Then the CLI section: the commands `p2praft help` lists,
# the README's list of them and its CLI table must name the same commands,
# and every `p2praft COMMAND --help` must exit 0. Prints "ok"/"FAIL" lines and "N passed, N failed" last,
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

# The CLI section against the tool.
cli=$build/p2praft
if [ ! -x "$cli" ]; then
    fail cli_commands "no $cli (run make first)"
else
    : >"$log"
    "$cli" help 2>&1 | awk '/^commands:/ {c = 1; next} c && /^  [a-z]/ {print $1}' |
        sort >"$work/help.txt"
    awk '/^## The CLI/ {s = 1; next} s && /^## / {exit} s {print}' README.md >"$work/cli.md"
    grep -o '^| `p2praft [a-z]*' "$work/cli.md" | sed 's/.* //' | sort -u >"$work/table.txt"
    awk '/lists the commands/ {l = 1} l {print} l && /\);/ {exit}' "$work/cli.md" |
        grep -o '`[a-z]*`' | tr -d '`' | sort -u >"$work/list.txt"
    bad=""
    for c in $(cat "$work/help.txt"); do
        if ! "$cli" "$c" --help >/dev/null 2>>"$log"; then bad="$bad $c"; fi
    done
    if [ ! -s "$work/help.txt" ]; then
        fail cli_commands "p2praft help listed no commands"
    elif ! diff "$work/help.txt" "$work/table.txt" >"$log"; then
        fail cli_commands "p2praft help (<) and the README's CLI table (>) differ"
    elif ! diff "$work/help.txt" "$work/list.txt" >"$log"; then
        fail cli_commands "p2praft help (<) and the README's list of commands (>) differ"
    elif [ -n "$bad" ]; then
        fail cli_commands "--help did not exit 0 for:$bad"
    else
        ok cli_commands
    fi
fi

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

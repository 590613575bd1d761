#!/usr/bin/env bash
# The installed copy, as a user of the library sees it: `make install` into
# a temporary prefix, then build examples/consensus.c against that prefix
# through pkg-config only, exactly with the README's `cc` line, run it, and
# check the files, links, SONAME and pkg-config metadata on the way. Then
# the same program against libp2praft.a alone (`pkg-config --static`).
# Prints "ok"/"FAIL" per check and "N passed, N failed" as its last line,
# like the test runners; exit status 1 on any failure.
#   scripts/test-install.sh        (from the top of the repository)
set -u
cd "$(dirname "$0")/.."
root=$(pwd)
make=${MAKE:-make}
passed=0
failed=0
failed_names=""

work=$(mktemp -d "${TMPDIR:-/tmp}/p2praft-install.XXXXXX")
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
log=$work/log

ok() { echo "ok   install/$1"; passed=$((passed + 1)); }
fail() { # name, reason...
    local name=$1
    shift
    echo "FAIL install/$name"
    echo "     $*"
    if [ -s "$log" ]; then sed 's/^/     | /' "$log" | tail -n 20; fi
    failed=$((failed + 1))
    failed_names="$failed_names install/$name"
}
finish() {
    if [ "$failed" -gt 0 ]; then echo "failed:$failed_names"; fi
    echo "$passed passed, $failed failed"
    [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
    exit $?
}

version=$(sed -n 's/^#define LP2P_VERSION "\(.*\)"/\1/p' include/lp2p.h)
major=${version%%.*}
# What a user types: the README's line, verbatim.
readme_cc=$(grep -m1 -E '^cc examples/consensus\.c .*\$\(pkg-config --cflags --libs p2praft\)$' README.md)

# 1. make install into the prefix.
if ! "$make" --no-print-directory install PREFIX="$prefix" >"$log" 2>&1; then
    fail make_install "make install PREFIX=$prefix failed"
    finish
fi
ok make_install

# 2. The files, the links and the SONAME.
lib=$prefix/lib
: >"$log"
if [ -z "$version" ]; then
    fail layout "no LP2P_VERSION in include/lp2p.h"
elif [ ! -f "$lib/libp2praft.so.$version" ] || [ -L "$lib/libp2praft.so.$version" ]; then
    fail layout "no regular file lib/libp2praft.so.$version"
elif [ "$(readlink "$lib/libp2praft.so.$major")" != "libp2praft.so.$version" ]; then
    fail layout "lib/libp2praft.so.$major is not a link to libp2praft.so.$version"
elif [ "$(readlink -f "$lib/libp2praft.so")" != "$(readlink -f "$lib/libp2praft.so.$version")" ]; then
    fail layout "lib/libp2praft.so does not lead to libp2praft.so.$version"
elif ! readelf -d "$lib/libp2praft.so.$version" | grep -q "(SONAME).*\[libp2praft\.so\.$major\]"; then
    fail layout "SONAME is not libp2praft.so.$major: $(readelf -d "$lib/libp2praft.so.$version" | grep SONAME)"
else
    missing=""
    for f in include/p2praft.h include/lp2p.h lib/libp2praft.a lib/liblp2p.a \
             lib/pkgconfig/p2praft.pc bin/p2praft; do
        [ -f "$prefix/$f" ] || missing="$missing $f"
    done
    if [ -n "$missing" ]; then fail layout "not installed:$missing"; else ok layout; fi
fi

# 3. pkg-config: the version is the header's; libuv and raft are public
# (callers call uv_run and raft_init), libcrypto private.
export PKG_CONFIG_PATH=$lib/pkgconfig
pc_version=$(pkg-config --modversion p2praft 2>"$log")
pc_libs=$(pkg-config --libs p2praft 2>>"$log")
pc_static=$(pkg-config --static --libs p2praft 2>>"$log")
has() { case " $1 " in *" $2 "*) return 0 ;; esac; return 1; }
if [ "$pc_version" != "$version" ]; then
    fail pkg_config "pkg-config --modversion p2praft: '$pc_version', header says '$version'"
elif ! has "$pc_libs" -lp2praft || ! has "$pc_libs" -luv || ! has "$pc_libs" -lraft; then
    fail pkg_config "pkg-config --libs p2praft lacks -lp2praft, -luv or -lraft: $pc_libs"
elif has "$pc_libs" -lcrypto; then
    fail pkg_config "libcrypto should be private (no public header needs it): $pc_libs"
elif ! has "$pc_static" -lcrypto || ! has "$pc_static" -lm; then
    fail pkg_config "pkg-config --static --libs p2praft lacks -lcrypto or -lm: $pc_static"
else
    ok pkg_config
fi

# 4. The README's line against the shared library, then run the program.
# (With libuv and raft only in Requires.private, this link fails: "DSO
# missing from command line", as consensus.c calls raft_init and uv_run.)
mkdir -p "$work/shared/examples"
cp examples/consensus.c "$work/shared/examples/"
: >"$log"
if [ -z "$readme_cc" ]; then
    fail shared "README.md has no line 'cc examples/consensus.c ... \$(pkg-config --cflags --libs p2praft)'"
elif ! (cd "$work/shared" && eval "$readme_cc") >"$log" 2>&1; then
    fail shared "the README's line failed: $readme_cc"
elif ! readelf -d "$work/shared/consensus" | grep -q "(NEEDED).*\[libp2praft\.so\.$major\]"; then
    fail shared "the program does not load libp2praft.so.$major: $(readelf -d "$work/shared/consensus" | grep NEEDED | tr -s ' ')"
elif ! LD_LIBRARY_PATH=$lib ldd "$work/shared/consensus" | grep -q "libp2praft\.so\.$major => $lib/"; then
    fail shared "libp2praft.so.$major does not resolve to $lib: $(LD_LIBRARY_PATH=$lib ldd "$work/shared/consensus" | grep p2praft)"
elif ! (cd "$work/shared" && LD_LIBRARY_PATH=$lib timeout 120 ./consensus) >"$log" 2>&1; then
    fail shared "the program failed"
elif [ "$(grep -c '^Raft[123] final state: 1998$' "$log")" -ne 3 ]; then
    fail shared "the program did not print the seed example's final states"
else
    ok shared
fi

# 5. The same program against libp2praft.a alone: a prefix without the
# shared library, and `pkg-config --static` for what the archive needs.
sprefix=$work/static-prefix
cp -a "$prefix" "$sprefix"
rm -f "$sprefix"/lib/libp2praft.so*
: >"$log"
# shellcheck disable=SC2046
if ! cc "$work/shared/examples/consensus.c" -o "$work/consensus-static" \
        $(pkg-config --define-variable=prefix="$sprefix" --static --cflags --libs p2praft) \
        >"$log" 2>&1; then
    fail static "cc ... \$(pkg-config --static --cflags --libs p2praft) against libp2praft.a failed"
elif readelf -d "$work/consensus-static" | grep -q "(NEEDED).*libp2praft"; then
    fail static "the program still loads libp2praft.so"
elif ! (cd "$work" && timeout 120 ./consensus-static) >"$log" 2>&1; then
    fail static "the program failed"
elif [ "$(grep -c '^Raft[123] final state: 1998$' "$log")" -ne 3 ]; then
    fail static "the program did not print the seed example's final states"
else
    ok static
fi

finish

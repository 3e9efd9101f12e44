#!/usr/bin/env bash
# Installs the build tree into a temporary prefix and builds tests/install/hello.c against the
# installed copy, every way a user would: pkg-config (shared, and static with --static), and a
# CMake project using find_package(yoton CONFIG) (yoton::yoton and yoton::yoton_static). Runs
# each program, checks the installed files (SONAME link, man page, tool, no build-tree paths in
# the package files) and that the version file refuses another major version. Cleans up.
#
# usage: check_install.sh BUILD_DIR SOURCE_DIR LIBDIR VERSION C_COMPILER [SANITIZER_FLAGS]
#   (registered by tests/install/CMakeLists.txt as the CTest test install_consumer)
set -euo pipefail
# (grep -q is avoided after a pipe: it exits at the first match and, with pipefail, the writer
# dying of SIGPIPE would fail the check at random.)
build=$1 src=$2 libdir=$3 version=$4 cc=$5 sanflags=${6:-}
here="$src/tests/install"

fail() { echo "install_consumer: FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

[[ "$libdir" = /* ]] && fail "CMAKE_INSTALL_LIBDIR is absolute ($libdir): cannot relocate"
command -v pkg-config >/dev/null || fail "pkg-config not found (scripts/deps.sh installs it)"

tmp=$(mktemp -d "$build/install-test.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
prefix="$tmp/prefix"
major=${version%%.*}

step "cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }

step "installed files"
for f in "$libdir/libyoton.so" "$libdir/libyoton.so.$major" "$libdir/libyoton.so.$version" \
         "$libdir/libyoton.a" include/yoton.h bin/yoton share/man/man1/yoton.1 \
         "$libdir/pkgconfig/yoton.pc" "$libdir/cmake/yoton/yotonConfig.cmake" \
         "$libdir/cmake/yoton/yotonConfigVersion.cmake" "$libdir/cmake/yoton/yotonTargets.cmake"; do
  [ -e "$prefix/$f" ] || fail "missing $f"
done
soname=$(objdump -p "$prefix/$libdir/libyoton.so.$version" | awk '$1 == "SONAME" {print $2}')
[ "$soname" = "libyoton.so.$major" ] || fail "SONAME is '$soname', expected libyoton.so.$major"
[ "$(readlink "$prefix/$libdir/libyoton.so.$major")" = "libyoton.so.$version" ] || fail "SONAME link"
grep -q "^\.TH YOTON 1 .*\"libyoton $version\"" "$prefix/share/man/man1/yoton.1" \
  || fail "man page: no .TH YOTON 1 line naming libyoton $version (update tools/yoton.1)"
"$prefix/bin/yoton" --help | grep '^usage: yoton' >/dev/null || fail "installed tool: yoton --help"
# The package files must name only the install tree, never the source or build tree.
# (The prefix itself lies in the build tree, so it is taken out before looking.)
for f in "$prefix/$libdir"/cmake/yoton/*.cmake "$prefix/$libdir/pkgconfig/yoton.pc"; do
  if sed "s|$prefix||g" "$f" | grep -F -e "$src" -e "$build"; then
    fail "a build-tree or source-tree path leaked into $f"
  fi
done

export PKG_CONFIG_PATH="$prefix/$libdir/pkgconfig"
step "pkg-config: $(pkg-config --modversion yoton): $(pkg-config --cflags --libs yoton)"
[ "$(pkg-config --modversion yoton)" = "$version" ] || fail "pkg-config --modversion"
[ "$(pkg-config --variable=libdir yoton)" = "$prefix/$libdir" ] || fail "pkg-config libdir"
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $sanflags -o "$tmp/hello_pc" "$here/hello.c" \
  $(pkg-config --cflags --libs yoton) || fail "build with pkg-config"
LD_LIBRARY_PATH="$prefix/$libdir" ldd "$tmp/hello_pc" | grep -F "$prefix/$libdir/libyoton.so.$major" >/dev/null \
  || fail "hello_pc does not load the installed libyoton"
LD_LIBRARY_PATH="$prefix/$libdir" "$tmp/hello_pc" || fail "run hello_pc"

step "pkg-config --static: $(pkg-config --static --libs yoton)"
# libyoton.a by name, then what --static adds for it (Libs.private, Requires.private).
# shellcheck disable=SC2046,SC2086
"$cc" -std=c11 -Wall -Wextra -Werror $sanflags -o "$tmp/hello_pc_static" "$here/hello.c" \
  $(pkg-config --cflags yoton) "$prefix/$libdir/libyoton.a" \
  $(pkg-config --static --libs yoton | sed 's/-lyoton\b//') || fail "static build with pkg-config"
if ldd "$tmp/hello_pc_static" | grep libyoton >/dev/null; then fail "hello_pc_static links libyoton.so"; fi
"$tmp/hello_pc_static" || fail "run hello_pc_static"

step "CMake: find_package(yoton CONFIG)"
cmake -S "$here/consumer" -B "$tmp/consumer" -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_C_COMPILER="$cc" -DCMAKE_C_FLAGS="$sanflags" -DCMAKE_EXE_LINKER_FLAGS="$sanflags" \
  -DHELLO_SOURCE="$here/hello.c" -DYT_REQUIRE_VERSION="$version" >"$tmp/consumer.log" 2>&1 \
  || { cat "$tmp/consumer.log"; fail "configure the consumer project"; }
grep -F "found yoton $version in $prefix/$libdir/cmake/yoton" "$tmp/consumer.log" \
  || { cat "$tmp/consumer.log"; fail "found the wrong package"; }
cmake --build "$tmp/consumer" >"$tmp/consumer-build.log" 2>&1 \
  || { cat "$tmp/consumer-build.log"; fail "build the consumer project"; }
"$tmp/consumer/hello_shared" || fail "run hello_shared"
ldd "$tmp/consumer/hello_shared" | grep -F "$prefix/$libdir/libyoton.so.$major" >/dev/null \
  || fail "hello_shared does not load the installed libyoton"
"$tmp/consumer/hello_static" || fail "run hello_static"
if ldd "$tmp/consumer/hello_static" | grep libyoton >/dev/null; then fail "hello_static links libyoton.so"; fi

step "CMake: the version file refuses major version $((major + 1))"
if cmake -S "$here/consumer" -B "$tmp/consumer-next" -DCMAKE_PREFIX_PATH="$prefix" \
     -DHELLO_SOURCE="$here/hello.c" -DYT_REQUIRE_VERSION="$((major + 1)).0" >"$tmp/next.log" 2>&1; then
  cat "$tmp/next.log"
  fail "find_package(yoton $((major + 1)).0) accepted version $version"
fi

echo "install_consumer: ok"

#!/bin/sh
# test_install.sh: `make install` into a temporary prefix (and a DESTDIR
# staging tree), build examples/simple.c and examples/simple.cpp against the
# installed copy through pkg-config, run them on a fixture, check that they use
# the installed liblazyneuron.so.0 and agree with the PyTorch reference, then
# `make uninstall` and check that nothing is left.
#
#   sh tests/test_install.sh            # from the repository root
#   BUILD=build/inst CC=gcc CXX=g++ FIXTURE=tests/data/opt-preln sh tests/test_install.sh
# Word splitting of $CC, $MAKE, $tokens and pkg-config output is intended;
# functions are called through check(); sh -c scripts expand their own "$1".
# shellcheck disable=SC2046,SC2086,SC2016,SC2317
set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build/inst}
CC=${CC:-cc}
CXX=${CXX:-c++}
PYTHON=${PYTHON:-/usr/bin/python3}
FIXTURE=${FIXTURE:-tests/data/opt-preln}
MAKE=${MAKE:-make}

passed=0
failed=0
ok() { passed=$((passed + 1)); echo "ok   $1"; }
fail() { failed=$((failed + 1)); echo "FAIL $1"; }
# check NAME COMMAND...: runs the command, output to $tmp/log, counts the result.
check() {
  name=$1
  shift
  if "$@" >"$tmp/log" 2>&1; then ok "$name"; else fail "$name"; sed 's/^/     | /' "$tmp/log"; fi
}
finish() {
  echo "$passed passed, $failed failed"
  if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/lzn-install.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP

sed_version() { sed -n "s/^#define LZN_VERSION_$1 \([0-9]*\)$/\1/p" include/lazyneuron.h; }
VERSION="$(sed_version MAJOR).$(sed_version MINOR).$(sed_version PATCH)"
SONAME="liblazyneuron.so.$(sed_version MAJOR)"

# The expected next token: the reference argmax at the last position.
expected=$("$PYTHON" -c '
import json, sys
ref = json.load(open(sys.argv[1] + "/reference.json"))
if "argmax" in ref:
    print(ref["argmax"][-1])
else:
    import numpy as np
    logits = np.fromfile(sys.argv[1] + "/" + ref["logits_file"], dtype="<f4")
    print(int(logits.reshape(ref["n_tokens"], ref["vocab_size"])[-1].argmax()))
' "$FIXTURE") || { fail "read $FIXTURE/reference.json"; finish; }
tokens=$("$PYTHON" -c '
import json, sys
print(" ".join(str(t) for t in json.load(open(sys.argv[1] + "/reference.json"))["tokens"]))
' "$FIXTURE")
echo "fixture $FIXTURE: ${tokens%% *}... -> expected next token $expected (version $VERSION)"

# The files `make install` must create under a prefix ($1), relative names.
installed_files() {
  printf '%s\n' include/lazyneuron.h lib/liblazyneuron.so.$VERSION lib/$SONAME \
    lib/liblazyneuron.so lib/liblazyneuron.a lib/pkgconfig/lazyneuron.pc bin/lzn-run \
    bin/lzn-profile bin/lzn-quantize bin/lzn-convert share/lazyneuron/tools/plot_profile.py \
    share/lazyneuron/tools/lzn_convert.py share/lazyneuron/tools/hf_tokenizer.py \
    share/lazyneuron/tools/gguf_write.py
}
all_present() {
  for f in $(installed_files); do
    [ -e "$1/$f" ] || { echo "missing: $1/$f"; return 1; }
  done
}
symlinks_right() {
  if [ "$(readlink "$1/lib/$SONAME")" != "liblazyneuron.so.$VERSION" ] ||
    [ "$(readlink "$1/lib/liblazyneuron.so")" != "$SONAME" ]; then
    ls -l "$1/lib"
    return 1
  fi
}
soname_is() {
  readelf -d "$1" | grep SONAME
  readelf -d "$1" | grep -q "Library soname: \[$SONAME\]"
}
needs_soname() {
  readelf -d "$1" | grep NEEDED
  readelf -d "$1" | grep -q "Shared library: \[$SONAME\]"
}
# ldd must resolve liblazyneuron.so.0 to the copy under $2.
resolves_under() {
  LD_LIBRARY_PATH="$2" ldd "$1" | tee "$tmp/ldd" | grep lazyneuron
  grep -q "$SONAME => $2/$SONAME " "$tmp/ldd"
}
no_files_left() {
  left=$(find "$1" ! -type d)
  [ -z "$left" ] || { echo "left behind:"; echo "$left"; return 1; }
}
# run_top1 BIN LIBDIR MODE: the program's "next token:" must be $expected.
run_top1() {
  LD_LIBRARY_PATH="$2" "$1" --mode "$3" --threads 2 "$FIXTURE" $tokens >"$tmp/out" 2>&1 || {
    cat "$tmp/out"
    return 1
  }
  got=$(sed -n 's/^next token: \([0-9]*\)$/\1/p' "$tmp/out")
  echo "mode $3: next token $got, expected $expected"
  [ "$got" = "$expected" ] || { cat "$tmp/out"; return 1; }
}

# ------------------------------------------------------------ PREFIX install
prefix=$tmp/prefix
check "make install PREFIX=$prefix" $MAKE --no-print-directory BUILD="$BUILD" install PREFIX="$prefix"
check "installed files present" all_present "$prefix"
check "so symlinks: liblazyneuron.so -> $SONAME -> liblazyneuron.so.$VERSION" symlinks_right "$prefix"
check "installed library has SONAME $SONAME" soname_is "$prefix/lib/liblazyneuron.so.$VERSION"
check "header not executable, library executable" \
  sh -c '[ ! -x "$1/include/lazyneuron.h" ] && [ -x "$1/lib/liblazyneuron.so.'"$VERSION"'" ]' _ "$prefix"

export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
check "pkg-config --modversion = $VERSION" sh -c '[ "$(pkg-config --modversion lazyneuron)" = "$1" ]' _ "$VERSION"
check "pkg-config --cflags names $prefix/include" \
  sh -c 'pkg-config --cflags lazyneuron | grep -q -- "-I$1/include"' _ "$prefix"
check "pkg-config --libs names $prefix/lib" \
  sh -c 'pkg-config --libs lazyneuron | grep -q -- "-L$1/lib"' _ "$prefix"

bin=$tmp/bin
mkdir -p "$bin"
check "cc examples/simple.c \$(pkg-config ...) with -Wall -Wextra -Werror" \
  $CC -std=c11 -O2 -Wall -Wextra -Werror -o "$bin/simple" examples/simple.c \
  $(pkg-config --cflags --libs lazyneuron)
check "c++ examples/simple.cpp \$(pkg-config ...) with -Wall -Wextra -Werror" \
  $CXX -std=c++17 -O2 -Wall -Wextra -Werror -o "$bin/simple-cpp" examples/simple.cpp \
  $(pkg-config --cflags --libs lazyneuron)
# The static archive: link it explicitly, its dependencies from Libs.private.
check "cc examples/simple.c + installed liblazyneuron.a (pkg-config --static)" \
  $CC -std=c11 -O2 -Wall -Wextra -Werror -o "$bin/simple-static" examples/simple.c \
  $(pkg-config --cflags lazyneuron) "$prefix/lib/liblazyneuron.a" \
  $(pkg-config --static --libs lazyneuron | sed 's/ -llazyneuron / /; s/^-llazyneuron //')

for b in simple simple-cpp; do
  if [ -x "$bin/$b" ]; then
    check "$b: NEEDED $SONAME" needs_soname "$bin/$b"
    check "$b: ldd resolves $SONAME under $prefix/lib" resolves_under "$bin/$b" "$prefix/lib"
    for mode in sparse dense auto; do
      check "$b --mode $mode: next token = reference argmax $expected" \
        run_top1 "$bin/$b" "$prefix/lib" $mode
    done
  else
    fail "$b was not built: skipped its checks"
  fi
done
if [ -x "$bin/simple-static" ]; then
  check "simple-static: does not need liblazyneuron.so" \
    sh -c '! readelf -d "$1" | grep -q "liblazyneuron"' _ "$bin/simple-static"
  check "simple-static --mode sparse: next token = $expected" run_top1 "$bin/simple-static" "" sparse
fi
check "simple on a missing folder exits 1 with LZN_ERR_IO" sh -c '
  LD_LIBRARY_PATH="$1" "$2" "$3/no-such-model" >"$3/err" 2>&1; rc=$?
  cat "$3/err"; [ $rc -eq 1 ] && grep -q LZN_ERR_IO "$3/err"' _ "$prefix/lib" "$bin/simple" "$tmp"

check "installed lzn-run generates 8 tokens from models/tiny-opt" sh -c '
  "$1/bin/lzn-run" -m "$2" -p "The " -n 8 --seed 1 >"$3/out" 2>"$3/err"; rc=$?
  cat "$3/err"; [ $rc -eq 0 ] && [ "$(wc -c <"$3/out")" -gt 4 ]' _ "$prefix" models/tiny-opt "$tmp"

check "installed lzn-profile profiles models/tiny-opt and finds its plot script" sh -c '
  printf "A journey of a thousand miles.\002" >"$3/text"
  "$1/bin/lzn-profile" -m "$2" -f "$3/text" --windows 1,2 -o csv --plots "$3/plots" >"$3/out" 2>"$3/err"; rc=$?
  cat "$3/err"; [ $rc -eq 0 ] && [ -s "$3/plots/profile-tiny-opt.json" ] &&
  ! grep -q "not found" "$3/err"' _ "$prefix" models/tiny-opt "$tmp"

# The README's path: a Hugging Face folder -> lzn-convert -> lzn-quantize -> lzn-run, all
# from the prefix (lzn-convert runs from any folder: its wrapper names its installed script).
check "installed lzn-convert, lzn-quantize, lzn-run: folder -> Q8_0 -> Q4_0 -> text" sh -c '
  cd "$3" && "$1/bin/lzn-convert" "$2" tiny.gguf --type q8_0 >convert.out 2>&1 &&
  "$1/bin/lzn-quantize" tiny.gguf tiny-q4.gguf q4_0 >quantize.out 2>&1 &&
  "$1/bin/lzn-run" -m tiny-q4.gguf -p "The " -n 8 -s 1 -t 1 >run.out 2>run.err; rc=$?
  cat convert.out quantize.out run.err; [ $rc -eq 0 ] && [ "$(wc -c <run.out)" -gt 4 ] &&
  grep -q "wrote tiny.gguf" convert.out && grep -q "q4_0" quantize.out' _ "$prefix" "$PWD/models/tiny-opt" "$tmp"
check "installed lzn-convert --help, lzn-quantize --help" sh -c '
  "$1/bin/lzn-convert" --help | grep -q -- --no-transpose-down && "$1/bin/lzn-quantize" --help | grep -q TYPE' _ "$prefix"

check "make uninstall PREFIX=$prefix" $MAKE --no-print-directory BUILD="$BUILD" uninstall PREFIX="$prefix"
check "no file left under $prefix" no_files_left "$prefix"

# ----------------------------------------------------------- DESTDIR install
# PREFIX is a path that must stay empty: only $DESTDIR$PREFIX may be written.
dest=$tmp/dest
staged=$tmp/staged-prefix
check "make install DESTDIR=$dest PREFIX=$staged" \
  $MAKE --no-print-directory BUILD="$BUILD" install DESTDIR="$dest" PREFIX="$staged"
nothing_at() { [ ! -e "$1" ] || no_files_left "$1"; }
check "nothing written to PREFIX itself" nothing_at "$staged"
check "installed files present under DESTDIR" all_present "$dest$staged"
check "so symlinks under DESTDIR" symlinks_right "$dest$staged"
check ".pc names PREFIX, not DESTDIR" sh -c '
  cat "$1"; grep -q "^prefix=$2\$" "$1" && ! grep -q "$3" "$1"' _ \
  "$dest$staged/lib/pkgconfig/lazyneuron.pc" "$staged" "$dest"
# pkg-config's sysroot prefixes -I and -L with DESTDIR, as a cross build would.
check "cc simple.c against the staged tree (PKG_CONFIG_SYSROOT_DIR)" sh -c '
  PKG_CONFIG_PATH="$1/lib/pkgconfig" PKG_CONFIG_SYSROOT_DIR="$2" \
    sh -c "$3 -std=c11 -O2 -Wall -Wextra -Werror -o $4 examples/simple.c \$(pkg-config --cflags --libs lazyneuron)"' \
  _ "$dest$staged" "$dest" "$CC" "$bin/simple-destdir"
if [ -x "$bin/simple-destdir" ]; then
  check "simple-destdir: ldd resolves $SONAME under DESTDIR" \
    resolves_under "$bin/simple-destdir" "$dest$staged/lib"
  check "simple-destdir --mode auto: next token = $expected" \
    run_top1 "$bin/simple-destdir" "$dest$staged/lib" auto
fi
check "make uninstall DESTDIR=$dest PREFIX=$staged" \
  $MAKE --no-print-directory BUILD="$BUILD" uninstall DESTDIR="$dest" PREFIX="$staged"
check "no file left under $dest" no_files_left "$dest"

finish

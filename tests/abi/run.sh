#!/bin/sh
# A program built against the 0.2 header runs against this build's shared
# library (lazyneuron.h, "ABI"). An old program was linked against an old
# liblazyneuron.so.0, whose symbols had no versions; a stub library with the
# 0.2 header's function names, unversioned, stands in for it at link time,
# and the program then runs with the real library found first.
#
#   tests/abi/run.sh BUILD_DIR     (BUILD_DIR holds liblazyneuron.so.0)
set -eu
build=${1:?usage: tests/abi/run.sh BUILD_DIR}
cc=${CC:-cc}
here=$(dirname "$0")
out="$build/abi"
mkdir -p "$out/stub"
sed -n 's/^LZN_API[^;(]*[ *]\(lzn_[a-z0-9_]*\)(.*/void \1(void); void \1(void) {}/p' \
  "$here/lazyneuron-0.2.h" > "$out/stub/stub.c"
$cc -shared -fPIC -Wl,-soname,liblazyneuron.so.0 -o "$out/stub/liblazyneuron.so.0" "$out/stub/stub.c"
ln -sf liblazyneuron.so.0 "$out/stub/liblazyneuron.so"
$cc -std=c11 -Wall -Wextra -I"$here" -o "$out/client_0_2" "$here/client_0_2.c" -L"$out/stub" -llazyneuron
# What it bound: the four getters 0.3 changed must be unversioned references
# (so the dynamic linker gives them LZN_0.2, the oldest version).
if objdump -T "$out/client_0_2" | grep -q 'LZN_0'; then
  echo "abi: FAIL: the client was linked against a versioned library"; echo "0 passed, 1 failed"; exit 1
fi
if LD_LIBRARY_PATH="$build" "$out/client_0_2" models/tiny-opt; then
  echo "1 passed, 0 failed"
else
  echo "abi: FAIL: a program built against the 0.2 header fails against this library"
  echo "0 passed, 1 failed"; exit 1
fi

#!/bin/sh
# The shared library must export only lzn_ names (it builds with
# -fvisibility=hidden; LZN_API marks the public functions).
set -eu
lib=$1
bad=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/ {print $3}' | grep -v '^lzn_' || true)
n=$(nm -D --defined-only "$lib" | awk '$2 ~ /^[TDBRVW]$/' | grep -c '^.* lzn_' || true)
if [ -n "$bad" ]; then
  echo "exports: FAIL: non-lzn_ symbols exported by $lib:"; echo "$bad"
  echo "0 passed, 1 failed"; exit 1
fi
echo "exports: $n lzn_ symbols, nothing else"
echo "1 passed, 0 failed"

#!/bin/sh
# The shared library exports exactly the functions of include/lazyneuron.h,
# each at its default ELF version, and the functions whose ABI changed also
# at the version old programs bound (lib/lazyneuron.map); nothing else (it
# builds with -fvisibility=hidden; LZN_API marks the public functions).
set -eu
lib=$1
header=${2:-include/lazyneuron.h}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# "name version" per exported function; a default version has no brackets.
objdump -T "$lib" | awk '$4 == ".text" || $3 == "DF" {print $NF, $(NF-1)}' | grep -v '^\*' > "$tmp/all" || true
awk '$2 !~ /^\(/ {print $1}' "$tmp/all" | sort -u > "$tmp/default"
sed -n 's/^LZN_API[^;(]*[ *]\(lzn_[a-z0-9_]*\)(.*/\1/p' "$header" | sort -u > "$tmp/header"
failed=0
bad=$(grep -v '^lzn_' "$tmp/default" || true)
if [ -n "$bad" ]; then echo "exports: FAIL: non-lzn_ symbols exported:"; echo "$bad"; failed=1; fi
missing=$(comm -23 "$tmp/header" "$tmp/default")
if [ -n "$missing" ]; then echo "exports: FAIL: in the header, not exported:"; echo "$missing"; failed=1; fi
extra=$(comm -13 "$tmp/header" "$tmp/default")
if [ -n "$extra" ]; then echo "exports: FAIL: exported, not in the header:"; echo "$extra"; failed=1; fi
# Programs built against 0.2 bind these at LZN_0.2 (lib/compat/abi_0_2.c).
for f in lzn_model_get_info lzn_context_stats lzn_context_predictor_stats lzn_tokenizer_get_info; do
  grep -q "^$f (LZN_0.2)\$" "$tmp/all" || { echo "exports: FAIL: $f has no LZN_0.2 version"; failed=1; }
  grep -q "^$f LZN_0.3\$" "$tmp/all" || { echo "exports: FAIL: $f's default is not LZN_0.3"; failed=1; }
done
n=$(wc -l < "$tmp/default")
if [ $failed -ne 0 ]; then echo "0 passed, 1 failed"; exit 1; fi
echo "exports: $n lzn_ functions, as the header declares, versioned"
echo "1 passed, 0 failed"

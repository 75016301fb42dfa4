#!/bin/sh
# Builds the libFuzzer harnesses with clang and runs one of them.
#
#   tests/fuzz/run.sh HARNESS [SECONDS] [libFuzzer options...]
#   tests/fuzz/run.sh fuzz_model 600 -jobs=2 -workers=2
#
# HARNESS is fuzz_safetensors, fuzz_config, fuzz_index, fuzz_model, fuzz_gguf, fuzz_gguf_model,
# fuzz_request (lzn-server's request parser) or fuzz_chat (chat templates); SECONDS
# defaults to 60 (0: until a crash). Run from the repository root. Builds
# into $BUILD (default build/fuzz). The growing corpus lives in
# $BUILD/corpus/HARNESS (seeded from tests/fuzz/corpus/HARNESS and
# tests/fuzz/regressions/HARNESS, which are only read); a crash is written
# to $BUILD/artifacts/. Minimize one with
#   $BUILD/HARNESS -minimize_crash=1 -runs=10000 CRASH_FILE
# and commit it to tests/fuzz/regressions/HARNESS/.
set -eu
harness=${1:?usage: tests/fuzz/run.sh HARNESS [SECONDS] [libFuzzer options...]}
seconds=${2:-60}
[ $# -ge 2 ] && shift 2 || shift $#
case $harness in
  fuzz_safetensors|fuzz_config|fuzz_index|fuzz_model|fuzz_gguf|fuzz_gguf_model|fuzz_request|fuzz_chat) ;;
  *) echo "run.sh: unknown harness '$harness'" >&2; exit 2 ;;
esac
BUILD=${BUILD:-build/fuzz}
CLANG=${CLANG:-clang}

# The library is built by the Makefile (its per-folder ISA flags and kernel
# list) into $BUILD, instrumented for coverage (fuzzer-no-link), ASan and
# UBSan; each harness links libFuzzer's main. clang's own OpenMP runtime
# (libomp) would sit beside the libgomp that oneDNN links, so OpenMP is left
# off (-fopenmp=libgomp only links libgomp for omp_* calls): the harnesses
# run one thread anyway. The libraries to link come from the Makefile, which
# knows them (a list kept here lost libxsmm when the library took it up).
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
mkdir -p "$BUILD/artifacts" "$BUILD/corpus/$harness"
make --no-print-directory -s BUILD="$BUILD" CC="$CLANG" OPT="-O1 -g -fno-omit-frame-pointer" \
  SANITIZE="$SAN -fsanitize=fuzzer-no-link" OPENMP="-fopenmp=libgomp" OPENMP_LIBS="-lgomp" \
  "$BUILD/liblazyneuron.a" >/dev/null
$CLANG -std=c11 -D_GNU_SOURCE -O1 -g -Iinclude -Ilib -I. -I"$BUILD/gen" -Itests/fuzz -fsanitize=fuzzer $SAN \
  -o "$BUILD/$harness" "tests/fuzz/$harness.c" "$BUILD/liblazyneuron.a" \
  $(make --no-print-directory -s OPENMP_LIBS="-lgomp" print-static-libs)

max_len=
[ "$harness" = fuzz_model ] && max_len=-max_len=8192
# A GGUF model is a GGUF file: the same keys and type names.
dict=tests/fuzz/$harness.dict
[ "$harness" = fuzz_gguf_model ] && dict=tests/fuzz/fuzz_gguf.dict
seeds=tests/fuzz/corpus/$harness
[ -d "tests/fuzz/regressions/$harness" ] && seeds="$seeds tests/fuzz/regressions/$harness"
# ASan's quarantine (256 MB by default) counts in the RSS that
# -rss_limit_mb watches; 64 MB keeps the limit about the library.
ASAN_OPTIONS=${ASAN_OPTIONS:-quarantine_size_mb=64} \
exec "$BUILD/$harness" -max_total_time="$seconds" -rss_limit_mb=512 -malloc_limit_mb=256 \
  -dict="$dict" $max_len -artifact_prefix="$BUILD/artifacts/$harness-" \
  -print_final_stats=1 "$@" "$BUILD/corpus/$harness" $seeds

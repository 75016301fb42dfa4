#!/bin/sh
# test_readme.sh: the README's code runs as written, on the build tree:
#  - its C program compiles with the project's warnings as errors and runs;
#  - its Python example runs;
#  - every build/NAME it mentions is built by `make` (all);
#  - its lzn-run, lzn-convert, lzn-quantize and lzn-profile commands run and
#    exit 0, each as written except that /tmp/ becomes a private folder (the
#    machine is shared) and lzn-profile's -n 1000000 a 20000-byte sample
#    (the whole held-out text takes minutes) writing to that folder.
#
#   sh tests/test_readme.sh          # from the repository root, after make
#   BUILD=build/x sh tests/test_readme.sh
# shellcheck disable=SC2016,SC2086
set -u

cd "$(dirname "$0")/.." || exit 1
BUILD=${BUILD:-build}
CC=${CC:-cc}
PYTHON=${PYTHON:-/usr/bin/python3}
WARNINGS="-Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 -Wundef -Wpointer-arith"
# The static library needs what the Makefile links the shared one with (oneDNN, jansson,
# libxsmm, OpenMP): one list, asked of the Makefile.
LIBS=${LIBS:-$(make -s --no-print-directory print-static-libs)}

passed=0
failed=0
tmp=$(mktemp -d "${TMPDIR:-/tmp}/lzn-readme.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
trap 'exit 1' INT TERM HUP
check() {
  name=$1
  shift
  if "$@" >"$tmp/log" 2>&1; then
    passed=$((passed + 1)); printf 'ok   %s\n' "$name"
  else
    failed=$((failed + 1)); printf 'FAIL %s\n' "$name"; sed 's/^/     | /' "$tmp/log"
  fi
}

# A fenced block of the README: the lines between ```LANG and the next ```.
fenced() { sed -n "/^\`\`\`$1\$/,/^\`\`\`\$/p" README.md | sed '1d;$d'; }

c_program() {
  fenced c >"$tmp/readme.c"
  [ -s "$tmp/readme.c" ] || { echo "no C block in README.md"; return 1; }
  $CC -std=c11 -O1 $WARNINGS -Werror -Iinclude -o "$tmp/readme" "$tmp/readme.c" "$BUILD/liblazyneuron.a" $LIBS &&
    "$tmp/readme" models/tiny-opt >"$tmp/out" && cat "$tmp/out" &&
    grep -q "^The meaning of life is" "$tmp/out" && grep -q "% of neurons active" "$tmp/out"
}
check "README's C program compiles with -Werror and runs" c_program

python_example() {
  fenced python >"$tmp/readme.py"
  [ -s "$tmp/readme.py" ] || { echo "no Python block in README.md"; return 1; }
  LAZYNEURON_LIB="$PWD/$BUILD/liblazyneuron.so.0" "$PYTHON" "$tmp/readme.py"
}
check "README's Python example runs" python_example

built() {
  missing=0
  for path in $(grep -o 'build/[a-z][a-z_-]*' README.md | sort -u); do
    case $path in build/gen|build/obj|build/inst|build/fuzz|build/asan|build/npm) continue ;; esac  # folders, not programs
    exe="$BUILD/${path#build/}"
    [ -x "$exe" ] || { echo "README names $path, but make did not build $exe"; missing=1; }
  done
  [ "$missing" -eq 0 ]
}
check "every build/NAME the README names is built by make" built

# The commands of the sections on lzn-run, lzn-convert / lzn-quantize and lzn-profile:
# indented code lines that start with one of these programs and are not a synopsis.
grep -E '^    (build/lzn-run -m models|build/lzn-run -m /tmp|/usr/bin/python3 tools/convert/lzn_convert\.py|build/lzn-quantize /tmp|printf .*\| build/lzn-run|build/lzn-profile -m models)' README.md |
  grep -v ' \[' | sed 's/^    //' >"$tmp/commands"
count=$(wc -l <"$tmp/commands")
check "the README has its lzn-run, converter, quantizer and profile commands ($count)" test "$count" -ge 6
n=0
while IFS= read -r command; do
  n=$((n + 1))
  run=$(printf '%s\n' "$command" | sed -e "s|/tmp/|$tmp/|g" \
    -e "s|-n 1000000 --plots bench > bench/profile-tiny-opt.md|-n 20000 --plots $tmp > $tmp/profile.md|")
  [ -n "${BUILD%build}" ] && run=$(printf '%s\n' "$run" | sed "s|build/|$BUILD/|g")
  check "README command $n: $command" sh -c "$run </dev/null >$tmp/cmd.out 2>$tmp/cmd.err || { cat $tmp/cmd.err; exit 1; }"
done <"$tmp/commands"

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

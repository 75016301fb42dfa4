#!/bin/sh
# Installs the Debian packages lazyneuron builds and tests with, when run as
# root; otherwise prints the exact command and fails. Quiet when all is there.
# Extra packages may be asked for: sh tools/deps.sh python3-torch ...
set -u
# python3-setuptools, -pip and -venv: `pip install ./python` offline into a
# venv (python/tests/test_install.py).
# libmicrohttpd-dev: lzn-server; curl: its tests; valgrind: make asan's predictor run.
PACKAGES="gcc make pkg-config libdnnl-dev libxsmm-dev check libjansson-dev libmicrohttpd-dev python3-numpy
  python3-pytest python3-setuptools python3-pip python3-venv curl valgrind $*"
missing=""
for p in $PACKAGES; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
# node and npm drive lzn-server's test with the official openai client;
# Debian's packages only where no node/npm is there already (a NodeSource
# nodejs carries its own npm, and Debian's npm would conflict with it).
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0
cmd="apt-get install -y --no-install-recommends$missing"
if [ "$(id -u)" = 0 ]; then
  echo "deps: installing$missing"
  export DEBIAN_FRONTEND=noninteractive
  { apt-get update -qq && $cmd; } || { echo "deps: '$cmd' failed" >&2; exit 1; }
else
  echo "deps: missing Debian packages:$missing" >&2
  echo "deps: run as root:  apt-get update && $cmd" >&2
  exit 1
fi

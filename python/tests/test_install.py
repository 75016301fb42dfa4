"""pip install ./python into a fresh venv, offline, and use the installed package
from another folder: import it, run `python -m lazyneuron.run` against lzn-run,
and find a library that `make install PREFIX=...` put somewhere.

    LAZYNEURON_LIB=build/liblazyneuron.so.0 /usr/bin/python3 -m pytest -q python/tests/test_install.py

The venv is made with --system-site-packages (numpy, setuptools and pip come
from Debian: these machines reach no package index) and --without-pip (the
system's pip runs inside it, which saves ensurepip's few seconds).
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PYTHON_DIR = Path(__file__).resolve().parents[1]
REPO = PYTHON_DIR.parent
TINY = REPO / "models" / "tiny-opt"
SONAME = "liblazyneuron.so.0"
sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_text import lzn_run  # noqa: E402  (builds build/lzn-run beside the library)

# What pip writes into a source folder it builds in: not part of the package.
BUILD_DEBRIS = shutil.ignore_patterns("build", "*.egg-info", "__pycache__", ".pytest_cache")


def clean_env(**extra):
    """The environment without anything that would find the source tree's
    package or library for the child (PYTHONPATH, LAZYNEURON_LIB, ...)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "LAZYNEURON_LIB", "LD_LIBRARY_PATH", "PKG_CONFIG_PATH",
                        "PYTHONHOME", "VIRTUAL_ENV")}
    env.update(extra)
    return env


def run(args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, timeout=60, **kw)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A venv with ./python pip-installed in it: the path of its python."""
    tmp = tmp_path_factory.mktemp("venv")
    made = run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
                tmp / "venv"])
    if made.returncode != 0:
        pytest.skip(f"{sys.executable} -m venv failed (python3-venv missing?): "
                    f"{made.stderr.decode(errors='replace').strip()}")
    python = tmp / "venv" / "bin" / "python"
    pip = run([python, "-m", "pip", "--version"])
    if pip.returncode != 0:
        pytest.skip(f"no pip for {sys.executable} (python3-pip missing?): "
                    f"{pip.stderr.decode(errors='replace').strip()}")
    # A copy of ./python and the header beside it, as in the source tree (the
    # version comes from the header): pip builds in the source folder, and
    # the tree stays clean.
    src = tmp / "src" / "python"
    shutil.copytree(PYTHON_DIR, src, ignore=BUILD_DEBRIS)
    (tmp / "src" / "include").mkdir()
    shutil.copy(REPO / "include" / "lazyneuron.h", tmp / "src" / "include")
    installed = run([python, "-m", "pip", "install", "--no-index", "--no-build-isolation",
                     "--disable-pip-version-check", src],
                    env=clean_env(PIP_CACHE_DIR=str(tmp / "pip-cache")))
    assert installed.returncode == 0, installed.stdout.decode() + installed.stderr.decode()
    (tmp / "elsewhere").mkdir()
    return python


def in_venv(python, code, **env):
    """Runs python -c code from a folder outside the repository."""
    out = run([python, "-c", code], cwd=python.parents[2] / "elsewhere", env=clean_env(**env))
    assert out.returncode == 0, out.stderr.decode()
    return out.stdout.decode().strip()


def library():
    lib = os.environ.get("LAZYNEURON_LIB")
    return Path(lib).resolve() if lib else REPO / "build" / SONAME


def test_installed_version_is_the_header_version(venv):
    """One source: pyproject.toml leaves the version to setup.py, which reads the header."""
    header = (REPO / "include" / "lazyneuron.h").read_text()
    parts = [re.search(rf"#define LZN_VERSION_{p} (\d+)", header).group(1)
             for p in ("MAJOR", "MINOR", "PATCH")]
    pyproject = (PYTHON_DIR / "pyproject.toml").read_text()
    assert re.search(r'^dynamic = \["version"\]', pyproject, re.M)
    assert not re.search(r'^version =', pyproject, re.M)
    got = in_venv(venv, "import importlib.metadata as m; print(m.version('lazyneuron'))")
    assert got == ".".join(parts)


def test_installed_package_imports_from_another_folder(venv):
    site = in_venv(venv, "import lazyneuron, os; print(os.path.dirname(lazyneuron.__file__))",
                   LAZYNEURON_LIB=str(library()))
    assert Path(site).is_relative_to(venv.parents[1]), f"imported from {site}, not the venv"
    assert "site-packages" in site
    assert (Path(site) / "py.typed").is_file()
    got = in_venv(venv, "import lazyneuron; print(lazyneuron.library_path(), lazyneuron.version())",
                  LAZYNEURON_LIB=str(library()))
    assert got.split()[0] == str(library())


def test_installed_run_module_matches_lzn_run(venv):
    args = ["-m", TINY, "-p", "The ", "-n", "8", "--seed", "1"]
    ours = run([venv, "-m", "lazyneuron.run"] + args, cwd=venv.parents[2] / "elsewhere",
               env=clean_env(LAZYNEURON_LIB=str(library())))
    assert ours.returncode == 0, ours.stderr.decode()
    theirs = run([lzn_run()] + args)
    assert theirs.returncode == 0, theirs.stderr.decode()
    assert ours.stdout.startswith(b"The ") and len(ours.stdout) > len(b"The ")
    assert ours.stdout == theirs.stdout
    for line in (b"prefill: 4 tokens", b"decode:  7 tokens", b"t/s", b"% of neurons active"):
        assert line in ours.stderr


def test_installed_package_finds_make_install_library(venv):
    """Without LAZYNEURON_LIB, the copy `make install PREFIX=...` wrote is found
    through pkg-config (the prefix is in no loader path)."""
    prefix = venv.parents[2] / "prefix"
    build = os.path.relpath(library().parent, REPO)
    made = run(["make", "--no-print-directory", "-s", f"BUILD={build}", "install",
                f"PREFIX={prefix}"], cwd=REPO)
    assert made.returncode == 0, made.stdout.decode() + made.stderr.decode()
    code = "import lazyneuron; print(lazyneuron.library_path())"
    elsewhere = run([venv, "-c", "import ctypes.util; print(ctypes.util.find_library('lazyneuron'))"],
                    env=clean_env())
    if elsewhere.stdout.strip() != b"None":
        pytest.skip(f"this machine has another liblazyneuron ({elsewhere.stdout.decode().strip()}),"
                    " which the loader finds first")
    got = in_venv(venv, code, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    assert got == str(prefix / "lib" / SONAME)
    # Neither pkg-config nor the loader knows the prefix: the error says what was tried.
    lost = run([venv, "-c", code], cwd=venv.parents[2] / "elsewhere",
               env=clean_env(PKG_CONFIG_PATH=str(prefix / "nothing")))
    assert lost.returncode != 0
    assert b"liblazyneuron not found" in lost.stderr and b"LAZYNEURON_LIB" in lost.stderr

"""The package's version is the C library's: LZN_VERSION_* of
include/lazyneuron.h, the one place it is written (pyproject.toml declares it
dynamic). Everything else about the package is in pyproject.toml."""
import re
from pathlib import Path

from setuptools import setup

HEADER = Path(__file__).resolve().parent.parent / "include" / "lazyneuron.h"


def header_version():
    if not HEADER.is_file():
        raise SystemExit(f"setup.py: {HEADER} not found: build the package from the lazyneuron source "
                         "tree (python/ beside include/)")
    text = HEADER.read_text()
    return ".".join(re.search(rf"#define LZN_VERSION_{part} (\d+)", text).group(1)
                    for part in ("MAJOR", "MINOR", "PATCH"))


setup(version=header_version())

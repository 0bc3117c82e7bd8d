"""What Qt's xcb platform plugin cannot load here, as Debian package names.

    python scripts/qt_missing_packages.py     # prints "package (library)" lines; none: all found

Qt aborts when its xcb plugin cannot load and names only libxcb-cursor0 in its message,
whatever is really missing; ``ldd`` of the plugin lists every library (and library of a
library) the dynamic loader cannot find. scripts/test.sh installs the packages named
here; tests/test_gui.py names them when it skips. Run with the Python whose Qt binding
(PySide6, PyQt6 or PyQt5) the tests use.
"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["debian_package", "missing_libraries", "xcb_plugin"]

_BINDINGS = ("PySide6", "PyQt6", "PyQt5")
_PLUGIN_PATHS = ("Qt/plugins/platforms", "Qt6/plugins/platforms", "Qt5/plugins/platforms")


def xcb_plugin() -> Path | None:
    """The first installed binding's ``libqxcb.so``, or None."""
    for binding in _BINDINGS:
        spec = importlib.util.find_spec(binding)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations)))
        for relative in _PLUGIN_PATHS:
            plugin = root / relative / "libqxcb.so"
            if plugin.is_file():
                return plugin
    return None


def missing_libraries(library: Path) -> list[str]:
    """The sonames ``ldd`` reports "not found" for ``library`` (directly or not)."""
    if shutil.which("ldd") is None:
        return []
    listing = subprocess.run(["ldd", str(library)], capture_output=True, text=True).stdout
    return sorted(set(re.findall(r"^\s*(\S+) => not found", listing, re.MULTILINE)))


def debian_package(soname: str) -> str:
    """Debian's package for a shared library, by its naming policy: the name and the major
    version, with a dash between when the name ends in a digit
    (``libxcb-icccm.so.4`` is in ``libxcb-icccm4``, ``libxkbcommon-x11.so.0`` in
    ``libxkbcommon-x11-0``, ``libEGL.so.1`` in ``libegl1``)."""
    stem, _, version = soname.partition(".so.")
    major = version.split(".")[0]
    stem = stem.lower()
    return f"{stem}-{major}" if stem[-1:].isdigit() else f"{stem}{major}"


def main() -> int:
    plugin = xcb_plugin()
    if plugin is None:
        print("no Qt binding with an xcb platform plugin in this Python", file=sys.stderr)
        return 1
    for soname in missing_libraries(plugin):
        print(f"{debian_package(soname)} ({soname})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

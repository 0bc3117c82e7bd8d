"""A module that imports from os, as a user's `mymod` doing `from os import system` would.

It has no ``__all__``, so its exports are its public names: what ``from reexporter import *``
binds. ``getcwd`` is one of them; ``_getpid`` is not.
"""

from os import getcwd
from os import getpid as _getpid


def pid() -> int:
    return _getpid()


def cwd() -> str:
    return getcwd()

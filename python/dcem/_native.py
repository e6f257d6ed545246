"""Loads the Rust extension of this package.

Two builds of it ship in the wheel: ``_core`` (the classic-control environments and the solver;
needs nothing) and ``_core_mujoco`` (the same plus dm_control's cheetah.run and walker.walk),
which links libmujoco. libmujoco is not in the wheel: it is taken at run time from the installed
PyPI ``mujoco`` package (``pip install "dcem[mujoco]"``), loaded here before the extension so
that the loader finds it by its name, and dm_control's model files from the ``dm_control``
package this interpreter imports. Without them ``_core`` is used and the MuJoCo ids raise
:class:`gymnasium.error.DependencyNotInstalled` naming the fix.
"""
from __future__ import annotations

import ctypes
import importlib
import importlib.util
import os
from importlib.metadata import PackageNotFoundError, version
from types import ModuleType
from typing import Optional, Union

#: The MuJoCo release the extension was built against (its library's soname carries it).
MUJOCO_VERSION = "3.17.0"
#: The dm-control release whose model files the environments are checked against.
DM_CONTROL_VERSION = "1.0.50"

INSTALL_HINT = f'pip install "dcem[mujoco]" (mujoco=={MUJOCO_VERSION}, dm-control=={DM_CONTROL_VERSION})'


def _package_dir(name: str) -> Optional[str]:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _mujoco_paths() -> Union[tuple[str, str], str]:
    """libmujoco's path and dm_control's suite folder, or why the MuJoCo build cannot be used."""
    if os.environ.get("DCEM_NO_MUJOCO"):
        return "DCEM_NO_MUJOCO is set"
    if importlib.util.find_spec(f"{__package__}._core_mujoco") is None:
        return "this build of dcem has no MuJoCo extension"
    mujoco_dir = _package_dir("mujoco")
    if mujoco_dir is None:
        return f"the `mujoco` package is not installed: {INSTALL_HINT}"
    try:
        have = version("mujoco")
    except PackageNotFoundError:
        have = "unknown"
    if have != MUJOCO_VERSION:
        return f"mujoco {have} is installed, but dcem's MuJoCo tasks need {MUJOCO_VERSION}: {INSTALL_HINT}"
    lib = os.path.join(mujoco_dir, f"libmujoco.so.{MUJOCO_VERSION}")
    if not os.path.isfile(lib):
        return f"the mujoco package has no {lib}: reinstall it ({INSTALL_HINT})"
    dm_control_dir = _package_dir("dm_control")
    if dm_control_dir is None:
        return f"the `dm_control` package is not installed (its model files are needed): {INSTALL_HINT}"
    return lib, os.path.join(dm_control_dir, "suite")


def _load() -> tuple[ModuleType, Optional[str]]:
    """The extension to use, and why MuJoCo is unavailable (None when it is available)."""
    paths = _mujoco_paths()
    if isinstance(paths, str):
        return importlib.import_module(f"{__package__}._core"), paths
    lib, suite = paths
    # Loaded by path, the library is then found by its soname when the extension needs it.
    ctypes.CDLL(lib, mode=ctypes.RTLD_GLOBAL)
    core = importlib.import_module(f"{__package__}._core_mujoco")
    core.use_dm_control_suite(suite)
    return core, None


core, mujoco_unavailable = _load()

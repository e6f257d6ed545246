"""Checks that a built `dcem` wheel installs on any manylinux_2_28 system and any CPython >= 3.10.

    python scripts/check_wheel.py target/wheels/dcem-*.whl

For each extension module in the wheel (read with binutils' `readelf`): no RPATH or RUNPATH (no
path of the build machine), only the libraries the manylinux_2_28 policy allows plus libmujoco
(for `_core_mujoco`, loaded from the installed `mujoco` package), and no glibc symbol version
newer than 2.28. The wheel's tag must be `cp310-abi3-manylinux_2_28_x86_64` (or older) and both
extensions must be in it. Exits non-zero, naming each problem, if anything fails.
"""
from __future__ import annotations

import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

# The libraries of the manylinux_2_28 policy (PEP 600 / auditwheel's policy list) an extension
# of this package may need.
ALLOWED = {
    "libc.so.6", "libm.so.6", "libdl.so.2", "librt.so.1", "libpthread.so.0",
    "libgcc_s.so.1", "libstdc++.so.6", "ld-linux-x86-64.so.2", "libutil.so.1",
}
MUJOCO = "libmujoco.so.3.17.0"
MAX_GLIBC = (2, 28)
MODULES = {"dcem/_core.abi3.so": False, "dcem/_core_mujoco.abi3.so": True}


def readelf(args: list[str], path: Path) -> str:
    return subprocess.run(["readelf", *args, str(path)], check=True, capture_output=True,
                          text=True).stdout


def check_module(name: str, path: Path, mujoco: bool) -> list[str]:
    problems = []
    dynamic = readelf(["-d", "-W"], path)
    for tag in ("RPATH", "RUNPATH"):
        if f"({tag})" in dynamic:
            problems.append(f"{name}: has a {tag} ({dynamic.split(f'({tag})')[1].splitlines()[0].strip()})")
    needed = set(re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic))
    allowed = ALLOWED | ({MUJOCO} if mujoco else set())
    for lib in sorted(needed - allowed):
        problems.append(f"{name}: needs {lib}, which manylinux_2_28 does not provide")
    if mujoco and MUJOCO not in needed:
        problems.append(f"{name}: does not link {MUJOCO}")
    versions = {tuple(int(p) for p in v.split("."))
                for v in re.findall(r"GLIBC_(\d+\.\d+(?:\.\d+)?)", readelf(["--dyn-syms", "-W"], path))}
    too_new = sorted(v for v in versions if v[:2] > MAX_GLIBC)
    if too_new:
        problems.append(f"{name}: uses glibc symbol versions {['.'.join(map(str, v)) for v in too_new]} "
                        f"(newer than {'.'.join(map(str, MAX_GLIBC))})")
    return problems


def check(wheel: Path) -> list[str]:
    problems = []
    tag = re.search(r"-(cp\d+)-(abi3)-manylinux_(\d+)_(\d+)_x86_64", wheel.name)
    if not tag or tag.group(1) != "cp310" or (int(tag.group(3)), int(tag.group(4))) > MAX_GLIBC:
        problems.append(f"{wheel.name}: tag is not cp310-abi3-manylinux_2_28_x86_64 or older")
    with zipfile.ZipFile(wheel) as z, tempfile.TemporaryDirectory() as tmp:
        names = set(z.namelist())
        for name, mujoco in MODULES.items():
            if name not in names:
                problems.append(f"{wheel.name}: has no {name}")
                continue
            problems += check_module(name, Path(z.extract(name, tmp)), mujoco)
    return problems


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    wheel = Path(sys.argv[1])
    problems = check(wheel)
    for p in problems:
        print(f"check_wheel: {p}", file=sys.stderr)
    if not problems:
        print(f"check_wheel: {wheel.name} ok (abi3, manylinux_2_28, no rpath, libmujoco external)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

"""The Lambda asset: the opx package and its runtime dependencies (no dev or infra packages),
installed for arm64 Python 3.12 from the pinned list in ``infra/lambda-requirements.txt`` and
zipped reproducibly (sorted entries, fixed times and modes, no bytecode, no install paths).

Run as ``python -m opx_infra.packaging ROOT`` (``make package``); it prints the sizes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

BUILD_DIR = "build"
ASSET_NAME = "opx-lambda.zip"
PINS = Path("infra") / "lambda-requirements.txt"
PLATFORM = (
    "--platform",
    "manylinux2014_aarch64",
    "--implementation",
    "cp",
    "--python-version",
    "3.12",
    "--abi",
    "cp312",
    "--only-binary=:all:",
)
# 1980-01-01, the earliest time a zip entry can carry.
ZIP_TIME = (1980, 1, 1, 0, 0, 0)
# Files that differ between two builds of the same inputs, or that only an installer reads.
_DROPPED_NAMES = {"direct_url.json", "INSTALLER", "REQUESTED", "RECORD"}
_DROPPED_DIRS = {"__pycache__", "bin"}


def _pip(*args: str) -> None:
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "SOURCE_DATE_EPOCH": "315532800"}
    subprocess.run([sys.executable, "-m", "pip", *args], check=True, env=env)


def install(root: Path, target: Path) -> None:
    """The opx wheel and its pinned dependencies into ``target``."""
    with tempfile.TemporaryDirectory(prefix="opx-wheel-") as wheels:
        _pip("wheel", "--quiet", "--no-deps", "-w", wheels, str(root))
        wheel = next(Path(wheels).glob("opx-*.whl"))
        _pip(
            "install",
            "--quiet",
            "--no-compile",
            "--target",
            str(target),
            *PLATFORM,
            "--constraint",
            str(root / PINS),
            str(wheel),
        )


def _prune(target: Path) -> None:
    for path in sorted(target.rglob("*"), reverse=True):
        if path.is_dir() and path.name in _DROPPED_DIRS:
            shutil.rmtree(path)
        elif path.is_file() and (path.name in _DROPPED_NAMES or path.suffix == ".pyc"):
            path.unlink()


def write_zip(source: Path, archive: Path) -> int:
    """Zip ``source`` deterministically; returns the unzipped size in bytes."""
    total = 0
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as out:
        for path in sorted(p for p in source.rglob("*") if p.is_file()):
            info = zipfile.ZipInfo(path.relative_to(source).as_posix(), ZIP_TIME)
            executable = os.access(path, os.X_OK)
            info.external_attr = (0o755 if executable else 0o644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            data = path.read_bytes()
            total += len(data)
            out.writestr(info, data, compresslevel=9)
    return total


def build(root: Path) -> tuple[Path, int, int]:
    """Build ``build/opx-lambda.zip`` under ``root``; returns (path, zipped, unzipped bytes)."""
    out = root / BUILD_DIR
    staging = out / "lambda"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    install(root, staging)
    _prune(staging)
    archive = out / ASSET_NAME
    unzipped = write_zip(staging, archive)
    return archive, archive.stat().st_size, unzipped


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else ".").resolve()
    archive, zipped, unzipped = build(root)
    print(
        f"{archive.relative_to(root)}: {zipped / 1e6:.1f} MB zipped, "
        f"{unzipped / 1e6:.1f} MB unzipped (Lambda allows 250 MB unzipped)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))

"""Re-pin the Lambda asset's dependencies: resolve the opx package's runtime dependencies for
arm64 CPython 3.12 (without installing anything) and write them, exact, to the file named."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from opx_infra.packaging import PLATFORM  # noqa: E402

HEADER = (
    "# The Lambda asset's runtime dependencies, pinned (arm64, CPython 3.12): make package "
    "installs\n# exactly these. Regenerate after changing [project] dependencies with: "
    "make lambda-pins\n"
)


def main(target: Path) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--dry-run",
                "--ignore-installed",
                "--report",
                str(report),
                "--target",
                str(Path(tmp) / "t"),
                *PLATFORM,
                str(HERE.parent),
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = sorted(
        (i["metadata"]["name"], i["metadata"]["version"])
        for i in installs
        if i["metadata"]["name"].lower() != "opx"
    )
    target.write_text(HEADER + "".join(f"{n}=={v}\n" for n, v in pins), encoding="utf-8")
    print(f"{target}: {len(pins)} pinned packages")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(Path(sys.argv[1])))

"""The OPX CDK app: ``cdk deploy`` (cdk.json runs this file) or ``make synth``, which writes the
templates to cdk.out/ at the repository root without an AWS account."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from opx_infra.app import build_app  # noqa: E402

if __name__ == "__main__":
    try:
        build_app(HERE.parent).synth()
    except (ValueError, OSError) as exc:
        print(f"opx infra: {exc}", file=sys.stderr)
        raise SystemExit(2) from None

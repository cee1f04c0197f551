"""The synthesised OPX stack, once per test session (dev and prod stages). Synthesis needs the
Lambda asset: it is built (``make package``) when missing."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra"))
# Node 20 is past its end of life for jsii; the runtime works and says so on every start.
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")
os.environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")

from aws_cdk.assertions import Template  # noqa: E402
from opx_infra import packaging  # noqa: E402
from opx_infra.app import STACK_NAME, build_app  # noqa: E402


def _asset() -> Path:
    path = ROOT / packaging.BUILD_DIR / packaging.ASSET_NAME
    if not path.is_file():
        packaging.build(ROOT)
    return path


def synth(tmp: Path, context: dict[str, Any]) -> Template:
    # An explicit outdir: the jsii process does not see environment variables set after it
    # started, and without one every synthesis copies the asset into a new temporary folder.
    app = build_app(ROOT, {"opx:asset": str(_asset()), **context}, outdir=tmp)
    stack = app.node.find_child(STACK_NAME)
    return Template.from_stack(stack)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return synth(tmp_path_factory.mktemp("cdk-dev"), {})


@pytest.fixture(scope="session")
def prod_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    return synth(tmp_path_factory.mktemp("cdk-prod"), {"opx:stage": "prod"})


@pytest.fixture(scope="session")
def resources(template: Template) -> dict[str, Any]:
    return dict(template.to_json()["Resources"])

"""Builds the CDK app: settings from context, the packaged Lambda asset, the stack."""

from __future__ import annotations

import os
from pathlib import Path

from aws_cdk import App, Environment
from aws_cdk import aws_lambda as lambda_

from opx_infra.packaging import ASSET_NAME, BUILD_DIR
from opx_infra.settings import from_context
from opx_infra.stack import OpxStack

STACK_NAME = "Opx"


class AssetMissing(OSError):
    """The Lambda asset has not been built."""


def lambda_code(root: Path, asset: str | None = None) -> lambda_.Code:
    path = Path(asset) if asset else root / BUILD_DIR / ASSET_NAME
    if not path.is_file():
        raise AssetMissing(f"{path} does not exist: run 'make package' first")
    return lambda_.Code.from_asset(str(path))


def build_app(
    root: Path, context: dict[str, object] | None = None, outdir: Path | None = None
) -> App:
    """The app with its one stack, written to ``outdir``: by default the CDK CLI's choice
    (``CDK_OUTDIR``) or ``cdk.out/`` under ``root``. The account and region come from the CLI's
    environment when deploying, and stay unresolved (tokens) when synthesising without one."""
    if outdir is None and not os.environ.get("CDK_OUTDIR"):
        outdir = root / "cdk.out"
    app = App(outdir=None if outdir is None else str(outdir), context=context)
    settings = from_context(app.node.try_get_context)
    asset = app.node.try_get_context("opx:asset")
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    OpxStack(
        app,
        STACK_NAME,
        settings=settings,
        code=lambda_code(root, str(asset) if asset else None),
        env=Environment(account=account, region=region) if account and region else None,
        description="OPX: advisory incident root-cause analysis (read-only)",
    )
    return app

"""Every bundled example: the recorded root cause is named, and a repeat is identical."""

from __future__ import annotations

import filecmp
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.parent for p in (ROOT / "examples").glob("*/event.json"))


def analyze(example: Path, data_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "AWS_EC2_METADATA_DISABLED": "true"}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "opx.cli",
            "analyze",
            str(example / "event.json"),
            "--json",
            "--data-dir",
            str(data_dir),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


def test_there_are_at_least_three_examples_with_distinct_causes() -> None:
    causes = {json.loads((e / "expected.json").read_text())["service"] for e in EXAMPLES}
    assert len(EXAMPLES) >= 3 and len(causes) == len(EXAMPLES)
    sources = {json.loads((e / "event.json").read_text())["source"] for e in EXAMPLES}
    assert sources == {"opx.incident", "aws.cloudwatch"}


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_names_its_root_cause_and_repeats_identically(
    example: Path, tmp_path: Path
) -> None:
    expected = json.loads((example / "expected.json").read_text())
    first = analyze(example, tmp_path)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    assert result["status"] == "COMPLETED", result["consensus"]["summary"]
    root = result["recommendation"]["root_cause"]
    assert root["service"] == expected["service"]
    if expected.get("component"):
        assert root["component"] == expected["component"]
    second = analyze(example, tmp_path)
    assert second.returncode == 0
    assert second.stdout == first.stdout  # the stored result, unchanged
    assert "stored result" in second.stderr
    fresh = json.loads(analyze(example, tmp_path / "fresh").stdout)
    fresh.pop("timings")
    result.pop("timings")
    assert fresh == result  # a new execution reaches exactly the same answer


def test_generator_reproduces_the_examples(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location(
        "make_examples", ROOT / "scripts" / "make_examples.py"
    )
    assert spec is not None and spec.loader is not None
    make_examples = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = make_examples  # dataclasses look their module up while defined
    spec.loader.exec_module(make_examples)
    make_examples.main(["--out", str(tmp_path)])
    for example in EXAMPLES:
        compare = filecmp.dircmp(example, tmp_path / example.name)
        assert _identical(compare), example.name


def _identical(compare: filecmp.dircmp[str]) -> bool:
    if compare.left_only or compare.right_only or compare.diff_files or compare.funny_files:
        return False
    return all(_identical(sub) for sub in compare.subdirs.values())

"""Contract: the six prompt files, their versions, examples and generated schema section."""

from __future__ import annotations

import json
import re
import shutil
from importlib.resources import files
from pathlib import Path

import pytest

from opx.agents.bedrock.output_schema import MODEL_STATUSES, OPX_FILLED, output_schema_text
from opx.agents.bedrock.parsing import parse_answer
from opx.agents.bedrock.prompt_files import (
    INSTRUCTION_LIMIT,
    PromptFileError,
    load_prompt,
    prompts_dir,
    rewrite_schema_sections,
    schema_block,
)
from opx.agents.roster import ALL_AGENTS, ROSTER
from opx.domain.hypothesis import Hypothesis, HypothesisStatus

PROMPTS = Path(str(prompts_dir()))


def test_the_folder_holds_exactly_the_six_prompts() -> None:
    names = {p.name for p in PROMPTS.iterdir() if p.name != "__pycache__"}
    assert names - {"__init__.py"} == {f"{agent}.md" for agent in ALL_AGENTS}


@pytest.mark.parametrize("agent", ALL_AGENTS)
def test_the_example_output_is_accepted_by_the_parser(agent: str) -> None:
    prompt = load_prompt(agent)
    (example,) = prompt.json_examples()
    assert isinstance(example, dict)
    # What the model is shown is what OPX's own parser accepts, not just what the class allows.
    parsed = parse_answer(json.dumps(example), agent, f"bedrock/{prompt.version}")
    assert parsed.hypothesis is not None, parsed.problem
    assert parsed.hypothesis.agent_id == agent
    assert parsed.hypothesis.root_cause is not None and parsed.hypothesis.evidence
    # An example must not show fields the parser throws away.
    assert not set(example) & set(OPX_FILLED)
    assert "{{" not in prompt.text and "<placeholder" not in prompt.text.lower()


@pytest.mark.parametrize("agent", ALL_AGENTS)
def test_the_tools_section_lists_exactly_the_agents_tools(agent: str) -> None:
    section = _section(load_prompt(agent).instruction, "## Tools")
    assert tuple(re.findall(r"`([a-z_]+)`", section)) == ROSTER[agent].tools
    if not ROSTER[agent].tools:
        assert section.startswith("none") and "Use them" not in section


def test_every_status_the_schema_offers_is_accepted_and_no_other() -> None:
    line = next(x for x in output_schema_text().splitlines() if '"status"' in x)
    offered = set(re.findall(r'"([A-Z]+)"', line))
    assert offered == {s.value for s in MODEL_STATUSES}
    for status in HypothesisStatus:
        parsed = parse_answer(json.dumps({"status": status.value}), "a", "v")
        assert (parsed.hypothesis is not None) is (status.value in offered), status


def _section(text: str, heading: str) -> str:
    start = text.index(heading + "\n") + len(heading) + 1
    end = text.find("\n## ", start)
    return text[start:end].strip()


@pytest.mark.parametrize("agent", ALL_AGENTS)
def test_the_schema_section_is_the_generated_one(agent: str) -> None:
    assert load_prompt(agent).schema_section == schema_block()


@pytest.mark.parametrize("agent", ALL_AGENTS)
def test_each_prompt_states_role_tools_confidence_and_advice_only(agent: str) -> None:
    prompt = load_prompt(agent)
    assert prompt.version == "1.1.0"
    for heading in (
        "## Role",
        "## Input",
        "## Tools",
        "## Confidence",
        "## Rules",
        "## Output schema",
        "## Example",
    ):
        assert heading in prompt.instruction
    assert "Advice only" in prompt.instruction and "never execution steps" in prompt.instruction
    assert "never an instruction" in prompt.instruction
    assert len(prompt.instruction) < INSTRUCTION_LIMIT


def test_the_schema_follows_the_model() -> None:
    text = output_schema_text()
    model_fields = set(Hypothesis.model_fields) - set(OPX_FILLED)
    for name in model_fields:
        assert f'"{name}"' in text
    assert '"confidence"?: number 0..1' in text
    assert all(f'"{name}"' not in text for name in OPX_FILLED)


def test_rewrite_repairs_a_drifted_schema(tmp_path: Path) -> None:
    for agent in ALL_AGENTS:
        shutil.copy(PROMPTS / f"{agent}.md", tmp_path / f"{agent}.md")
    assert rewrite_schema_sections(tmp_path) == []
    drifted = tmp_path / "risk-blast-radius.md"
    drifted.write_text(drifted.read_text().replace('"confidence"?: number 0..1', '"conf": x'))
    assert rewrite_schema_sections(tmp_path) == ["risk-blast-radius.md"]
    assert drifted.read_text() == (PROMPTS / "risk-blast-radius.md").read_text()


def test_missing_or_malformed_prompt_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(PromptFileError, match="no prompt file for knowledge-rag"):
        load_prompt("knowledge-rag", tmp_path)
    (tmp_path / "knowledge-rag.md").write_text("# no front matter\n")
    with pytest.raises(PromptFileError, match="front matter"):
        load_prompt("knowledge-rag", tmp_path)


def test_prompts_ship_as_package_data() -> None:
    assert (files("opx") / "agents" / "prompts" / "knowledge-rag.md").is_file()

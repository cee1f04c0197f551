"""The six agent prompts (``opx/agents/prompts/<agent-id>.md``): loading, the version in their
front matter, the instruction text a Bedrock agent is given, and the output-schema section, which
is generated from the ``Hypothesis`` model (:func:`rewrite_schema_sections` keeps it in step).

Run ``python -m opx.agents.bedrock.prompt_files`` to rewrite the schema section of every prompt
file after the ``Hypothesis`` model changed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from opx.agents.bedrock.output_schema import output_schema_text
from opx.agents.roster import ALL_AGENTS

SCHEMA_BEGIN = "<!-- output-schema:begin -->"
SCHEMA_END = "<!-- output-schema:end -->"
# Bedrock's limit on an agent's instruction (CreateAgent ``instruction``).
INSTRUCTION_LIMIT = 4000
_FRONT_MATTER = re.compile(r"\A---\n(?P<head>.*?)\n---\n", re.DOTALL)
_JSON_BLOCK = re.compile(r"^```json\n(?P<body>.*?)\n```$", re.DOTALL | re.MULTILINE)
_SCHEMA_SECTION = re.compile(re.escape(SCHEMA_BEGIN) + r".*?" + re.escape(SCHEMA_END), re.DOTALL)


class PromptFileError(ValueError):
    """A prompt file is missing or malformed; the message names the file."""


@dataclass(frozen=True)
class PromptFile:
    """One parsed prompt file."""

    agent_id: str
    version: str
    text: str  # the whole file

    @property
    def instruction(self) -> str:
        """What the Bedrock agent is given as its instruction: the file without front matter."""
        return _FRONT_MATTER.sub("", self.text, count=1).strip() + "\n"

    @property
    def schema_section(self) -> str:
        """The text between the schema markers (without the markers)."""
        match = _SCHEMA_SECTION.search(self.text)
        if match is None:
            raise PromptFileError(f"{self.agent_id}.md has no output-schema section")
        return match.group(0)[len(SCHEMA_BEGIN) : -len(SCHEMA_END)].strip("\n")

    def json_examples(self) -> list[object]:
        """Every fenced ```json block, parsed."""
        out: list[object] = []
        for match in _JSON_BLOCK.finditer(self.text):
            try:
                out.append(json.loads(match.group("body")))
            except json.JSONDecodeError as exc:
                raise PromptFileError(f"{self.agent_id}.md: example is not JSON ({exc})") from exc
        return out


def prompts_dir() -> Traversable:
    """The packaged prompt folder."""
    return resources.files("opx") / "agents" / "prompts"


def load_prompt(agent_id: str, folder: Traversable | None = None) -> PromptFile:
    """The prompt of ``agent_id``; :class:`PromptFileError` when missing or malformed."""
    source = (folder or prompts_dir()) / f"{agent_id}.md"
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        raise PromptFileError(f"no prompt file for {agent_id} ({exc})") from exc
    return PromptFile(agent_id, _version(agent_id, text), text)


def _version(agent_id: str, text: str) -> str:
    match = _FRONT_MATTER.match(text)
    if match is None:
        raise PromptFileError(f"{agent_id}.md does not start with front matter (--- ... ---)")
    for line in match.group("head").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "version" and value.strip():
            return value.strip()
    raise PromptFileError(f"{agent_id}.md: front matter has no version")


def schema_block() -> str:
    """The generated schema section, as it must appear between the markers."""
    return f"```text\n{output_schema_text()}\n```"


def with_schema(text: str) -> str:
    """``text`` with its schema section replaced by the generated one."""
    if _SCHEMA_SECTION.search(text) is None:
        raise PromptFileError("no output-schema markers to fill")
    section = f"{SCHEMA_BEGIN}\n{schema_block()}\n{SCHEMA_END}"
    return _SCHEMA_SECTION.sub(lambda _: section, text, count=1)


def rewrite_schema_sections(folder: Path) -> list[str]:
    """Regenerate the schema section of each agent's prompt in ``folder``; the files changed."""
    changed: list[str] = []
    for agent_id in ALL_AGENTS:
        path = folder / f"{agent_id}.md"
        text = path.read_text(encoding="utf-8")
        updated = with_schema(text)
        if updated != text:
            path.write_text(updated, encoding="utf-8")
            changed.append(path.name)
    return changed


def main(argv: list[str] | None = None) -> int:
    """Rewrite the schema sections of the packaged prompt files (a source checkout)."""
    folder = Path(str(prompts_dir()))
    changed = rewrite_schema_sections(folder)
    sys.stdout.write("".join(f"rewrote {name}\n" for name in changed) or "schemas up to date\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

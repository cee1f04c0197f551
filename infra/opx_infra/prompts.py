"""The agents' instructions, read with the runtime's own prompt loader
(opx.agents.bedrock.prompt_files), so the deployed text is the packaged file without its front
matter. A missing, malformed or oversized prompt stops the synth: no placeholder instruction is
ever deployed."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from opx.agents.bedrock.prompt_files import INSTRUCTION_LIMIT, load_prompt

MIN_CHARS = 40  # Bedrock's lower bound on an agent instruction


class PromptError(ValueError):
    """A prompt that cannot be deployed; the message names the agent."""


@dataclass(frozen=True)
class Prompt:
    agent_id: str
    version: str
    instruction: str

    @property
    def digest(self) -> str:
        return hashlib.sha256(self.instruction.encode("utf-8")).hexdigest()[:12]


def load(agent_id: str) -> Prompt:
    prompt = load_prompt(agent_id)
    instruction = prompt.instruction
    if not MIN_CHARS <= len(instruction) <= INSTRUCTION_LIMIT:
        raise PromptError(
            f"{agent_id}.md: the instruction has {len(instruction)} characters; Bedrock takes "
            f"{MIN_CHARS} to {INSTRUCTION_LIMIT}"
        )
    return Prompt(agent_id, prompt.version, instruction)

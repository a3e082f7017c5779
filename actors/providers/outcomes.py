"""How a model returns an outcome label: a last line `OUTCOME: <label>`, parsed out of the content.

A plain text line works the same with every vendor, with and without tools, and costs a few tokens.
The instruction is added to the system prompt when `ModelRequest.outcomes` is non-empty. A label
the model invents (not among the allowed ones) is not returned: the reply's `outcome` is None."""

from __future__ import annotations

import re

_OUTCOME_LINE = re.compile(
    r"^\s*\**\s*OUTCOME\s*\**\s*:\s*\**\s*`?([A-Za-z0-9_.\-]+)`?\**\s*$", re.IGNORECASE
)


def outcome_instruction(outcomes: list[str]) -> str:
    labels = ", ".join(outcomes)
    return (
        "When you give your final answer (not when you call a tool), end it with one last line "
        f"of the form `OUTCOME: <label>`, where <label> is exactly one of: {labels}."
    )


def split_outcome(content: str, outcomes: list[str]) -> tuple[str, str | None]:
    """The content without its `OUTCOME:` line, and the label when it is an allowed one."""
    if not outcomes:
        return content, None
    lines = content.rstrip().splitlines()
    for index in range(len(lines) - 1, -1, -1):
        if not lines[index].strip():
            continue
        match = _OUTCOME_LINE.match(lines[index])
        if match is None:
            return content, None
        label = match.group(1)
        by_lower = {allowed.lower(): allowed for allowed in outcomes}
        remaining = "\n".join(lines[:index]).rstrip()
        return remaining, by_lower.get(label.lower())
    return content, None

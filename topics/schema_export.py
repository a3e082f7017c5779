"""Generate the JSON Schemas of the public messages into `topics/schemas/`.

Run `python -m topics.schema_export` after changing `topics/messages/`; a test fails when the
checked-in files and the Structs drift apart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import msgspec

from topics.messages import PAYLOAD_TYPES, PUBLIC_MESSAGES

SCHEMA_DIR = Path(__file__).parent / "schemas"


def _schema_for(cls: type[Any], title: str, description: str) -> dict[str, Any]:
    schema: dict[str, Any] = msgspec.json.schema(cls)
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": title,
        "description": description,
        **schema,
    }
    return schema


def generated_schemas() -> dict[str, str]:
    """File name -> canonical JSON text, for every public message and event payload."""
    files: dict[str, Any] = {}
    for cls in PUBLIC_MESSAGES:
        topic = getattr(cls, "topic_doc", "")
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        files[f"{cls.__name__}.json"] = _schema_for(cls, cls.__name__, f"{doc} Topic: {topic}.")
    for event_type, payload_cls in sorted(PAYLOAD_TYPES.items()):
        files[f"events/{event_type}.json"] = _schema_for(
            payload_cls, event_type, f"The `data` of an Event of type `{event_type}`."
        )
    return {name: json.dumps(body, indent=2, sort_keys=True) + "\n" for name, body in files.items()}


def write_schemas(directory: Path = SCHEMA_DIR) -> list[Path]:
    written = []
    for name, text in generated_schemas().items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        written.append(path)
    return written


if __name__ == "__main__":
    for path in write_schemas():
        print(path)

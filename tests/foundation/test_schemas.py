"""The checked-in JSON Schemas equal what the Structs generate (`make schemas` regenerates)."""

from __future__ import annotations

import json

from topics.schema_export import SCHEMA_DIR, generated_schemas


def test_checked_in_schemas_match_the_structs() -> None:
    generated = generated_schemas()
    on_disk = {
        str(path.relative_to(SCHEMA_DIR)): path.read_text() for path in SCHEMA_DIR.rglob("*.json")
    }
    missing = sorted(set(generated) - set(on_disk))
    stale = sorted(set(on_disk) - set(generated))
    changed = sorted(
        name for name in generated if name in on_disk and on_disk[name] != generated[name]
    )
    assert not (missing or stale or changed), (
        f"topics/schemas/ drifted from topics/messages/ (run `make schemas`): "
        f"missing {missing}, stale {stale}, changed {changed}"
    )


def test_task_requested_schema_needs_only_task_id_system_and_input() -> None:
    schema = json.loads(generated_schemas()["TaskRequested.json"])
    body = schema["$defs"]["TaskRequested"] if "$defs" in schema else schema
    assert sorted(body["required"]) == ["input", "system", "task_id"]

"""Generate the JSON Schema of every manifest kind into `manifests/schema/` (for editors).

python -m manifests.schema_export          # write the files
python -m manifests.schema_export --check  # exit 1 when the files are out of date
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from manifests.models import KINDS

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"


def schemas() -> dict[str, str]:
    """File name -> JSON text, one per kind plus `manifest.json` (any kind)."""
    out: dict[str, str] = {}
    refs: list[dict[str, Any]] = []
    for kind, model in sorted(KINDS.items()):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$id"] = f"https://podium.dev/schemas/manifests/{kind}.json"
        schema["title"] = kind
        out[f"{kind}.json"] = _dump(schema)
        refs.append({"$ref": f"{kind}.json"})
    manifest = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://podium.dev/schemas/manifests/manifest.json",
        "title": "Podium / Orloj manifest (any kind)",
        "oneOf": refs,
    }
    out["manifest.json"] = _dump(manifest)
    return out


def _dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    wanted = schemas()
    if "--check" in argv:
        stale = [
            name
            for name, text in wanted.items()
            if not (SCHEMA_DIR / name).is_file() or (SCHEMA_DIR / name).read_text() != text
        ]
        if stale:
            print(f"out of date: {', '.join(stale)}; run python -m manifests.schema_export")
            return 1
        return 0
    SCHEMA_DIR.mkdir(exist_ok=True)
    for name, text in wanted.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(wanted)} schemas to {SCHEMA_DIR}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

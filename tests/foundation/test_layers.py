"""The layer contracts of `make lint` (import-linter) hold, and fail when a lower layer imports a
higher one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ["podium", "actors", "policy_service", "ledger", "scheduler", "manifests", "topics"]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture(scope="module")
def copy_of_the_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packages and pyproject.toml, copied so a test can add a forbidden import."""
    root = tmp_path_factory.mktemp("layers")
    for package in PACKAGES:
        shutil.copytree(
            ROOT / package, root / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_its_contracts(copy_of_the_tree: Path) -> None:
    result = _lint_imports(copy_of_the_tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "imports"),
    [
        ("topics/upward.py", "import manifests.models"),
        ("podium/core/upward.py", "import topics.names"),
        ("ledger/sideways.py", "import policy_service.approvals"),
        ("scheduler/sideways.py", "import actors.dispatcher"),
        ("actors/upward.py", "import podium.composition"),
        ("podium/commands/peek.py", "import podium.stack.state"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    copy_of_the_tree: Path, module: str, imports: str
) -> None:
    path = copy_of_the_tree / module
    path.write_text(f'"""A violation."""\n\n{imports}\n')
    try:
        result = _lint_imports(copy_of_the_tree)
    finally:
        path.unlink()
    assert result.returncode != 0
    assert "BROKEN" in result.stdout, result.stdout

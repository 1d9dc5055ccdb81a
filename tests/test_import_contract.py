"""The import contract (pyproject.toml, `lint-imports`): the packages import
one way, from the pages down to the database. scripts/test.sh runs it on
the real tree before the tests; here it must refuse wrong-way imports in a
throwaway tree that has the same packages and the same contract."""
from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONTRACT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]


def lint(tree: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(tree / "pyproject.toml"), "--no-cache"],
                          cwd=tree, env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Every root package of the contract, empty, and the contract itself."""
    if not LINT_IMPORTS.exists():
        pytest.fail("lint-imports is missing: scripts/setup.sh installs import-linter with the test extras")
    for package in CONTRACT["root_packages"]:
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text("")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def write(tree: Path, module: str, source: str) -> None:
    path = tree / (module.replace(".", "/") + ".py")
    path.write_text(source)


def test_imports_that_point_down_are_kept(tree):
    write(tree, "web.pages", "import programme.products\nimport background.jobs\n")
    write(tree, "programme.products", "import engine.kernel\n")
    write(tree, "background.jobs", "import programme.products\nimport audit.chain\n")
    write(tree, "audit.chain", "import engine.kernel\n")
    write(tree, "engine.kernel", "import handlers.registry\nimport storage.models\n")
    write(tree, "handlers.registry", "import storage.models\n")
    write(tree, "storage.models", "")
    result = lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, imports, broken", [
    ("engine.kernel", "web.pages", "engine is not allowed to import web"),
    ("storage.models", "engine.kernel", "storage is not allowed to import engine"),
    ("handlers.registry", "programme.products", "handlers is not allowed to import programme"),
    ("programme.products", "audit.chain", "programme is not allowed to import audit"),
    ("programme.products", "background.jobs", "programme is not allowed to import background"),
    ("audit.chain", "web.pages", "audit is not allowed to import web"),
    ("bench.run", "tests.cycle", "bench is not allowed to import tests"),
    ("tests.test_x", "bench.run", "tests is not allowed to import bench"),
    ("testkit.cycle", "tests.test_x", "testkit.cycle -> tests.test_x"),
])
def test_a_wrong_way_import_breaks_the_contract(tree, module, imports, broken):
    for name in {module, imports}:
        write(tree, name, "")
    write(tree, module, f"import {imports}\n")
    result = lint(tree)
    assert result.returncode == 1, result.stdout + result.stderr
    assert broken in " ".join(result.stdout.split())


def test_only_web_imports_flask(tree):
    write(tree, "engine.kernel", "import flask\n")
    result = lint(tree)
    assert result.returncode == 1
    assert "engine.kernel -> flask" in result.stdout

"""Imports point one way (docs/ARCHITECTURE.md, "Layout"): every app imports only the apps below it.

Two checks. `lint-imports` runs the contracts in `.importlinter` (function-local imports
included). The AST walk below adds what import-linter cannot see: `apps.get_model("app", ...)`,
`importlib.import_module("app.module")`, a migration imported as a library, and apps that do
not exist yet for import-linter (a package it is not told about is not checked at all).
"""

import ast
import configparser
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each app may import directly (besides itself): docs/ARCHITECTURE.md's "may import" column.
# `cartography` holds the pure map builders: a ground floor any page-drawing app may use.
MAY_IMPORT: dict[str, set[str]] = {
    "geo": set(),
    "cartography": set(),
    "accounts": {"geo"},
    "directory": {"geo", "accounts", "cartography"},
    "maps": {"geo", "directory", "cartography"},
    "coverage": {"geo", "directory", "maps", "cartography"},
    "matching": {"geo", "directory", "maps", "accounts", "cartography"},
    "contracts": {"geo", "directory", "accounts"},
    "members": {"geo", "directory", "contracts", "accounts", "cartography"},
    "events": {"geo", "directory", "contracts", "accounts", "cartography", "members"},
    # Backups and restores of the whole database: it imports no app, so no app depends on it.
    "ops": set(),
}
# Anything goes from these: the project's wiring, the tests and the benchmarks.
UNRESTRICTED = {"config", "tests", "benchmarks"}
# Folders that hold no Python package (data, assets, scripts).
NOT_PACKAGES = {"fixtures", "static", "templates", "scripts", "docs"}


def _packages() -> list[str]:
    return sorted(
        path.name
        for path in ROOT.iterdir()
        if path.is_dir() and (path / "__init__.py").exists() and not path.name.startswith(".")
    )


def _modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        if "migrations" in path.relative_to(ROOT).parts:
            continue  # historical models: a migration may name any app's model
        yield path


def _string_arg(call: ast.Call, index: int = 0) -> str | None:
    if (
        len(call.args) > index
        and isinstance(call.args[index], ast.Constant)
        and isinstance(call.args[index].value, str)
    ):
        return call.args[index].value
    return None


def imported_modules(source: str) -> list[tuple[int, str]]:
    """(line, dotted name) of every absolute import, function-local ones included, plus the
    modules reached by string: `apps.get_model("app", "Model")` / `get_model("app.Model")` and
    `import_module("app.module")`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            text = _string_arg(node)
            if text is None:
                continue
            if name == "get_model":
                found.append((node.lineno, text.split(".")[0] + ".models"))
            elif name == "import_module":
                found.append((node.lineno, text))
    return found


def violations(app: str, source: str) -> list[str]:
    allowed = MAY_IMPORT[app] | {app}
    known = set(MAY_IMPORT) | UNRESTRICTED
    problems = []
    for line, module in imported_modules(source):
        top = module.split(".")[0]
        if top in known and top not in allowed:
            problems.append(f"l.{line}: {app} imports {module}")
        if ".migrations" in f".{module}" and top in known:
            problems.append(f"l.{line}: {app} imports the migration {module}")
    return problems


def test_every_package_is_placed_in_the_layers():
    unplaced = set(_packages()) - set(MAY_IMPORT) - UNRESTRICTED
    assert not unplaced, f"add {sorted(unplaced)} to MAY_IMPORT here and to .importlinter (docs/ARCHITECTURE.md)"
    assert not set(_packages()) & NOT_PACKAGES, "fixtures/ and the like keep data, not Python packages"


def test_import_linter_knows_every_package():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    declared = set(config["importlinter"]["root_packages"].split())
    missing = set(_packages()) - declared
    assert not missing, f"add {sorted(missing)} to root_packages in .importlinter: it checks only what it is told"


@pytest.mark.parametrize("app", sorted(set(MAY_IMPORT) & set(_packages())))
def test_app_imports_only_the_floors_below_it(app):
    problems = []
    for path in _modules(app):
        problems += [f"{path.relative_to(ROOT)} {p}" for p in violations(app, path.read_text(encoding="utf-8"))]
    assert not problems, "imports against docs/ARCHITECTURE.md:\n" + "\n".join(problems)


def test_import_contracts_are_kept():
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300)  # noqa: S603
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


@pytest.mark.parametrize(
    "line",
    [
        "from maps.selectors import network_map_data",
        "from coverage import figures",
        "def page():\n    from maps import selectors",
        "import matching.selectors",
        "apps.get_model('matching', 'Annonce')",
        "apps.get_model('contracts.Contract')",
        "importlib.import_module('maps.selectors')",
    ],
)
def test_a_directory_module_reaching_up_is_caught(line):
    assert violations("directory", line)


def test_allowed_imports_pass():
    source = (
        "from cartography.builders import map_parts\nfrom geo.models import Commune\nfrom accounts import permissions\n"
    )
    assert violations("directory", source) == []
    assert violations("contracts", "importlib.import_module('contracts.migrations.0002_charter')")
    assert violations("matching", "from contracts.models import Contract")
    assert violations("contracts", "from matching.models import Annonce")
    assert violations("contracts", "from maps.selectors import tile")

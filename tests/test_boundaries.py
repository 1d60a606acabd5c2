"""The house's boundaries, as `.importlinter` states them: no service imports another, the libraries import no
service, and a domain module imports no I/O library. A broken contract fails here with import-linter's report.

import-linter reads import statements only, so a library could still import a service by name at run time
(`importlib.import_module(f"{service}.main")`) unseen: the second check forbids that in libs/."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
SERVICES = sorted(d.name for d in (ROOT / "services").iterdir() if (d / d.name / "flow.py").is_file())
IMPORTS_BY_NAME = {"import_module", "find_spec", "__import__"}


def test_the_import_contracts_hold():
    run = subprocess.run(
        [str(LINT_IMPORTS), "--config", str(ROOT / ".importlinter"), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, f"an import contract is broken:\n{run.stdout}\n{run.stderr}"
    assert "0 broken" in run.stdout, run.stdout


def test_no_library_imports_a_service_by_name():
    """A module under libs/ may import a module by name only from a string literal that names no service.

    A name computed at run time (an f-string, a variable) could name any service, and no static check can
    tell which, so it is refused too: code that must import the services goes in tools/ or a service."""
    sources = [path for path in sorted((ROOT / "libs").rglob("*.py")) if ".venv" not in path.parts]
    assert sources, "no library sources found under libs/"
    found = [
        f"{path.relative_to(ROOT)}:{line}: {problem}"
        for path in sources
        for line, problem in imports_of_a_service_by_name(path.read_text(), str(path))
    ]
    assert not found, "a library imports a service by name, which import-linter cannot see:\n" + "\n".join(found)


def test_the_name_check_finds_a_service_named_literally_or_computed():
    source = (
        "import importlib\n"
        "from importlib.util import find_spec\n"
        "importlib.import_module('ledger.flow')\n"
        "find_spec(name)\n"
        "importlib.import_module(f'{service}.main')\n"
        "importlib.import_module('json')\n"
    )
    assert [line for line, _ in imports_of_a_service_by_name(source, "example.py")] == [3, 4, 5]


def imports_of_a_service_by_name(source: str, filename: str) -> Iterator[tuple[int, str]]:
    """(line, problem) for each `import_module`/`find_spec`/`__import__` call whose module name is a string
    naming a service package, or is not a string literal at all."""
    for node in ast.walk(ast.parse(source, filename)):
        if not (isinstance(node, ast.Call) and _called_name(node.func) in IMPORTS_BY_NAME and node.args):
            continue
        name = node.args[0]
        if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
            yield node.lineno, f"a module name computed at run time ({ast.unparse(name)})"
        elif name.value.split(".")[0] in SERVICES:
            yield node.lineno, f"names the service {name.value!r}"


def _called_name(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else None

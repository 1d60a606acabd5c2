"""`uv run --frozen python tools/docs_gen.py [--check]`: the services' message lists and AsyncAPI, from code.

It finds every service under `services/`, builds its app as `python -m <service>.main` would (without
starting anything) and hands the app and its flow module to `egis_common.docs_gen`, which turns them into
documents. The services are imported here, by name, and not in egis_common: a library imports no service.

For a flow that declares no `PRODUCES` yet, what the service produces is what its code builds
(`constructed_messages`: its package and the workspace libraries it imports, read, not run) less what it
consumes; a test checks every declaration against the same scan.

It rewrites the block between `<!-- messages:begin -->` and `<!-- messages:end -->` in every
`services/<name>/README.md` and writes `docs/asyncapi.json`. `--check` changes nothing and fails when a
file differs from what the code generates.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from egis_common.contracts import Message
from egis_common.docs_gen import (
    MESSAGES,
    ServiceMessages,
    asyncapi_document,
    describe,
    readme_block,
    render_json,
    with_block,
)

ROOT = Path(__file__).resolve().parents[1]
COMMAND = "uv run --frozen python tools/docs_gen.py"


def service_names() -> list[str]:
    """Every service of the workspace: a directory under services/ holding a package with a flow.py."""
    return sorted(d.name for d in (ROOT / "services").iterdir() if (d / d.name / "flow.py").is_file())


def describe_service(service: str) -> ServiceMessages:
    """Builds the service's app as `python -m <service>.main` would, without starting anything."""
    main = importlib.import_module(f"{service}.main")
    flow = importlib.import_module(f"{service}.flow")
    built = None if hasattr(flow, "PRODUCES") else constructed_messages(service)
    return describe(main.create_app(), flow, built)


def constructed_messages(service: str) -> set[type[Message]]:
    """Every registered message class the service's code builds: its package and the workspace libraries
    it imports (a venue library builds the exchange facts), egis_common left out."""
    trees = [ast.parse(path.read_text(), str(path)) for path in _sources(service)]
    names = {name for tree in trees for name in _built_names(tree)}
    return {MESSAGES[name] for name in names if name in MESSAGES}


def _sources(service: str) -> list[Path]:
    package = _package_dir(service)
    if package is None:
        raise ValueError(f"{service}: no such package in this environment")
    own = sorted(package.rglob("*.py"))
    libraries = {root for path in own for root in _imported_roots(ast.parse(path.read_text()))}
    library_dirs = [
        d
        for root in sorted(libraries - {"egis_common", service})
        if (d := _package_dir(root)) is not None and (ROOT / "libs") in d.parents
    ]
    return own + [path for d in library_dirs for path in sorted(d.rglob("*.py"))]


def _package_dir(name: str) -> Path | None:
    spec = importlib.util.find_spec(name)
    return Path(spec.origin).parent if spec and spec.origin else None


def _imported_roots(tree: ast.AST) -> Iterable[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module.split(".")[0]


def _built_names(tree: ast.AST) -> Iterable[str]:
    """`Name(...)`, `c.Name(...)` and `Name.model_validate(...)`-style calls."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr.startswith("model_"):
            func = func.value
        if isinstance(func, ast.Name):
            yield func.id
        elif isinstance(func, ast.Attribute):
            yield func.attr


def generated_files(described: Sequence[ServiceMessages]) -> dict[Path, str]:
    """Every file the generator owns, with the content the code gives it."""
    files = {ROOT / "docs" / "asyncapi.json": render_json(asyncapi_document(described, command=COMMAND))}
    for service in described:
        readme = ROOT / "services" / service.service / "README.md"
        current = readme.read_text() if readme.exists() else f"# {service.service}\n"
        files[readme] = with_block(current, readme_block(service, described, command=COMMAND))
    return files


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="tools/docs_gen.py", description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    files = generated_files([describe_service(service) for service in service_names()])
    stale = {path: text for path, text in files.items() if not path.exists() or path.read_text() != text}
    if args.check:
        for path in stale:
            print(f"out of date: {path.relative_to(ROOT)}; run `{COMMAND}`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in stale.items():
        path.write_text(text)
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Egis extends FastStream and aiokafka through their public API only.

A module that imports `faststream._internal`, or that replaces a method of a framework object
(`subscriber.get_msg = ...`, `consumer.commit = ...`, `setattr(broker, "stop", ...)`), breaks
silently when either library is upgraded: the method it shadows may be renamed or no longer called.
Tests may still patch the libraries through pytest's `monkeypatch`, which undoes itself.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream import AckPolicy
from faststream.kafka import KafkaBroker

ROOT = Path(__file__).resolve().parents[3]
SOURCE_DIRS = (ROOT / "libs", ROOT / "services")


def _python_files() -> list[Path]:
    return sorted(p for d in SOURCE_DIRS for p in d.rglob("*.py") if ".venv" not in p.parts)


def _production_files() -> list[Path]:
    return [p for p in _python_files() if "tests" not in p.relative_to(ROOT).parts]


def _framework_methods() -> set[str]:
    """The coroutine methods of the framework objects a service holds (broker, subscribers, consumer,
    producer): the ones the framework awaits, and the kind the old patches shadowed."""
    broker = KafkaBroker()
    subscribers = [
        broker.subscriber("t", group_id="g", ack_policy=AckPolicy.NACK_ON_ERROR, **extra)
        for extra in ({}, {"batch": True})
    ]
    classes = [AIOKafkaConsumer, AIOKafkaProducer, KafkaBroker, *(type(s) for s in subscribers)]
    return {
        name
        for cls in classes
        for name in dir(cls)
        if not name.startswith("__") and inspect.iscoroutinefunction(getattr(cls, name, None))
    }


def _internal_imports(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            continue
        found += [f"line {node.lineno}: {name}" for name in names if name.startswith("faststream._internal")]
    return found


def _shadowed_methods(tree: ast.AST, methods: set[str]) -> list[str]:
    """`x.method = ...` and `setattr(x, "method", ...)` on anything but the class's own `self`."""
    found = []
    for node in ast.walk(tree):
        targets: list[ast.expr] = []
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found += [
                f"line {node.lineno}: {ast.unparse(t)} ="
                for t in targets
                if isinstance(t, ast.Attribute) and t.attr in methods and ast.unparse(t.value) != "self"
            ]
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "setattr"
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in methods
        ):
            found.append(f"line {node.lineno}: {ast.unparse(node)}")
    return found


def test_the_guard_sees_the_shapes_of_the_old_patches():
    methods = _framework_methods()
    assert {"get_msg", "stop", "commit", "getmany"} <= methods
    patched = ast.parse(
        "from faststream._internal.context import Context\n"
        "subscriber.get_msg = next_batch\n"
        "subscriber.stop = stop_after_the_last_commit\n"
        "consumer.commit = self.commit\n"
        "setattr(consumer, 'commit', commit)\n"
        "self.stop = False\n"
    )
    assert _internal_imports(patched) == ["line 1: faststream._internal.context"]
    assert len(_shadowed_methods(patched, methods)) == 4


def test_no_module_imports_faststream_internals():
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in _python_files()
        if (found := _internal_imports(ast.parse(p.read_text(), str(p))))
    }
    assert offenders == {}


@pytest.fixture(scope="module")
def framework_methods() -> set[str]:
    return _framework_methods()


def test_no_module_replaces_a_method_of_a_framework_object(framework_methods):
    offenders = {
        str(p.relative_to(ROOT)): found
        for p in _production_files()
        if (found := _shadowed_methods(ast.parse(p.read_text(), str(p)), framework_methods))
    }
    assert offenders == {}

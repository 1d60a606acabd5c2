"""Operators' keys added, rotated and revoked in the keys file take effect on the next command, no restart."""

from __future__ import annotations

import json
import os

import pytest
from pydantic import SecretStr
from reconciler_helpers import admin_command, ask

from egis_common.contracts import AdminCommandName
from reconciler.adapters.operator_keys import OperatorKeys


def write(path, keys: dict) -> None:
    # As the CLI does: a new file renamed over the old one, so a reader never sees half a file.
    fresh = path.with_suffix(".new")
    fresh.write_text(json.dumps(keys))
    os.replace(fresh, path)


def test_the_file_is_read_again_when_it_changes(tmp_path):
    path = tmp_path / "keys.json"
    write(path, {"carol": "k1"})
    keys = OperatorKeys({"alice": SecretStr("a")}, path)
    assert {name: key.get_secret_value() for name, key in keys.items()} == {"alice": "a", "carol": "k1"}
    write(path, {"carol": "k2", "dave": "d"})
    assert keys["carol"].get_secret_value() == "k2" and "dave" in keys
    write(path, {})
    assert "carol" not in keys and set(keys) == {"alice"}


@pytest.mark.parametrize("content", ["{not json", '["carol"]', '{"carol": ""}', '{"alice": "x"}'])
def test_an_unusable_file_or_one_naming_a_settings_operator_gives_no_file_keys(tmp_path, content):
    path = tmp_path / "keys.json"
    write(path, {"carol": "k1"})
    keys = OperatorKeys({"alice": SecretStr("a")}, path)
    assert "carol" in keys
    path.with_suffix(".new").write_text(content)
    os.replace(path.with_suffix(".new"), path)
    assert set(keys) == {"alice"}  # carol's old key does not live on
    assert keys["alice"].get_secret_value() == "a"


def test_a_missing_file_gives_no_file_keys(tmp_path):
    keys = OperatorKeys({"alice": SecretStr("a")}, tmp_path / "absent.json")
    assert set(keys) == {"alice"}


@pytest.mark.infra
async def test_a_key_is_added_rotated_and_revoked_while_the_reconciler_runs(
    reconciler_runtime, messages, operator_keys_file
):
    def drift_report(key: str):
        return admin_command(AdminCommandName.DRIFT_REPORT, operator_id="carol", key=key)

    refused = await ask(reconciler_runtime, messages, drift_report("first"))
    assert (refused.status, refused.report) == ("refused", {"reason": "unknown_operator"})

    write(operator_keys_file, {"carol": "first"})
    assert (await ask(reconciler_runtime, messages, drift_report("first"))).status == "ok"

    write(operator_keys_file, {"carol": "second"})
    old = await ask(reconciler_runtime, messages, drift_report("first"))
    assert (old.status, old.report) == ("refused", {"reason": "bad_signature"})
    assert (await ask(reconciler_runtime, messages, drift_report("second"))).status == "ok"

    write(operator_keys_file, {})
    revoked = await ask(reconciler_runtime, messages, drift_report("second"))
    assert (revoked.status, revoked.report) == ("refused", {"reason": "unknown_operator"})

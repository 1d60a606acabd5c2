"""The local system's operators on disk: the first one is made once, and joins those added before it."""

from __future__ import annotations

import json

from egis_localinfra import local_access


def test_the_first_operator_is_made_once_and_kept(tmp_path):
    (first, key), made = local_access.operator(tmp_path)
    assert made and first == local_access.FIRST_OPERATOR and local_access.this_operator(tmp_path) == first
    assert local_access.operator(tmp_path) == ((first, key), False)
    assert local_access.operator_keys(tmp_path) == {first: key}
    assert oct((tmp_path / local_access.OPERATOR_FILE).stat().st_mode & 0o777) == "0o600"


def test_operators_added_before_the_first_up_stay_beside_the_first(tmp_path):
    assert local_access.this_operator(tmp_path) is None
    local_access.write_operator_keys(tmp_path, {"carol": "carols-key"})
    (first, key), made = local_access.operator(tmp_path)
    assert made
    assert json.loads((tmp_path / local_access.KEYS_FILE).read_text()) == {"carol": "carols-key", first: key}

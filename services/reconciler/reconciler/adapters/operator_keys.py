"""The operators' signing keys: those in the settings, and those in a keys file read again whenever it changes.

The file (`EGIS_OPERATOR_KEYS_FILE`, JSON `{"operator id": "key"}`) is how keys are added, rotated and
revoked without a restart: the next command is checked against the file as it is then. A file that cannot be
read or parsed gives no keys at all until it is fixed (logged once per change), so a botched edit can lock
operators out but never keeps a revoked key working.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

from pydantic import SecretStr

from egis_common.logs import get_logger

log = get_logger(__name__)


class OperatorKeys(Mapping[str, SecretStr]):
    def __init__(self, fixed: Mapping[str, SecretStr], path: Path | None) -> None:
        self.fixed = dict(fixed)
        self.path = path
        self._seen: tuple | None = None  # the file's identity when last read
        self._from_file: dict[str, SecretStr] = {}

    def _current(self) -> dict[str, SecretStr]:
        if self.path is None:
            return self.fixed
        try:
            stat = os.stat(self.path)
            seen: tuple = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        except OSError as error:
            seen = ("unreadable", type(error).__name__)
        if seen != self._seen:
            self._seen, self._from_file = seen, self._read()
        return {**self.fixed, **self._from_file}

    def _read(self) -> dict[str, SecretStr]:
        try:
            data = json.loads(Path(self.path).read_text())
            if not isinstance(data, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v for k, v in data.items()
            ):
                raise ValueError('expected {"operator id": "key", ...}')
        except (OSError, ValueError) as error:
            log.error("operator_keys_file_unusable", path=str(self.path), error=str(error)[:200])
            return {}
        overlap = sorted(set(data) & set(self.fixed))
        if overlap:  # one source per operator: a key revoked in the file must not live on in the settings
            log.error("operator_keys_in_both_sources", operators=overlap, path=str(self.path))
            return {}
        log.info("operator_keys_loaded", path=str(self.path), operators=sorted(data))
        return {name: SecretStr(key) for name, key in data.items()}

    def __getitem__(self, operator_id: str) -> SecretStr:
        return self._current()[operator_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._current())

    def __len__(self) -> int:
        return len(self._current())

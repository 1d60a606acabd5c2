"""The routing view of bots: the latest snapshot of every bot, in memory.

Fed by the compacted bots topic, read from its beginning at every start, so
the view is rebuilt whole after a restart. The gateway authenticates against
it and the router routes with it; both run in one process and share it.
"""

from __future__ import annotations

from collections import defaultdict
from uuid import UUID

from egis_common.contracts import BotSnapshot
from egis_common.secrets import hash_token, verify_token

# Checked when a key has no bot at all, so an unknown key costs the same hash as a
# wrong secret and the answer's timing does not tell them apart.
_DECOY_HASH = hash_token("decoy", salt=b"\x00" * 16)


class BotView:
    def __init__(self) -> None:
        self._by_id: dict[UUID, BotSnapshot] = {}
        self._ids_by_key: defaultdict[str, set[UUID]] = defaultdict(set)
        self.ready = False  # set once the topic was read to the end it had at start

    def __len__(self) -> int:
        return len(self._by_id)

    def bots(self) -> list[BotSnapshot]:
        return list(self._by_id.values())

    def get(self, bot_id: UUID) -> BotSnapshot | None:
        return self._by_id.get(bot_id)

    def apply(self, snapshot: BotSnapshot) -> bool:
        """Keep the snapshot unless a newer version is already known; True if kept."""
        current = self._by_id.get(snapshot.bot_id)
        if current is not None and current.version > snapshot.version:
            return False
        self.remove(snapshot.bot_id)
        self._by_id[snapshot.bot_id] = snapshot
        self._ids_by_key[snapshot.signal_key].add(snapshot.bot_id)
        return True

    def remove(self, bot_id: UUID) -> None:
        """A tombstone: the bot is gone from the view."""
        current = self._by_id.pop(bot_id, None)
        if current is None:
            return
        ids = self._ids_by_key[current.signal_key]
        ids.discard(bot_id)
        if not ids:
            del self._ids_by_key[current.signal_key]

    def with_key(self, signal_key: str) -> list[BotSnapshot]:
        """Every bot that has this key, live ones first (a key is unique among live bots)."""
        bots = [self._by_id[bot_id] for bot_id in self._ids_by_key.get(signal_key, ())]
        return sorted(bots, key=lambda bot: (bot.deleted, -bot.version))

    def authenticate(self, signal_key: str, secret: str) -> BotSnapshot | None:
        """The bot whose key and secret these are, or None; compares in constant time."""
        candidates = self.with_key(signal_key)
        if not candidates:
            verify_token(secret, _DECOY_HASH)
            return None
        for bot in candidates:
            if verify_token(secret, bot.webhook_secret_hash):
                return bot
        return None

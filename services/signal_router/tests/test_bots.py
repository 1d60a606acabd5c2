"""The in-memory bot view: latest version wins, tombstones remove, secrets authenticate."""

from __future__ import annotations

from router_support import new_bot, next_version

from signal_router.bots import BotView


def test_the_latest_version_of_a_bot_wins_whatever_the_order_of_arrival():
    view = BotView()
    bot, _ = new_bot()
    paused = next_version(bot, paused=True)
    assert view.apply(paused)
    assert not view.apply(bot), "an older snapshot replayed after a newer one is ignored"
    assert view.get(bot.bot_id) == paused and len(view) == 1


def test_a_changed_key_moves_the_bot_and_a_tombstone_removes_it():
    view = BotView()
    bot, secret = new_bot()
    view.apply(bot)
    moved = next_version(bot, signal_key="new-key")
    view.apply(moved)
    assert view.with_key(bot.signal_key) == [] and view.with_key("new-key") == [moved]
    view.remove(bot.bot_id)
    view.remove(bot.bot_id)  # a second tombstone is harmless
    assert view.get(bot.bot_id) is None and view.authenticate("new-key", secret) is None


def test_authenticate_finds_the_bot_whose_secret_matches_live_ones_first():
    view = BotView()
    old, old_secret = new_bot(deleted=True)
    live, live_secret = new_bot(signal_key=old.signal_key)
    view.apply(old)
    view.apply(live)
    assert view.with_key(live.signal_key) == [live, old]
    assert view.authenticate(live.signal_key, live_secret) == live
    assert view.authenticate(live.signal_key, old_secret) == old, "a deleted bot's signal is skipped, not refused"
    assert view.authenticate(live.signal_key, live_secret + "x") is None
    assert view.authenticate("unknown", live_secret) is None

"""Who may do what on Egis's topics: one Kafka principal per service, each granted only its own topics.

The broker enforces it (SASL/SCRAM-SHA-512 and ACLs, nothing allowed without an ACL), so a
record on a topic was written by a principal that owns it: an order intent comes from the signal
router, an execution from the executor. `tests/test_access.py` checks every service's wiring
against these grants, so a service that starts using a topic fails the tests until it is granted here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from egis_common import topics as t

# A consumer team's name: it becomes a principal and a consumer-group prefix.
TEAM_NAME = re.compile(r"[a-z][a-z0-9-]{1,30}")


@dataclass(frozen=True)
class Grant:
    principal: str  # the Kafka user, without "User:"
    writes: tuple[str, ...] = ()  # topic names it may produce to
    reads: tuple[str, ...] = ()  # topic names it may consume
    group_prefix: str | None = None  # consumer groups it may join: those whose id starts with this


@dataclass(frozen=True)
class AclBinding:
    principal: str  # "User:<name>"
    resource_type: str  # TOPIC, GROUP
    pattern: str  # LITERAL, PREFIXED
    resource: str
    operation: str  # WRITE, READ, DESCRIBE

    def fields(self) -> tuple[str, str, str, str, str]:
        return self.principal, self.resource_type, self.pattern, self.resource, self.operation


def _names(*topics: t.Topic) -> tuple[str, ...]:
    return tuple(topic.name for topic in topics)


DEAD_LETTERS = (t.DEAD_LETTER_TOPIC,)  # every consuming service parks poison records there

GRANTS: dict[str, Grant] = {
    grant.principal: grant
    for grant in (
        # The webhook gateway only turns authenticated webhooks into signals, and journals the posts it refuses
        # or knows for duplicates.
        Grant("gateway", writes=_names(t.SIGNALS_RECEIVED, t.SIGNAL_JOURNAL)),
        Grant(
            "signal_router",
            reads=_names(t.SIGNALS_RECEIVED, t.BOTS),
            writes=_names(t.SIGNALS_SKIPPED, t.INTENTS, t.SIGNAL_JOURNAL) + DEAD_LETTERS,
            group_prefix="signal_router",
        ),
        # The executor reads the bots topic for each bot's exchange and account: never an intent's word for them.
        Grant(
            "executor",
            reads=_names(t.INTENTS, t.LEDGER_EVENTS, t.EXECUTOR_COMMANDS, t.MARK_PRICES, t.BOTS),
            writes=_names(t.LEDGER_COMMANDS, t.EXECUTIONS, t.PAPER_REPAIRS, t.EXCHANGE_FACTS) + DEAD_LETTERS,
            group_prefix="executor",
        ),
        # The ledger also carries its web console's repairs: an admin's command, signed with that operator's key
        # (which the reconciler checks, not the login), and the reply it awaits.
        Grant(
            "ledger",
            reads=_names(t.LEDGER_COMMANDS, t.EXECUTIONS, t.ADMIN_REPLIES, t.SIGNAL_JOURNAL),
            writes=_names(t.LEDGER_EVENTS, t.BOTS, t.ADMIN_COMMANDS) + DEAD_LETTERS,
            group_prefix="ledger",
        ),
        Grant(
            "reconciler",
            reads=_names(t.LEDGER_EVENTS, t.EXECUTIONS, t.PAPER_REPAIRS, t.EXCHANGE_FACTS, t.ADMIN_COMMANDS),
            writes=_names(t.LEDGER_COMMANDS, t.EXECUTOR_COMMANDS, t.ADMIN_REPLIES) + DEAD_LETTERS,
            group_prefix="reconciler",
        ),
        # People running repairs: they sign admin commands and read the replies, nothing else.
        Grant("operator", writes=_names(t.ADMIN_COMMANDS), reads=_names(t.ADMIN_REPLIES), group_prefix="operator."),
        # The paper venue's mark prices come from outside Egis (a feed, or `egis prices` by hand).
        Grant("prices", writes=_names(t.MARK_PRICES)),
    )
}
SERVICES = ("signal_router", "executor", "ledger", "reconciler")
# What teams that consume Egis's events may read.
PUBLIC_EVENTS = _names(t.LEDGER_EVENTS, t.SIGNALS_SKIPPED, t.EXCHANGE_FACTS)


def team(name: str) -> Grant:
    """A read-only principal for a team consuming Egis's public events, in consumer groups of its own."""
    if not TEAM_NAME.fullmatch(name):
        raise ValueError(f"a team name is 2-31 characters of a-z, 0-9 and '-', starting with a letter: {name!r}")
    return Grant(f"team-{name}", reads=PUBLIC_EVENTS, group_prefix=f"team-{name}.")


def bindings(grant: Grant) -> list[AclBinding]:
    """The ACLs that give `grant` and nothing more (producing also needs DESCRIBE, consuming a group READ)."""
    user = f"User:{grant.principal}"
    out = [AclBinding(user, "TOPIC", "LITERAL", topic, op) for topic in grant.writes for op in ("WRITE", "DESCRIBE")]
    out += [AclBinding(user, "TOPIC", "LITERAL", topic, op) for topic in grant.reads for op in ("READ", "DESCRIBE")]
    if grant.group_prefix:
        out += [AclBinding(user, "GROUP", "PREFIXED", grant.group_prefix, op) for op in ("READ", "DESCRIBE")]
    return out

"""What must hold after any fault, once the system is quiet: pure functions from evidence to findings.

The evidence (evidence.py gathers it) is plain data: every POST and its answer,
the router's decisions, the executor's intents and pending records, the ledger's
positions and budgets, the venues' orders and positions, the dead letters and the
unpublished outbox rows. Each check looks at one property and returns a finding
per thing that breaks it; a finding that is only worth knowing (not a broken
promise) has `violation=False`. No check reads anything but its argument, so
each is unit-tested with evidence built by hand (tests/faults/test_checks.py).
"""

from __future__ import annotations

import decimal
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from egis_common.ids import intent_id_from_client_order_id, signal_dedup_key, signal_id_for

ZERO = Decimal(0)
# Exact, as the ledger's formula: an inexact step raises instead of rounding.
EXACT = decimal.Context(prec=60, traps=[decimal.Inexact, decimal.InvalidOperation, decimal.Overflow])

INTENT_DONE = frozenset({"filled", "rejected", "skipped"})
INTENT_IN_FLIGHT = frozenset(
    {"received", "preflight_requested", "reserved", "submitting", "pending_reconciliation", "resend_due"}
)
POSITION_IN_FLIGHT = frozenset({"opening", "closing"})
POSITION_HOLDS = frozenset({"open", "closing"})
# Skips that leave a position open on purpose, each with its enumerated reason.
CLOSE_SKIPS_ALLOWED = frozenset({"stale_signal"})


@dataclass(frozen=True)
class Post:
    """One POST of the load; `status` is the HTTP status, or the name of the client's error."""

    bot_id: str
    signal_key: str
    symbol: str
    action: str  # "buy" | "exit"
    client_id: str
    sent_at: float
    status: int | str
    signal_id: str | None = None

    @property
    def accepted(self) -> bool:
        return self.status == 202

    @property
    def derived_signal_id(self) -> str:
        """The id the gateway gives this signal: derived from the client's id, as `egis_common.ids` does."""
        key = signal_dedup_key(self.signal_key, self.action, self.symbol, None, self.client_id)
        return str(signal_id_for(key))


@dataclass(frozen=True)
class Decision:
    signal_id: str
    outcome: str  # "routed" | "skipped"
    intent_id: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class Intent:
    intent_id: str
    bot_id: str
    kind: str  # "open" | "close"
    symbol: str
    status: str
    client_order_id: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True)
class Position:
    position_id: str
    bot_id: str
    symbol: str
    side: str
    status: str
    exchange_account: str
    open_intent_id: str
    requested_size_usd: Decimal
    size_usd: Decimal = ZERO
    executed_qty: Decimal = ZERO
    avg_entry_price: Decimal | None = None
    close_intent_id: str | None = None
    close_exchange_order_id: str | None = None
    close_price: Decimal | None = None
    closed_at: datetime | None = None
    realised_pnl_usd: Decimal | None = None


@dataclass(frozen=True)
class Order:
    """An order in a venue's own log (the paper venue's table, the Binance server's account)."""

    venue: str
    account: str
    symbol: str
    order_id: str
    client_order_id: str
    side: str
    status: str
    executed_qty: Decimal


@dataclass(frozen=True)
class Budget:
    initial_usd: Decimal
    reserved_open_usd: Decimal
    reserved_opening_usd: Decimal
    available_usd: Decimal


@dataclass(frozen=True)
class DeadLetter:
    origin_topic: str
    partition: int
    offset: int
    error: str
    valid: bool  # the payload parses as a message of its origin topic


@dataclass
class Evidence:
    posts: list[Post] = field(default_factory=list)
    initial_budgets: dict[str, Decimal] = field(default_factory=dict)  # bot id -> initial_budget_usd
    decisions: dict[str, Decision] = field(default_factory=dict)  # by signal id
    intents: dict[str, Intent] = field(default_factory=dict)  # by intent id
    unresolved_pending: list[str] = field(default_factory=list)  # intent ids of pending records not resolved
    positions: list[Position] = field(default_factory=list)
    orders: list[Order] = field(default_factory=list)
    venue_positions: dict[tuple[str, str, str], Decimal] = field(default_factory=dict)  # (venue, account, symbol)
    account_venue: dict[str, str] = field(default_factory=dict)  # exchange account -> venue
    reported_budgets: dict[str, Budget] = field(default_factory=dict)  # the ledger's API, by bot id
    last_budget_events: dict[str, Budget] = field(default_factory=dict)  # the last BudgetChanged, by bot id
    unpublished_outbox: dict[str, int] = field(default_factory=dict)  # schema -> rows
    dead_letters: list[DeadLetter] = field(default_factory=list)
    quiescent_after_s: float | None = None
    quiescence_timeout_s: float = 0.0
    exited_on_their_own: list[str] = field(default_factory=list)  # instances that died without being killed


@dataclass(frozen=True)
class Finding:
    check: str
    subject: str
    detail: str
    violation: bool = True


# --------------------------------------------------------------------------- the checks


def lost_signals(e: Evidence) -> list[Finding]:
    """An accepted signal must end in a decision, and a routed one in an intent the executor holds."""
    found = []
    for post in (p for p in e.posts if p.accepted):
        decision = e.decisions.get(post.signal_id)
        if decision is None:
            found.append(
                Finding(
                    "lost_signal",
                    post.signal_id,
                    f"accepted ({post.action} {post.symbol}, bot {post.bot_id}) and never decided by the router",
                )
            )
        elif decision.outcome == "routed" and decision.intent_id not in e.intents:
            found.append(
                Finding(
                    "lost_signal",
                    post.signal_id,
                    f"routed to intent {decision.intent_id}, which the executor never recorded",
                )
            )
    return found


def refused_signals_acted_on(e: Evidence) -> list[Finding]:
    """A signal the gateway refused should not be routed; when Kafka lost only the ack it can be (noted)."""
    return [
        Finding(
            "refused_then_routed",
            p.derived_signal_id,
            f"answered {p.status} but routed anyway ({p.action} {p.symbol}, bot {p.bot_id})",
            violation=False,
        )
        for p in e.posts
        if isinstance(p.status, int) and not p.accepted and p.derived_signal_id in e.decisions
    ]


def duplicates(e: Evidence) -> list[Finding]:
    """One order per client order id and per intent on each venue; one position per opening intent."""
    found = []
    per_client_id = Counter((o.venue, o.account, o.client_order_id) for o in e.orders)
    for (venue, account, client_id), count in per_client_id.items():
        if count > 1:
            found.append(Finding("duplicate_order", client_id, f"{count} orders on {venue} account {account}"))
    for intent_id, count in Counter(p.open_intent_id for p in e.positions).items():
        if count > 1:
            found.append(Finding("duplicate_position", intent_id, f"{count} positions opened by one intent"))
    active = Counter((p.bot_id, p.symbol) for p in e.positions if p.status in POSITION_HOLDS | POSITION_IN_FLIGHT)
    for (bot_id, symbol), count in active.items():
        if count > 1:
            found.append(Finding("duplicate_position", f"{bot_id}/{symbol}", f"{count} active positions"))
    return found


def orders_without_intent(e: Evidence) -> list[Finding]:
    """Every order a venue holds was durably recorded, with its client order id, before it was sent."""
    found = []
    for order in e.orders:
        try:
            intent_id = str(intent_id_from_client_order_id(order.client_order_id))
        except ValueError:
            found.append(
                Finding(
                    "order_without_intent",
                    order.client_order_id,
                    f"{order.venue} order {order.order_id} with a client id Egis never makes",
                )
            )
            continue
        intent = e.intents.get(intent_id)
        if intent is None or intent.client_order_id != order.client_order_id:
            found.append(
                Finding(
                    "order_without_intent",
                    order.client_order_id,
                    f"{order.venue} order {order.order_id} ({order.status}) has no intent recording it",
                )
            )
    return found


def closed_without_facts(e: Evidence) -> list[Finding]:
    """Closed is a conclusion backed by facts: the closing order, its price, the time, the realised PnL."""
    found = []
    for p in (p for p in e.positions if p.status == "closed"):
        missing = [
            name
            for name in ("close_exchange_order_id", "close_price", "closed_at", "realised_pnl_usd")
            if getattr(p, name) is None
        ]
        if missing:
            found.append(Finding("closed_without_facts", p.position_id, f"closed without {', '.join(missing)}"))
    return found


def budget_formula(initial_usd: Decimal, positions: list[Position]) -> Budget:
    """The design's formula, computed here independently of the ledger's code, exactly."""
    held = opening = ZERO
    for p in positions:
        if p.status in POSITION_HOLDS:
            held = EXACT.add(held, p.size_usd)
        elif p.status == "opening":
            opening = EXACT.add(opening, p.requested_size_usd)
    return Budget(initial_usd, held, opening, EXACT.subtract(EXACT.subtract(initial_usd, held), opening))


def budgets(e: Evidence) -> list[Finding]:
    """What the ledger reports (API and last BudgetChanged) is the formula over its positions, to the last digit."""
    found = []
    by_bot: dict[str, list[Position]] = defaultdict(list)
    for p in e.positions:
        by_bot[p.bot_id].append(p)
    for bot_id, initial in e.initial_budgets.items():
        expected = budget_formula(initial, by_bot[bot_id])
        for source, reported in (
            ("ledger API", e.reported_budgets.get(bot_id)),
            ("last BudgetChanged", e.last_budget_events.get(bot_id)),
        ):
            if reported is not None and reported != expected:
                found.append(
                    Finding(
                        "budget",
                        bot_id,
                        f"{source} says {_budget(reported)}; the formula over the positions gives {_budget(expected)}",
                    )
                )
        if expected.available_usd < 0:
            found.append(Finding("budget", bot_id, f"available {expected.available_usd} is below zero"))
    for p in e.positions:
        if p.status in POSITION_HOLDS | {"closed"} and p.avg_entry_price is not None:
            executed = EXACT.multiply(p.executed_qty, p.avg_entry_price)
            if executed != p.size_usd:
                found.append(
                    Finding(
                        "budget",
                        p.position_id,
                        f"size_usd {p.size_usd} is not executed_qty x avg_entry_price = {executed}",
                    )
                )
    return found


def unpublished_outbox(e: Evidence) -> list[Finding]:
    return [
        Finding("unpublished_outbox", schema, f"{rows} outbox rows never published")
        for schema, rows in e.unpublished_outbox.items()
        if rows
    ]


def intermediate_states(e: Evidence) -> list[Finding]:
    """Nothing waits forever: once quiet, no intent, position or pending record is still on its way."""
    found = [
        Finding("intermediate_state", i.intent_id, f"executor intent ({i.kind} {i.symbol}) still {i.status}")
        for i in e.intents.values()
        if i.status in INTENT_IN_FLIGHT
    ]
    found += [
        Finding("intermediate_state", p.position_id, f"ledger position ({p.symbol}) still {p.status}")
        for p in e.positions
        if p.status in POSITION_IN_FLIGHT
    ]
    found += [
        Finding("intermediate_state", intent_id, "pending_reconciliation record never resolved")
        for intent_id in e.unresolved_pending
    ]
    return found


def dead_letters(e: Evidence) -> list[Finding]:
    """The load sends only valid messages: a dead letter of one that parses is a failure mistaken for poison."""
    return [
        Finding("dead_letter", f"{d.origin_topic}[{d.partition}]@{d.offset}", d.error[:300], violation=d.valid)
        for d in e.dead_letters
    ]


def quiescence(e: Evidence) -> list[Finding]:
    if e.quiescent_after_s is None:
        return [
            Finding(
                "not_quiescent",
                "system",
                f"still busy {e.quiescence_timeout_s:.0f}s after the fault and the load ended",
            )
        ]
    return []


def services_exited(e: Evidence) -> list[Finding]:
    return [
        Finding("service_exited", label, "exited without being killed (nothing restarts it)")
        for label in e.exited_on_their_own
    ]


def closes_applied(e: Evidence) -> list[Finding]:
    """Each open the venue filled is closed by the first close the load sent after it, unless skipped on purpose.

    Every lane ends with a close. A close behind its open (sent while the open was still
    in flight) must wait for it and close what it opened: refusing it leaves the position
    open, or open until some later close, although the user asked to close it.
    """
    found = []
    accepted = sorted((p for p in e.posts if p.accepted), key=lambda p: p.sent_at)
    for position in (p for p in e.positions if p.status in POSITION_HOLDS | {"closed"}):
        opened = next((i for i, p in enumerate(accepted) if _intent_of(e, p) == position.open_intent_id), None)
        later = accepted[opened + 1 :] if opened is not None else []
        close = next(
            (p for p in later if p.action == "exit" and (p.bot_id, p.symbol) == (position.bot_id, position.symbol)),
            None,
        )
        if close is None:
            continue
        decision = e.decisions.get(close.signal_id)
        if decision is not None and decision.outcome == "skipped" and decision.skip_reason in CLOSE_SKIPS_ALLOWED:
            found.append(
                Finding(
                    "close_skipped_on_purpose",
                    position.position_id,
                    f"position ({position.symbol}) "
                    f"left {position.status}: its close was skipped ({decision.skip_reason})",
                    False,
                )
            )
            continue
        close_intent = decision.intent_id if decision is not None else None
        if position.status == "closed" and position.close_intent_id == close_intent:
            continue
        intent = e.intents.get(close_intent) if close_intent else None
        if intent is not None and intent.status in INTENT_IN_FLIGHT:
            continue  # still on its way: an intermediate state, reported as one
        why = (
            f"its close was {intent.status}" + (f" ({intent.skip_reason})" if intent.skip_reason else "")
            if intent is not None
            else f"its close was {decision.outcome if decision else 'never decided'}"
        )
        state = "closed by a later close" if position.status == "closed" else f"left {position.status}"
        found.append(Finding("close_not_applied", position.position_id, f"position ({position.symbol}) {state}: {why}"))
    return found


def venue_drift(e: Evidence) -> list[Finding]:
    """What each venue holds per account and symbol is what the ledger's open positions say Egis holds."""
    held: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    unsettled = set()
    for p in e.positions:
        venue = e.account_venue.get(p.exchange_account)
        if venue is None:
            continue
        key = (venue, p.exchange_account, p.symbol)
        if p.status in POSITION_HOLDS:
            held[key] += p.executed_qty if p.side == "long" else -p.executed_qty
        elif p.status in POSITION_IN_FLIGHT:
            unsettled.add(key)  # reported as an intermediate state; the venue may or may not hold it yet
    found = []
    for key in sorted(set(held) | set(e.venue_positions)):
        if key in unsettled:
            continue
        on_venue, in_ledger = e.venue_positions.get(key, ZERO), held.get(key, ZERO)
        if on_venue != in_ledger:
            venue, account, symbol = key
            found.append(
                Finding(
                    "venue_drift",
                    f"{venue}/{account}/{symbol}",
                    f"the venue holds {on_venue}, the ledger's open positions {in_ledger}",
                )
            )
    return found


CHECKS: tuple[Callable[[Evidence], list[Finding]], ...] = (
    lost_signals,
    refused_signals_acted_on,
    duplicates,
    orders_without_intent,
    closed_without_facts,
    budgets,
    unpublished_outbox,
    intermediate_states,
    dead_letters,
    quiescence,
    services_exited,
    closes_applied,
    venue_drift,
)
# Every check's name, in the order the summary shows them.
CHECK_NAMES = (
    "lost_signal",
    "duplicate_order",
    "duplicate_position",
    "order_without_intent",
    "closed_without_facts",
    "budget",
    "unpublished_outbox",
    "intermediate_state",
    "dead_letter",
    "not_quiescent",
    "service_exited",
    "close_not_applied",
    "venue_drift",
)


def check_all(e: Evidence) -> list[Finding]:
    return [finding for check in CHECKS for finding in check(e)]


def _intent_of(e: Evidence, post: Post) -> str | None:
    decision = e.decisions.get(post.signal_id)
    return decision.intent_id if decision else None


def _budget(b: Budget) -> str:
    return (
        f"initial {b.initial_usd}, open {b.reserved_open_usd}, opening {b.reserved_opening_usd}, "
        f"available {b.available_usd}"
    )

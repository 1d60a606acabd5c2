"""Hypothesis drives the pure domain through random histories and checks it after every step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from egis_common import contracts as c
from ledger import domain
from ledger.domain import ACTIVE, TRANSITIONS, Bot, PositionStatus

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT"]
money = st.decimals(min_value=Decimal("1"), max_value=Decimal("500"), places=2)
prices = st.decimals(min_value=Decimal("0.01"), max_value=Decimal("100000"), places=2)
fractions = st.sampled_from([Decimal("1"), Decimal("0.5"), Decimal("0.123"), Decimal("0.999")])


class LedgerMachine(RuleBasedStateMachine):
    @initialize(initial=st.decimals(min_value=Decimal("0"), max_value=Decimal("2000"), places=2))
    def start(self, initial):
        self.bot = Bot(uuid.uuid4(), initial, "paper", "acct")
        self.positions: dict[uuid.UUID, domain.Position] = {}
        self.history: list[tuple[uuid.UUID, PositionStatus, PositionStatus]] = []
        self.last_fill: dict[uuid.UUID, c.OrderFilled] = {}
        self.waiting: list[tuple[int, c.ReserveBudget]] = []  # (arrival number, command), in arrival order
        self.arrivals = 0
        self.decided: dict[str, list[int]] = {}  # symbol -> arrival numbers of the reservations decided, in order

    # --- helpers ---------------------------------------------------------------

    def active(self) -> list[domain.Position]:
        return [p for p in self.positions.values() if p.status in ACTIVE]

    def others(self, position) -> list[domain.Position]:
        return [p for p in self.active() if p.position_id != position.position_id]

    def apply(self, outcome: domain.Outcome) -> None:
        for p in (*outcome.created, *outcome.positions):
            before = self.positions.get(p.position_id)
            if before is not None and before.status != p.status:
                self.history.append((p.position_id, before.status, p.status))
            self.positions[p.position_id] = p
        for p in outcome.positions:
            if p.status not in domain.IN_FLIGHT:
                self.resume(p)

    def arrive(self, command: c.ReserveBudget) -> domain.Outcome | None:
        """A reservation arrives: it waits (None) or is decided now, as the ledger's use case does."""
        self.arrivals += 1
        earlier = any(w.symbol == command.symbol for _, w in self.waiting)
        if domain.must_wait(command, self.bot, self.active(), earlier):
            self.waiting.append((self.arrivals, command))
            return None
        self.decided.setdefault(command.symbol, []).append(self.arrivals)
        return domain.decide_reservation(command, self.bot, self.active(), None, uuid.uuid4(), Decimal("1"))

    def resume(self, settled: domain.Position) -> None:
        """The reservations that waited on the settled position's symbol, decided in arrival order."""
        queue = [(n, w) for n, w in self.waiting if w.symbol == settled.symbol]
        still_waiting = False
        for number, command in queue:
            if domain.must_wait(command, self.bot, self.active(), still_waiting):
                still_waiting = True
                continue
            self.waiting.remove((number, command))
            self.decided.setdefault(command.symbol, []).append(number)
            outcome = domain.decide_reservation(
                command, self.bot, self.active(), None, uuid.uuid4(), Decimal("1"), waited_for=settled
            )
            if command.intent is c.IntentKind.CLOSE:
                if settled.status is PositionStatus.FAILED:
                    assert outcome.rejection is c.PreflightRejectReason.OPEN_FAILED, "the open it waited for failed"
                elif settled.status is PositionStatus.OPEN and settled.side == command.side:
                    assert outcome.rejection is None, "a close behind its open closes what the open made"
                    assert outcome.positions[0].position_id == settled.position_id
            self.apply(outcome)

    def pick(self, data, status: PositionStatus):
        candidates = [p for p in self.positions.values() if p.status is status]
        return data.draw(st.sampled_from(candidates)) if candidates else None

    def fill(self, position, intent, qty, price) -> c.OrderFilled:
        intent_id = position.open_intent_id if intent is c.IntentKind.OPEN else position.close_intent_id
        return c.OrderFilled(
            intent_id=intent_id,
            bot_id=self.bot.bot_id,
            position_id=position.position_id,
            intent=intent,
            symbol=position.symbol,
            side=position.side,
            client_order_id="x",
            exchange_order_id=str(uuid.uuid4()),
            executed_qty=qty,
            avg_price=price,
            fee_usd=Decimal("0.01"),
            filled_at=datetime.now(UTC),
        )

    # --- rules -----------------------------------------------------------------

    @rule(symbol=st.sampled_from(SYMBOLS), size=money, side=st.sampled_from(list(c.Side)))
    def open(self, symbol, size, side):
        command = c.ReserveBudget(
            intent_id=uuid.uuid4(),
            bot_id=self.bot.bot_id,
            intent=c.IntentKind.OPEN,
            side=side,
            symbol=symbol,
            requested_size_usd=size,
            exchange_account="acct",
        )
        available = domain.compute_budget(self.bot.initial_budget_usd, self.active()).available_usd
        has_active = any(p.symbol == symbol for p in self.active())
        outcome = self.arrive(command)
        if outcome is None:
            return
        if has_active:
            assert outcome.rejection is c.PreflightRejectReason.EXISTING_OPEN_POSITION
        elif size > available:
            assert outcome.rejection is c.PreflightRejectReason.INSUFFICIENT_BUDGET
        else:
            assert outcome.rejection is None and outcome.created[0].status is PositionStatus.OPENING
        self.apply(outcome)

    @rule(data=st.data(), fraction=fractions, price=prices)
    def fill_open(self, data, fraction, price):
        position = self.pick(data, PositionStatus.OPENING)
        if position is None:
            return
        # Executed notional never exceeds what was reserved (quantities round down).
        qty = (position.requested_size_usd * fraction / price).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
        fill = self.fill(position, c.IntentKind.OPEN, qty, price)
        self.apply(domain.apply_fill(position, fill, self.bot.initial_budget_usd, self.others(position)))
        self.last_fill[position.position_id] = fill
        if qty > 0:
            assert self.positions[position.position_id].size_usd == qty * price

    @rule(data=st.data())
    def reject(self, data):
        position = self.pick(data, data.draw(st.sampled_from([PositionStatus.OPENING, PositionStatus.CLOSING])))
        if position is not None:
            self.apply(domain.apply_rejection(position, "refused", self.bot.initial_budget_usd, self.others(position)))

    @rule(symbol=st.sampled_from(SYMBOLS))
    def close(self, symbol):
        command = c.ReserveBudget(
            intent_id=uuid.uuid4(),
            bot_id=self.bot.bot_id,
            intent=c.IntentKind.CLOSE,
            side=c.Side.LONG,
            symbol=symbol,
            exchange_account="acct",
        )
        target = [p for p in self.active() if p.symbol == symbol]
        if target and target[0].status is PositionStatus.OPEN:
            command = command.model_copy(update={"side": target[0].side})
        outcome = self.arrive(command)
        if outcome is None:
            return
        if not target or target[0].status is not PositionStatus.OPEN:
            assert outcome.rejection is c.PreflightRejectReason.NO_OPEN_POSITION_TO_CLOSE
            assert not outcome.created and not outcome.positions  # a close never creates a position
        self.apply(outcome)

    @rule(data=st.data(), fraction=fractions, price=prices)
    def fill_close(self, data, fraction, price):
        position = self.pick(data, PositionStatus.CLOSING)
        if position is None:
            return
        qty = (position.executed_qty * fraction).quantize(Decimal("0.00000001"), rounding="ROUND_DOWN")
        fill = self.fill(position, c.IntentKind.CLOSE, qty, price)
        self.apply(domain.apply_fill(position, fill, self.bot.initial_budget_usd, self.others(position)))
        self.last_fill[position.position_id] = fill

    @rule(data=st.data())
    def duplicate_fill(self, data):
        """A fill delivered again (new message id) changes nothing."""
        if not self.last_fill:
            return
        position_id = data.draw(st.sampled_from(sorted(self.last_fill, key=str)))
        fill = self.last_fill[position_id].model_copy(update={"message_id": uuid.uuid4()})
        position = self.positions[position_id]
        outcome = domain.apply_fill(position, fill, self.bot.initial_budget_usd, self.others(position))
        if not (position.status is PositionStatus.OPENING or position.status is PositionStatus.CLOSING):
            assert outcome.positions == () and outcome.created == ()

    @rule(data=st.data(), price=prices, pnl=st.decimals(min_value=-100, max_value=100, places=4))
    def backfill(self, data, price, pnl):
        status = data.draw(st.sampled_from([PositionStatus.OPEN, PositionStatus.CLOSING, PositionStatus.CLOSED]))
        position = self.pick(data, status)
        if position is None:
            return
        command = c.BackfillClosure(
            bot_id=self.bot.bot_id,
            position_id=position.position_id,
            close_exchange_order_id="tp-1",
            close_price=price,
            closed_at=datetime.now(UTC),
            realised_pnl_usd=pnl,
            fee_usd=Decimal("0.02"),
        )
        outcome = domain.apply_backfill(position, command, self.bot.initial_budget_usd, self.others(position))
        self.apply(outcome)
        repeat = domain.apply_backfill(
            self.positions[position.position_id], command, self.bot.initial_budget_usd, self.others(position)
        )
        assert repeat.positions == (), "a second backfill changes nothing"
        assert [(m.type, m.close_price) for m in repeat.messages] == [
            ("PositionClosed", self.positions[position.position_id].close_price)
        ], "it announces the ledger's facts"

    # --- invariants --------------------------------------------------------------

    @invariant()
    def signals_are_decided_in_the_order_they_arrived(self):
        if not hasattr(self, "bot"):
            return
        for numbers in self.decided.values():
            assert numbers == sorted(numbers)

    @invariant()
    def nothing_waits_unless_an_order_is_in_flight(self):
        """A reservation waits only behind an order in flight: once that settles, nothing is left stranded."""
        if not hasattr(self, "bot"):
            return
        in_flight = {p.symbol for p in self.active() if p.status in domain.IN_FLIGHT}
        assert {w.symbol for _, w in self.waiting} <= in_flight

    @invariant()
    def budget_follows_the_formula(self):
        if not hasattr(self, "bot"):
            return
        budget = domain.compute_budget(self.bot.initial_budget_usd, self.positions.values())
        expected_open = sum(
            (p.size_usd for p in self.positions.values() if p.status in (PositionStatus.OPEN, PositionStatus.CLOSING)),
            Decimal(0),
        )
        expected_opening = sum(
            (p.requested_size_usd for p in self.positions.values() if p.status is PositionStatus.OPENING), Decimal(0)
        )
        assert budget.available_usd == self.bot.initial_budget_usd - expected_open - expected_opening
        assert budget.available_usd >= 0, "never more reserved than the budget"

    @invariant()
    def state_machine_holds(self):
        if not hasattr(self, "bot"):
            return
        for _, before, after in self.history:
            assert after in TRANSITIONS[before]
        by_symbol = [p.symbol for p in self.positions.values() if p.status in ACTIVE]
        assert len(by_symbol) == len(set(by_symbol)), "one active position per symbol"
        for p in self.positions.values():
            assert p.size_usd >= 0 and p.executed_qty >= 0 and p.requested_size_usd >= 0
            if p.status is PositionStatus.CLOSED:
                assert p.close_facts_complete
            if p.status in (PositionStatus.OPEN, PositionStatus.CLOSING):
                assert p.executed_qty > 0 and p.size_usd == p.executed_qty * p.avg_entry_price


TestLedgerMachine = LedgerMachine.TestCase
TestLedgerMachine.settings = settings(
    max_examples=500, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

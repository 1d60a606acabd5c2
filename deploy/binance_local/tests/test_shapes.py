"""The server's answers have the keys and JSON value types of real Binance answers.

The real bodies are in ../shared/binance-samples/usdm_responses.json (next to
the repository). They come from ccxt's static test data, which stores some
integer fields as digit strings where the venue sends JSON numbers (compare
the two order samples: one has `"orderId": 4087922044`, the other
`"orderId": "664082074"`). Binance's API documentation gives those fields as
numbers, so a digit string in one of them is read as a number here.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

INTEGER_FIELDS = {"orderId", "id", "time", "updateTime", "goodTillDate", "feeTier", "tradeGroupId", "adl"}


def _samples_file() -> Path | None:
    here = Path(__file__).resolve()
    repo_root = next((p for p in here.parents if (p / "uv.lock").exists()), None)
    if repo_root is None:
        return None
    candidate = repo_root.parent / "shared" / "binance-samples" / "usdm_responses.json"
    return candidate if candidate.exists() else None


SAMPLES_FILE = _samples_file()


def sample(description: str) -> Any:
    data = json.loads(SAMPLES_FILE.read_text())  # type: ignore[union-attr]
    [found] = [s["http_response"] for s in data["samples"] if s["description"] == description]
    return found


def json_type(value: Any, key: str | None = None) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "number" if key in INTEGER_FIELDS and re.fullmatch(r"-?[0-9]+", value) else "string"
    return {dict: "object", list: "array", type(None): "null"}[type(value)]


def differences(real: Any, ours: Any, where: str = "$") -> list[str]:
    if isinstance(real, dict) and isinstance(ours, dict):
        missing, extra = sorted(set(real) - set(ours)), sorted(set(ours) - set(real))
        found = [f"{where}: keys only in the real answer {missing}"] if missing else []
        found += [f"{where}: keys only in ours {extra}"] if extra else []
        for key in set(real) & set(ours):
            if json_type(real[key], key) != json_type(ours[key]):
                found.append(f"{where}.{key}: real {json_type(real[key], key)}, ours {json_type(ours[key])}")
            found += differences(real[key], ours[key], f"{where}.{key}")
        return found
    if isinstance(real, list) and isinstance(ours, list) and real and ours:
        return differences(real[0], ours[0], f"{where}[0]")
    return []


@pytest.mark.skipif(
    SAMPLES_FILE is None, reason="../shared/binance-samples/usdm_responses.json is not next to this repository"
)
async def test_answers_match_the_real_shapes(server, client):
    placed = await client.futures_create_order(
        symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.009", newOrderRespType="RESULT"
    )
    await client.futures_create_order(
        symbol="BTCUSDT",
        side="SELL",
        type="LIMIT",
        timeInForce="GTC",
        quantity="0.002",
        price="65000",
        newClientOrderId="resting",
    )
    server.set_mark_price("BTCUSDT", "60100")
    pairs = {
        "create swap orders": ([placed], "POST /fapi/v1/order"),
        "swap open order": (await client.futures_get_order(symbol="BTCUSDT", origClientOrderId="resting"), "GET order"),
        "Swap private trade": (await client.futures_account_trades(symbol="BTCUSDT"), "userTrades"),
        "Fetch linear positions without symbols": (await client.futures_position_information(), "v3 positionRisk"),
        "Fetch linear positions using account endnpoint": (  # sic, as in the file
            await client.futures_account(version=3),
            "v3 account",
        ),
        "Linear swap balance": (await client.futures_account(), "v2 account"),
    }
    found = [
        f"{name} vs '{description}': {d}"
        for description, (ours, name) in pairs.items()
        for d in differences(sample(description), ours)
    ]
    assert found == []


async def test_balance_v2_and_v3_have_the_documented_fields(client):
    # No real sample of /balance in the shared set; the fields are those of Binance's documentation.
    documented = {
        "accountAlias",
        "asset",
        "balance",
        "crossWalletBalance",
        "crossUnPnl",
        "availableBalance",
        "maxWithdrawAmount",
        "marginAvailable",
        "updateTime",
    }
    for version in (2, 3):
        [entry] = await client.futures_account_balance(version=version)
        assert set(entry) == documented
        assert isinstance(entry["updateTime"], int) and isinstance(entry["balance"], str)

"""`python -m egis_binance_local` serves until told to stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request


def test_the_cli_serves_on_the_printed_address_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "egis_binance_local", "--port", "0", "--account", "demo:secret:123.45"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # printed once listening
        base_url = line.split(" listening on ")[1].split()[0]
        with urllib.request.urlopen(f"{base_url}/fapi/v1/ping", timeout=5) as response:
            assert json.load(response) == {}
        with urllib.request.urlopen(f"{base_url}/_control/accounts/demo", timeout=5) as response:
            assert json.load(response)["walletUsdt"] == "123.45"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0, process.stderr.read()

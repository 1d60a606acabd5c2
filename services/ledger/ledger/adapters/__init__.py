"""What the ledger exposes outward: its management HTTP API."""

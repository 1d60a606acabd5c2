"""Composition root of the ledger service: `faststream run ledger.main:app`."""

from egis_common.runtime import build_app, build_runtime, serve

from ledger.flow import register
from ledger.settings import LedgerSettings

runtime = build_runtime(LedgerSettings())
register(runtime)
app = build_app(runtime, service="ledger")


def main() -> None:
    serve(app)


if __name__ == "__main__":
    main()

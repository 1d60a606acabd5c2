"""The real python-binance `AsyncClient`, pointed at a local server.

python-binance builds futures URLs from the class attributes FUTURES_URL
(or FUTURES_TESTNET_URL with testnet=True); overriding both sends every
futures call to the local server whichever flag the caller uses. The client is
constructed directly: `AsyncClient.create()` would first call the *spot*
ping and time endpoints, which this server does not serve.
"""

from __future__ import annotations

from typing import Any


def local_client_class(base_url: str) -> type:
    from binance import AsyncClient

    fapi = f"{base_url}/fapi"
    return type(
        "LocalAsyncClient",
        (AsyncClient,),
        {
            "FUTURES_URL": fapi,
            "FUTURES_TESTNET_URL": fapi,
            "FUTURES_DEMO_URL": fapi,
            "FUTURES_DATA_URL": f"{base_url}/futures/data",
            "FUTURES_DATA_TESTNET_URL": f"{base_url}/futures/data",
        },
    )


def local_async_client(base_url: str, api_key: str, api_secret: str, **kwargs: Any) -> Any:
    """An `AsyncClient` for the server at `base_url`; close it with `close_connection()`."""
    kwargs.setdefault("testnet", True)
    return local_client_class(base_url)(api_key, api_secret, **kwargs)

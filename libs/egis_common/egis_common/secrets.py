"""Webhook secrets and API tokens: generated here, stored only as salted hashes.

Both are 256-bit random tokens, so a salted SHA-256 is enough (a slow KDF
protects low-entropy passwords, which these are not) and keeps the webhook
check well inside TradingView's 3-second budget. Comparison is constant-time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets as _random

_SCHEME = "sha256"


def new_token(prefix: str = "") -> str:
    """A fresh 256-bit token, URL-safe; `prefix` only helps a person tell tokens apart."""
    return f"{prefix}{_random.token_urlsafe(32)}"


def hash_token(token: str, *, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else _random.token_bytes(16)
    digest = hashlib.sha256(salt + token.encode()).hexdigest()
    return f"{_SCHEME}${salt.hex()}${digest}"


def verify_token(token: str, stored_hash: str) -> bool:
    try:
        scheme, salt_hex, digest = stored_hash.split("$")
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    candidate = hashlib.sha256(salt + token.encode()).hexdigest()
    return hmac.compare_digest(candidate, digest)


def lookup_key(token: str) -> str:
    """An unsalted digest to find a bearer token's row by index; the salted hash is then verified."""
    return hashlib.sha256(token.encode()).hexdigest()

"""How a service logs in to Kafka: SASL/SCRAM-SHA-512 as its own principal (`egis_common.access`).

No username: no login, for a broker without authentication. `kafka_ssl` adds TLS (SASL_SSL), which
production needs wherever the password would cross a network; the local system stays on loopback.
One function per client library, so every client of a service logs in the same way.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka.helpers import create_ssl_context
from faststream.security import BaseSecurity, SASLScram512
from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MECHANISM = "SCRAM-SHA-512"


class KafkaLogin(Protocol):
    # Read-only, so that frozen settings and the frozen `Login` both are one.
    @property
    def kafka_username(self) -> str | None: ...
    @property
    def kafka_password(self) -> SecretStr | None: ...
    @property
    def kafka_ssl(self) -> bool: ...
    @property
    def kafka_ssl_cafile(self) -> str | None: ...


@dataclass(frozen=True)
class Login:
    """A login that is not a service's own settings (the gateway's, a user of the local broker)."""

    kafka_username: str | None
    kafka_password: SecretStr | None
    kafka_ssl: bool = False
    kafka_ssl_cafile: str | None = None


class LoginSettings(BaseSettings):
    """The Kafka address and login of a command run by a person (an operator, the price feed), from EGIS_*."""

    model_config = SettingsConfigDict(env_prefix="EGIS_", extra="ignore")

    kafka_bootstrap_servers: str = "127.0.0.1:9092"
    kafka_username: str | None = None
    kafka_password: SecretStr | None = None
    kafka_ssl: bool = False
    kafka_ssl_cafile: str | None = None


def _ssl_context(login: KafkaLogin) -> ssl.SSLContext | None:
    return create_ssl_context(cafile=login.kafka_ssl_cafile) if login.kafka_ssl else None


def _checked(login: KafkaLogin) -> tuple[str, str] | None:
    if not login.kafka_username:
        return None
    if login.kafka_password is None:
        raise ValueError("kafka_username is set without kafka_password (EGIS_KAFKA_PASSWORD)")
    return login.kafka_username, login.kafka_password.get_secret_value()


def client_options(login: KafkaLogin) -> dict[str, Any]:
    """aiokafka's keyword arguments (producers, consumers, admin clients)."""
    credentials = _checked(login)
    context = _ssl_context(login)
    if credentials is None:
        return {"security_protocol": "SSL", "ssl_context": context} if context else {}
    username, password = credentials
    return {
        "security_protocol": "SASL_SSL" if context else "SASL_PLAINTEXT",
        "sasl_mechanism": MECHANISM,
        "sasl_plain_username": username,
        "sasl_plain_password": password,
        **({"ssl_context": context} if context else {}),
    }


def broker_security(login: KafkaLogin) -> BaseSecurity | None:
    """FastStream's `security=` for a KafkaBroker."""
    credentials = _checked(login)
    context = _ssl_context(login)
    if credentials is None:
        return BaseSecurity(ssl_context=context, use_ssl=True) if context else None
    username, password = credentials
    return SASLScram512(username, password, ssl_context=context, use_ssl=context is not None)

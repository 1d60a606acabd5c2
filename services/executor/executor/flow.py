"""Every message the executor service consumes and produces.

Its subscribers arrive with the executor issue; the foundation only wires the
service's runtime (broker, schema, outbox relay, metrics).
"""

from egis_common.runtime import Runtime


def register(runtime: Runtime) -> None:
    """Attach this service's subscribers and publishers to the runtime's broker."""

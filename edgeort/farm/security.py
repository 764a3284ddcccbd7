"""TLS for the farm: the ``--tls-ca-file``/``--tls-cert``/``--tls-key`` options, turned
into a :class:`distributed.Security` for the scheduler, the workers and the client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgeort.errors import UsageError

__all__ = ["address_with_scheme", "make_security"]


def make_security(
    ca_file: str | Path | None, cert: str | Path | None, key: str | Path | None
) -> Any:
    """A ``distributed.Security`` requiring TLS, or None when no option is given.

    All three are needed together: every party (scheduler, workers, clients) presents a
    certificate signed by the CA, so only holders of such a certificate can submit work.
    """
    given = {"--tls-ca-file": ca_file, "--tls-cert": cert, "--tls-key": key}
    if not any(given.values()):
        return None
    missing = [k for k, v in given.items() if not v]
    if missing:
        raise UsageError(
            f"TLS needs --tls-ca-file, --tls-cert and --tls-key together; missing "
            f"{', '.join(missing)}",
            option=missing[0],
        )
    for option, value in given.items():
        if not Path(str(value)).is_file():
            raise UsageError(f"{option} {value}: no such file", option=option)
    from distributed import Security

    return Security(  # type: ignore[no-untyped-call]
        tls_ca_file=str(ca_file),
        tls_scheduler_cert=str(cert),
        tls_scheduler_key=str(key),
        tls_worker_cert=str(cert),
        tls_worker_key=str(key),
        tls_client_cert=str(cert),
        tls_client_key=str(key),
        require_encryption=True,
    )


def address_with_scheme(address: str, security: Any) -> str:
    """``HOST:PORT`` gets ``tls://`` with TLS and ``tcp://`` without; a scheme given
    is kept."""
    if "://" in address:
        return address
    return f"{'tls' if security is not None else 'tcp'}://{address}"

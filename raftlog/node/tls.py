"""TLS for the node-to-node transport, from three PEM files.

Mutual TLS: every node presents its certificate and verifies its peer's against the
cluster's CA, in both directions, and the dialling side checks the certificate names the
host it dialled (as listed in `--peers`). A half-configured setup is refused at start-up
rather than silently falling back to cleartext.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from raftlog.config import NodeConfig


class TlsConfigError(ValueError):
    """The TLS settings are incomplete or their files cannot be used."""


def internal_tls_contexts(
    config: NodeConfig,
) -> tuple[ssl.SSLContext, ssl.SSLContext] | None:
    """(server, client) contexts for the internal transport, or None for cleartext."""
    files = {
        "internal_tls_cert": config.internal_tls_cert,
        "internal_tls_key": config.internal_tls_key,
        "internal_tls_ca": config.internal_tls_ca,
    }
    given = {name: path for name, path in files.items() if path is not None}
    if not given:
        return None
    if len(given) != len(files):
        missing = ", ".join(sorted(set(files) - set(given)))
        raise TlsConfigError(f"internal TLS needs a certificate, a key and a CA; missing {missing}")
    for name, path in given.items():
        if not Path(path).is_file():
            raise TlsConfigError(f"{name}: {path} is not a readable file")
    ca, cert, key = str(given["internal_tls_ca"]), str(given["internal_tls_cert"]), str(
        given["internal_tls_key"]
    )
    try:
        server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
        server.load_cert_chain(cert, key)
        server.verify_mode = ssl.CERT_REQUIRED
        client = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
        client.load_cert_chain(cert, key)
    except (ssl.SSLError, OSError) as error:
        raise TlsConfigError(f"internal TLS files cannot be used: {error}") from error
    return server, client

"""Client keys for SMART Backend Services (hl7.org/fhir/smart-app-launch/backend-services.html).

``generate_key`` makes an RS384 (RSA 3072) or ES384 (P-384) key pair; the PEM stays with the operator,
the public JWKS is what the hospital registers. ``load_private_key`` reads the PEM named by a
connection (a file, or an environment variable); it is never stored in the database or logged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import ECKey, RSAKey

from gateway.sync.errors import ConnectionConfigError

ALGORITHMS = ("RS384", "ES384")
Key = RSAKey | ECKey


@dataclass(frozen=True)
class GeneratedKey:
    private_pem: bytes
    public_jwks: dict[str, Any]
    kid: str


def generate_key(alg: str = "RS384", kid: str | None = None) -> GeneratedKey:
    if alg == "RS384":
        private: Any = rsa.generate_private_key(public_exponent=65537, key_size=3072)
    elif alg == "ES384":
        private = ec.generate_private_key(ec.SECP384R1())
    else:
        raise ConnectionConfigError(f"alg must be one of {', '.join(ALGORITHMS)}")
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key = _import(pem, alg)
    kid = kid or key.thumbprint()
    return GeneratedKey(pem, public_jwks(key, alg=alg, kid=kid), kid)


def public_jwks(key: Key, *, alg: str, kid: str) -> dict[str, Any]:
    public = dict(key.as_dict(private=False))
    public.update(kid=kid, alg=alg, use="sig")
    return {"keys": [public]}


def _import(pem: bytes, alg: str) -> Key:
    try:
        key: Key = RSAKey.import_key(pem) if alg == "RS384" else ECKey.import_key(pem)
    except Exception:
        raise ConnectionConfigError(f"the private key is not a PEM {alg} key") from None
    if isinstance(key, ECKey) and key.curve_name != "P-384":
        raise ConnectionConfigError("an ES384 key must be on the P-384 curve")
    if not key.is_private:
        raise ConnectionConfigError("the key file holds a public key; a private key is needed")
    return key


def load_private_key(*, alg: str, path: str | None = None, env: str | None = None) -> Key:
    if alg not in ALGORITHMS:
        raise ConnectionConfigError(f"alg must be one of {', '.join(ALGORITHMS)}")
    if path:
        try:
            pem = Path(path).read_bytes()
        except OSError as error:
            raise ConnectionConfigError(f"{path}: {error.strerror}") from None
    elif env:
        value = os.environ.get(env)
        if not value:
            raise ConnectionConfigError(f"environment variable {env} is not set")
        pem = value.encode()
    else:
        raise ConnectionConfigError("a connection needs a private key file or environment variable")
    return _import(pem, alg)

"""The gateway's own signing keys for OpenID Connect id_tokens (RS256) and the JWKS at /auth/jwks.

Keys live in the database (``signing_key``), so every process of a deployment signs with the same key and
serves the same JWKS. The private key is sealed with AES-256-GCM under a key derived (HKDF-SHA256) from
``KAPGW_TOKEN_SIGNING_SECRET``; a database dump alone does not yield it. The first id_token creates a key
when none exists; ``kap-gateway keys rotate`` adds a new key and retires the old ones, which stay in the
JWKS for ``RETIRED_KEY_GRACE`` so id_tokens they signed still verify.

JOSE work is joserfc's (https://jose.authlib.org/): RFC 7517 (JWK), RFC 7519 (JWT), RFC 7518 (RS256).
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from joserfc import jwt
from joserfc.jwk import RSAKey

from gateway.core.config import Settings
from gateway.db.engine import Session
from gateway.db.repositories import launch as launch_repo
from gateway.db.tables import SigningKeyRow

ALG = "RS256"
RSA_BITS = 2048
#: a retired key stays in the JWKS this long (longer than any id_token lives)
RETIRED_KEY_GRACE = timedelta(days=2)
_SEAL_INFO = b"kap-gateway signing key seal v1"


def _seal_key(settings: Settings) -> bytes:
    secret = settings.token_signing_secret.get_secret_value().encode()
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_SEAL_INFO).derive(secret)


def seal(settings: Settings, pem: bytes, kid: str) -> str:
    nonce = secrets.token_bytes(12)
    sealed = AESGCM(_seal_key(settings)).encrypt(nonce, pem, kid.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(settings: Settings, sealed: str, kid: str) -> bytes:
    raw = base64.b64decode(sealed)
    return AESGCM(_seal_key(settings)).decrypt(raw[:12], raw[12:], kid.encode())


def new_key_row(settings: Settings) -> SigningKeyRow:
    kid = secrets.token_urlsafe(12)
    key = RSAKey.generate_key(RSA_BITS, parameters={"kid": kid, "alg": ALG, "use": "sig"})
    return SigningKeyRow(
        kid=kid,
        alg=ALG,
        public_jwk=dict(key.as_dict(private=False)),
        sealed_private_key=seal(settings, key.as_pem(private=True), kid),
        created_at=datetime.now(UTC),
    )


def rotate(session: Session, settings: Settings) -> str:
    """Adds a new signing key and retires the others (they stay in the JWKS for a grace period); commits."""
    row = new_key_row(settings)
    launch_repo.add_signing_key(session, key=row, retire_others_at=datetime.now(UTC))
    session.commit()
    return row.kid


def active_key(session: Session, settings: Settings) -> tuple[str, RSAKey]:
    """The key id_tokens are signed with; created (and flushed) when there is none yet."""
    row = launch_repo.active_signing_key(session)
    if row is None:
        # two processes doing this at once each add a key: both are served, the newest signs
        row = launch_repo.add_signing_key(session, key=new_key_row(settings), retire_others_at=None)
    return row.kid, RSAKey.import_key(unseal(settings, row.sealed_private_key, row.kid))


def jwks(session: Session) -> dict[str, Any]:
    """The public keys: the active one(s) and keys retired within the grace period."""
    rows = launch_repo.signing_keys(session, retired_after=datetime.now(UTC) - RETIRED_KEY_GRACE)
    return {"keys": [row.public_jwk for row in rows]}


def sign_id_token(session: Session, settings: Settings, claims: dict[str, Any]) -> str:
    kid, key = active_key(session, settings)
    return jwt.encode({"alg": ALG, "kid": kid, "typ": "JWT"}, claims, key, algorithms=[ALG])

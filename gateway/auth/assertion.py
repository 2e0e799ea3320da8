"""``private_key_jwt`` client authentication: verifying a client assertion (RFC 7523 §2.2, §3).

Specs: RFC 7523 (https://www.rfc-editor.org/rfc/rfc7523), SMART client-confidential-asymmetric
(https://hl7.org/fhir/smart-app-launch/client-confidential-asymmetric.html) and Backend Services
(https://hl7.org/fhir/smart-app-launch/backend-services.html); checklist BS-3..BS-6, AL-5.

authlib's ``JWTBearerClientAssertion`` does the parsing and the standard claim checks (``iss``, ``sub``,
``aud``, ``exp`` essential, ``iss == sub``, ``jti`` present) with joserfc. What SMART adds and authlib
does not check (checklist AL-5) is done here, before any signature is verified:

- the header: ``alg`` in {RS384, ES384} only (never ``none`` or ``HS*``: the decode is told the one
  algorithm allowed), ``typ`` = ``JWT``, a ``kid``, and a ``jku`` only if it is the client's registered
  JWKS URL (nothing else is ever fetched);
- the key: exactly one key of the client's JWKS with that ``kid`` and a ``kty`` that fits ``alg``
  (RSA for RS384, EC P-384 for ES384); for a JWKS URL an unknown ``kid`` re-fetches the set once
  (rotation), rate-limited by the fetcher;
- the claims: ``exp`` at most ``MAX_LIFETIME_SECONDS`` ahead, ``iss`` = the client, a form ``client_id``
  (if sent) = ``iss``, and the ``jti`` not used before by this client (a row in ``assertion_jti`` until
  the assertion expires, so the check holds across processes).

Every failure is ``invalid_client`` (400: the client did not use the Authorization header) with an
``error_description`` saying which check failed; nothing of the assertion is echoed. An assertion that
names an unknown, disabled or key-less client is still verified against a dummy key of the same type, so
it costs what a real one costs.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from authlib.oauth2.rfc6749 import InvalidClientError
from authlib.oauth2.rfc7523 import JWTBearerClientAssertion
from joserfc import jwk, jwt
from joserfc.errors import JoseError

from gateway.auth import discovery
from gateway.auth.token_request import TokenRequest, UnverifiedAssertion
from gateway.core.config import Settings
from gateway.core.errors import OAuthError
from gateway.db.engine import Session
from gateway.db.repositories import assertions as assertion_repo
from gateway.db.tables import ClientRow
from gateway.sync.jwks import JwksFetcher, JwksFetchError, default_fetcher

METHOD = "private_key_jwt"
#: SMART: "exp ... no more than five minutes in the future"
MAX_LIFETIME_SECONDS = 300
#: clock skew allowed on exp/nbf/iat
LEEWAY_SECONDS = 30
#: alg -> the key type (and EC curve) it needs
ALGORITHMS: Mapping[str, tuple[str, str | None]] = {"RS384": ("RSA", None), "ES384": ("EC", "P-384")}

_DUMMY_KEYS = {
    "RS384": jwk.import_key(jwk.RSAKey.generate_key(2048).as_dict(private=False)),
    "ES384": jwk.import_key(jwk.ECKey.generate_key("P-384").as_dict(private=False)),
}


def _fail(description: str) -> OAuthError:
    return OAuthError("invalid_client", description, status_code=400)


def authenticate_assertion(
    session: Session,
    settings: Settings,
    client: ClientRow | None,
    request: TokenRequest,
    *,
    audiences: tuple[str, ...] | None = None,
) -> ClientRow:
    """The client a ``private_key_jwt`` request authenticates, or ``invalid_client``; the assertion's
    ``aud`` must be the token endpoint URL (or one of ``audiences`` where another endpoint allows more).

    The assertion's jti is committed as used at once: it stays used whatever the grant decides next
    (a replay with another ``scope`` must fail too). No transaction is open while a JWKS is fetched.
    """
    assertion = request.assertion
    assert assertion is not None
    verifier = AssertionVerifier(audience=discovery.token_url(settings), also_audiences=audiences or ())
    authenticated = verifier.verify(
        session,
        client=client,
        assertion=assertion,
        raw=request.form["client_assertion"],
        form_client_id=request.form.get("client_id"),
    )
    session.commit()
    return authenticated


class SmartClientAssertion(JWTBearerClientAssertion):
    """One verification of one client's assertion (made per request: it holds the session and client)."""

    CLIENT_AUTH_METHOD = METHOD

    def __init__(
        self,
        *,
        audience: str | tuple[str, ...],
        session: Session,
        client: ClientRow,
        now: datetime,
        fetcher: JwksFetcher,
    ) -> None:
        super().__init__(validate_jti=True, leeway=LEEWAY_SECONDS)
        self.audience = audience
        self.session = session
        self.client = client
        self.now = now
        self.fetcher = fetcher

    def get_audiences(self) -> list[str]:
        return [self.audience] if isinstance(self.audience, str) else list(self.audience)

    def validate_jti(self, claims: Any, jti: Any) -> bool:
        if not isinstance(jti, str) or not jti or len(jti) > 255:
            raise InvalidClientError(description="jti must be a non-empty string of at most 255 characters")
        exp = claims["exp"]
        assert self.client.id is not None
        return assertion_repo.use_jti(
            self.session,
            client_pk=self.client.id,
            jti_hash=hashlib.sha256(jti.encode("utf-8", "surrogatepass")).hexdigest(),
            expires_at=datetime.fromtimestamp(float(exp) + LEEWAY_SECONDS, UTC),
            now=self.now,
        )


@dataclass
class AssertionVerifier:
    """Verifies ``private_key_jwt`` assertions for the token endpoint whose URL is ``audience``."""

    audience: str
    #: further ``aud`` values accepted (the introspection endpoint's URL)
    also_audiences: tuple[str, ...] = ()
    fetcher: JwksFetcher = field(default_factory=lambda: default_fetcher)
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def verify(
        self,
        session: Session,
        *,
        client: ClientRow | None,
        assertion: UnverifiedAssertion,
        raw: str,
        form_client_id: str | None,
    ) -> ClientRow:
        """The authenticated client, or ``OAuthError(invalid_client)``. Records the jti (flushes only)."""
        alg = assertion.header.get("alg")
        if alg not in ALGORITHMS:
            raise _fail(f"alg must be one of {', '.join(ALGORITHMS)}")
        assert isinstance(alg, str)
        if assertion.header.get("typ") != "JWT":
            raise _fail("typ must be JWT")
        kid = assertion.header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _fail("kid is required in the assertion header")
        if "jwk" in assertion.header or "x5u" in assertion.header or "x5c" in assertion.header:
            raise _fail("keys are taken from the client's registered JWKS only (no jwk, x5u or x5c)")
        issuer = assertion.issuer
        usable = (
            client is not None
            and not client.disabled
            and client.token_endpoint_auth_method == METHOD
            and (client.jwks is not None or client.jwks_uri is not None)
            and issuer == client.client_id
        )
        if not usable or client is None:
            self._dummy_verify(raw, alg)
            if client is not None and issuer == client.client_id and client.disabled:
                raise _fail("the client is disabled")
            raise _fail("unknown client, or the client does not use private_key_jwt")
        if form_client_id is not None and form_client_id != issuer:
            raise _fail("client_id differs from the assertion's iss")
        jku = assertion.header.get("jku")
        if jku is not None and jku != client.jwks_uri:
            raise _fail("jku is not the JWKS URL registered for this client")
        key = self._select_key(client, kid, alg)
        now = self.clock()
        verification = SmartClientAssertion(
            audience=tuple(dict.fromkeys((self.audience, *self.also_audiences))),
            session=session,
            client=client,
            now=now,
            fetcher=self.fetcher,
        )
        try:
            token = jwt.decode(raw, key, algorithms=[alg])
        except JoseError:
            raise _fail("the assertion's signature does not verify with the key named by kid") from None
        claims = token.claims
        exp = claims.get("exp")
        if not isinstance(exp, int | float) or isinstance(exp, bool):
            raise _fail("exp is required (a number)")
        if exp > now.timestamp() + MAX_LIFETIME_SECONDS + LEEWAY_SECONDS:
            raise _fail(f"exp is more than {MAX_LIFETIME_SECONDS} s in the future")
        try:
            verification.verify_claims(jwt.Claims(claims))
        except InvalidClientError as error:
            description = error.description or "the assertion's claims are not valid"
            if description == "JWT ID is used before.":
                description = "the assertion's jti was used before (replay)"
            raise _fail(description) from None
        return client

    def _dummy_verify(self, raw: str, alg: str) -> None:
        with contextlib.suppress(JoseError):
            jwt.decode(raw, _DUMMY_KEYS[alg], algorithms=[alg])

    def _select_key(self, client: ClientRow, kid: str, alg: str) -> jwk.Key:
        if client.jwks is not None:
            return _one_key(client.jwks, kid, alg)
        assert client.jwks_uri is not None
        try:
            jwks = self.fetcher.get(client.jwks_uri)
            if not _with_kid(jwks, kid):
                jwks = self.fetcher.refresh(client.jwks_uri)  # rotation: the kid may be new
        except JwksFetchError as error:
            raise _fail(f"the client's JWKS could not be fetched: {error}") from None
        return _one_key(jwks, kid, alg)


def _with_kid(jwks: Mapping[str, Any], kid: str) -> list[Mapping[str, Any]]:
    keys = jwks.get("keys")
    if not isinstance(keys, list):
        return []
    return [key for key in keys if isinstance(key, dict) and key.get("kid") == kid]


def _one_key(jwks: Mapping[str, Any], kid: str, alg: str) -> jwk.Key:
    kty, crv = ALGORITHMS[alg]
    matching = [
        key
        for key in _with_kid(jwks, kid)
        if key.get("kty") == kty
        and (crv is None or key.get("crv") == crv)
        and key.get("alg", alg) == alg
        and key.get("use", "sig") == "sig"
        and "verify" in key.get("key_ops", ["verify"])
    ]
    if not matching:
        raise _fail(f"no key with this kid and kty {kty} in the client's JWKS")
    if len(matching) > 1:
        raise _fail("more than one key with this kid in the client's JWKS")
    public = {name: value for name, value in matching[0].items() if name not in PRIVATE_MEMBERS}
    try:
        return jwk.import_key(public)
    except (JoseError, ValueError, TypeError):
        raise _fail("the client's key with this kid is not a valid public key") from None


#: JWK members that only private keys carry (RFC 7518 §6.2.2, §6.3.2): never used for verification
PRIVATE_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})


def public_jwks(jwks: Any) -> dict[str, Any]:
    """A JWK Set to register for a client: public RS384/ES384 signature keys, each with a kid.

    Raises ``ValueError`` naming what is wrong (a private key, a missing kid, a duplicate kid ...).
    """
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list) or not jwks["keys"]:
        raise ValueError('a JWK Set is an object {"keys": [...]} with at least one key')
    seen: set[str] = set()
    keys = []
    for index, key in enumerate(jwks["keys"]):
        if not isinstance(key, dict):
            raise ValueError(f"keys[{index}] is not an object")
        if PRIVATE_MEMBERS & set(key):
            raise ValueError(f"keys[{index}] holds private key material: register the public key only")
        kid = key.get("kid")
        if not isinstance(kid, str) or not kid:
            raise ValueError(f"keys[{index}] has no kid")
        if kid in seen:
            raise ValueError(f"keys[{index}]: kid {kid} is used twice")
        seen.add(kid)
        kty = key.get("kty")
        if kty not in ("RSA", "EC") or (kty == "EC" and key.get("crv") != "P-384"):
            raise ValueError(f"keys[{index}]: kty must be RSA or EC with crv P-384 (RS384 / ES384)")
        try:
            jwk.import_key(key)
        except (JoseError, ValueError, TypeError):
            raise ValueError(f"keys[{index}] is not a valid JWK") from None
        keys.append(key)
    return {"keys": keys}

"""SMART discovery: the ``.well-known/smart-configuration`` document (and OpenID Connect's) from Settings.

Spec: SMART App Launch 2.x "Conformance" (https://hl7.org/fhir/smart-app-launch/conformance.html),
checklist DISC-1..9. One function builds the document; the FHIR CapabilityStatement takes its
``oauth-uris`` from the same function (``oauth_uris``), so the two can never disagree (DISC-9).

Every URL is absolute (DISC-4) and derives from ``Settings.base_url``; the token endpoint URL here is the
exact string a client assertion's ``aud`` must carry (BS-5).
"""

from __future__ import annotations

from typing import Any

from gateway.core.config import Settings

#: what the authorization server implements (DISC-7); keep it honest: a capability listed here is tested
CAPABILITIES = (
    "launch-standalone",
    "launch-ehr",
    "client-public",
    "client-confidential-symmetric",
    "client-confidential-asymmetric",
    "sso-openid-connect",
    "context-standalone-patient",
    "context-ehr-patient",
    "context-ehr-encounter",
    "context-banner",
    "context-style",
    "permission-offline",
    "permission-online",
    "permission-patient",
    "permission-user",
    "permission-v1",
    "permission-v2",
    "authorize-post",
)
#: client assertion signature algorithms (SMART client-confidential-asymmetric: RS384 and ES384 only)
ASSERTION_ALGORITHMS = ("RS384", "ES384")
GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
TOKEN_ENDPOINT_AUTH_METHODS = ("private_key_jwt", "client_secret_basic")
SCOPES_SUPPORTED = (
    "openid",
    "fhirUser",
    "profile",
    "launch",
    "launch/patient",
    "offline_access",
    "online_access",
    "patient/*.rs",
    "user/*.rs",
    "system/*.rs",
    "patient/*.read",
    "user/*.read",
    "system/*.read",
)


def issuer(settings: Settings) -> str:
    """The authorization server's issuer (OpenID Connect ``iss`` of id_tokens): the public base URL."""
    return settings.base_url.rstrip("/")


def auth_url(settings: Settings, endpoint: str) -> str:
    return f"{issuer(settings)}/auth/{endpoint}"


def smart_style_url(settings: Settings) -> str:
    """The SMART styling document (``smart_style_url`` of launch token responses, context-style)."""
    return auth_url(settings, "smart-style.json")


def token_url(settings: Settings) -> str:
    """The token endpoint URL: the only ``aud`` a client assertion may name."""
    return auth_url(settings, "token")


def smart_configuration(settings: Settings) -> dict[str, Any]:
    return {
        "issuer": issuer(settings),
        "jwks_uri": auth_url(settings, "jwks"),
        "authorization_endpoint": auth_url(settings, "authorize"),
        "token_endpoint": token_url(settings),
        "introspection_endpoint": auth_url(settings, "introspect"),
        "revocation_endpoint": auth_url(settings, "revoke"),
        "token_endpoint_auth_methods_supported": list(TOKEN_ENDPOINT_AUTH_METHODS),
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": list(GRANT_TYPES),
        "scopes_supported": list(SCOPES_SUPPORTED),
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
        "capabilities": list(CAPABILITIES),
    }


def openid_configuration(settings: Settings) -> dict[str, Any]:
    """OpenID Connect Discovery 1.0 (https://openid.net/specs/openid-connect-discovery-1_0.html),
    the fields OIDC-1 asks for; served at ``{issuer}/.well-known/openid-configuration``."""
    smart = smart_configuration(settings)
    return {
        "issuer": smart["issuer"],
        "authorization_endpoint": smart["authorization_endpoint"],
        "token_endpoint": smart["token_endpoint"],
        "jwks_uri": smart["jwks_uri"],
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "scopes_supported": ["openid", "fhirUser", "profile"],
        "token_endpoint_auth_methods_supported": smart["token_endpoint_auth_methods_supported"],
        "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
        "grant_types_supported": smart["grant_types_supported"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "fhirUser"],
    }


#: CapabilityStatement oauth-uris sub-extension -> smart-configuration field (DISC-9)
OAUTH_URIS = {
    "authorize": "authorization_endpoint",
    "token": "token_endpoint",
    "introspect": "introspection_endpoint",
    "manage": "management_endpoint",
    "register": "registration_endpoint",
    "revoke": "revocation_endpoint",
}


def oauth_uris(settings: Settings) -> dict[str, str]:
    """The CapabilityStatement's oauth-uris (sub-extension url -> valueUri), exactly the well-known ones."""
    smart = smart_configuration(settings)
    return {name: smart[field] for name, field in OAUTH_URIS.items() if field in smart}

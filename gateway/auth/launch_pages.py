"""The HTML of the clinician sign-in, consent and error pages: self-contained (no external assets, no
script), every value escaped, framing refused, and a Content-Security-Policy that allows only the page's
own inline style (by nonce) and form posts to this server (and, from the consent page, the redirect to
the app, which browsers check against ``form-action`` too)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from html import escape
from urllib.parse import urlsplit

from fastapi.responses import HTMLResponse

_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f4f6f8;color:#1d2730;margin:0}
main{max-width:30rem;margin:3rem auto;background:#fff;border-radius:8px;padding:2rem;
box-shadow:0 1px 4px rgba(0,0,0,.12)}
h1{font-size:1.3rem;margin-top:0}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password],select{width:100%;box-sizing:border-box;padding:.5rem;font-size:1rem}
button{margin-top:1.2rem;padding:.6rem 1.2rem;font-size:1rem;border-radius:4px;border:1px solid #245;
cursor:pointer}button.primary{background:#245;color:#fff}ul{padding-left:1.2rem}code{font-size:.9rem}
.error{color:#a11;font-weight:600}.muted{color:#566;font-size:.9rem}
"""

#: SMART App Launch "Styling" (https://hl7.org/fhir/smart-app-launch/scopes-and-launch-context.html#styling):
#: the look of these pages, for apps that want to match it (``smart_style_url``)
SMART_STYLE = {
    "color_background": "#f4f6f8",
    "color_error": "#aa1111",
    "color_highlight": "#224455",
    "color_modal_backdrop": "",
    "color_success": "#227733",
    "color_text": "#1d2730",
    "dim_border_radius": "8px",
    "dim_font_size": "16px",
    "dim_spacing_size": "16px",
    "font_family_body": 'system-ui, -apple-system, "Segoe UI", sans-serif',
    "font_family_heading": 'system-ui, -apple-system, "Segoe UI", sans-serif',
}

#: what the scopes mean, for the consent page
SCOPE_TEXT = {
    "openid": "know who you are (your user identity)",
    "fhirUser": "know your FHIR user record",
    "profile": "see your name",
    "launch/patient": "work with one patient you choose",
    "launch": "open with the patient (and encounter) it was launched for",
    "offline_access": "keep access while you are away (a refresh token)",
    "online_access": "keep access while you are signed in (a refresh token)",
}


def _scope_text(scope: str) -> str:
    """What a scope lets the app do, in words (resource scopes name themselves)."""
    if scope in SCOPE_TEXT:
        return escape(SCOPE_TEXT[scope])
    return f"access FHIR data: <code>{escape(scope)}</code>"


def _page(title: str, body: str, *, status_code: int = 200, form_targets: Sequence[str] = ()) -> HTMLResponse:
    nonce = secrets.token_urlsafe(16)
    sources = " ".join(["'self'", *dict.fromkeys(form_targets)])
    html = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)} - KAP FHIR Gateway</title>"
        f'<style nonce="{nonce}">{_STYLE}</style></head><body><main>{body}</main></body></html>'
    )
    headers = {
        "Content-Security-Policy": (
            f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {sources}; "
            "frame-ancestors 'none'; base-uri 'none'"
        ),
        "X-Frame-Options": "DENY",
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _hidden(name: str, value: str) -> str:
    return f'<input type="hidden" name="{escape(name)}" value="{escape(value)}">'


def origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}"


def error_page(message: str, *, status_code: int = 400) -> HTMLResponse:
    return _page(
        "Authorization error",
        "<h1>This authorization request cannot be completed</h1>"
        f'<p class="error">{escape(message)}</p>'
        '<p class="muted">Return to the app and start again. Nothing was shared.</p>',
        status_code=status_code,
    )


def login_page(
    *, client_name: str, sealed: str, csrf: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    notice = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Sign in",
        f"<h1>Sign in to authorize {escape(client_name)}</h1>{notice}"
        '<form method="post" action="/auth/login">'
        f"{_hidden('request', sealed)}{_hidden('csrf', csrf)}"
        '<label for="username">Username</label>'
        '<input type="text" id="username" name="username" autocomplete="username" required autofocus>'
        '<label for="password">Password</label>'
        '<input type="password" id="password" name="password" autocomplete="current-password" required>'
        '<button class="primary" type="submit">Sign in</button></form>',
        status_code=status_code,
    )


def consent_page(
    *,
    client_name: str,
    user_name: str,
    scopes: Sequence[str],
    patients: Sequence[tuple[str, str]] | None,
    sealed: str,
    csrf: str,
    redirect_uri: str,
    error: str | None = None,
) -> HTMLResponse:
    items = "".join(f"<li>{_scope_text(s)}</li>" for s in scopes)
    picker = ""
    if patients is not None:
        if patients:
            options = "".join(
                f'<option value="{escape(pid)}">{escape(label)}</option>' for pid, label in patients
            )
            picker = (
                '<label for="patient">Patient</label>'
                f'<select id="patient" name="patient" required>{options}</select>'
            )
        else:
            picker = '<p class="error">The clinic has no patients to choose from.</p>'
    notice = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return _page(
        "Authorize app",
        f"<h1>{escape(client_name)} asks for access</h1>{notice}"
        f'<p class="muted">Signed in as {escape(user_name)}.</p>'
        f"<p>If you allow it, the app may:</p><ul>{items}</ul>"
        '<form method="post" action="/auth/consent">'
        f"{_hidden('request', sealed)}{_hidden('csrf', csrf)}{picker}"
        '<button class="primary" type="submit" name="decision" value="approve">Allow</button> '
        '<button type="submit" name="decision" value="deny">Deny</button></form>',
        form_targets=[origin(redirect_uri)],
    )

"""Clinic free text -> FHIR ``string`` values.

FHIR R4 strings may hold no whitespace other than space, tab, CR and LF: the official JSON schema's
``string`` pattern is ``^[ \\r\\n\\t\\S]+$`` (http://hl7.org/fhir/R4/datatypes.html#string), evaluated with
ECMAScript's ``\\s`` (which also counts U+FEFF). Clinic records accept any Unicode text, so a name typed with
a no-break space (U+00A0) or an ideographic space (U+3000) would make an invalid resource; every free-text
value a mapping copies goes through :func:`fhir_string`.
"""

from __future__ import annotations

import re

_OTHER_WHITESPACE = re.compile(r"[^\S \r\n\t]|\ufeff")
#: what is left of a text that held nothing but whitespace: U+FFFD REPLACEMENT CHARACTER
UNREPRESENTABLE = "\ufffd"


def fhir_string(text: str) -> str:
    """``text`` with every other whitespace character (and U+FEFF) replaced by a space, ends stripped."""
    return _OTHER_WHITESPACE.sub(" ", text).strip() or UNREPRESENTABLE

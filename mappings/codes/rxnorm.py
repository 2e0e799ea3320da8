"""RxNorm codes, each with its status and source (docs/codes.md, RxNorm).

System URI: docs/codes.md, Code system URIs (V: HL7 fhir-us-mcc aliases.fsh).
"""

from __future__ import annotations

from typing import Final

RXNORM: Final = "http://www.nlm.nih.gov/research/umls/rxnorm"

# --- doses (mappings/medication_administration.py) ----------------------------------------------------

#: P — docs/codes.md, RxNorm: SBDF, ndclist.com/rxnorm/rxcui/2201625
ESKETAMINE_NASAL_SPRAY_SPRAVATO: Final = {
    "system": RXNORM,
    "code": "2201625",
    "display": "esketamine Nasal Spray [Spravato]",
}

#: Left out on purpose (docs/codes.md, Deliberately not used (unverified)): ketamine IN 6130 (U), esketamine
#: IN (U), the ketamine HCl injection SCDs 238082/238083/238084 (strength mapping inferred, U) and the Ketalar
#: SBDs (term type U).

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

#: Left out on purpose (docs/codes.md, RxNorm: ketamine codes checked (2026-12-02)): ketamine IN 6130 (U: no
#: stored source), esketamine IN (U), the ketamine HCl injection SCDs 238082 / 238083 / 238084 (openFDA links
#: them to 10 / 100 / 50 mg/mL products, but name and term type were not confirmed at NLM, and a dose record
#: has no concentration to choose one) and the Ketalar RxCUIs 206967 / 206970 / 206972 (term type U).

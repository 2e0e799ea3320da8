"""Plain data model and generic scoring for rating-scale instruments.

Pure Python: no I/O, no clock, no settings, no database and no ``fhir.resources`` models. The mapping layer
turns these definitions into Questionnaire / Observation resources; this module only knows codes, ranges and
arithmetic.

Scoring model (shared by every instrument unless its module says otherwise):

* An answer is an integer score per item, keyed by the item's canonical key (``"1"`` .. ``"n"``).
  :meth:`Instrument.normalize` also accepts the item's code (LOINC or local, optionally with the ``/`` prefix
  that LOINC forms use as linkId) and answer codes (``LA…``) instead of integers.
* The total is the sum of the *scored* items. It is computed only when every scored item is answered; with any
  scored item missing, ``Score.total`` and ``Score.band`` are ``None`` (prorating is not clinically validated
  for these scales, so the gateway never guesses). Unscored items (PHQ-9 item 10) never count.
* Safety flags are evaluated on whatever answers are present, complete or not, so a partial form that already
  signals risk is still routed to a clinician.
* Subscores are reported for each subscale whose items are all answered.

Error messages never echo answer values (they may end up in logs; see the PHI rule in STYLE.md).

Code system URIs: ``http://loinc.org`` (docs/codes.md, Code system URIs; verified) and the gateway's local
code system :data:`LOCAL_SYSTEM` for everything without a verified LOINC code (pattern from the MII PRO IG;
docs/codes.md, kap-instruments).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field

LOINC = "http://loinc.org"

LOCAL_SYSTEM = "https://kap-gateway.org/fhir/CodeSystem/kap-instruments"
"""Canonical URI of the gateway's own CodeSystem for instrument codes that have no verified LOINC code.

It is a fixed canonical, deliberately independent of the host a deployment runs on, so codes stay stable
across deployments; the CapabilityStatement / CodeSystem resource published by the gateway declares it.
"""

LOCAL_QUESTIONNAIRE_BASE = LOCAL_SYSTEM.rsplit("/CodeSystem", 1)[0] + "/Questionnaire"

SUICIDAL_IDEATION = "suicidal-ideation"
"""Flag: the answers signal suicidal ideation; route to a clinician."""

HIGH_SUICIDE_RISK = "high-suicide-risk"
"""Flag: C-SSRS screener risk level is high."""


@dataclass(frozen=True, slots=True)
class Code:
    """A Coding-like triple (system, code, display)."""

    system: str
    code: str
    display: str


def loinc(code: str, display: str) -> Code:
    return Code(LOINC, code, display)


def local(code: str, display: str) -> Code:
    return Code(LOCAL_SYSTEM, code, display)


def loinc_form_url(panel_code: str) -> str:
    """Canonical URL of the LOINC (LHC-Forms) Questionnaire for a panel, e.g. ``http://loinc.org/q/44249-1``."""
    return f"{LOINC}/q/{panel_code}"


def local_questionnaire_url(key: str) -> str:
    """Canonical URL of the gateway's own Questionnaire for an instrument without a LOINC form."""
    return f"{LOCAL_QUESTIONNAIRE_BASE}/{key}"


class InstrumentError(ValueError):
    """Invalid answers or total. ``errors`` lists every problem as ``(key as given, message)``."""

    def __init__(self, errors: Iterable[tuple[str, str]]) -> None:
        self.errors: list[tuple[str, str]] = list(errors)
        super().__init__("; ".join(f"{key}: {message}" for key, message in self.errors))


@dataclass(frozen=True, slots=True)
class AnswerOption:
    """One answer choice. ``alternate_codes`` are further codes accepted on input for the same score."""

    score: int
    code: Code | None
    display: str
    alternate_codes: tuple[Code, ...] = ()

    def matches(self, code: str) -> bool:
        return any(c.code == code for c in self.codes())

    def codes(self) -> tuple[Code, ...]:
        return ((self.code,) if self.code is not None else ()) + self.alternate_codes


def numeric_options(labels: Iterable[str]) -> tuple[AnswerOption, ...]:
    """Code-less answer options scored 0, 1, 2, … with the given labels (for scales without LOINC answers)."""
    return tuple(AnswerOption(score, None, label) for score, label in enumerate(labels))


@dataclass(frozen=True, slots=True)
class Item:
    key: str
    code: Code
    text: str
    min_score: int
    max_score: int
    answers: tuple[AnswerOption, ...] = ()
    scored: bool = True

    def answer(self, score: int) -> AnswerOption | None:
        return next((option for option in self.answers if option.score == score), None)

    def score_for_code(self, code: str) -> int:
        """Score of an answer code (primary or alternate); ``KeyError`` if not an answer of this item."""
        for option in self.answers:
            if option.matches(code):
                return option.score
        raise KeyError(f"{code!r} is not an answer code of item {self.key}")


def local_items(
    key: str, label: str, names: Iterable[str], answers: tuple[AnswerOption, ...]
) -> tuple[Item, ...]:
    """Items ``"1"``..``"n"`` coded ``<key>-item-<n>`` in :data:`LOCAL_SYSTEM`.

    Text is ``"<label> item <n>: <name>"`` (``"<label> item <n>"`` for an empty name); the score range is the
    range of ``answers``.
    """
    scores = [option.score for option in answers]
    items = []
    for number, name in enumerate(names, start=1):
        text = f"{label} item {number}: {name}" if name else f"{label} item {number}"
        items.append(
            Item(str(number), local(f"{key}-item-{number}", text), text, min(scores), max(scores), answers)
        )
    return tuple(items)


@dataclass(frozen=True, slots=True)
class Band:
    """A closed score range ``low..high`` with its interpretation."""

    low: int
    high: int
    key: str
    display: str
    code: Code | None = None

    def __contains__(self, total: object) -> bool:
        return isinstance(total, int) and self.low <= total <= self.high


def local_bands(key: str, label: str, rows: Iterable[tuple[int, int, str, str]]) -> tuple[Band, ...]:
    """Bands ``(low, high, band key, display)`` coded in :data:`LOCAL_SYSTEM` as ``<key>-band-<band key>``."""
    return tuple(
        Band(low, high, band_key, display, local(f"{key}-band-{band_key}", f"{label}: {display}"))
        for low, high, band_key, display in rows
    )


@dataclass(frozen=True, slots=True)
class FlagRule:
    """Raise ``flag`` when item ``item_key`` is answered with a score of at least ``min_score``."""

    flag: str
    item_key: str
    min_score: int


@dataclass(frozen=True, slots=True)
class Subscale:
    """A named subscore: the sum of ``item_keys``."""

    key: str
    item_keys: tuple[str, ...]


@dataclass(frozen=True)
class Score:
    total: int | None
    band: Band | None
    flags: tuple[str, ...] = ()
    subscores: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Instrument:
    """A rating-scale definition with generic sum scoring; subclasses override the ``_``-hooks."""

    key: str
    title: str
    panel: Code | None
    total_code: Code
    items: tuple[Item, ...]
    bands: tuple[Band, ...]
    min_total: int
    max_total: int
    questionnaire_url: str
    subscales: tuple[Subscale, ...] = ()
    flag_rules: tuple[FlagRule, ...] = ()
    _index: dict[str, Item] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        index: dict[str, Item] = {}
        for item in self.items:
            for name in (item.key, item.code.code):
                if name in index:
                    raise ValueError(f"{self.key}: item key or code {name!r} defined twice")
                index[name] = item
            if item.min_score > item.max_score:
                raise ValueError(f"{self.key}: item {item.key} has an empty score range")
        object.__setattr__(self, "_index", index)
        self._check_definition()

    def _check_definition(self) -> None:
        expected = self._total_range()
        if (self.min_total, self.max_total) != expected:
            raise ValueError(
                f"{self.key}: total range {self.min_total}-{self.max_total} != items' {expected}"
            )
        previous_high = self.min_total - 1
        for band in self.bands:
            if band.low <= previous_high or band.low > band.high or band.high > self.max_total:
                raise ValueError(f"{self.key}: band {band.key} overlaps, is empty or exceeds the total range")
            previous_high = band.high
        for rule in self.flag_rules:
            self.item(rule.item_key)
        for subscale in self.subscales:
            for item_key in subscale.item_keys:
                self.item(item_key)

    # -- lookups -------------------------------------------------------------------------------------------

    def item(self, key_or_code: str) -> Item:
        """The item with this key (``"1"``), code (``"44250-9"``, ``"madrs-item-1"``) or linkId.

        LinkIds are codes with a leading ``/`` (``"/44250-9"``) as in LOINC forms; else ``KeyError``.
        """
        name = key_or_code.strip() if isinstance(key_or_code, str) else key_or_code
        if isinstance(name, str) and name.startswith("/"):
            name = name[1:]
        try:
            return self._index[name]
        except (KeyError, TypeError):
            raise KeyError(f"{self.key} has no item {key_or_code!r}") from None

    def answer_code(self, item_key: str, score: int) -> Code | None:
        """The code to emit for ``score`` on an item, or ``None`` if the item has no coded answer for it."""
        option = self.item(item_key).answer(score)
        return option.code if option is not None else None

    def band(self, total: int) -> Band | None:
        """The band containing ``total``; ``None`` without bands (CADSS) or for an out-of-range total."""
        return next((band for band in self.bands if total in band), None)

    def codes(self) -> tuple[Code, ...]:
        """Every code this definition uses (panel, total, items, answers, bands) once, in definition order."""
        return tuple(dict.fromkeys(self._all_codes()))

    def _all_codes(self) -> Iterator[Code]:
        if self.panel is not None:
            yield self.panel
        yield self.total_code
        for item in self.items:
            yield item.code
            for option in item.answers:
                yield from option.codes()
        for band in self.bands:
            if band.code is not None:
                yield band.code

    # -- validation ----------------------------------------------------------------------------------------

    def normalize(self, answers: Mapping[str, int | str]) -> dict[str, int]:
        """Map answer keys to canonical item keys and check every answer.

        Keys may be item keys, item codes or ``/``-prefixed linkIds. Values are integer scores or answer codes
        (``"LA6570-1"``). The result is ordered like ``items``. Raises :class:`InstrumentError` listing every
        unknown key, every key of an item given more than once (e.g. as ``"1"`` and ``"44250-9"``), and every
        invalid or out-of-range answer.
        """
        canonical: dict[str, str] = {}
        for raw_key in answers:
            with suppress(KeyError):
                canonical[raw_key] = self.item(raw_key).key
        given_as: dict[str, list[str]] = {}
        for raw_key, item_key in canonical.items():
            given_as.setdefault(item_key, []).append(raw_key)

        errors: list[tuple[str, str]] = []
        values: dict[str, int] = {}
        for raw_key, value in answers.items():
            if raw_key not in canonical:
                errors.append((raw_key, f"unknown item for {self.key}"))
                continue
            item = self.item(raw_key)
            if len(given_as[item.key]) > 1:
                errors.append(
                    (raw_key, f"item {item.key} given more than once ({', '.join(given_as[item.key])})")
                )
                continue
            score, problem = _coerce(item, value)
            if problem is not None:
                errors.append((raw_key, problem))
            else:
                values[item.key] = score
        if errors:
            raise InstrumentError(errors)
        return {item.key: values[item.key] for item in self.items if item.key in values}

    def check_total(self, total: int) -> None:
        """Raise :class:`InstrumentError` unless ``total`` is an integer in ``min_total..max_total``."""
        if isinstance(total, bool) or not isinstance(total, int):
            raise InstrumentError([("total", "total must be an integer")])
        if not self.min_total <= total <= self.max_total:
            raise InstrumentError([("total", f"total out of range {self.min_total}-{self.max_total}")])

    # -- scoring -------------------------------------------------------------------------------------------

    def score(self, answers: Mapping[str, int | str]) -> Score:
        """Total, band, flags and subscores (see the module docstring for partial answers).

        ``answers`` should already be normalized; they are normalized again (idempotent), so invalid input
        still raises :class:`InstrumentError`.
        """
        values = self.normalize(answers)
        total = self._total(values)
        return Score(
            total=total,
            band=self.band(total) if total is not None else None,
            flags=self._flags(values),
            subscores=self._subscores(values),
        )

    def flags(self, answers: Mapping[str, int | str]) -> tuple[str, ...]:
        """Safety flags raised by the answers present (complete or not), in rule order, without duplicates."""
        return self._flags(self.normalize(answers))

    def _total_range(self) -> tuple[int, int]:
        scored = [item for item in self.items if item.scored]
        return sum(item.min_score for item in scored), sum(item.max_score for item in scored)

    def _total(self, values: Mapping[str, int]) -> int | None:
        scored = [item for item in self.items if item.scored]
        if any(item.key not in values for item in scored):
            return None
        return sum(values[item.key] for item in scored)

    def _flags(self, values: Mapping[str, int]) -> tuple[str, ...]:
        raised = [rule.flag for rule in self.flag_rules if values.get(rule.item_key, -1) >= rule.min_score]
        return tuple(dict.fromkeys(raised))

    def _subscores(self, values: Mapping[str, int]) -> dict[str, int]:
        return {
            subscale.key: sum(values[key] for key in subscale.item_keys)
            for subscale in self.subscales
            if all(key in values for key in subscale.item_keys)
        }


def _coerce(item: Item, value: object) -> tuple[int, str | None]:
    """``(score, None)`` for a valid answer, else ``(0, message)``; messages never contain the value."""
    if isinstance(value, str):
        try:
            return item.score_for_code(value.strip()), None
        except KeyError:
            return 0, f"not an answer code of item {item.key}"
    if isinstance(value, bool) or not isinstance(value, int):
        return 0, "answer must be an integer score or an answer code"
    if not item.min_score <= value <= item.max_score:
        return 0, f"answer out of range {item.min_score}-{item.max_score}"
    return value, None

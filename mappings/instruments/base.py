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
* Safety flags come from everything known (:meth:`Instrument.safety`): the answers present, complete or not,
  *and* what a given total implies about the unanswered items. For sum scales the total bounds each unanswered
  item: ``total - (answered others) - (max of the other unanswered)`` from below and ``total - (answered
  others) - (min of the other unanswered)`` from above. A flag is *certain* when its rule holds for every
  completion of the answers consistent with the total, *possible* when it holds for some; a possible but not
  certain flag means the risk is unknown (a safety item was skipped), and the mapping says so.
* A given total must be reachable (:meth:`Instrument.check_total`): between the sum of the answered scored items
  plus the minimum of the unanswered ones and that sum plus their maximum (equal to the computed total when
  every scored item is answered).
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
    """A Coding-like triple (system, code, display); ``display`` is ``""`` where no verified display exists
    (the Coding is then sent without one)."""

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
class Safety:
    """What the answers and a given total say about the instrument's safety flags.

    ``certain``: flags raised by every completion of the answers consistent with the total (these are sent);
    ``possible``: flags raised by at least one such completion; ``missing``: unanswered safety items (items a
    flag rule reads; for the C-SSRS every item the screener requires), in form order.
    """

    certain: tuple[str, ...]
    possible: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def unknown(self) -> tuple[str, ...]:
        """Flags that can be neither raised nor ruled out: a safety item is unanswered."""
        return tuple(flag for flag in self.possible if flag not in self.certain)


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
    #: rated by a clinician (MADRS, CADSS) rather than reported by the patient: decides who is named as the
    #: QuestionnaireResponse author/source and the Observation performer
    clinician_rated: bool = False
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

    def check_total(self, total: int, answers: Mapping[str, int | str] | None = None) -> None:
        """Raise :class:`InstrumentError` unless ``total`` is an integer in ``min_total..max_total`` that the
        (normalized) ``answers`` can reach: with every required item answered it must equal the computed total,
        else lie in :meth:`total_bounds` (C-SSRS: be a risk level some completion of the answers reaches).
        Messages never contain the total or answer values."""
        if isinstance(total, bool) or not isinstance(total, int):
            raise InstrumentError([("total", "total must be an integer")])
        if not self.min_total <= total <= self.max_total:
            raise InstrumentError([("total", f"total out of range {self.min_total}-{self.max_total}")])
        if answers is None:
            return
        values = self.normalize(answers)
        computed = self._total(values)
        if computed is not None and computed != total:
            raise InstrumentError([("total", "total does not equal the total computed from the items")])
        if computed is None and not self._total_possible(values, total):
            message = (
                "total is impossible with the answered items: it must lie between their sum and that sum "
                "plus the maximum of the unanswered items"
            )
            raise InstrumentError([("total", message)])

    def total_bounds(self, answers: Mapping[str, int | str]) -> tuple[int, int]:
        """The lowest and highest total a completion of the (partial) answers can have."""
        return self._total_bounds(self.normalize(answers))

    def missing_required(self, answers: Mapping[str, int | str]) -> tuple[str, ...]:
        """Keys of the items a complete form needs that are unanswered (scored items; C-SSRS: its skip logic)."""
        values = self.normalize(answers)
        return tuple(key for key in self._required(values) if key not in values)

    # -- scoring -------------------------------------------------------------------------------------------

    def score(self, answers: Mapping[str, int | str], total: int | None = None) -> Score:
        """Total, band, flags and subscores (see the module docstring for partial answers).

        ``answers`` should already be normalized; they are normalized again (idempotent), so invalid input
        still raises :class:`InstrumentError`. ``total``, when the clinic gave one, adds the flags it implies
        (``Score.total`` stays the computed total).
        """
        values = self.normalize(answers)
        computed = self._total(values)
        return Score(
            total=computed,
            band=self.band(computed) if computed is not None else None,
            flags=self._safety(values, total).certain,
            subscores=self._subscores(values),
        )

    def flags(self, answers: Mapping[str, int | str], total: int | None = None) -> tuple[str, ...]:
        """Safety flags certain from the answers present (complete or not) and the total, in rule order."""
        return self._safety(self.normalize(answers), total).certain

    def safety(self, answers: Mapping[str, int | str], total: int | None = None) -> Safety:
        """Certain and possible flags and the unanswered safety items (see :class:`Safety`).

        ``total`` must be consistent with the answers (:meth:`check_total`); a total-only record passes ``{}``.
        """
        return self._safety(self.normalize(answers), total)

    def _total_range(self) -> tuple[int, int]:
        scored = [item for item in self.items if item.scored]
        return sum(item.min_score for item in scored), sum(item.max_score for item in scored)

    def _total(self, values: Mapping[str, int]) -> int | None:
        scored = self._scored()
        if any(item.key not in values for item in scored):
            return None
        return sum(values[item.key] for item in scored)

    def _scored(self) -> list[Item]:
        return [item for item in self.items if item.scored]

    def _required(self, values: Mapping[str, int]) -> tuple[str, ...]:
        return tuple(item.key for item in self._scored())

    def _total_bounds(self, values: Mapping[str, int]) -> tuple[int, int]:
        low = high = 0
        for item in self._scored():
            if item.key in values:
                low += values[item.key]
                high += values[item.key]
            else:
                low += item.min_score
                high += item.max_score
        return low, high

    def _total_possible(self, values: Mapping[str, int], total: int) -> bool:
        low, high = self._total_bounds(values)
        return low <= total <= high

    def _safety_items(self, values: Mapping[str, int]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(rule.item_key for rule in self.flag_rules))

    def _item_range(self, values: Mapping[str, int], key: str, total: int | None) -> tuple[int, int]:
        """The scores item ``key`` can have given the answers and the total (its answer when answered)."""
        if key in values:
            return values[key], values[key]
        item = self.item(key)
        low, high = item.min_score, item.max_score
        if total is not None and item.scored:
            others_low, others_high = self._total_bounds({**values, key: 0})
            low, high = max(low, total - others_high), min(high, total - others_low)
        return low, high

    def _safety(self, values: Mapping[str, int], total: int | None) -> Safety:
        certain: list[str] = []
        possible: list[str] = []
        for rule in self.flag_rules:
            low, high = self._item_range(values, rule.item_key, total)
            if low >= rule.min_score:
                certain.append(rule.flag)
            if high >= rule.min_score:
                possible.append(rule.flag)
        missing = tuple(key for key in self._safety_items(values) if key not in values)
        return Safety(tuple(dict.fromkeys(certain)), tuple(dict.fromkeys(possible)), missing)

    def _flags(self, values: Mapping[str, int]) -> tuple[str, ...]:
        """Flags the answers alone raise (``values.get(item) >= min_score``)."""
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

"""Clinic record models: the vocabulary the clinic API and the FHIR mappings share.

The contract is DESIGN.md §4. Every model forbids unknown fields, checks types, enumerations,
physiological ranges and internal consistency. What needs the database (does the referenced
patient exist?) or the deployment's settings (the dose ceiling) is checked in ``gateway/``;
each model declares its cross-record references in ``references`` so that check is generic.

Input rules every record kind shares (the clinic API's "bad input" contract):

* types are strict: a number is a JSON number (never ``"35"`` or ``true``), a boolean is ``true``/``false``
  (never ``0``), an integer is written without a fraction, a timestamp is an RFC 3339 string with seconds and
  an offset (never a number of seconds), a date is ``YYYY-MM-DD``;
* no text anywhere in a record (values and keys) holds a control character other than tab, line feed and
  carriage return, nor a lone surrogate: a NUL cannot be stored in a PostgreSQL text value and neither is
  valid in a FHIR string;
* timestamps lie in 1900-2199 with a UTC offset within -14:00..+14:00 (so each is a valid FHIR dateTime and
  converts to UTC); what depends on the clock (at most 5 years ahead, birth dates not in the future) needs
  "now", which this pure module takes as an argument: :meth:`RecordModel.clock_errors`, called by the gateway;
* ids are 1-64 characters ``[A-Za-z0-9._-]`` and not made only of dots (``.``/``..`` are not addressable).
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError

from mappings.fhir_text import fhir_string
from mappings.instruments import INSTRUMENTS, InstrumentError, Score, get_instrument

#: 1-64 of ``[A-Za-z0-9._-]`` with at least one character that is not a dot (pair it with
#: EXTERNAL_ID_MAX_LENGTH; pydantic's regex engine has no look-ahead to say both in one pattern)
EXTERNAL_ID_PATTERN = r"^[A-Za-z0-9._-]*[A-Za-z0-9_-][A-Za-z0-9._-]*$"
EXTERNAL_ID_MAX_LENGTH = 64
ExternalId = Annotated[str, StringConstraints(max_length=EXTERNAL_ID_MAX_LENGTH, pattern=EXTERNAL_ID_PATTERN)]

#: strict scalars: no "35" for a number, no true for a number, no 0 for a boolean, no 35.0 for an integer
Number = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Integer = Annotated[int, Strict()]
Flag = Annotated[bool, Strict()]

# --- text: control characters -----------------------------------------------------------------------------

#: Unicode control characters (Cc) other than tab, line feed and carriage return, and lone surrogates (Cs)
_FORBIDDEN_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def forbidden_character(text: str) -> str | None:
    """The first control character (other than tab, LF, CR) or lone surrogate in ``text``, as ``U+XXXX``."""
    found = _FORBIDDEN_CHARACTER.search(text)
    return None if found is None else f"U+{ord(found.group()):04X}"


def _text_errors(value: Any, loc: tuple[str | int, ...]) -> list[InitErrorDetails]:
    """One error per string (value or key) anywhere in ``value`` that holds a forbidden character."""
    errors: list[InitErrorDetails] = []
    if isinstance(value, str):
        if (code := forbidden_character(value)) is not None:
            errors.append(
                InitErrorDetails(
                    type=PydanticCustomError(
                        "control_character",
                        "text may not contain control character {code} (only tab, line feed and carriage "
                        "return are allowed)",
                        {"code": code},
                    ),
                    loc=loc,
                    input="",
                )
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and forbidden_character(key) is not None:
                # the key itself cannot be echoed into a loc path: name the object that holds it
                errors.append(
                    InitErrorDetails(
                        type=PydanticCustomError(
                            "control_character", "a key in this object holds a control character"
                        ),
                        loc=loc,
                        input="",
                    )
                )
                continue
            errors += _text_errors(item, (*loc, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            errors += _text_errors(item, (*loc, index))
    return errors


# --- timestamps and dates ---------------------------------------------------------------------------------

#: RFC 3339 date-time (what OpenAPI's ``format: date-time`` means), seconds and offset required
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-]\d\d:\d\d)")
_ISO_DATE = re.compile(r"\d{4}-\d\d-\d\d")
#: the years a record's timestamps and dates may fall in (each stays a valid FHIR dateTime, converts to UTC)
FIRST_YEAR, LAST_YEAR = 1900, 2199
#: a UTC offset beyond this is not a real time zone and not a valid FHIR dateTime
MAX_UTC_OFFSET = timedelta(hours=14)
#: how far ahead of "now" a timestamp may lie (a scheduled session; anything further is a typo)
MAX_FUTURE = timedelta(days=5 * 365 + 1)


def _timestamp_text(value: Any) -> Any:
    """A datetime (from Python callers) or an RFC 3339 string; never a number of seconds."""
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _RFC3339.fullmatch(value):
        raise PydanticCustomError(
            "datetime_format",
            "a timestamp is an RFC 3339 date-time string with seconds and a UTC offset, e.g. "
            "2026-11-02T09:00:00-08:00",
        )
    return value


def _timestamp_range(value: datetime) -> datetime:
    offset = value.utcoffset()
    assert offset is not None  # AwareDatetime
    if abs(offset) > MAX_UTC_OFFSET:
        raise PydanticCustomError("datetime_offset", "the UTC offset must be within -14:00 and +14:00")
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "datetime_range",
            "a timestamp must lie in the years {first} to {last}",
            {"first": FIRST_YEAR, "last": LAST_YEAR},
        )
    return value


def _date_text(value: Any) -> Any:
    """A date (from Python callers) or a YYYY-MM-DD string; never a number or a date-time."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value):
        raise PydanticCustomError("date_format", "a date is a YYYY-MM-DD string")
    return value


def _date_range(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise PydanticCustomError(
            "date_range",
            "a date must lie in the years {first} to {last}",
            {"first": FIRST_YEAR, "last": LAST_YEAR},
        )
    return value


#: what the OpenAPI document says of timestamps and dates (the years and offsets above as patterns)
TIMESTAMP_SCHEMA = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^(19|2[01])\d\d-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(\.\d{1,6})?([Zz]|[+-](0\d|1[0-3]):[0-5]\d|[+-]14:00)$",
    "description": "RFC 3339 with seconds and offset, years 1900-2199, offset within -14:00..+14:00, at most "
    "5 years ahead",
}
DATE_SCHEMA = {"type": "string", "format": "date", "pattern": r"^(19|2[01])\d\d-\d\d-\d\d$"}

#: an instant with its offset as the clinic sent it (RFC 3339, 1900-2199, offset within +-14:00)
Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_timestamp_text),
    AfterValidator(_timestamp_range),
    WithJsonSchema(TIMESTAMP_SCHEMA),
]
#: a calendar date (YYYY-MM-DD, 1900-2199)
Date = Annotated[date, BeforeValidator(_date_text), AfterValidator(_date_range), WithJsonSchema(DATE_SCHEMA)]


class ClockError(BaseModel):
    """A rule that needs the current time, broken: the field and the message (see RecordModel.clock_errors)."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str
    type: str


#: free text that is also a valid FHIR string (other Unicode whitespace becomes a space)
ShortText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(fhir_string)
]


class RecordModel(BaseModel):
    """Base of every clinic record: strict about unknown fields, types and text, immutable once validated."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    #: field name -> record kind it must name (checked against the database by the gateway)
    references: ClassVar[dict[str, str]] = {}
    #: the field naming the patient this record belongs to (None for patients and practitioners)
    patient_field: ClassVar[str | None] = "patient_id"
    #: False for kinds that come only from EHR imports (read-only in the clinic API)
    writable: ClassVar[bool] = True

    @model_validator(mode="before")
    @classmethod
    def _no_control_characters(cls, data: Any) -> Any:
        """Every string in the record, nested or not, value or key, is free of control characters."""
        errors = _text_errors(data, ())
        if errors:
            raise ValidationError.from_exception_data(cls.__name__, errors)
        return data

    def clock_errors(self, now: datetime) -> list[ClockError]:
        """The rules that need the current time (this module has no clock: the gateway passes ``now``):
        no timestamp more than MAX_FUTURE ahead of ``now``."""
        latest = now + MAX_FUTURE
        return [
            ClockError(
                field=name,
                message=f"{name} is more than 5 years ahead (after {latest:%Y-%m-%d})",
                type="datetime_future",
            )
            for name in type(self).model_fields
            if isinstance(value := getattr(self, name), datetime) and value > latest
        ]


# --- patients -----------------------------------------------------------------------------------------


class Sex(StrEnum):
    female = "female"
    male = "male"
    other = "other"
    unknown = "unknown"


class Identifier(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    system: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^(urn:|https?://)\S+$")]
    value: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    line: Annotated[list[ShortText], Field(min_length=1, max_length=4)] | None = None
    city: ShortText | None = None
    state: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] | None = None
    postal_code: Annotated[str, StringConstraints(pattern=r"^\d{5}(-\d{4})?$")] | None = None
    country: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")] = "US"


class PatientRecord(RecordModel):
    patient_field: ClassVar[str | None] = None

    given_name: ShortText
    family_name: ShortText
    birth_date: Date
    sex: Sex
    identifiers: Annotated[list[Identifier], Field(max_length=10)] = []
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9 ()./-]{7,20}$")] | None = None
    email: Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254)] | None = (
        None
    )
    address: Address | None = None

    def clock_errors(self, now: datetime) -> list[ClockError]:
        """A birth date is not in the future anywhere on Earth (the clinic's day may be up to 14 h ahead
        of UTC)."""
        errors = super().clock_errors(now)
        if self.birth_date > (now + MAX_UTC_OFFSET).date():
            errors.append(
                ClockError(field="birth_date", message="birth_date is in the future", type="date_future")
            )
        return errors

    @field_validator("identifiers")
    @classmethod
    def _unique_identifier_systems(cls, value: list[Identifier]) -> list[Identifier]:
        systems = [identifier.system for identifier in value]
        if len(systems) != len(set(systems)):
            raise PydanticCustomError("duplicate_identifier", "each identifier system may appear once")
        return value


# --- practitioners ------------------------------------------------------------------------------------


def npi_is_valid(npi: str) -> bool:
    """Luhn check of a 10-digit NPI with the 80840 health-industry prefix (CMS NPI check digit)."""
    if not re.fullmatch(r"\d{10}", npi):
        return False
    digits = [int(d) for d in "80840" + npi[:9]]
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 0:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return (10 - total % 10) % 10 == int(npi[9])


class PractitionerRecord(RecordModel):
    patient_field: ClassVar[str | None] = None

    name: ShortText
    given_name: ShortText | None = None
    family_name: ShortText | None = None
    npi: Annotated[str, StringConstraints(pattern=r"^\d{10}$")] | None = None
    qualification: ShortText | None = None

    @field_validator("npi")
    @classmethod
    def _npi_check_digit(cls, value: str | None) -> str | None:
        if value is not None and not npi_is_valid(value):
            raise PydanticCustomError("npi_check_digit", "NPI check digit is wrong")
        return value


# --- sessions -----------------------------------------------------------------------------------------


class SessionKind(StrEnum):
    preparation = "preparation"
    dosing = "dosing"
    integration = "integration"
    assessment = "assessment"


class Modality(StrEnum):
    iv = "iv"
    im = "im"
    sublingual = "sublingual"
    oral = "oral"
    intranasal = "intranasal"


class SessionStatus(StrEnum):
    planned = "planned"
    in_progress = "in-progress"
    completed = "completed"
    cancelled = "cancelled"


def _not_before(later: datetime | None, earlier: datetime, name: str, other: str) -> None:
    if later is not None and later < earlier:
        raise PydanticCustomError(
            "time_order", "{name} must not be before {other}", {"name": name, "other": other}
        )


class SessionRecord(RecordModel):
    references: ClassVar[dict[str, str]] = {"patient_id": "patients", "practitioner_id": "practitioners"}

    patient_id: ExternalId
    kind: SessionKind
    start: Timestamp
    end: Timestamp | None = None
    practitioner_id: ExternalId | None = None
    modality: Modality | None = None
    psychotherapy_minutes: Annotated[Integer, Field(ge=0, le=600)] | None = None
    status: SessionStatus = SessionStatus.completed

    @model_validator(mode="after")
    def _consistent(self) -> SessionRecord:
        _not_before(self.end, self.start, "end", "start")
        if self.end is not None and (self.end - self.start).total_seconds() > 24 * 3600:
            raise PydanticCustomError("session_length", "a session lasts at most 24 hours")
        if self.modality is not None and self.kind is not SessionKind.dosing:
            raise PydanticCustomError("modality_kind", "modality is given only for dosing sessions")
        return self


# --- doses --------------------------------------------------------------------------------------------


class Medication(StrEnum):
    ketamine = "ketamine"
    esketamine = "esketamine"


class Route(StrEnum):
    iv = "iv"
    im = "im"
    sublingual = "sublingual"
    oral = "oral"
    buccal = "buccal"
    intranasal = "intranasal"


class DoseForm(StrEnum):
    solution = "solution"  # IV / IM ketamine HCl injection
    troche = "troche"  # compounded sublingual/buccal troche or lozenge
    tablet = "tablet"  # compounded oral or orally disintegrating tablet
    nasal_spray = "nasal-spray"  # Spravato device


ESKETAMINE_DEVICE_MG = 28
#: the smallest amounts taken as real (below them a value is a unit mistake, and a dose text such as
#: "0.000...01 mg" would run to hundreds of digits): 0.1 mg, 0.01 mg/kg, a 1 mg troche or tablet
MIN_DOSE_MG = 0.1
MIN_DOSE_MG_PER_KG = 0.01
MIN_UNIT_STRENGTH_MG = 1.0
#: how far ``end`` - ``administered_at`` may differ from ``infusion_minutes`` (``infusion_minutes`` is whole
#: minutes, so an end up to a minute either side is the same infusion; docs/codes.md, CPT)
INFUSION_END_TOLERANCE = timedelta(minutes=1)

DOSE_MG_DESCRIPTION = (
    "Total dose given, in mg of the base (ketamine or esketamine), not of the hydrochloride salt: the "
    "strengths of ketamine hydrochloride injection and of Spravato are labelled as the base (e.g. 50 mg/mL "
    "ketamine as the hydrochloride; 28 mg esketamine per device = 32.3 mg esketamine hydrochloride), as "
    "RxNorm names them (docs/codes.md, RxNorm)."
)
UNIT_STRENGTH_DESCRIPTION = (
    "Strength of one troche or tablet, in mg of ketamine base (as dose_mg); a pharmacy label giving mg of "
    "ketamine hydrochloride must be converted (1 mg ketamine HCl = 0.867 mg ketamine base)."
)
END_DESCRIPTION = (
    "When the administration ended (an infusion's stop time). With infusion_minutes it must agree to within "
    "1 minute: end - administered_at = infusion_minutes."
)
INFUSION_MINUTES_DESCRIPTION = (
    "How long the IV infusion actually ran, in whole minutes (iv only); dose_mg is what ran in that time, "
    "and the rate sent is derived from it. With end it must agree to within 1 minute."
)


def _minutes_text(length: timedelta) -> str:
    """E.g. "41 min", "41 min 1 s", "-5 min"."""
    seconds = round(length.total_seconds())
    sign, seconds = ("-" if seconds < 0 else ""), abs(seconds)
    text = f"{sign}{seconds // 60} min"
    return text + (f" {seconds % 60} s" if seconds % 60 else "")


def _infusion_length_agrees(administered_at: datetime, end: datetime, minutes: int) -> None:
    """Refuses an infusion whose period (administered_at .. end) and infusion_minutes disagree.

    Both fields are named (``end`` and ``infusion_minutes``): either may be the wrong one.
    """
    length = end - administered_at
    if abs(length - timedelta(minutes=minutes)) <= INFUSION_END_TOLERANCE:
        return
    error = PydanticCustomError(
        "infusion_length",
        "end is {length} after administered_at but infusion_minutes is {minutes} (they must agree to "
        "within 1 minute)",
        {"length": _minutes_text(length), "minutes": minutes},
    )
    raise ValidationError.from_exception_data(
        "DoseRecord",
        [
            InitErrorDetails(type=error, loc=("end",), input=end.isoformat()),
            InitErrorDetails(type=error, loc=("infusion_minutes",), input=minutes),
        ],
    )


def _dose_agrees_with_weight(dose_mg: float, weight_kg: float, dose_mg_per_kg: float) -> None:
    """Refuses a dose that is not weight_kg * dose_mg_per_kg (within 5% or 1 mg), naming dose_mg and
    dose_mg_per_kg (either may be the wrong one)."""
    expected = weight_kg * dose_mg_per_kg
    if abs(expected - dose_mg) <= max(1.0, 0.05 * expected):
        return
    error = PydanticCustomError(  # the template takes no format specs: the numbers are formatted here
        "dose_per_kg",
        "dose_mg {dose} does not match weight_kg * dose_mg_per_kg = {expected} (they must agree to within 5% "
        "or 1 mg)",
        {"dose": f"{dose_mg:g}", "expected": f"{expected:.1f}"},
    )
    raise ValidationError.from_exception_data(
        "DoseRecord",
        [
            InitErrorDetails(type=error, loc=("dose_mg",), input=dose_mg),
            InitErrorDetails(type=error, loc=("dose_mg_per_kg",), input=dose_mg_per_kg),
        ],
    )


class DoseRecord(RecordModel):
    references: ClassVar[dict[str, str]] = {"session_id": "sessions", "practitioner_id": "practitioners"}
    patient_field: ClassVar[str | None] = None  # the patient is the session's

    session_id: ExternalId
    medication: Medication
    route: Route
    dose_mg: Annotated[Number, Field(ge=MIN_DOSE_MG)] = Field(description=DOSE_MG_DESCRIPTION)
    administered_at: Timestamp
    end: Timestamp | None = Field(default=None, description=END_DESCRIPTION)
    weight_kg: Annotated[Number, Field(ge=2, le=400)] | None = None
    dose_mg_per_kg: Annotated[Number, Field(ge=MIN_DOSE_MG_PER_KG, le=10)] | None = None
    infusion_minutes: Annotated[Integer, Field(ge=1, le=600)] | None = Field(
        default=None, description=INFUSION_MINUTES_DESCRIPTION
    )
    lot_number: (
        Annotated[str, StringConstraints(min_length=1, max_length=64), AfterValidator(fhir_string)] | None
    ) = None
    form: DoseForm | None = None
    unit_strength_mg: Annotated[Number, Field(ge=MIN_UNIT_STRENGTH_MG, le=2000)] | None = Field(
        default=None, description=UNIT_STRENGTH_DESCRIPTION
    )
    practitioner_id: ExternalId | None = None
    status: Literal["completed", "stopped", "in-progress"] = "completed"

    @model_validator(mode="after")
    def _consistent(self) -> DoseRecord:
        _not_before(self.end, self.administered_at, "end", "administered_at")
        if self.medication is Medication.esketamine:
            if self.route is not Route.intranasal:
                raise PydanticCustomError("esketamine_route", "esketamine is given intranasally only")
            if self.dose_mg % ESKETAMINE_DEVICE_MG or self.dose_mg > 3 * ESKETAMINE_DEVICE_MG:
                raise PydanticCustomError(
                    "esketamine_dose", "esketamine doses are 28, 56 or 84 mg (28 mg per nasal device)"
                )
        if self.infusion_minutes is not None and self.route is not Route.iv:
            raise PydanticCustomError("infusion_route", "infusion_minutes applies to the iv route only")
        if self.end is not None and self.infusion_minutes is not None:
            _infusion_length_agrees(self.administered_at, self.end, self.infusion_minutes)
        if self.weight_kg is not None and self.dose_mg_per_kg is not None:
            _dose_agrees_with_weight(self.dose_mg, self.weight_kg, self.dose_mg_per_kg)
        if self.unit_strength_mg is not None and self.form not in (DoseForm.troche, DoseForm.tablet):
            raise PydanticCustomError("unit_strength", "unit_strength_mg applies to troche and tablet forms")
        return self


# --- vitals -------------------------------------------------------------------------------------------


class Phase(StrEnum):
    baseline = "baseline"
    during = "during"
    post = "post"


#: measure -> (lower, upper) physiological bounds accepted from a monitor
VITAL_BOUNDS: dict[str, tuple[float, float]] = {
    "systolic": (40, 300),
    "diastolic": (20, 200),
    "heart_rate": (20, 250),
    "resp_rate": (4, 70),
    "spo2": (50, 100),
    "temperature_c": (30, 45),
    "weight_kg": (2, 400),
}


def _bounded(measure: str) -> Any:
    """An optional measure within its VITAL_BOUNDS."""
    low, high = VITAL_BOUNDS[measure]
    return Field(default=None, ge=low, le=high)


#: a measure (strict number)
Measure = Number | None


class VitalsRecord(RecordModel):
    references: ClassVar[dict[str, str]] = {"patient_id": "patients", "session_id": "sessions"}

    patient_id: ExternalId
    taken_at: Timestamp
    session_id: ExternalId | None = None
    phase: Phase | None = None
    systolic: Measure = _bounded("systolic")
    diastolic: Measure = _bounded("diastolic")
    heart_rate: Measure = _bounded("heart_rate")
    resp_rate: Measure = _bounded("resp_rate")
    spo2: Measure = _bounded("spo2")
    temperature_c: Measure = _bounded("temperature_c")
    weight_kg: Measure = _bounded("weight_kg")

    def measures(self) -> dict[str, float]:
        return {name: value for name in VITAL_BOUNDS if (value := getattr(self, name)) is not None}

    @model_validator(mode="after")
    def _consistent(self) -> VitalsRecord:
        if not self.measures():
            raise PydanticCustomError("no_measure", "give at least one of " + ", ".join(VITAL_BOUNDS))
        if (self.systolic is None) != (self.diastolic is None):
            raise PydanticCustomError("bp_pair", "systolic and diastolic are given together")
        if self.systolic is not None and self.diastolic is not None and self.systolic <= self.diastolic:
            raise PydanticCustomError("bp_order", "systolic must be higher than diastolic")
        return self


# --- assessments --------------------------------------------------------------------------------------


ANSWER_CODE = re.compile(r"^LA\d{1,8}-\d$")


def _answer(value: Any) -> int | str:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and ANSWER_CODE.fullmatch(value):
        return value
    raise PydanticCustomError("answer_type", "an answer is a score (integer) or a LOINC answer code (LA...)")


#: an item answer: its score, or its LOINC answer code
Answer = Annotated[
    int | str,
    BeforeValidator(_answer),
    WithJsonSchema({"anyOf": [{"type": "integer"}, {"type": "string", "pattern": ANSWER_CODE.pattern}]}),
]


class AssessmentRecord(RecordModel):
    references: ClassVar[dict[str, str]] = {
        "patient_id": "patients",
        "session_id": "sessions",
        "rater_id": "practitioners",
    }

    patient_id: ExternalId
    instrument: str
    taken_at: Timestamp
    #: item number or LOINC item code -> score, or LOINC answer code (``"LA6570-1"``); stored as scores
    items: (
        Annotated[
            dict[Annotated[str, StringConstraints(max_length=16)], Answer],
            Field(max_length=40),
        ]
        | None
    ) = None
    total: Integer | None = None
    session_id: ExternalId | None = None
    #: the practitioner who rated (MADRS, CADSS) or administered the instrument
    rater_id: ExternalId | None = None

    @field_validator("instrument")
    @classmethod
    def _known_instrument(cls, value: str) -> str:
        if value not in INSTRUMENTS:
            raise PydanticCustomError(
                "unknown_instrument", "unknown instrument; known: {known}", {"known": ", ".join(INSTRUMENTS)}
            )
        return value

    @field_validator("items")
    @classmethod
    def _answers_in_range(cls, value: dict[str, int] | None, info: ValidationInfo) -> dict[str, int] | None:
        """Maps LOINC item codes to item numbers and range-checks every answer.

        Every bad answer is reported; ``item_errors`` in the error context lets the API name each
        one as ``items.<key>``.
        """
        if value is None or "instrument" not in info.data:
            return value
        try:
            return get_instrument(info.data["instrument"]).normalize(value)
        except InstrumentError as error:
            raise PydanticCustomError(
                "item_answers",
                "{summary}",
                {
                    "summary": "; ".join(f"{key}: {message}" for key, message in error.errors),
                    ITEM_ERRORS: [[key, message] for key, message in error.errors],
                },
            ) from None

    @field_validator("total")
    @classmethod
    def _total_possible(cls, value: int | None, info: ValidationInfo) -> int | None:
        """The total is in range and reachable from the items: equal to the computed total when every scored
        item is answered, else between the answered items' sum and that sum plus the unanswered items' maximum
        (``Instrument.check_total``). Reported at ``total``; skipped when the items themselves are invalid."""
        if value is None or "instrument" not in info.data:
            return value
        instrument = get_instrument(info.data["instrument"])
        items = info.data.get("items")  # absent when the items were invalid: range check only
        for kind, answers in (("total_range", None), ("total_mismatch", items)):
            if kind == "total_mismatch" and answers is None:
                break
            try:
                instrument.check_total(value, answers)
            except InstrumentError as error:
                raise PydanticCustomError(kind, "; ".join(msg for _, msg in error.errors)) from None
        return value

    @model_validator(mode="after")
    def _some_answers(self) -> AssessmentRecord:
        if self.items is None and self.total is None:
            raise PydanticCustomError("no_answers", "give items, total or both")
        return self

    def scores(self) -> dict[str, int]:
        """The answers as scores by item key (validation already turned answer codes into scores)."""
        return {key: int(value) for key, value in (self.items or {}).items()}

    def score(self) -> Score | None:
        """The instrument's score of the given items, flags including what the total implies (None when no
        items were given)."""
        if self.items is None:
            return None
        return get_instrument(self.instrument).score(self.items, self.total)


#: key in a PydanticCustomError context listing per-item (key, message) pairs
ITEM_ERRORS = "item_errors"


# --- adverse events -----------------------------------------------------------------------------------


class AdverseEventKind(StrEnum):
    nausea = "nausea"
    vomiting = "vomiting"
    hypertension = "hypertension"
    tachycardia = "tachycardia"
    agitation = "agitation"
    excessive_sedation = "excessive-sedation"
    dissociation = "dissociation"
    headache = "headache"
    other = "other"


class Severity(StrEnum):
    mild = "mild"
    moderate = "moderate"
    severe = "severe"


class AdverseEventRecord(RecordModel):
    references: ClassVar[dict[str, str]] = {
        "patient_id": "patients",
        "session_id": "sessions",
        "dose_id": "doses",
    }

    patient_id: ExternalId
    event: AdverseEventKind
    severity: Severity
    onset: Timestamp
    session_id: ExternalId | None = None
    dose_id: ExternalId | None = None
    serious: Flag = False
    resolved_at: Timestamp | None = None
    note: Annotated[str, StringConstraints(max_length=2000), AfterValidator(fhir_string)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> AdverseEventRecord:
        _not_before(self.resolved_at, self.onset, "resolved_at", "onset")
        if self.event is AdverseEventKind.other and not self.note:
            raise PydanticCustomError("other_needs_note", "an event of kind 'other' needs a note")
        return self


#: URL segment -> record model, in the order a backfill must load them
RECORD_KINDS: dict[str, type[RecordModel]] = {
    "patients": PatientRecord,
    "practitioners": PractitionerRecord,
    "sessions": SessionRecord,
    "doses": DoseRecord,
    "vitals": VitalsRecord,
    "assessments": AssessmentRecord,
    "adverse-events": AdverseEventRecord,
}

RecordKind = Literal[
    "patients", "practitioners", "sessions", "doses", "vitals", "assessments", "adverse-events"
]


# --- imported referral records (read-only in the clinic API) -------------------------------------------
#
# Conditions, medication requests and allergies that arrive with a referral from a hospital EHR
# (DESIGN §3 "Referral import"): built only by ``mappings.inbound.from_fhir_*`` and served by the FHIR
# server through ``mappings.referrals.to_fhir_*``. The clinic API never accepts them in a PUT.


#: FHIR ``id`` (hl7.org/fhir/R4/datatypes.html#id)
FhirId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9\-.]{1,64}$")]
#: a free-text element carried over from an EHR (problem names, sig lines, reaction texts), always a valid
#: FHIR string (other whitespace such as U+00A0 becomes a space), so it survives a FHIR round trip
ImportedText = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000), AfterValidator(fhir_string)
]
#: a FHIR dateTime reduced to a year ("2019") or a year and month ("2019-03")
PartialDate = Annotated[str, StringConstraints(pattern=r"^\d{4}(-(0[1-9]|1[0-2]))?$")]


def _not_a_number(value: Any) -> Any:
    if isinstance(value, int | float):  # pydantic would read a number as a unix timestamp
        raise PydanticCustomError("fhir_datetime", "a FHIR dateTime is a string or a date")
    return value


#: a FHIR dateTime of any precision (hl7.org/fhir/R4/datatypes.html#dateTime): "2019", "2019-03", a date,
#: or a date-time with its offset (kept as given). Left to right, so "2019-03-04" stays a date.
#: Models using it run ``_not_a_number`` before validating it.
FhirDateTime = Annotated[
    PartialDate
    | Annotated[AwareDatetime, AfterValidator(_timestamp_range)]
    | Annotated[date, AfterValidator(_date_range)],
    Field(union_mode="left_to_right"),
]


class RecordCoding(BaseModel):
    """One coding of an imported concept, kept as the EHR sent it (any code system, display optional)."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    system: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^(urn:|https?://)\S+$")]
    code: Annotated[str, StringConstraints(min_length=1, max_length=255, pattern=r"^\S+( \S+)*$")]
    display: ImportedText | None = None


Codings = Annotated[list[RecordCoding], Field(max_length=20)]


def _code_or_text(codes: list[RecordCoding], text: str | None) -> None:
    if not codes and text is None:
        raise PydanticCustomError("code_or_text", "give at least one coding or a text")
    _unique([(coding.system, coding.code) for coding in codes], "coding (system and code)")


class RecordConcept(BaseModel):
    """A coded concept (reaction manifestation): codings and/or a text."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    codes: Codings = []
    text: ImportedText | None = None

    @model_validator(mode="after")
    def _consistent(self) -> RecordConcept:
        _code_or_text(self.codes, self.text)
        return self


class RecordSource(BaseModel):
    """The EHR resource a record was imported from."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    #: the gateway's name of the EHR connection the resource came from (None when the importer did not say)
    ehr: ExternalId | None = None
    resource_type: Literal["Condition", "MedicationRequest", "AllergyIntolerance"]
    id: FhirId
    #: the EHR's meta.versionId, when it sent one
    version: FhirId | None = None


def _unique(values: list[Any], name: str) -> None:
    if len(values) != len(set(values)):
        raise PydanticCustomError("duplicate_value", "each {name} may appear once", {"name": name})


def _source_type(source: RecordSource, resource_type: str) -> None:
    if source.resource_type != resource_type:
        raise PydanticCustomError(
            "source_type", "source.resource_type must be {expected}", {"expected": resource_type}
        )


class ConditionClinicalStatus(StrEnum):
    """hl7.org/fhir/R4/valueset-condition-clinical.html"""

    active = "active"
    recurrence = "recurrence"
    relapse = "relapse"
    inactive = "inactive"
    remission = "remission"
    resolved = "resolved"


class ConditionVerificationStatus(StrEnum):
    """hl7.org/fhir/R4/valueset-condition-ver-status.html without entered-in-error (never imported)."""

    unconfirmed = "unconfirmed"
    provisional = "provisional"
    differential = "differential"
    confirmed = "confirmed"
    refuted = "refuted"


class ConditionCategory(StrEnum):
    """The US Core categories (condition-category and the US Core health-concern code)."""

    problem_list_item = "problem-list-item"
    encounter_diagnosis = "encounter-diagnosis"
    health_concern = "health-concern"


#: clinical statuses R4 invariant con-4 allows once a condition has abated
ABATED_STATUSES = frozenset(
    {ConditionClinicalStatus.inactive, ConditionClinicalStatus.remission, ConditionClinicalStatus.resolved}
)


class ConditionRecord(RecordModel):
    """A problem-list entry, health concern or encounter diagnosis from a referring hospital."""

    references: ClassVar[dict[str, str]] = {"patient_id": "patients"}
    writable: ClassVar[bool] = False

    patient_id: ExternalId
    codes: Codings = []
    text: ImportedText | None = None
    clinical_status: ConditionClinicalStatus | None = None
    verification_status: ConditionVerificationStatus | None = None
    category: Annotated[list[ConditionCategory], Field(min_length=1, max_length=3)]
    onset: FhirDateTime | None = None
    abatement: FhirDateTime | None = None
    recorded_date: FhirDateTime | None = None
    source: RecordSource

    _dates_are_not_numbers = field_validator("onset", "abatement", "recorded_date", mode="before")(
        _not_a_number
    )

    @model_validator(mode="after")
    def _consistent(self) -> ConditionRecord:
        _code_or_text(self.codes, self.text)
        _unique(self.category, "category")
        _source_type(self.source, "Condition")
        if self.abatement is not None and self.clinical_status not in ABATED_STATUSES:
            raise PydanticCustomError(
                "abated_status", "a condition with an abatement is inactive, in remission or resolved"
            )
        return self


class MedicationRequestStatus(StrEnum):
    """hl7.org/fhir/R4/valueset-medicationrequest-status.html without entered-in-error (never imported)."""

    active = "active"
    on_hold = "on-hold"
    cancelled = "cancelled"
    completed = "completed"
    stopped = "stopped"
    draft = "draft"
    unknown = "unknown"


class MedicationRequestIntent(StrEnum):
    """hl7.org/fhir/R4/valueset-medicationrequest-intent.html"""

    proposal = "proposal"
    plan = "plan"
    order = "order"
    original_order = "original-order"
    reflex_order = "reflex-order"
    filler_order = "filler-order"
    instance_order = "instance-order"
    option = "option"


class MedicationRecord(RecordModel):
    """A prescription (MedicationRequest) from a referring hospital; ``codes``/``text`` name the drug."""

    references: ClassVar[dict[str, str]] = {"patient_id": "patients"}
    writable: ClassVar[bool] = False

    patient_id: ExternalId
    codes: Codings = []
    text: ImportedText | None = None
    status: MedicationRequestStatus
    intent: MedicationRequestIntent
    authored_on: FhirDateTime | None = None
    dosage_text: ImportedText | None = None
    requester_display: ImportedText | None = None
    #: MedicationRequest.reported: True when the EHR recorded it from a secondary source (None: not said)
    reported: Flag | None = None
    source: RecordSource

    _dates_are_not_numbers = field_validator("authored_on", mode="before")(_not_a_number)

    @model_validator(mode="after")
    def _consistent(self) -> MedicationRecord:
        _code_or_text(self.codes, self.text)
        _source_type(self.source, "MedicationRequest")
        return self


class AllergyClinicalStatus(StrEnum):
    """hl7.org/fhir/R4/valueset-allergyintolerance-clinical.html"""

    active = "active"
    inactive = "inactive"
    resolved = "resolved"


class AllergyVerificationStatus(StrEnum):
    """hl7.org/fhir/R4/valueset-allergyintolerance-verification.html without entered-in-error."""

    unconfirmed = "unconfirmed"
    confirmed = "confirmed"
    refuted = "refuted"


class AllergyType(StrEnum):
    allergy = "allergy"
    intolerance = "intolerance"


class AllergyCategory(StrEnum):
    food = "food"
    medication = "medication"
    environment = "environment"
    biologic = "biologic"


class AllergyCriticality(StrEnum):
    low = "low"
    high = "high"
    unable_to_assess = "unable-to-assess"


class AllergyReaction(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    manifestations: Annotated[list[RecordConcept], Field(min_length=1, max_length=10)]
    severity: Severity | None = None


class AllergyRecord(RecordModel):
    """An allergy or intolerance from a referring hospital.

    ``clinical_status`` is required: R4 invariant ait-1 demands it unless the entry is entered-in-error,
    and entered-in-error entries are never imported.
    """

    references: ClassVar[dict[str, str]] = {"patient_id": "patients"}
    writable: ClassVar[bool] = False

    patient_id: ExternalId
    codes: Codings = []
    text: ImportedText | None = None
    clinical_status: AllergyClinicalStatus
    verification_status: AllergyVerificationStatus | None = None
    type: AllergyType | None = None
    category: Annotated[list[AllergyCategory], Field(max_length=4)] = []
    criticality: AllergyCriticality | None = None
    onset: FhirDateTime | None = None
    reactions: Annotated[list[AllergyReaction], Field(max_length=10)] = []
    recorded_date: FhirDateTime | None = None
    source: RecordSource

    _dates_are_not_numbers = field_validator("onset", "recorded_date", mode="before")(_not_a_number)

    @model_validator(mode="after")
    def _consistent(self) -> AllergyRecord:
        _code_or_text(self.codes, self.text)
        _unique(self.category, "category")
        _source_type(self.source, "AllergyIntolerance")
        return self


#: kinds imported from EHRs with a referral: read-only in the clinic API, served by the FHIR server
IMPORTED_KINDS: dict[str, type[RecordModel]] = {
    "conditions": ConditionRecord,
    "medications": MedicationRecord,
    "allergies": AllergyRecord,
}


#: every record kind the gateway stores: clinic-written and EHR-imported
ALL_KINDS: dict[str, type[RecordModel]] = {**RECORD_KINDS, **IMPORTED_KINDS}

"""Simulator layer, pure: the mock user records and how they are stored.

A fresh database's record is a function of its id alone (an updated one, of its id and
version), so user 42 is the same person in every new database, in any process. Names,
cities and jobs are a vocabulary drawn once from Faker with a fixed seed; each id picks
from it with a 64-bit hash of the id. That is about a hundred times faster than seeding
Faker per record (which costs ~0.4 ms), so a million rows take seconds, not minutes.
No I/O here: Faker is imported on first use.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from datetime import date, timedelta
from enum import Enum
from json.encoder import encode_basestring_ascii

VOCABULARY_SEED = 20_240_601
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_FIRST_DAY = date(2015, 1, 1)
_DAYS = 11 * 365  # created_at falls in 2015..2025
_MASK64 = (1 << 64) - 1
MAX_RECORD_BYTES = 65_536  # a record is about 200 bytes; anything this large is another client's
MAX_VERSION = 2**63 - 1  # a BIGINT's largest (SQLite's integers end there too)
RECORD_FIELDS = ("id", "name", "email", "city", "job", "created_at", "version")
TEXT_FIELDS = RECORD_FIELDS[1:-1]
_RECORD_KEYS = frozenset(RECORD_FIELDS)
# Text of at most this many characters always encodes within MAX_RECORD_BYTES, however it is escaped (one
# character takes 12 bytes at most, as in \ud83d\ude00), beside the keys and two integers of 19 digits: a record
# is measured exactly only when its text is longer, so the usual one costs no encoding to check.
_SURELY_FITS = (MAX_RECORD_BYTES - 128) // 12


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One user as the database holds it; `version` counts the updates it has had."""

    id: int
    name: str
    email: str
    city: str
    job: str
    created_at: str
    version: int = 0


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Words drawn once from Faker, sorted so their order never depends on hashing."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[str, ...]
    jobs: tuple[str, ...]
    first_in_emails: tuple[str, ...]  # first_names[i] as it appears in an email address
    last_in_emails: tuple[str, ...]
    days: tuple[str, ...]  # the ISO dates a record can be created on


@functools.cache
def vocabulary() -> Vocabulary:
    """The Faker-made words every record is built from (built once per process, on first need, ~0.1 s).

    Only creating users and `update` need them; a lookup, hit or miss, never does, so start-up leaves them alone.
    """
    from faker import Faker  # imported here: start-up stays fast when no record is needed

    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(VOCABULARY_SEED)
    first_names = tuple(sorted({fake.first_name() for _ in range(2000)}))
    last_names = tuple(sorted({fake.last_name() for _ in range(2000)}))
    cities = tuple(sorted({fake.city() for _ in range(1000)}))
    jobs = tuple(sorted({fake.job() for _ in range(1000)}))
    return Vocabulary(
        first_names=first_names,
        last_names=last_names,
        cities=cities,
        jobs=jobs,
        first_in_emails=tuple(re.sub(r"[^a-z]", "", name.lower()) for name in first_names),
        last_in_emails=tuple(re.sub(r"[^a-z]", "", name.lower()) for name in last_names),
        days=tuple((_FIRST_DAY + timedelta(days=day)).isoformat() for day in range(_DAYS)),
    )


def _mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer.

    Not a speed trick: fixed arithmetic makes user 42 the same person in every process and Python
    version, which hash() (salted for strings) and random (its algorithms may change) do not promise.
    """
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _pick(user_id: int, version: int, words: Vocabulary) -> tuple[int, int, int, int, str, str]:
    """The words a user id picks (first name, last name, city, job), its email and created_at."""
    draw, first = divmod(_mix(user_id), len(words.first_names))
    draw, last = divmod(draw, len(words.last_names))
    draw, city = divmod(draw, len(words.cities))
    draw, job = divmod(draw, len(words.jobs))
    domain = EMAIL_DOMAINS[draw % len(EMAIL_DOMAINS)]
    day, second = divmod(_mix(draw ^ user_id) % (_DAYS * 86_400), 86_400)
    tag = f"+v{version}" if version else ""
    email = f"{words.first_in_emails[first]}.{words.last_in_emails[last]}{user_id}{tag}@{domain}"
    created_at = f"{words.days[day]}T{second // 3600:02d}:{second // 60 % 60:02d}:{second % 60:02d}Z"
    return first, last, city, job, email, created_at


def user_record(user_id: int, version: int = 0) -> UserRecord:
    """The record of `user_id`; `version` > 0 is the same user after `version` updates."""
    words = vocabulary()
    first, last, city, job, email, created_at = _pick(user_id, version, words)
    return UserRecord(
        id=user_id,
        name=f"{words.first_names[first]} {words.last_names[last]}",
        email=email,
        city=words.cities[city],
        job=words.jobs[job],
        created_at=created_at,
        version=version,
    )


_json_string = encode_basestring_ascii  # json.dumps' own escaper for one string (ASCII-only, as json.dumps)


def encode_record(record: UserRecord) -> str:
    """The record as stored in Redis: `json.dumps(dataclasses.asdict(record), separators=(",", ":"))`,
    byte for byte, written out.

    A speed-up, measured: each string goes through json.dumps' own escaper, the integers through
    str(); a test holds it to the textbook line on ordinary, non-ASCII, quote and backslash
    strings. With timeit (Python 3.11, best of 7, the 2-core test machine): 0.65 us a record,
    against 19.1 us for the textbook line (asdict deep-copies the record) and 4.9 us for
    json.dumps of a plain dict of the fields: a million seeded records encode ~18 s faster.
    """
    return (
        f'{{"id":{record.id},"name":{_json_string(record.name)},"email":{_json_string(record.email)},'
        f'"city":{_json_string(record.city)},"job":{_json_string(record.job)},'
        f'"created_at":{_json_string(record.created_at)},"version":{record.version}}}'
    )


class Problem(Enum):
    """Why a cached value is not a usable record."""

    NOT_UTF8 = "its bytes are not UTF-8"
    NOT_JSON = "it is not JSON"
    WRONG_FIELDS = "it does not have the record's fields"
    WRONG_USER = "it holds another user's record"
    WRONG_TYPE = "the key holds another Redis type"
    TOO_LARGE = "it is too large to be a record"
    TOO_DEEP = "its JSON is nested too deeply to be a record"
    NO_EXPIRY = "it has no expiry, and the demo always sets one"


class CorruptEntry(ValueError):
    """A cached value that is not a valid record; `problem` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def decode_record(raw: bytes, user_id: int) -> UserRecord:
    """The record in a cached value, or CorruptEntry if the value is not one."""
    if len(raw) > MAX_RECORD_BYTES:  # parsing megabytes of another client's JSON would stall every hit
        raise CorruptEntry(Problem.TOO_LARGE)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptEntry(Problem.NOT_UTF8) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise CorruptEntry(Problem.NOT_JSON) from None
    except RecursionError:  # "[[[[...]]]]" of about a thousand levels: valid JSON, never a record
        raise CorruptEntry(Problem.TOO_DEEP) from None
    if not (isinstance(data, dict) and data.keys() == _RECORD_KEYS):
        raise CorruptEntry(Problem.WRONG_FIELDS)
    try:
        record = checked_record(*(data[name] for name in RECORD_FIELDS))
    except InvalidRecord as invalid:
        raise CorruptEntry(Problem.TOO_LARGE if invalid.too_large else Problem.WRONG_FIELDS) from None
    if record.id != user_id:
        raise CorruptEntry(Problem.WRONG_USER)
    return record


class InvalidRecord(ValueError):
    """Values that make no user record; the message says why in a few words (`too_large`: only their size is wrong)."""

    def __init__(self, reason: str, *, too_large: bool = False) -> None:
        super().__init__(reason)
        self.too_large = too_large


def checked_record(
    user_id: object, name: object, email: object, city: object, job: object, created_at: object, version: object
) -> UserRecord:
    """The record these values make, or InvalidRecord: the one test of what a user record may be.

    A database row and a cached value pass the same test, so a row the demo would store is
    never one it then calls corrupt: an integer id, five texts, a version from 0 to
    MAX_VERSION, and at most MAX_RECORD_BYTES once encoded.
    """
    if (  # the usual record, checked in one expression (seeding tests a million of them)
        type(user_id) is int
        and type(name) is str
        and type(email) is str
        and type(city) is str
        and type(job) is str
        and type(created_at) is str
        and type(version) is int
        and 0 <= version <= MAX_VERSION
        and len(name) + len(email) + len(city) + len(job) + len(created_at) <= _SURELY_FITS
    ):
        return UserRecord(user_id, name, email, city, job, created_at, version)
    if type(user_id) is not int:
        raise InvalidRecord(f"id is {_described(user_id)}, not a whole number")
    for field, value in zip(TEXT_FIELDS, (name, email, city, job, created_at), strict=True):
        if type(value) is not str:
            raise InvalidRecord(f"{field} is {_described(value)}, not text")
    if type(version) is not int:
        raise InvalidRecord(f"version is {_described(version)}, not a whole number")
    if version < 0:
        raise InvalidRecord(f"version is {version:,}, below 0")
    if version > MAX_VERSION:
        raise InvalidRecord(f"version is over {MAX_VERSION:,}")
    record = UserRecord(user_id, str(name), str(email), str(city), str(job), str(created_at), version)
    if (size := len(encode_record(record))) > MAX_RECORD_BYTES:  # the encoding is ASCII: a character is a byte
        raise InvalidRecord(
            f"as a record it takes {size:,} bytes, over the {MAX_RECORD_BYTES:,} a record may", too_large=True
        )
    return record


def _described(value: object) -> str:
    """A value in a few printable words: its type where that is the point, never megabytes of it."""
    if value is None:
        return "NULL"
    if isinstance(value, bytes | bytearray | memoryview):
        return f"a BLOB of {len(value):,} bytes"
    if isinstance(value, str):
        return f"the text {value!r}" if len(value) <= 20 else f"the text {value[:20]!r}... ({len(value):,} characters)"
    if isinstance(value, bool | int | float):
        shown = repr(value)
        return shown if len(shown) <= 24 else f"{shown[:20]}..."
    return f"a {type(value).__name__}"

"""Simulator layer, pure: the mock user records and how they are stored.

A record is a function of its id alone, so the same id gives the same record in any
process, in either twin, whether it was seeded or fetched, and a cached value can be
checked against the database. Names, cities and jobs are a vocabulary drawn once from
Faker with a fixed seed; each id picks from it with a 64-bit hash of the id. That is
about a hundred times faster than seeding Faker per record (which costs ~0.4 ms), so a
million records take seconds, not minutes. No I/O here: Faker is imported on first use.
"""

from __future__ import annotations

import functools
import json
import re
import time
from dataclasses import dataclass
from enum import Enum

VOCABULARY_SEED = 20_240_601
EMAIL_DOMAINS = ("example.com", "example.org", "example.net")
_CREATED_FROM = 1_420_070_400  # 2015-01-01T00:00:00Z
_CREATED_SPAN = 11 * 365 * 86_400  # up to the end of 2025
_MASK64 = (1 << 64) - 1
RECORD_FIELDS = ("id", "name", "email", "city", "job", "created_at")


@dataclass(frozen=True, slots=True)
class UserRecord:
    """One user as the simulated database holds it."""

    id: int
    name: str
    email: str
    city: str
    job: str
    created_at: str


@dataclass(frozen=True, slots=True)
class Vocabulary:
    """Words drawn once from Faker, sorted so their order never depends on hashing."""

    first_names: tuple[str, ...]
    last_names: tuple[str, ...]
    cities: tuple[str, ...]
    jobs: tuple[str, ...]


@functools.cache
def vocabulary() -> Vocabulary:
    """The Faker-made words every record is built from (built once per process)."""
    from faker import Faker  # imported here: start-up stays fast when no record is needed

    fake = Faker("en_US", use_weighting=False)
    fake.seed_instance(VOCABULARY_SEED)
    return Vocabulary(
        first_names=tuple(sorted({fake.first_name() for _ in range(2000)})),
        last_names=tuple(sorted({fake.last_name() for _ in range(2000)})),
        cities=tuple(sorted({fake.city() for _ in range(1000)})),
        jobs=tuple(sorted({fake.job() for _ in range(1000)})),
    )


def _mix(value: int) -> int:
    """splitmix64's finaliser: a well-spread 64-bit hash of an integer."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK64
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK64
    return value ^ (value >> 31)


def _email_part(word: str) -> str:
    return re.sub(r"[^a-z]", "", word.lower())


def user_record(user_id: int, version: int = 0) -> UserRecord:
    """The record of `user_id`; `version` > 0 is the same user after `version` updates."""
    words = vocabulary()
    draw = _mix(user_id)
    first = words.first_names[draw % len(words.first_names)]
    draw //= len(words.first_names)
    last = words.last_names[draw % len(words.last_names)]
    draw //= len(words.last_names)
    city = words.cities[draw % len(words.cities)]
    draw //= len(words.cities)
    job = words.jobs[draw % len(words.jobs)]
    draw //= len(words.jobs)
    domain = EMAIL_DOMAINS[draw % len(EMAIL_DOMAINS)]
    created = _CREATED_FROM + _mix(draw ^ user_id) % _CREATED_SPAN
    tag = f"+v{version}" if version else ""
    return UserRecord(
        id=user_id,
        name=f"{first} {last}",
        email=f"{_email_part(first)}.{_email_part(last)}{user_id}{tag}@{domain}",
        city=city,
        job=job,
        created_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(created)),
    )


def encode_record(record: UserRecord) -> str:
    """The record as stored in Redis: compact JSON with the fields in a fixed order."""
    return json.dumps(
        {name: getattr(record, name) for name in RECORD_FIELDS},
        separators=(",", ":"),
    )


class Problem(Enum):
    """Why a cached value is not a usable record."""

    NOT_UTF8 = "its bytes are not UTF-8"
    NOT_JSON = "it is not JSON"
    WRONG_FIELDS = "it does not have the record's fields"
    WRONG_USER = "it holds another user's record"
    WRONG_TYPE = "the key holds another Redis type"


class CorruptEntry(ValueError):
    """A cached value that is not a valid record; `problem` says why."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.value)
        self.problem = problem


def decode_record(raw: bytes, user_id: int) -> UserRecord:
    """The record in a cached value, or CorruptEntry if the value is not one."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise CorruptEntry(Problem.NOT_UTF8) from None
    try:
        data = json.loads(text)
    except ValueError:
        raise CorruptEntry(Problem.NOT_JSON) from None
    if not (
        isinstance(data, dict)
        and data.keys() == set(RECORD_FIELDS)
        and type(data["id"]) is int
        and all(isinstance(data[name], str) for name in RECORD_FIELDS[1:])
    ):
        raise CorruptEntry(Problem.WRONG_FIELDS)
    if data["id"] != user_id:
        raise CorruptEntry(Problem.WRONG_USER)
    return UserRecord(**data)

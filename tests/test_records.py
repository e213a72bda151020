"""Records: deterministic per id, realistic, and strictly decoded (simulator.records)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import asdict

import pytest

from cli.answers import warning_of
from simulator.entries import read_cached
from simulator.records import (
    RECORD_FIELDS,
    CorruptEntry,
    Problem,
    UserRecord,
    decode_record,
    encode_record,
    user_record,
)
from simulator.results import LEASE_LOST, Filled, LookupResult
from tests.conftest import PROJECT_ROOT


def test_a_record_is_the_same_every_time() -> None:
    assert user_record(42) == user_record(42)
    assert encode_record(user_record(42)) == encode_record(user_record(42))


def test_a_record_is_the_same_in_another_process_with_another_hash_seed() -> None:
    code = "from simulator.records import *; print(encode_record(user_record(4242)))"
    other = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT_ROOT,
        env={"PYTHONHASHSEED": "12345", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert other.stdout.strip() == encode_record(user_record(4242))


def test_different_ids_give_different_people() -> None:
    records = [user_record(user_id) for user_id in range(1, 2001)]
    assert len({record.email for record in records}) == 2000
    assert len({record.name for record in records}) > 1500
    assert len({record.city for record in records}) > 200


@pytest.mark.parametrize("user_id", [1, 2, 999, 1_000_000, 999_999_999])
def test_a_record_has_realistic_fields(user_id: int) -> None:
    record = user_record(user_id)
    first, last = record.name.split(" ", 1)
    assert record.id == user_id
    assert first.isalpha()
    assert last
    assert record.email.endswith((".com", ".org", ".net"))
    assert f"{user_id}@" in record.email
    assert record.city
    assert record.job
    assert "2015-01-01" <= record.created_at < "2026-01-01"
    assert record.created_at.endswith("Z")


def test_an_update_changes_the_email_only() -> None:
    original, updated = user_record(7), user_record(7, version=2)
    assert updated.email != original.email
    assert "+v2@" in updated.email
    assert (updated.name, updated.city, updated.job) == (original.name, original.city, original.job)


@pytest.mark.parametrize(
    "record",
    [
        *(user_record(user_id) for user_id in range(1, 2001, 37)),
        user_record(3, version=4),
        UserRecord(1, 'Zoë "Q" O\'Brien\\', "z\u00f6e@example.com", "Sã\u200fo\nPaulo", "\U0001f600 job", "2020"),
        UserRecord(2, "tab\there \x00\x1f\x7f", 'a\\b"c@example.org', "/\\/", "<&> \u2028", "", version=12),
    ],
)
def test_encoding_is_exactly_what_json_dumps_gives(record: UserRecord) -> None:
    textbook = json.dumps(asdict(record), separators=(",", ":"))
    assert encode_record(record) == textbook  # written out for speed, byte for byte
    assert encode_record(record) == textbook
    assert decode_record(encode_record(record).encode(), record.id) == record


def test_encoding_is_compact_json_with_the_fields_in_order() -> None:
    record = user_record(5)
    encoded = encode_record(record)
    assert list(json.loads(encoded)) == list(RECORD_FIELDS)
    assert ", " not in encoded
    assert decode_record(encoded.encode(), 5) == record


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (b"\xff\xfe not utf-8", Problem.NOT_UTF8),
        (b"not json", Problem.NOT_JSON),
        (b"", Problem.NOT_JSON),
        (b"[1, 2]", Problem.WRONG_FIELDS),
        (b'{"id": 5}', Problem.WRONG_FIELDS),
        (b'{"id": "5", "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e"}', Problem.WRONG_FIELDS),
        (b'{"id": true, "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e"}', Problem.WRONG_FIELDS),
        (b'{"id": 5, "name": 1, "email": "b", "city": "c", "job": "d", "created_at": "e"}', Problem.WRONG_FIELDS),
        (b'{"id": 5, "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e"}', Problem.WRONG_FIELDS),
        (
            b'{"id": 5, "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e", "version": -1}',
            Problem.WRONG_FIELDS,
        ),
        (
            b'{"id": 5, "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e", "version": "1"}',
            Problem.WRONG_FIELDS,
        ),
        (
            b'{"id": 6, "name": "a", "email": "b", "city": "c", "job": "d", "created_at": "e", "version": 0}',
            Problem.WRONG_USER,
        ),
    ],
)
def test_a_corrupt_value_is_reported_with_its_problem(raw: bytes, problem: Problem) -> None:
    with pytest.raises(CorruptEntry) as raised:
        decode_record(raw, 5)
    assert raised.value.problem is problem


def test_a_corrupt_value_is_said_to_be_repaired_only_when_it_was() -> None:
    corrupt = "ignored a corrupt cache entry (it is not JSON)"
    record = user_record(9)
    stored = Filled.from_database(9, record)
    lost = Filled.from_database(9, record).stored(LEASE_LOST)
    by_another = Filled.from_cache(9, read_cached(encode_record(record).encode(), 9))
    degraded = Filled.from_database(9, record, degraded=True)

    def warning(filled: Filled) -> str | None:
        return warning_of(LookupResult.from_fill(9, "user-9", filled, 0.0, Problem.NOT_JSON, shared=False))

    assert warning(stored) == f"{corrupt}; repaired it"
    assert warning(by_another) == f"{corrupt}; another lookup repaired it"
    assert warning(lost) == f"{corrupt}; not cached: {LEASE_LOST.reason}"
    assert warning(degraded) == f"{corrupt}; not repaired"

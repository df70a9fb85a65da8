"""The ``rater-dlq`` value (SPEC 8 and 9): written by the worker, read by ``rater dlq replay``.

Both halves live here so the format has one definition: :func:`record`
builds the value a rejected message becomes, :func:`parse_entry` reads back
what replay needs, and :func:`text_and_encoding` / :func:`raw_bytes` are
exact inverses for any bytes (tests/unit/dlq/test_plan.py).
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

import orjson

from rater.core.outputs import Output
from rater.core.topics import RATER_DLQ


def text_and_encoding(raw: bytes) -> tuple[str, str]:
    """The raw bytes as a DLQ record writes them, and the encoding it names (SPEC 8).

    Valid UTF-8 is kept as text (``utf-8``); anything else is base64
    (``base64``), so the bytes can always be recovered without guessing.
    """
    try:
        return raw.decode(), "utf-8"
    except UnicodeDecodeError:
        return base64.b64encode(raw).decode(), "base64"


def record(
    source_topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    code: str,
    message: str,
    tenant_id: str | None,
) -> Output:
    """A ``rater-dlq`` record; it keeps the key of the message it rejects.

    ``value_encoding`` and ``key_encoding`` say how ``value`` and ``key`` hold
    the raw bytes (SPEC 8: the key follows the value's rule); null when the
    record had no value or key (docs/decisions.md D4, "DLQ record").
    """
    key_text, key_encoding = (None, None) if key is None else text_and_encoding(key)
    value_text, value_encoding = (None, None) if value is None else text_and_encoding(value)
    return (
        RATER_DLQ,
        key,
        {
            "dlq_id": f"{source_topic}:{partition}:{offset}",
            "tenant_id": tenant_id,
            "source_topic": source_topic,
            "partition": partition,
            "offset": offset,
            "key": key_text,
            "key_encoding": key_encoding,
            "value": value_text,
            "value_encoding": value_encoding,
            "error": {"code": code, "message": message},
        },
    )


def raw_bytes(text: str | None, encoding: str | None) -> bytes | None:
    """The bytes a DLQ record holds as ``text`` with its ``*_encoding`` (SPEC 8).

    ``utf-8``: the text's UTF-8 bytes; ``base64``: the bytes it encodes;
    ``None`` (with no text): the record had none. Raises ``ValueError`` for
    anything else, so an unreadable record is never replayed as guessed bytes.
    """
    if text is None:
        if encoding is not None:
            raise ValueError("an encoding without text")
        return None
    if encoding == "utf-8":
        return text.encode()
    if encoding == "base64":
        try:
            return base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise ValueError("not base64") from exc
    raise ValueError(f"unknown encoding {encoding!r}")


@dataclass(frozen=True)
class DlqEntry:
    """The fields of a ``rater-dlq`` value that replay needs."""

    code: str
    source_topic: str
    partition: int
    key: bytes | None
    value: bytes | None


def parse_entry(value: bytes | None) -> DlqEntry | None:
    """Read a DLQ record's value; None when it is not a DLQ record this tool understands."""
    try:
        obj = orjson.loads(value) if value is not None else None
    except orjson.JSONDecodeError:
        return None
    if type(obj) is not dict:
        return None
    error = obj.get("error")
    code = error.get("code") if type(error) is dict else None
    source, partition = obj.get("source_topic"), obj.get("partition")
    if type(code) is not str or type(source) is not str:
        return None
    if type(partition) is not int or partition < 0:
        return None
    texts = (obj.get("key"), obj.get("key_encoding"), obj.get("value"), obj.get("value_encoding"))
    if not all(item is None or type(item) is str for item in texts):
        return None
    try:
        key = raw_bytes(texts[0], texts[1])
        raw = raw_bytes(texts[2], texts[3])
    except ValueError:
        return None
    return DlqEntry(code, source, partition, key, raw)

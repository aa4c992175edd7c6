"""Open-data page cursors: sealed, so a page never shows a subject key that is not public."""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from libs.common.pagination import InvalidCursor

_INFO = b"pingtai exchange open-data cursor v1"


@lru_cache(maxsize=4)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(secret: str, *, dataset_id: str, subject_key: str) -> str:
    """A cursor after ``subject_key`` in ``dataset_id`` that reveals neither."""
    return _fernet(secret).encrypt(f"{dataset_id}\n{subject_key}".encode()).decode()


def open_cursor(secret: str, cursor: str, *, dataset_id: str) -> str:
    """The subject key a cursor of this dataset's pages stands for."""
    try:
        plain = _fernet(secret).decrypt(cursor.encode()).decode()
    except (InvalidToken, binascii.Error, UnicodeError, ValueError):
        raise InvalidCursor("The cursor is not one this list gave out.") from None
    cursor_dataset, _, subject_key = plain.partition("\n")
    if cursor_dataset != dataset_id:
        raise InvalidCursor("The cursor belongs to another dataset's list.")
    return subject_key

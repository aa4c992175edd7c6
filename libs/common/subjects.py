"""Subject references: whom a record is about, named without the identifier itself.

The exchange's ledger and consents never store a resident identity number or a credit code.
They store a ``subject_ref``: HMAC-SHA256 over the subject key's kind and its normalised form,
keyed with a key derived by HKDF-SHA256 from ``PINGTAI_SECRET_KEY`` (``info`` set apart from
every other use of the secret). Every part that knows the secret computes the same reference
for the same person or enterprise: identity puts it into its person and organisation events,
exchange computes it from the key a department queries, and the two meet without either
sending the number.

A reference is 64 hex characters. It is stable while the secret is; rotating the secret means
re-keying what was stored under the old one (as for identity's protected identifiers).
"""

from __future__ import annotations

import hmac
import unicodedata
from functools import lru_cache
from hashlib import sha256
from typing import Annotated

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from fastapi import Depends, Request

_INFO = b"pingtai subject reference v1"
# The identifiers people and enterprises are known by; other subject keys (a certificate
# number, ...) are kinds of their own and hashed the same way.
PERSON_KIND = "resident_id"
ENTERPRISE_KIND = "credit_code"
_UPPER_CASED_KINDS = frozenset({PERSON_KIND, ENTERPRISE_KIND})


def normalise_subject_key(kind: str, key: str) -> str:
    """The form a key is hashed in: NFKC without surrounding blanks; national identifiers in
    upper case (a resident id's check character ``x`` is ``X``)."""
    value = unicodedata.normalize("NFKC", key).strip()
    return value.upper() if kind in _UPPER_CASED_KINDS else value


class SubjectRefs:
    """Computes subject references with a key derived from the platform's secret."""

    __slots__ = ("_keyed",)

    def __init__(self, secret_key: str) -> None:
        if not secret_key:
            raise ValueError("the secret key must not be empty")
        key = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO).derive(
            secret_key.encode()
        )
        # The keyed HMAC's state, copied for each reference (the key is padded and hashed once,
        # not on every call: half a reference's cost).
        self._keyed = hmac.new(key, digestmod=sha256)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<key hidden>)"

    def ref(self, kind: str, key: str) -> str:
        """The reference of the subject whose key of ``kind`` is ``key`` (64 hex characters)."""
        if not kind or "\x1f" in kind:
            raise ValueError("a subject kind is a non-empty name")
        # The unit separator cannot occur in a kind, so (kind, key) pairs never collide.
        mac = self._keyed.copy()
        mac.update(f"{kind}\x1f{normalise_subject_key(kind, key)}".encode())
        return mac.hexdigest()

    def person(self, resident_id: str) -> str:
        """A person's reference, from their resident identity number."""
        return self.ref(PERSON_KIND, resident_id)

    def enterprise(self, credit_code: str) -> str:
        """An organisation's reference, from its unified social credit code."""
        return self.ref(ENTERPRISE_KIND, credit_code)


@lru_cache(maxsize=8)
def subject_refs_for(secret_key: str) -> SubjectRefs:
    """The (shared) ``SubjectRefs`` of a secret key; deriving the key once per process."""
    return SubjectRefs(secret_key)


async def _subject_refs(request: Request) -> SubjectRefs:
    return subject_refs_for(request.app.state.settings.secret_key)


# The app's subject references, from its settings' secret key.
SubjectRefsDep = Annotated[SubjectRefs, Depends(_subject_refs)]

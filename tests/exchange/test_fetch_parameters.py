"""The single-record fetch reads its query string as Starlette's ``QueryParams`` would, and a
dataset's parsed fields follow its definitions."""

from __future__ import annotations

import random
import re
import uuid

import pytest
from starlette.datastructures import QueryParams

from libs.common.middleware import new_request_id
from services.exchange.access.fetch import _query_values
from services.exchange.datasets.models import DatasetField, ExchangeDataset


def _starlette(query_string: bytes) -> dict[str, str]:
    params = QueryParams(query_string)
    return {name: params[name] for name in params}


@pytest.mark.parametrize(
    "query_string",
    [
        b"",
        b"&",
        b"&&purpose=x&&",
        b"purpose",
        b"purpose=",
        b"=value",
        b"purpose=a&purpose=b",
        b"purpose=x+y%20z&basis=application%3Aapp-1",
        b"purpose=%E4%BD%A0%E5%A5%BD&fields=name,phone",
        b"purpose=\xe4\xbd\xa0",
        b"purpose=%zz&basis=%",
        b"purpose=a=b",
        b"purpose;basis=1",
        b"pur%70ose=1&fi+elds=2",
        b"purpose=%00",
    ],
)
def test_query_values_are_starlettes(query_string: bytes) -> None:
    assert _query_values(query_string) == _starlette(query_string)


def test_query_values_are_starlettes_for_random_strings() -> None:
    rng = random.Random(6)
    alphabet = b"ab=&+%2B3Azz;\xe4 "
    for _ in range(5000):
        query_string = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 14)))
        assert _query_values(query_string) == _starlette(query_string), query_string


def test_request_ids_made_here_are_uuid4_hex() -> None:
    made = {new_request_id() for _ in range(2000)}
    assert len(made) == 2000
    for request_id in made:
        assert re.fullmatch(r"[0-9a-f]{32}", request_id)
        parsed = uuid.UUID(hex=request_id)
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_a_datasets_fields_follow_a_new_definition() -> None:
    dataset = ExchangeDataset(
        id="ds-1",
        field_definitions=[{"name": "name", "type": "string", "sensitivity": "personal"}],
    )
    first = dataset.fields
    assert first == [DatasetField("name", "string", "personal")]
    first.append(DatasetField("x", "string", "public"))  # the caller's own list
    assert dataset.fields == [DatasetField("name", "string", "personal")]

    dataset.field_definitions = [
        {"name": "name", "type": "string", "sensitivity": "personal"},
        {"name": "region", "type": "string", "sensitivity": "public", "description": "Where."},
    ]
    assert dataset.fields == [
        DatasetField("name", "string", "personal"),
        DatasetField("region", "string", "public", "Where."),
    ]
    assert dataset.field("region") == DatasetField("region", "string", "public", "Where.")

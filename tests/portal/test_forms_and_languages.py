"""Application forms from JSON Schema, and the gettext catalogues (complete, compiled, current)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po
from starlette.datastructures import FormData

from portal import i18n
from portal.forms import changed_values, fields_of, values_from
from portal.web import access_outcome

LOCALE = Path(i18n.__file__).parent / "locale"
SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "title": "姓名", "maxLength": 50},
        "capital": {"type": "number", "title": "注册资本"},
        "staff": {"type": "integer"},
        "scope": {"type": "string", "maxLength": 2000, "description": "经营范围"},
        "kind": {"type": "string", "enum": ["a", "b"]},
        "born": {"type": "string", "format": "date"},
        "agree": {"type": "boolean"},
    },
    "required": ["name", "agree"],
}


def test_fields_follow_the_schema_and_carry_the_services_errors() -> None:
    errors = {"staff": "not an integer", "extra": "unknown field"}
    fields = {f.name: f for f in fields_of(SCHEMA, {"name": "张"}, errors)}
    assert [f.control for f in fields.values()] == [
        "text", "number", "number", "textarea", "select", "date", "checkbox", "text"]  # fmt: skip
    assert (fields["name"].label, fields["name"].required, fields["name"].value) == (
        "姓名",
        True,
        "张",
    )
    assert fields["staff"].step == "1" and fields["capital"].step == "any"
    assert fields["staff"].error == "not an integer" and fields["extra"].error == "unknown field"
    assert fields["kind"].options == ("a", "b") and fields["scope"].hint == "经营范围"


def test_posted_text_becomes_the_schemas_types_and_bad_values_stay_for_the_422() -> None:
    posted = FormData([("name", " 张伟 "), ("capital", "100"), ("staff", "3.5"), ("scope", ""),
                       ("kind", "a"), ("csrf_token", "x")])  # fmt: skip
    values = values_from(SCHEMA, posted)
    # staff is not an integer: sent as text so workflow names the field; agree is required:
    # an unchecked box is false; empty fields and form plumbing are left out.
    assert values == {"name": "张伟", "capital": 100, "staff": "3.5", "kind": "a", "agree": False}
    assert changed_values(SCHEMA, posted, {"name": "张伟", "capital": 100}) == {
        "staff": "3.5", "kind": "a", "agree": False}  # fmt: skip


def _messages(catalog: Catalog) -> dict[str, str]:
    def text(value: object) -> str:
        return repr(tuple(value)) if isinstance(value, list | tuple) else repr(value)

    return {text(m.id): text(m.string) for m in catalog if m.id}


def test_every_message_is_translated_and_the_compiled_catalogue_is_current(tmp_path: Path) -> None:
    with (LOCALE / "zh_CN/LC_MESSAGES/messages.po").open("rb") as f:
        source = read_po(f)
    with (LOCALE / "zh_CN/LC_MESSAGES/messages.mo").open("rb") as f:
        compiled = read_mo(f)
    untranslated = [m.id for m in source if m.id and (not m.string or m.fuzzy)]
    assert untranslated == []
    assert _messages(source) == _messages(compiled)
    # Every message the code and templates use is in the catalogue (pybabel extract, as documented).
    # Into a file: this babel writes "-o -" to a file named "-", not to standard output.
    template = tmp_path / "messages.pot"
    subprocess.run(
        [sys.executable, "-m", "babel.messages.frontend", "extract", "-F", "portal/babel.cfg",
         "-k", "_", "-o", str(template), "--no-location", "--omit-header", "."],
        capture_output=True, cwd=LOCALE.parents[1], check=True,
    )  # fmt: skip
    with template.open("rb") as f:
        wanted = {m.id for m in read_po(f) if m.id}
    assert len(wanted) > 100  # the portal's messages were really extracted
    missing = wanted - {m.id for m in source if m.id}
    assert not missing, f"run the catalogue update in docs/portal.md: {sorted(map(str, missing))}"


def test_the_language_follows_the_cookie_chinese_first() -> None:
    assert i18n.pick_language(None) == "zh" and i18n.pick_language("fr") == "zh"
    token = i18n.current_language.set("en")
    try:
        assert i18n._("Who used my data") == "Who used my data"
        assert i18n.pick("名称", "Name") == "Name" and i18n.pick("名称", None) == "名称"
    finally:
        i18n.current_language.reset(token)
    assert i18n._("Who used my data") == "谁用了我的数据"
    assert i18n.ngettext("%(num)d service", "%(num)d services", 3) % {"num": 3} == "3 项服务"


def test_who_used_my_data_names_each_outcome_in_chinese_first() -> None:
    assert access_outcome("granted") == access_outcome("read") == "已读取"
    assert access_outcome("refused") == "已拒绝"
    assert access_outcome("failed") == "数据源未送达"  # allowed, but the source delivered nothing
    assert access_outcome("something-new") == "something-new"
    token = i18n.current_language.set("en")
    try:
        assert access_outcome("failed") == "Not delivered by the source"
    finally:
        i18n.current_language.reset(token)

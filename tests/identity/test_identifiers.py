"""Resident identity numbers (GB 11643), credit codes (GB 32100), phones and masks."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest

from services.identity import identifiers, regions
from services.identity.identifiers import (
    CREDIT_CODE_CHARSET,
    CreditCode,
    InvalidIdentifier,
    ResidentId,
    Sex,
    credit_code_check_char,
    is_valid_credit_code,
    is_valid_phone,
    is_valid_resident_id,
    make_credit_code,
    make_resident_id,
    mask_credit_code,
    mask_name,
    mask_phone,
    mask_resident_id,
    normalise_phone,
    organisation_code_check_char,
    parse_credit_code,
    parse_resident_id,
    resident_id_check_char,
)

TODAY = date(2025, 6, 1)

# GB 11643-1999's own example: a woman born in 北京市朝阳区 on 1949-12-31.
STANDARD_EXAMPLE = "11010519491231002X"
ZHEJIANG_IDS = [
    make_resident_id("330106", date(1990, 1, 1), 123),
    make_resident_id("330212", date(1985, 7, 15), 42),
    make_resident_id("331127", date(2000, 2, 29), 7),
]

# Codes published by the organisations that hold them (business licences, public registers).
PUBLISHED_CREDIT_CODES = [
    "91350100M000100Y43",  # the example quoted with GB 32100's rules
    "91110000600037341L",
    "9144030071526726XG",
    "913304007429141869",  # registered in 嘉兴市
    "121200004013590816",  # 机构编制 / 事业单位
    "91310115MA1K3BTP2B",
    "91620105L015101280",
    "92340602MA2PBMEM24",  # 个体工商户
    "92340603MA2PBMCG0U",
    "9162010567592034XQ",
]


def reason(value: str, *, strict: bool = False) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_resident_id(value, today=TODAY, strict=strict)
    return caught.value


def credit_reason(value: str, *, strict: bool = False) -> InvalidIdentifier:
    with pytest.raises(InvalidIdentifier) as caught:
        parse_credit_code(value, strict=strict)
    return caught.value


# --- 居民身份证号码 ---------------------------------------------------------------------------


def test_the_standards_example_parses() -> None:
    assert parse_resident_id(STANDARD_EXAMPLE, today=TODAY) == ResidentId(
        number=STANDARD_EXAMPLE, region_code="110105", birth_date=date(1949, 12, 31), sex=Sex.FEMALE
    )


def test_lower_case_x_blanks_and_full_width_digits_are_normalised() -> None:
    assert parse_resident_id("11010519491231002x", today=TODAY).number == STANDARD_EXAMPLE
    assert parse_resident_id(f"  {STANDARD_EXAMPLE}\n", today=TODAY).number == STANDARD_EXAMPLE
    full_width = "１１０１０５１９４９１２３１００２ｘ"
    assert parse_resident_id(full_width, today=TODAY).number == STANDARD_EXAMPLE


def test_the_check_character_follows_iso_7064_mod_11_2() -> None:
    assert resident_id_check_char(STANDARD_EXAMPLE[:17]) == "X"
    assert resident_id_check_char("44052418800101001") == "4"  # the standard's other example
    with pytest.raises(InvalidIdentifier):
        resident_id_check_char("1234")
    with pytest.raises(InvalidIdentifier):
        resident_id_check_char("1101051949123100A")


def test_the_check_character_is_the_iso_definition_for_any_digits() -> None:
    """Every digit in every place: the check character is 10X98765432 at the weighted sum of the
    digits (weights 2^(17-i) mod 11) modulo 11."""
    generator = random.Random(11643)
    weights = [pow(2, 17 - i, 11) for i in range(17)]
    for _ in range(5000):
        digits = "".join(generator.choice("0123456789") for _ in range(17))
        total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
        assert resident_id_check_char(digits) == "10X98765432"[total % 11]


def test_sex_sequence_and_age() -> None:
    man = parse_resident_id(make_resident_id("330106", date(1990, 6, 2), 123), today=TODAY)
    assert man.sex is Sex.MALE and man.sequence == "123"
    woman = parse_resident_id(make_resident_id("330106", date(1990, 6, 2), 124), today=TODAY)
    assert woman.sex is Sex.FEMALE
    assert man.age_on(date(2025, 6, 1)) == 34
    assert man.age_on(date(2025, 6, 2)) == 35
    assert man.masked == "330106********" + man.number[14:]


@pytest.mark.parametrize("number", ZHEJIANG_IDS)
def test_generated_numbers_are_valid_even_strictly(number: str) -> None:
    parsed = parse_resident_id(number, today=TODAY, strict=True)
    assert parsed.number == number and regions.is_known_region(parsed.region_code)
    assert is_valid_resident_id(number, today=TODAY, strict=True)


def test_every_zhejiang_county_makes_valid_numbers() -> None:
    for county in regions.all_regions(level="county", include_withdrawn=True):
        if county.code.startswith("33"):
            number = make_resident_id(county.code, date(1970, 1, 1), 1)
            assert is_valid_resident_id(number, strict=True), county


def test_legacy_15_digit_numbers_get_a_clear_message() -> None:
    error = reason("110105491231002")
    assert error.part == "length" and "15-digit" in str(error) and "18" in str(error)


@pytest.mark.parametrize(
    ("value", "part", "words"),
    [
        ("", "length", "not 0"),
        ("1101051949123100", "length", "not 16"),
        ("11010519491231002X1", "length", "not 19"),
        ("1101051949123100AX", "format", "character 17"),
        ("11010519491231002A", "format", "digit or X"),
        ("X10105194912310021", "format", "character 1"),
        ("99010519491231002X", "region", "99"),
        ("00010519491231002X", "region", "no province"),
    ],
)
def test_malformed_numbers_say_what_is_wrong(value: str, part: str, words: str) -> None:
    error = reason(value)
    assert error.part == part
    assert words in str(error)


@pytest.mark.parametrize(
    ("birth", "words"),
    [
        ("19900230", "not a calendar date"),  # Feb 30
        ("19000229", "not a calendar date"),  # 1900 was no leap year
        ("19901301", "not a calendar date"),
        ("19900100", "not a calendar date"),
        ("21000101", "in the future"),
        ("20250602", "in the future"),  # the day after TODAY
        ("18991231", "before 1900-01-01"),
    ],
)
def test_impossible_birth_dates(birth: str, words: str) -> None:
    first17 = f"330106{birth}123"
    error = reason(first17 + resident_id_check_char(first17))
    assert error.part == "birth_date"
    assert words in str(error)


def test_today_defaults_to_the_date_in_china() -> None:
    today = identifiers.china_today()
    assert identifiers.china_today() - date.today() in {
        timedelta(days=-1),
        timedelta(0),
        timedelta(days=1),
    }
    first17 = f"330106{today:%Y%m%d}001"
    assert is_valid_resident_id(first17 + resident_id_check_char(first17))
    tomorrow = today + timedelta(days=1)
    first17 = f"330106{tomorrow:%Y%m%d}001"
    assert not is_valid_resident_id(first17 + resident_id_check_char(first17))


def test_born_today_and_on_the_first_day_are_accepted() -> None:
    for born in (TODAY, date(1900, 1, 1), date(2000, 2, 29)):
        first17 = f"330106{born:%Y%m%d}001"
        assert is_valid_resident_id(first17 + resident_id_check_char(first17), today=TODAY)


def test_the_standards_1880_example_has_a_right_check_but_is_before_1900() -> None:
    assert reason("440524188001010014").part == "birth_date"


def test_strict_mode_checks_the_whole_division_code() -> None:
    first17 = "33019919900101123"  # 3301 is Hangzhou, but no district is 99
    number = first17 + resident_id_check_char(first17)
    assert is_valid_resident_id(number, today=TODAY)
    error = reason(number, strict=True)
    assert error.part == "region" and "330199" in str(error)
    # Outside the demo province only the province is known.
    assert not is_valid_resident_id(STANDARD_EXAMPLE, today=TODAY, strict=True)


def test_withdrawn_division_codes_stay_valid() -> None:
    # Born in 下城区 in 1990: the code was withdrawn in 2021, the number was not.
    number = make_resident_id("330103", date(1990, 5, 4), 321)
    assert parse_resident_id(number, today=TODAY, strict=True).region_code == "330103"


def test_residence_permits_of_taiwan_residents() -> None:
    number = make_resident_id("830000", date(1980, 3, 3), 55)
    assert parse_resident_id(number, today=TODAY, strict=True).region_code == "830000"
    # GB/T 2260's own code for Taiwan is a province code as well.
    assert is_valid_resident_id(make_resident_id("710000", date(1980, 3, 3), 55), today=TODAY)


def test_a_wrong_check_character_does_not_reveal_the_right_one() -> None:
    wrong = STANDARD_EXAMPLE[:17] + "1"
    error = reason(wrong)
    assert error.part == "check_char"
    assert "'X'" not in str(error) and "mistyped" in str(error)


@pytest.mark.parametrize("number", [STANDARD_EXAMPLE, *ZHEJIANG_IDS])
def test_every_single_character_substitution_is_rejected(number: str) -> None:
    for position in range(18):
        for char in "0123456789X":
            if char != number[position]:
                corrupted = number[:position] + char + number[position + 1 :]
                assert not is_valid_resident_id(corrupted, today=TODAY), corrupted


@pytest.mark.parametrize("number", [STANDARD_EXAMPLE, *ZHEJIANG_IDS])
def test_mod_11_2_alone_detects_every_single_digit_error(number: str) -> None:
    check = resident_id_check_char(number[:17])
    for position in range(17):
        for digit in "0123456789":
            if digit != number[position]:
                changed = number[:position] + digit + number[position + 1 : 17]
                assert resident_id_check_char(changed) != check


@pytest.mark.parametrize("number", [STANDARD_EXAMPLE, *ZHEJIANG_IDS])
def test_adjacent_transpositions_are_rejected(number: str) -> None:
    rejected = total = 0
    for position in range(17):
        a, b = number[position], number[position + 1]
        if a == b:
            continue
        swapped = number[:position] + b + a + number[position + 2 :]
        total += 1
        valid = is_valid_resident_id(swapped, today=TODAY)
        rejected += not valid
        if position < 16:  # within the 17 digits MOD 11-2 catches every one
            assert not valid, swapped
    assert rejected >= total - 1


def test_make_resident_id_refuses_what_it_cannot_make() -> None:
    with pytest.raises(InvalidIdentifier, match="0-999"):
        make_resident_id("330106", date(1990, 1, 1), 1000)
    with pytest.raises(InvalidIdentifier) as caught:
        make_resident_id("990106", date(1990, 1, 1), 1)
    assert caught.value.part == "region"
    with pytest.raises(InvalidIdentifier):
        make_resident_id("3301", date(1990, 1, 1), 1)


def test_is_valid_resident_id_never_raises() -> None:
    for value in ("", "x" * 18, STANDARD_EXAMPLE[:17] + "9", "²" * 18, "330106 19900101 1234"):
        assert is_valid_resident_id(value) is False


# --- 统一社会信用代码 -------------------------------------------------------------------------


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_published_credit_codes_are_valid(code: str) -> None:
    assert parse_credit_code(code).code == code
    assert is_valid_credit_code(code.lower())


def test_a_credit_code_splits_into_its_parts() -> None:
    parsed = parse_credit_code(" 913304007429141869 ")
    assert parsed == CreditCode(
        code="913304007429141869",
        authority="9",
        entity_type="1",
        region_code="330400",
        organisation_code="742914186",
    )
    assert (parsed.authority_name, parsed.entity_type_name) == ("工商", "企业")
    assert parse_credit_code("121200004013590816").entity_type_name == "事业单位"
    assert parsed.masked == "91330400********69"


def test_the_check_characters() -> None:
    assert credit_code_check_char("91350100M000100Y4") == "3"
    assert organisation_code_check_char("M000100Y") == "4"
    # GB 11714 maps 10 to X and 11 to 0.
    assert organisation_code_check_char("71526726") == "X"
    assert organisation_code_check_char("MA2PBMCG") == "0"
    with pytest.raises(InvalidIdentifier):
        credit_code_check_char("91350100I000100Y4")
    with pytest.raises(InvalidIdentifier):
        organisation_code_check_char("M000100")


@pytest.mark.parametrize(
    ("value", "part", "words"),
    [
        ("9135010M000100Y43", "length", "not 17"),
        ("91350100I000100Y43", "format", "character 9 ('I')"),
        ("91350100M00010OY43", "format", "without I, O, Z, S and V"),
        ("B1350100M000100Y43", "authority", "'B'"),
        ("94350100M000100Y43", "entity_type", "authority 9 (工商)"),
        ("Y2350100M000100Y43", "entity_type", "'2'"),
        ("913501A0M000100Y43", "region", "character 7"),
        ("91990100M000100Y43", "region", "99"),
        ("91350100M000100Y44", "check_char", "mistyped"),
    ],
)
def test_malformed_credit_codes_say_what_is_wrong(value: str, part: str, words: str) -> None:
    error = credit_reason(value)
    assert error.part == part
    assert words in str(error)


def test_a_bad_organisation_code_is_caught_even_with_a_right_final_check() -> None:
    first16 = "91350100M000100Y"
    first17 = first16 + "5"  # the organisation code's check should be 4
    code = first17 + credit_code_check_char(first17)
    assert credit_reason(code).part == "organisation_code"


def test_national_registrations_and_strict_regions() -> None:
    national = make_credit_code("1", "1", "100000", "00001312")
    assert parse_credit_code(national, strict=True).region_code == "100000"
    hangzhou = make_credit_code("9", "1", "330106", "MA27XY01")
    assert parse_credit_code(hangzhou, strict=True).region_code == "330106"
    unknown = make_credit_code("9", "1", "330199", "MA27XY01")
    assert credit_reason(unknown, strict=True).part == "region"
    assert is_valid_credit_code(unknown)


def test_every_authority_and_type_pair_of_the_table_is_accepted() -> None:
    for authority, (_, types) in identifiers.CREDIT_CODE_AUTHORITIES.items():
        assert authority in CREDIT_CODE_CHARSET
        for entity_type in types:
            code = make_credit_code(authority, entity_type, "330100", "MA2H2Q1K")
            assert is_valid_credit_code(code)
    assert set(identifiers.CREDIT_CODE_AUTHORITIES["9"][1]) == {"1", "2", "3"}
    assert set(identifiers.CREDIT_CODE_AUTHORITIES["Y"][1]) == {"1"}


def test_the_charset_leaves_out_the_five_letters() -> None:
    assert len(CREDIT_CODE_CHARSET) == 31
    assert not set("IOZSV") & set(CREDIT_CODE_CHARSET)


SUBSTITUTES = CREDIT_CODE_CHARSET + "IOZSV#"


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_every_single_character_substitution_of_a_credit_code_is_rejected(code: str) -> None:
    for position in range(18):
        for char in SUBSTITUTES:
            if char != code[position]:
                corrupted = code[:position] + char + code[position + 1 :]
                assert not is_valid_credit_code(corrupted), corrupted


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_mod_31_alone_detects_every_single_character_error(code: str) -> None:
    check = credit_code_check_char(code[:17])
    for position in range(17):
        for char in CREDIT_CODE_CHARSET:
            if char != code[position]:
                changed = code[:position] + char + code[position + 1 : 17]
                assert credit_code_check_char(changed) != check


def test_the_organisation_code_check_alone_misses_some_errors_the_final_check_catches() -> None:
    # GB 11714 works modulo 11 over values up to 35: "1" (1) and "C" (12) weigh the same.
    org = "M000100Y"
    swapped = org[:4] + "C" + org[5:]
    assert organisation_code_check_char(swapped) == organisation_code_check_char(org)
    code = "91350100" + swapped + "4" + "3"
    assert credit_reason(code).part == "check_char"


@pytest.mark.parametrize("code", PUBLISHED_CREDIT_CODES)
def test_adjacent_transpositions_in_a_credit_code_are_rejected(code: str) -> None:
    for position in range(16):
        a, b = code[position], code[position + 1]
        if a != b:
            swapped = code[:position] + b + a + code[position + 2 :]
            assert not is_valid_credit_code(swapped), swapped


def test_make_credit_code_computes_both_checks() -> None:
    code = make_credit_code("9", "1", "350100", "M000100Y")
    assert code == "91350100M000100Y43"
    with pytest.raises(InvalidIdentifier):
        make_credit_code("9", "4", "350100", "M000100Y")
    with pytest.raises(InvalidIdentifier):
        make_credit_code("9", "1", "350100", "M00010OY")


# --- Phones -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    ["13812345678", "138 1234 5678", "138-1234-5678", "+86 138 1234 5678", "+8613812345678",
     "008613812345678", "8613812345678", "１３８１２３４５６７８"],
)  # fmt: skip
def test_mobile_numbers_are_normalised(value: str) -> None:
    assert normalise_phone(value) == "13812345678"
    assert is_valid_phone(value)


@pytest.mark.parametrize(
    "value",
    ["", "1381234567", "138123456789", "12812345678", "23812345678", "1381234567a",
     "+1 138 1234 5678", "+86 12812345678", "013812345678", "²3812345678"],
)  # fmt: skip
def test_other_numbers_are_refused(value: str) -> None:
    assert not is_valid_phone(value)
    with pytest.raises(InvalidIdentifier) as caught:
        normalise_phone(value)
    assert caught.value.part == "phone"


def test_the_highest_mobile_prefixes_are_accepted() -> None:
    assert is_valid_phone("19912345678")
    assert is_valid_phone("16612345678")


# --- Masks --------------------------------------------------------------------------------------


def test_masks() -> None:
    assert mask_resident_id("330106199001011234") == "330106********1234"
    assert mask_credit_code("91350100M000100Y43") == "91350100********43"
    assert mask_phone("13812345678") == "138****5678"
    assert mask_name("张三丰") == "张**"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳修") == "欧**"


def test_masks_never_show_a_value_too_short_to_hide() -> None:
    assert mask_name("张") == "*"
    assert mask_phone("1234567") == "*******"
    assert mask_resident_id("1234") == "****"
    assert mask_resident_id("") == ""

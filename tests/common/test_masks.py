"""The shared masks (libs/common/masks.py): what each keeps, short values, blanks."""

from __future__ import annotations

import pytest

from libs.common import masks


@pytest.mark.parametrize(
    ("mask", "value", "masked"),
    [
        (masks.mask_name, "张三", "张*"),
        (masks.mask_name, "张三丰", "张*丰"),
        (masks.mask_name, "欧阳娜娜", "欧**娜"),
        (masks.mask_name, "张", "*"),
        (masks.mask_name, " 李四 ", "李*"),
        (masks.mask_phone, "13800001234", "138****1234"),
        (masks.mask_resident_id, "330106198803121014", "330106********1014"),
        (masks.mask_credit_code, "91330106MA2000019C", "91330106********9C"),
        (masks.mask_account, "6222020200112233445", "***************3445"),
        (masks.mask_address, "浙江省杭州市西湖区文三路 90 号", "浙江省杭州市" + "*" * 11),
        (masks.mask_text, "active", "a*****"),
        (masks.mask_date, "1988-03-12", "1988-**-**"),
        (masks.mask_date, "1988-03-12T08:00:00+08:00", "1988-**-**"),
        (masks.mask_date, "unknown", "u******"),
        # Too short to keep anything without showing it whole: all hidden.
        (masks.mask_phone, "1234567", "*******"),
        (masks.mask_resident_id, "3301061014", "**********"),
        (masks.mask_text, "x", "*"),
        (masks.mask_text, "", ""),
    ],
)
def test_each_mask_keeps_only_its_part(mask: object, value: str, masked: str) -> None:
    assert callable(mask)
    assert mask(value) == masked


def test_surrounding_blanks_are_not_kept_nor_counted() -> None:
    assert masks.mask_keep("  13800001234 ", 3, 4) == "138****1234"
    assert masks.mask_keep("\t330106198803121014\n", 6, 4) == "330106********1014"

"""Administrative division codes: the table, its tree and the rules of the code's structure."""

from __future__ import annotations

import pytest

from services.identity import regions
from services.identity.regions import Region, RegionNode, UnknownRegion

PROVINCE_PREFIXES = (
    "11 12 13 14 15 21 22 23 31 32 33 34 35 36 37 41 42 43 44 45 46 50 51 52 53 54 "
    "61 62 63 64 65 71 81 82"
).split()

ZHEJIANG_CITIES = {
    "330100": "杭州市",
    "330200": "宁波市",
    "330300": "温州市",
    "330400": "嘉兴市",
    "330500": "湖州市",
    "330600": "绍兴市",
    "330700": "金华市",
    "330800": "衢州市",
    "330900": "舟山市",
    "331000": "台州市",
    "331100": "丽水市",
}

HANGZHOU = {
    "330102": "上城区",
    "330105": "拱墅区",
    "330106": "西湖区",
    "330108": "滨江区",
    "330109": "萧山区",
    "330110": "余杭区",
    "330111": "富阳区",
    "330112": "临安区",
    "330113": "临平区",
    "330114": "钱塘区",
    "330122": "桐庐县",
    "330127": "淳安县",
    "330182": "建德市",
}

NINGBO = {
    "330203": "海曙区",
    "330205": "江北区",
    "330206": "北仑区",
    "330211": "镇海区",
    "330212": "鄞州区",
    "330213": "奉化区",
    "330225": "象山县",
    "330226": "宁海县",
    "330281": "余姚市",
    "330282": "慈溪市",
}

# County-level divisions per Zhejiang city (37 districts, 20 cities, 32 counties, 1 autonomous
# county: 90 in all).
COUNTIES_PER_CITY = {
    "330100": 13,
    "330200": 10,
    "330300": 12,
    "330400": 7,
    "330500": 5,
    "330600": 6,
    "330700": 9,
    "330800": 6,
    "330900": 4,
    "331000": 9,
    "331100": 9,
}

EVERY_REGION = regions.all_regions(include_withdrawn=True)


def region(code: str) -> Region:
    found = regions.get_region(code)
    assert found is not None, code
    return found


def test_the_34_province_level_divisions() -> None:
    provinces = regions.all_regions(level="province")
    assert [p.code for p in provinces] == [f"{prefix}0000" for prefix in PROVINCE_PREFIXES]
    assert regions.PROVINCE_CODES == {p.code for p in provinces}
    assert regions.get_region("330000") == Region(
        code="330000", name_zh="浙江省", name_en="Zhejiang", level="province", parent_code=None
    )
    assert region("110000").name_zh == "北京市"
    assert region("820000").name_zh == "澳门特别行政区"


def test_zhejiang_has_its_11_cities() -> None:
    cities = regions.children("330000")
    assert {c.code: c.name_zh for c in cities} == ZHEJIANG_CITIES
    assert all(c.level == "city" and c.parent_code == "330000" for c in cities)
    assert region("330100").name_en == "Hangzhou"


def test_hangzhou_and_ningbo_have_their_current_districts_and_counties() -> None:
    assert {r.code: r.name_zh for r in regions.children("330100")} == HANGZHOU
    assert {r.code: r.name_zh for r in regions.children("330200")} == NINGBO


def test_every_zhejiang_city_has_all_its_county_level_divisions() -> None:
    counts = {city: len(regions.children(city)) for city in ZHEJIANG_CITIES}
    assert counts == COUNTIES_PER_CITY
    zhejiang_counties = [r for r in regions.all_regions(level="county") if r.code.startswith("33")]
    assert len(zhejiang_counties) == 90


@pytest.mark.parametrize("subject", EVERY_REGION, ids=lambda r: r.code)
def test_every_region_is_consistent_with_its_code(subject: Region) -> None:
    assert len(subject.code) == 6 and subject.code.isascii() and subject.code.isdigit()
    assert subject.name_zh and subject.name_en.isascii() and subject.name_en
    assert subject.level == regions.level_of(subject.code)
    if subject.level == "province":
        assert subject.parent_code is None
        return
    parent = regions.get_region(subject.parent_code or "")
    assert parent is not None, "every parent is in the table"
    assert parent.is_current
    assert parent.code[:2] == subject.code[:2]
    if subject.level == "city":
        assert parent.code == subject.code[:2] + "0000"
    elif regions.get_region(subject.code[:4] + "00") is not None:
        assert parent.code == subject.code[:4] + "00"
    else:
        assert parent.level == "province"  # 省直辖县级: administered by the province


def test_codes_are_unique_and_ordered() -> None:
    codes = [r.code for r in EVERY_REGION]
    assert codes == sorted(set(codes))


def test_level_of_reads_the_structure_of_the_code() -> None:
    assert regions.level_of("330000") == "province"
    assert regions.level_of("330100") == "city"
    assert regions.level_of("330106") == "county"
    assert regions.level_of("429004") == "county"


def test_a_county_the_province_administers_directly_has_the_province_as_parent() -> None:
    # 429004 仙桃市 sits under 湖北省: 429000 is a grouping, not a city.
    assert regions._parent_code("429004", {"420000", "429004"}) == "420000"
    assert regions._parent_code("330106", {"330000", "330100", "330106"}) == "330100"


def test_ancestors_run_from_the_province_down() -> None:
    assert [r.code for r in regions.ancestors("330106")] == ["330000", "330100"]
    assert [r.code for r in regions.ancestors("330100")] == ["330000"]
    assert regions.ancestors("330000") == ()


def test_province_of_any_code() -> None:
    assert regions.province_of("330106") == region("330000")
    assert regions.province_of("110105") == region("110000")
    assert regions.province_of("990101") is None
    assert regions.province_of("33010") is None
    assert regions.province_of("３３０１０６") is None  # full-width digits are not a code


def test_withdrawn_codes_are_known_but_not_current() -> None:
    xiacheng = regions.get_region("330103")
    assert xiacheng is not None and xiacheng.name_zh == "下城区"
    assert xiacheng.withdrawn_in == 2021 and not xiacheng.is_current
    assert not regions.is_known_region("330103")
    assert regions.is_known_region("330103", include_withdrawn=True)
    assert "330103" not in {r.code for r in regions.children("330100")}
    assert [r.code for r in regions.ancestors("330103")] == ["330000", "330100"]
    assert regions.is_known_region("330105")


def test_unknown_codes() -> None:
    assert regions.get_region("330199") is None
    assert not regions.is_known_region("330199", include_withdrawn=True)
    for lookup in (regions.children, regions.ancestors, regions.region_tree):
        with pytest.raises(UnknownRegion):
            lookup("330199")


def test_region_tree_of_the_demo_province() -> None:
    tree = regions.region_tree()
    assert tree.region.code == "330000"

    def walk(node: RegionNode, depth: int) -> list[tuple[int, Region]]:
        found = [(depth, node.region)]
        for child in node.children:
            assert child.region.parent_code == node.region.code
            found += walk(child, depth + 1)
        return found

    nodes = walk(tree, 0)
    assert len(nodes) == 1 + 11 + 90
    assert {depth for depth, r in nodes if r.level == "county"} == {2}
    assert all(r.is_current for _, r in nodes)
    hangzhou = tree.children[0]
    assert [c.region.code for c in hangzhou.children] == sorted(HANGZHOU)
    assert regions.region_tree("330106") == RegionNode(region=region("330106"), children=())

"""Administrative division codes (行政区划代码, GB/T 2260) of the demo province.

Six digits ``PPCCDD``: ``PP0000`` is a province-level division, ``PPCC00`` a prefecture-level
city, anything else a county-level division (district, county, county-level city). The table
holds the 34 province-level divisions and, for the demo province Zhejiang (浙江省, 330000), all
11 cities and all 90 county-level divisions with their current codes, plus the county-level
codes withdrawn since 2001: a resident identity number keeps the code of the place where it was
first issued, so those codes must still be recognised even though no region has them any more.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

RegionLevel = Literal["province", "city", "county"]

DEMO_PROVINCE = "330000"
# GB/T 2260 uses 100000 for the country as a whole; registrations at national level carry it.
NATIONAL_CODE = "100000"


class UnknownRegion(LookupError):
    """No region in the table has this code."""


@dataclass(frozen=True, slots=True)
class Region:
    """One administrative division."""

    code: str
    name_zh: str
    name_en: str
    level: RegionLevel
    parent_code: str | None
    # The year its code was withdrawn (merged, renamed or re-coded); None while it is current.
    withdrawn_in: int | None = None

    @property
    def is_current(self) -> bool:
        """Whether the code is still in use."""
        return self.withdrawn_in is None


@dataclass(frozen=True, slots=True)
class RegionNode:
    """A region and its current subdivisions, as a tree."""

    region: Region
    children: tuple[RegionNode, ...]


_PROVINCES: tuple[tuple[str, str, str], ...] = (
    ("110000", "北京市", "Beijing"),
    ("120000", "天津市", "Tianjin"),
    ("130000", "河北省", "Hebei"),
    ("140000", "山西省", "Shanxi"),
    ("150000", "内蒙古自治区", "Nei Mongol"),
    ("210000", "辽宁省", "Liaoning"),
    ("220000", "吉林省", "Jilin"),
    ("230000", "黑龙江省", "Heilongjiang"),
    ("310000", "上海市", "Shanghai"),
    ("320000", "江苏省", "Jiangsu"),
    ("330000", "浙江省", "Zhejiang"),
    ("340000", "安徽省", "Anhui"),
    ("350000", "福建省", "Fujian"),
    ("360000", "江西省", "Jiangxi"),
    ("370000", "山东省", "Shandong"),
    ("410000", "河南省", "Henan"),
    ("420000", "湖北省", "Hubei"),
    ("430000", "湖南省", "Hunan"),
    ("440000", "广东省", "Guangdong"),
    ("450000", "广西壮族自治区", "Guangxi"),
    ("460000", "海南省", "Hainan"),
    ("500000", "重庆市", "Chongqing"),
    ("510000", "四川省", "Sichuan"),
    ("520000", "贵州省", "Guizhou"),
    ("530000", "云南省", "Yunnan"),
    ("540000", "西藏自治区", "Xizang"),
    ("610000", "陕西省", "Shaanxi"),
    ("620000", "甘肃省", "Gansu"),
    ("630000", "青海省", "Qinghai"),
    ("640000", "宁夏回族自治区", "Ningxia"),
    ("650000", "新疆维吾尔自治区", "Xinjiang"),
    ("710000", "台湾省", "Taiwan"),
    ("810000", "香港特别行政区", "Hong Kong"),
    ("820000", "澳门特别行政区", "Macao"),
)

# Zhejiang's cities and county-level divisions, current codes (after the 2021 Hangzhou and the
# 2019 Longgang changes).
_ZHEJIANG: tuple[tuple[str, str, str], ...] = (
    ("330100", "杭州市", "Hangzhou"),
    ("330102", "上城区", "Shangcheng"),
    ("330105", "拱墅区", "Gongshu"),
    ("330106", "西湖区", "Xihu"),
    ("330108", "滨江区", "Binjiang"),
    ("330109", "萧山区", "Xiaoshan"),
    ("330110", "余杭区", "Yuhang"),
    ("330111", "富阳区", "Fuyang"),
    ("330112", "临安区", "Lin'an"),
    ("330113", "临平区", "Linping"),
    ("330114", "钱塘区", "Qiantang"),
    ("330122", "桐庐县", "Tonglu"),
    ("330127", "淳安县", "Chun'an"),
    ("330182", "建德市", "Jiande"),
    ("330200", "宁波市", "Ningbo"),
    ("330203", "海曙区", "Haishu"),
    ("330205", "江北区", "Jiangbei"),
    ("330206", "北仑区", "Beilun"),
    ("330211", "镇海区", "Zhenhai"),
    ("330212", "鄞州区", "Yinzhou"),
    ("330213", "奉化区", "Fenghua"),
    ("330225", "象山县", "Xiangshan"),
    ("330226", "宁海县", "Ninghai"),
    ("330281", "余姚市", "Yuyao"),
    ("330282", "慈溪市", "Cixi"),
    ("330300", "温州市", "Wenzhou"),
    ("330302", "鹿城区", "Lucheng"),
    ("330303", "龙湾区", "Longwan"),
    ("330304", "瓯海区", "Ouhai"),
    ("330305", "洞头区", "Dongtou"),
    ("330324", "永嘉县", "Yongjia"),
    ("330326", "平阳县", "Pingyang"),
    ("330327", "苍南县", "Cangnan"),
    ("330328", "文成县", "Wencheng"),
    ("330329", "泰顺县", "Taishun"),
    ("330381", "瑞安市", "Rui'an"),
    ("330382", "乐清市", "Yueqing"),
    ("330383", "龙港市", "Longgang"),
    ("330400", "嘉兴市", "Jiaxing"),
    ("330402", "南湖区", "Nanhu"),
    ("330411", "秀洲区", "Xiuzhou"),
    ("330421", "嘉善县", "Jiashan"),
    ("330424", "海盐县", "Haiyan"),
    ("330481", "海宁市", "Haining"),
    ("330482", "平湖市", "Pinghu"),
    ("330483", "桐乡市", "Tongxiang"),
    ("330500", "湖州市", "Huzhou"),
    ("330502", "吴兴区", "Wuxing"),
    ("330503", "南浔区", "Nanxun"),
    ("330521", "德清县", "Deqing"),
    ("330522", "长兴县", "Changxing"),
    ("330523", "安吉县", "Anji"),
    ("330600", "绍兴市", "Shaoxing"),
    ("330602", "越城区", "Yuecheng"),
    ("330603", "柯桥区", "Keqiao"),
    ("330604", "上虞区", "Shangyu"),
    ("330624", "新昌县", "Xinchang"),
    ("330681", "诸暨市", "Zhuji"),
    ("330683", "嵊州市", "Shengzhou"),
    ("330700", "金华市", "Jinhua"),
    ("330702", "婺城区", "Wucheng"),
    ("330703", "金东区", "Jindong"),
    ("330723", "武义县", "Wuyi"),
    ("330726", "浦江县", "Pujiang"),
    ("330727", "磐安县", "Pan'an"),
    ("330781", "兰溪市", "Lanxi"),
    ("330782", "义乌市", "Yiwu"),
    ("330783", "东阳市", "Dongyang"),
    ("330784", "永康市", "Yongkang"),
    ("330800", "衢州市", "Quzhou"),
    ("330802", "柯城区", "Kecheng"),
    ("330803", "衢江区", "Qujiang"),
    ("330822", "常山县", "Changshan"),
    ("330824", "开化县", "Kaihua"),
    ("330825", "龙游县", "Longyou"),
    ("330881", "江山市", "Jiangshan"),
    ("330900", "舟山市", "Zhoushan"),
    ("330902", "定海区", "Dinghai"),
    ("330903", "普陀区", "Putuo"),
    ("330921", "岱山县", "Daishan"),
    ("330922", "嵊泗县", "Shengsi"),
    ("331000", "台州市", "Taizhou"),
    ("331002", "椒江区", "Jiaojiang"),
    ("331003", "黄岩区", "Huangyan"),
    ("331004", "路桥区", "Luqiao"),
    ("331022", "三门县", "Sanmen"),
    ("331023", "天台县", "Tiantai"),
    ("331024", "仙居县", "Xianju"),
    ("331081", "温岭市", "Wenling"),
    ("331082", "临海市", "Linhai"),
    ("331083", "玉环市", "Yuhuan"),
    ("331100", "丽水市", "Lishui"),
    ("331102", "莲都区", "Liandu"),
    ("331121", "青田县", "Qingtian"),
    ("331122", "缙云县", "Jinyun"),
    ("331123", "遂昌县", "Suichang"),
    ("331124", "松阳县", "Songyang"),
    ("331125", "云和县", "Yunhe"),
    ("331126", "庆元县", "Qingyuan"),
    ("331127", "景宁畲族自治县", "Jingning"),
    ("331181", "龙泉市", "Longquan"),
)

# Zhejiang's county-level codes withdrawn since 2001, with the year: still on identity numbers.
_ZHEJIANG_WITHDRAWN: tuple[tuple[str, str, str, int], ...] = (
    ("330103", "下城区", "Xiacheng", 2021),  # into 拱墅区
    ("330104", "江干区", "Jianggan", 2021),  # into 上城区 and 钱塘区
    ("330181", "萧山市", "Xiaoshan", 2001),  # became 萧山区 330109
    ("330183", "富阳市", "Fuyang", 2014),  # became 富阳区 330111
    ("330184", "余杭市", "Yuhang", 2001),  # became 余杭区 330110
    ("330185", "临安市", "Lin'an", 2017),  # became 临安区 330112
    ("330204", "江东区", "Jiangdong", 2016),  # into 鄞州区
    ("330283", "奉化市", "Fenghua", 2016),  # became 奉化区 330213
    ("330322", "洞头县", "Dongtou", 2015),  # became 洞头区 330305
    ("330621", "绍兴县", "Shaoxing", 2013),  # became 柯桥区 330603
    ("330682", "上虞市", "Shangyu", 2013),  # became 上虞区 330604
    ("330821", "衢县", "Qu", 2001),  # became 衢江区 330803
    ("331021", "玉环县", "Yuhuan", 2017),  # became 玉环市 331083
)


def level_of(code: str) -> RegionLevel:
    """The level a six-digit code denotes by its structure."""
    if code[2:] == "0000":
        return "province"
    if code[4:] == "00":
        return "city"
    return "county"


def _parent_code(code: str, known: set[str]) -> str | None:
    level = level_of(code)
    if level == "province":
        return None
    province = code[:2] + "0000"
    if level == "city":
        return province
    # A county sits under its city, except one administered by the province directly
    # (省直辖县级行政区划, e.g. 429004 仙桃市 under 湖北省): its PPCC00 is no city.
    city = code[:4] + "00"
    return city if city in known else province


def _build() -> dict[str, Region]:
    rows: list[tuple[str, str, str, int | None]] = [
        (code, zh, en, None) for code, zh, en in (*_PROVINCES, *_ZHEJIANG)
    ]
    rows += _ZHEJIANG_WITHDRAWN
    known = {row[0] for row in rows}
    return {
        code: Region(
            code=code,
            name_zh=zh,
            name_en=en,
            level=level_of(code),
            parent_code=_parent_code(code, known),
            withdrawn_in=withdrawn_in,
        )
        for code, zh, en, withdrawn_in in sorted(rows)
    }


def _index_children(regions: dict[str, Region]) -> dict[str, tuple[Region, ...]]:
    index: dict[str, list[Region]] = {}
    for region in regions.values():
        if region.parent_code is not None and region.is_current:
            index.setdefault(region.parent_code, []).append(region)
    return {code: tuple(subdivisions) for code, subdivisions in index.items()}


_REGIONS: dict[str, Region] = _build()
_CHILDREN: dict[str, tuple[Region, ...]] = _index_children(_REGIONS)

PROVINCE_CODES: frozenset[str] = frozenset(code for code, _, _ in _PROVINCES)


def get_region(code: str) -> Region | None:
    """The region with this code, current or withdrawn; None when the table lacks it."""
    return _REGIONS.get(code)


def is_known_region(code: str, *, include_withdrawn: bool = False) -> bool:
    """Whether the table has this code (withdrawn codes only when asked for)."""
    region = _REGIONS.get(code)
    return region is not None and (include_withdrawn or region.is_current)


def _require(code: str) -> Region:
    region = _REGIONS.get(code)
    if region is None:
        raise UnknownRegion(f"no administrative division has the code {code!r}")
    return region


def children(code: str) -> tuple[Region, ...]:
    """The current direct subdivisions of a region, by code."""
    _require(code)
    return _CHILDREN.get(code, ())


def ancestors(code: str) -> tuple[Region, ...]:
    """The regions above this one, the province first; empty for a province."""
    chain: list[Region] = []
    parent = _require(code).parent_code
    while parent is not None:
        region = _REGIONS[parent]
        chain.append(region)
        parent = region.parent_code
    return tuple(reversed(chain))


def province_of(code: str) -> Region | None:
    """The province-level division a code's first two digits name; None if they name none."""
    if len(code) != 6 or not code.isascii() or not code.isdigit():
        return None
    return _REGIONS.get(code[:2] + "0000")


def all_regions(
    *, level: RegionLevel | None = None, include_withdrawn: bool = False
) -> tuple[Region, ...]:
    """Every region in the table, by code, optionally of one level only."""
    return tuple(
        region
        for region in _REGIONS.values()
        if (level is None or region.level == level) and (include_withdrawn or region.is_current)
    )


def region_tree(root: str = DEMO_PROVINCE) -> RegionNode:
    """The current regions under ``root`` as a tree."""
    region = _require(root)
    return RegionNode(region=region, children=tuple(region_tree(c.code) for c in children(root)))

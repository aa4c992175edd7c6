"""Every indicator: its name, unit and formula over the summed counters of a scope and period.

A rate whose denominator is 0 has no value (null), never 0: a department with no finished
applications is not "0 % on time".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

Sums = Mapping[str, int]
Unit = Literal["ratio", "rating", "hours", "working_days", "count", "count_per_day"]


@dataclass(frozen=True)
class Indicator:
    """One indicator; ``compute`` gets the counters summed over the period and its length."""

    key: str
    name_zh: str
    name_en: str
    unit: Unit
    formula: str
    compute: Callable[[Sums, int], float | None]
    # For the histogram-based percentile, computed from another table.
    percentile: float | None = None


def _ratio(
    numerator: str, denominator: str | tuple[str, ...]
) -> Callable[[Sums, int], float | None]:
    names = (denominator,) if isinstance(denominator, str) else denominator

    def compute(s: Sums, _days: int) -> float | None:
        total = sum(s.get(n, 0) for n in names)
        return s.get(numerator, 0) / total if total else None

    return compute


def _scaled(numerator: str, denominator: str, scale: float) -> Callable[[Sums, int], float | None]:
    def compute(s: Sums, _days: int) -> float | None:
        total = s.get(denominator, 0)
        return s.get(numerator, 0) / total / scale if total else None

    return compute


def _one_minus(numerator: str, denominator: str) -> Callable[[Sums, int], float | None]:
    def compute(s: Sums, _days: int) -> float | None:
        total = s.get(denominator, 0)
        return 1 - s.get(numerator, 0) / total if total else None

    return compute


def _count(name: str) -> Callable[[Sums, int], float | None]:
    return lambda s, _days: float(s.get(name, 0))


def _per_day(name: str) -> Callable[[Sums, int], float | None]:
    return lambda s, days: s.get(name, 0) / days if days else None


def _share_fetched(s: Sums, _days: int) -> float | None:
    total = s.get("materials_fetched", 0) + s.get("materials_uploaded", 0)
    return s.get("materials_fetched", 0) / total if total else None


def _refusal_rate(s: Sums, _days: int) -> float | None:
    total = s.get("exchange_used", 0) + s.get("exchange_refused", 0)
    return s.get("exchange_refused", 0) / total if total else None


def _withdrawal_rate(s: Sums, _days: int) -> float | None:
    total = s.get("finished", 0) + s.get("withdrawn", 0)
    return s.get("withdrawn", 0) / total if total else None


INDICATORS: tuple[Indicator, ...] = (
    Indicator("applications_submitted", "申报量", "Applications submitted", "count",
              "submitted", _count("submitted")),
    Indicator("applications_finished", "办结量", "Applications finished", "count",
              "finished (completed + rejected)", _count("finished")),
    Indicator("online_submission_rate", "网上申报率", "Online submission rate", "ratio",
              "submitted_online / submitted", _ratio("submitted_online", "submitted")),
    Indicator("online_completion_rate", "全程网办率", "Online completion rate", "ratio",
              "online_completed / completed", _ratio("online_completed", "completed")),
    Indicator("zero_visit_rate", "零跑腿率", "Zero-visit rate", "ratio",
              "zero_visit / finished", _ratio("zero_visit", "finished")),
    Indicator("avg_processing_hours", "平均办理时长（小时）", "Average processing time (hours)",
              "hours", "processing_minutes / measured / 60",
              _scaled("processing_minutes", "measured", 60)),
    Indicator("avg_processing_working_days", "平均办理时长（工作日）",
              "Average processing time (working days)", "working_days",
              "processing_wd / measured", _scaled("processing_wd", "measured", 1)),
    Indicator("p90_processing_working_days", "办理时长90分位（工作日）",
              "90th percentile processing time (working days)", "working_days",
              "nearest-rank 90th percentile of working days over finished applications",
              lambda _s, _d: None, percentile=0.9),
    Indicator("time_limit_compression", "实际办理时限压缩率", "Time-limit compression (actual)",
              "ratio", "1 - limited_wd / legal_days", _one_minus("limited_wd", "legal_days")),
    Indicator("promised_limit_compression", "承诺时限压缩率",
              "Time-limit compression (promised)", "ratio", "1 - promised_days / legal_days",
              _one_minus("promised_days", "legal_days")),
    Indicator("on_time_rate", "按时办结率", "On-time rate", "ratio", "on_time / timed",
              _ratio("on_time", "timed")),
    Indicator("supplement_rate", "补正率", "Supplement rate", "ratio",
              "supplemented / finished", _ratio("supplemented", "finished")),
    Indicator("approval_rate", "办结通过率", "Approval rate", "ratio", "completed / finished",
              _ratio("completed", "finished")),
    Indicator("withdrawal_rate", "撤件率", "Withdrawal rate", "ratio",
              "withdrawn / (finished + withdrawn)", _withdrawal_rate),
    Indicator("materials_fetched_share", "材料免提交率（数据共享复用率）",
              "Share of materials fetched, not uploaded", "ratio",
              "materials_fetched / (materials_fetched + materials_uploaded)", _share_fetched),
    Indicator("reviews", "评价量", "Reviews", "count", "reviews", _count("reviews")),
    Indicator("satisfaction", "平均评分", "Average rating (1-5)", "rating",
              "rating_sum / reviews", _scaled("rating_sum", "reviews", 1)),
    Indicator("satisfaction_rate", "满意率", "Satisfaction rate", "ratio",
              "satisfied / reviews (overall >= 4)", _ratio("satisfied", "reviews")),
    Indicator("bad_review_rate", "差评率", "Bad-review rate", "ratio",
              "bad / reviews (overall <= 2)", _ratio("bad", "reviews")),
    Indicator("speed_rating", "办事速度评分", "Speed rating (1-5)", "rating",
              "speed_sum / reviews", _scaled("speed_sum", "reviews", 1)),
    Indicator("attitude_rating", "服务态度评分", "Attitude rating (1-5)", "rating",
              "attitude_sum / reviews", _scaled("attitude_sum", "reviews", 1)),
    Indicator("clarity_rating", "办事指南清晰度评分", "Clarity rating (1-5)", "rating",
              "clarity_sum / reviews", _scaled("clarity_sum", "reviews", 1)),
    Indicator("convenience_rating", "便利度评分", "Convenience rating (1-5)", "rating",
              "convenience_sum / reviews", _scaled("convenience_sum", "reviews", 1)),
    Indicator("rectification_rate", "差评整改率", "Rectification rate", "ratio",
              "cases_rectified / cases_opened", _ratio("cases_rectified", "cases_opened")),
    Indicator("avg_rectification_hours", "平均整改时长（小时）",
              "Average rectification time (hours)", "hours",
              "rectification_minutes / cases_rectified / 60",
              _scaled("rectification_minutes", "cases_rectified", 60)),
    Indicator("case_overdue_rate", "整改超期率", "Overdue-case rate", "ratio",
              "cases_overdue / cases_opened", _ratio("cases_overdue", "cases_opened")),
    Indicator("exchange_provided", "数据共享提供量", "Records shared with others", "count",
              "exchange_provided", _count("exchange_provided")),
    Indicator("exchange_used", "数据共享调用量", "Records used from others", "count",
              "exchange_used", _count("exchange_used")),
    Indicator("exchange_provided_per_day", "日均数据共享提供量",
              "Records shared per day", "count_per_day", "exchange_provided / days",
              _per_day("exchange_provided")),
    Indicator("exchange_refusal_rate", "数据共享拒绝率", "Exchange refusal rate", "ratio",
              "exchange_refused / (exchange_used + exchange_refused)", _refusal_rate),
    Indicator("open_data_reads", "开放数据调用量", "Open-data reads", "count",
              "open_data_reads", _count("open_data_reads")),
    Indicator("open_data_reads_per_day", "日均开放数据调用量", "Open-data reads per day",
              "count_per_day", "open_data_reads / days", _per_day("open_data_reads")),
    Indicator("records_imported", "数据归集量", "Records pushed to hosted datasets", "count",
              "records_imported", _count("records_imported")),
)  # fmt: skip

BY_KEY: dict[str, Indicator] = {i.key: i for i in INDICATORS}


def percentile(histogram: Mapping[int, int], fraction: float) -> float | None:
    """The nearest-rank percentile of a histogram {value: count}; None when it is empty."""
    total = sum(histogram.values())
    if total == 0:
        return None
    # ceil(total * fraction) in exact arithmetic: 10 * 0.9 must be 9, not 9.000000000000002.
    rank = max(1, math.ceil(Fraction(fraction).limit_denominator(1000) * total))
    seen = 0
    for value in sorted(histogram):
        seen += histogram[value]
        if seen >= rank:
            return float(value)
    return float(max(histogram))


def compute_all(
    sums: Sums, days: int, histogram: Mapping[int, int] | None = None
) -> dict[str, float | None]:
    """Every indicator's value for one scope and period."""
    values: dict[str, float | None] = {}
    for indicator in INDICATORS:
        if indicator.percentile is not None:
            values[indicator.key] = (
                percentile(histogram, indicator.percentile) if histogram is not None else None
            )
        else:
            values[indicator.key] = indicator.compute(sums, days)
    return values

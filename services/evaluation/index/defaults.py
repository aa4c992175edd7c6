"""The built-in indicator system (version 0), used until a platform admin stores a version."""

from __future__ import annotations

from typing import Any

DEFAULT_SYSTEM: dict[str, Any] = {
    "dimensions": [
        {
            "key": "governance_precision", "name_zh": "治理精准度",
            "name_en": "Governance precision", "weight": 20,
            "indicators": [
                {"indicator": "on_time_rate", "weight": 35, "target": 1.0, "floor": 0.8},
                {"indicator": "time_limit_compression", "weight": 25, "target": 0.8,
                 "floor": 0.0},
                {"indicator": "supplement_rate", "weight": 20, "target": 0.02, "floor": 0.3},
                {"indicator": "rectification_rate", "weight": 20, "target": 1.0, "floor": 0.5},
            ],
        },
        {
            "key": "service_experience", "name_zh": "公共服务体验度",
            "name_en": "Public-service experience", "weight": 25,
            "indicators": [
                {"indicator": "satisfaction", "weight": 40, "target": 5.0, "floor": 3.0},
                {"indicator": "bad_review_rate", "weight": 25, "target": 0.0, "floor": 0.1},
                {"indicator": "zero_visit_rate", "weight": 20, "target": 1.0, "floor": 0.5},
                {"indicator": "avg_processing_working_days", "weight": 15, "target": 1.0,
                 "floor": 15.0},
            ],
        },
        {
            "key": "data_value", "name_zh": "数据共享开放价值",
            "name_en": "Data sharing and opening value", "weight": 20,
            "indicators": [
                {"indicator": "materials_fetched_share", "weight": 50, "target": 0.8,
                 "floor": 0.0},
                {"indicator": "exchange_refusal_rate", "weight": 25, "target": 0.0,
                 "floor": 0.2},
                {"indicator": "exchange_provided_per_day", "weight": 15, "target": 100.0,
                 "floor": 0.0},
                {"indicator": "open_data_reads_per_day", "weight": 10, "target": 50.0,
                 "floor": 0.0},
            ],
        },
        {
            "key": "institutional_inclusiveness", "name_zh": "制度包容度",
            "name_en": "Institutional inclusiveness", "weight": 15,
            "indicators": [
                {"indicator": "approval_rate", "weight": 50, "target": 0.98, "floor": 0.7},
                {"indicator": "withdrawal_rate", "weight": 20, "target": 0.0, "floor": 0.2},
                {"indicator": "clarity_rating", "weight": 30, "target": 5.0, "floor": 3.0},
            ],
        },
        {
            "key": "infrastructure_perception", "name_zh": "数字基础设施感知度",
            "name_en": "Digital-infrastructure perception", "weight": 20,
            "indicators": [
                {"indicator": "online_completion_rate", "weight": 40, "target": 0.9,
                 "floor": 0.3},
                {"indicator": "online_submission_rate", "weight": 30, "target": 1.0,
                 "floor": 0.5},
                {"indicator": "convenience_rating", "weight": 30, "target": 5.0, "floor": 3.0},
            ],
        },
    ]
}  # fmt: skip

"""The additive counters kept per scope and day; every indicator is a formula over their sums.

Counters are integers, so sums over any period are exact and do not depend on the order in which
events were applied (floating-point sums would).
"""

from __future__ import annotations

from typing import Final

# On the day an application was submitted.
SUBMISSION_COUNTERS: Final = ("submitted", "submitted_online")
# On the day an application was finished (completed, rejected or withdrawn).
FINISH_COUNTERS: Final = (
    "finished",  # completed + rejected (办结)
    "completed",
    "rejected",
    "withdrawn",
    "online_completed",  # completed, online channel, no visit (全程网办)
    "zero_visit",  # finished with no on-site visit (零跑腿)
    "measured",  # finished whose submission time is known
    "processing_minutes",  # calendar minutes from submission to finish, summed
    "processing_wd",  # working days from submission to finish, summed
    "limited",  # finished with a legal time limit (> 0)
    "legal_days",  # their legal limits, summed
    "promised_days",  # their promised limits, summed
    "limited_wd",  # their working days used, summed
    "timed",  # finished whose timeliness is known
    "on_time",  # of those, finished within the promised limit
    "supplemented",  # finished after a supplement request (补正)
    "materials_fetched",  # materials the government fetched itself (免提交)
    "materials_uploaded",  # materials the applicant uploaded
)
# On the day a review was first submitted.
REVIEW_COUNTERS: Final = (
    "reviews",
    "rating_sum",
    "satisfied",  # overall >= 4
    "bad",  # overall <= 2 (差评)
    "speed_sum",
    "attitude_sum",
    "clarity_sum",
    "convenience_sum",
)
# On the day a rectification case was opened.
CASE_COUNTERS: Final = (
    "cases_opened",
    "cases_rectified",  # confirmed by the applicant
    "rectification_minutes",  # opened -> last reply, for rectified cases
    "cases_overdue",  # the deadline passed at least once without a reply
    "cases_reopened",  # reopened by the applicant at least once
)
# On the day of the access (departments and the platform only; regions sum departments).
EXCHANGE_COUNTERS: Final = (
    "exchange_provided",  # granted reads of the department's datasets by others
    "exchange_used",  # granted reads the department made
    "exchange_refused",  # reads the department asked for and was refused
    "open_data_reads",  # reads of the department's open datasets (open data)
    "records_imported",  # records the department pushed into its hosted datasets
    "exchange_failed",  # reads of the department's federated data its system did not deliver
)

# The counters in groups that usually change together: a daily row's upsert names only the
# groups with a change (a submission-day row writes 2 counters, not all 38).
COUNTER_GROUPS: Final = (
    SUBMISSION_COUNTERS,
    FINISH_COUNTERS,
    REVIEW_COUNTERS,
    CASE_COUNTERS,
    EXCHANGE_COUNTERS,
)
COUNTERS: Final = tuple(name for group in COUNTER_GROUPS for name in group)

# A contribution's key for the processing-time histogram: "wd:<working days>".
HISTOGRAM_PREFIX: Final = "wd:"

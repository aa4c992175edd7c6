"""Settings of the workflow part, from ``PINGTAI_WORKFLOW_*`` variables."""

from __future__ import annotations

from typing import ClassVar

from pydantic_settings import SettingsConfigDict

from libs.common.settings import PartSettings
from services.workflow.clients.settings import ApplicationsSettings
from services.workflow.sla.settings import SlaLiveWebhookSettings


class WorkflowSettings(ApplicationsSettings, SlaLiveWebhookSettings, PartSettings):
    """The workflow part's settings."""

    part: ClassVar[str] = "workflow"

    model_config = SettingsConfigDict(
        env_prefix="PINGTAI_WORKFLOW_", extra="ignore", populate_by_name=True
    )

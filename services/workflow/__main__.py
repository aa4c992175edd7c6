"""``python -m services.workflow``: serve the workflow part."""

from libs.common.serve import serve
from services.workflow.settings import WorkflowSettings

serve("services.workflow.app:create_app", WorkflowSettings())

"""``python -m services.evaluation``: serve the evaluation part."""

from libs.common.serve import serve
from services.evaluation.settings import EvaluationSettings

serve("services.evaluation.app:create_app", EvaluationSettings())

"""``python -m services.identity``: serve the identity part."""

from libs.common.serve import serve
from services.identity.settings import IdentitySettings

serve("services.identity.app:create_app", IdentitySettings())

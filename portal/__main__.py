"""``python -m portal``: serve the portal part."""

from libs.common.serve import serve
from portal.settings import PortalSettings

serve("portal.app:create_app", PortalSettings())

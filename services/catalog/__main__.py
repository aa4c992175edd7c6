"""``python -m services.catalog``: serve the catalog part."""

from libs.common.serve import serve
from services.catalog.settings import CatalogSettings

serve("services.catalog.app:create_app", CatalogSettings())

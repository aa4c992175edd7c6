"""OAuth clients: the portal, apps, and department and enterprise systems."""

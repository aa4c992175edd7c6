"""Gateway: the one public entrance; routes /api/<part>/... to each service and / to the portal."""

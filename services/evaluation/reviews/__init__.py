"""Citizen reviews of finished applications (好差评)."""

"""Rectification of bad reviews (差评整改)."""

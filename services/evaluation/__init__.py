"""Evaluation: citizen reviews (好差评), rectification, indicators and the composite index."""

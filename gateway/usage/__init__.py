"""Calls, errors and quota per application and day, written in batches."""

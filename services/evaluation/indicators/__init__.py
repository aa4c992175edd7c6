"""Indicators computed from the event stream, per day and scope."""

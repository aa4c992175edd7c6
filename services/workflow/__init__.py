"""Workflow: applications (办件) from submission to result,
parallel department tasks, SLA clocks.
"""

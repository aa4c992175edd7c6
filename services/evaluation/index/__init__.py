"""The composite index: five weighted dimensions of indicators, scores and rankings."""

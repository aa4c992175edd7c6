"""Exchange: data shared between departments under grants and consent, the access
ledger, open data.
"""

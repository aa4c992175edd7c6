"""Open data: open datasets' records for anyone, public fields only, every read on the ledger."""

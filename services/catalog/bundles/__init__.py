"""One-thing bundles (一件事一次办): several departments' items, one merged form."""

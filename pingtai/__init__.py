"""The ``pingtai`` command: runs, migrates, seeds and supervises the platform's parts."""

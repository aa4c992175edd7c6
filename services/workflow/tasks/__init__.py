"""The process engine's branches and department tasks, and the officer inbox."""

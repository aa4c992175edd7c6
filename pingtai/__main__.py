"""`python -m pingtai` is the `pingtai` command."""

from pingtai.cli import main

main()

"""``python -m itinera.cli``."""

from itinera.cli import main

main()

"""``python -m itinera``: the ``itinera`` command."""

from itinera.cli import main

main()

"""``python -m mrisr`` runs the command line."""

from mrisr.cli import main

main()

"""python -m narratives: the command-line tool."""

from narratives.cli import main

main()

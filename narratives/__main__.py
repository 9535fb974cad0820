"""python -m narratives: the command-line tool."""

from narratives.cli.app import main

main()

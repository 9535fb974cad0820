"""python -m narratives: the command-line tool."""

from .cli import main

main()

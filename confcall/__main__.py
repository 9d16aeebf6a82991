"""Run the command line as `python -m confcall`."""

from confcall.cli import main

main()

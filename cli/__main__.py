"""`python -m cli ...` = `payreports ...`."""

from cli import main

main()

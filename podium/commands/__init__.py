"""Command groups of the `podium` command line, one module per noun."""

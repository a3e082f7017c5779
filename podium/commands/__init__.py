"""Command groups of the `podium` command line, one module per noun.

`podium --help` lists the commands in these panels, in the order a new user meets them.
"""

MANIFESTS = "Manifests: check, compile, apply, show"
TASKS = "Tasks: run, follow, audit, spend, approvals, pause and throttle"
SERVICES = "Services: run them (podium dev runs them all in one process)"
ADMIN = "Local stack and administration"

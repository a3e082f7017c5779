"""The core layer: what every package may import, and which imports nothing of the project above it.

Errors with one root, settings (which never read the dev stack's state file), logs, tracing,
lifecycle, retry and pricing. Nothing here imports `topics`, `manifests`, the services or the
command line; import-linter enforces it (`make lint`).
"""

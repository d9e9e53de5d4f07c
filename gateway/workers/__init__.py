"""Several worker processes behind one listener (`GATEWAY_WORKERS` > 1); see docs/deployment.md.

`supervisor` binds the main listener once and starts the workers (`python -m gateway serve` with the
listening socket inherited), restarts dead ones with back-off (`backoff`), serves the admin listener
for all of them (`admin`, `metrics_merge`), and drains them on SIGTERM. `worker` is the worker side.
"""

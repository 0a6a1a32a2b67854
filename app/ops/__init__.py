"""Operating the app: metrics, tracing, logs, readiness, collector tuning, version, smoke check."""

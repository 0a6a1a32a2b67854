"""Real processes for tests and benchmarks alike: redis-server, app servers, a Redis + Sentinel
fleet behind HAProxy, a bounded load driver, the chart rendered by the Helm engine. Imported by
`tests/` and `benchmarks/`, so neither imports the other."""

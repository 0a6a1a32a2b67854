"""Demo routes: what Locust, the benchmarks and the docs drive."""

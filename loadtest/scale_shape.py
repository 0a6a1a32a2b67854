"""The `scale` plan's load: a Locust ramp that makes the chart's HorizontalPodAutoscaler scale
the app out, then lets it scale back in.

    locust -f loadtest/locustfile.py,loadtest/scale_shape.py ... --chaos-plan scale

A quarter of --users to start, all of them for the first half of --run-time (the HPA adds
replicas), then an eighth (it removes them after its scale-down stabilization window, which
must be well under half the run: k8s/kind/values-scale.yaml sets 30 s). Locust uses a shape
class whenever a locustfile defines one, which is why it lives in a file of its own.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtest.scaling import users_at


class ScaleRamp(LoadTestShape):
    use_common_options = True  # it reads --users and --run-time

    def tick(self) -> tuple[int, float] | None:
        options = self.runner.environment.parsed_options
        users = users_at(self.get_run_time(), float(options.run_time or 300), options.num_users)
        return None if users is None else (users, float(options.num_users))

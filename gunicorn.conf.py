"""gunicorn settings for production: uvicorn workers, tuned by environment variables.

SESSIONFLEET_BIND (0.0.0.0:8000), SESSIONFLEET_WORKERS (2), SESSIONFLEET_GRACEFUL_TIMEOUT (25),
SESSIONFLEET_KEEPALIVE (75). Which proxies' X-Forwarded-For to believe is the app's setting
SESSIONFLEET_TRUSTED_PROXIES (docs/configuration.md).
"""

import os

bind = [os.environ.get("SESSIONFLEET_BIND", "0.0.0.0:8000")]
# Metrics on a port of their own (the app serves nothing else there: app/ops/metrics.py).
if int(os.environ.get("SESSIONFLEET_METRICS_PORT", "0")):
    bind.append(f"{bind[0].rpartition(':')[0]}:{os.environ['SESSIONFLEET_METRICS_PORT']}")
workers = int(os.environ.get("SESSIONFLEET_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))
worker_class = "uvicorn_worker.UvicornWorker"
# Longer than the ingress' idle timeout, so the proxy closes idle connections first.
keepalive = int(os.environ.get("SESSIONFLEET_KEEPALIVE", "75"))
# In-flight requests get this long after SIGTERM; keep it under the pod's grace period.
graceful_timeout = int(os.environ.get("SESSIONFLEET_GRACEFUL_TIMEOUT", "25"))
timeout = int(os.environ.get("SESSIONFLEET_WORKER_TIMEOUT", "30"))
# The server believes no X-Forwarded-For: the app reads it itself, from trusted proxies only
# (SESSIONFLEET_TRUSTED_PROXIES), the same under any server.
forwarded_allow_ips = ""
accesslog = None  # the ingress logs requests; app logs stay about the app
errorlog = "-"
loglevel = os.environ.get("SESSIONFLEET_LOG_LEVEL", "info")
# Heartbeat files on tmpfs: the root filesystem is read-only in the chart.
worker_tmp_dir = os.environ.get(
    "SESSIONFLEET_WORKER_TMP_DIR",
    "/dev/shm",  # noqa: S108 (gunicorn heartbeats, not secrets)
)
# gunicorn's runtime control socket (gunicornc) is not used here, and its default path
# ($HOME) is not writable on a read-only root filesystem.
control_socket_disable = True


def on_starting(server):
    # Prometheus metrics from every worker, added up at /metrics (see app/ops/metrics.py): a fresh
    # directory per server (workers inherit the variable), or old workers' files would count.
    import shutil

    default = f"/tmp/sessionfleet-metrics-{os.getpid()}"  # noqa: S108 (the container's tmpfs)
    metrics_dir = os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", default)
    shutil.rmtree(metrics_dir, ignore_errors=True)
    os.makedirs(metrics_dir, exist_ok=True)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    from app.ops.metrics import WORKER_EXITS

    multiprocess.mark_process_dead(worker.pid)
    # An OOM-killed worker is replaced in place: without this count nobody would see it
    # (gunicorn's own log line says "was sent SIGKILL! Perhaps out of memory?").
    WORKER_EXITS.inc()


# gunicorn's own messages as JSON lines too, like the app's (app/ops/logging_setup.py).
if os.environ.get("SESSIONFLEET_LOG_FORMAT", "json") == "json":
    logconfig_dict = {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": "app.ops.logging_setup.JsonFormatter"}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json"}},
        "root": {"handlers": ["stderr"], "level": "INFO"},
        "loggers": {
            "gunicorn.error": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "gunicorn.access": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
        },
    }

# sessionfleet app image: multi-stage, no compilers or pip in the final stage, non-root.
# Python dependencies come from build/wheelhouse (`make wheelhouse`, downloaded on the host for
# the image's platform: PLATFORM, default the engine's), so the build never reaches a package
# registry. BASE_IMAGE: an official slim Python by default; `make image` on a machine without
# registry access passes a locally built Debian base.
ARG BASE_IMAGE=python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
COPY build/wheelhouse /wheels
# A wheelhouse for another architecture would fail below as "no matching distribution": say why.
RUN arch=$(uname -m) && { ls /wheels | grep -q "_${arch}[.]" || { \
      echo "build/wheelhouse has no $arch wheels: make image PLATFORM=linux/<amd64|arm64>" >&2; \
      exit 1; }; } \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-index --find-links /wheels --no-cache-dir sessionfleet \
 && /opt/venv/bin/pip uninstall --yes pip \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${BASE_IMAGE}
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
COPY gunicorn.conf.py /app/gunicorn.conf.py
WORKDIR /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SESSIONFLEET_BIND=0.0.0.0:8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=5s --timeout=3s --retries=3 \
  CMD ["python", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8000/healthz', timeout=2)"]
ENTRYPOINT ["gunicorn", "-c", "/app/gunicorn.conf.py", "app.main:app"]

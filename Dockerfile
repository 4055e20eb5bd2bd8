# Popliteal: clinical decision-support API, served by gunicorn.
#
#   docker build -t popliteal .
#   docker run --rm -v popliteal-data:/app/instance popliteal flask --app service.wsgi db upgrade
#   docker run --rm -p 8000:8000 --read-only --tmpfs /tmp -v popliteal-data:/app/instance popliteal
#
# Two stages: the build stage makes a virtual environment from the hashed lock; the runtime
# stage takes that environment and the source, nothing else (no compiler, no pip cache, no
# build of the project itself). Both start from the same pinned base.

# --- build: the dependencies, from requirements.lock ----------------------------------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# The environment has no pip of its own (pip and setuptools are not needed to run the service):
# the base image's pip installs into it. Only the lock is copied before the install, so the
# layer is rebuilt only when the pins change. --require-hashes: every file is checked against
# the lock (for linux/amd64 and linux/arm64 alike); --no-deps: the lock is the whole closure;
# --only-binary: wheels only, nothing is compiled here. pip writes the bytecode as it installs.
RUN python -m venv --without-pip /opt/venv
COPY requirements.lock /tmp/requirements.lock
RUN python -m pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes \
        --no-deps --only-binary=:all: --requirement /tmp/requirements.lock \
    && python -m compileall -q -j 0 /opt/venv/lib/python3.11/site-packages

# --- runtime ----------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="popliteal" \
      org.opencontainers.image.description="Clinical decision support for pain behind the knee when stretching the hamstrings" \
      org.opencontainers.image.licenses="LicenseRef-Proprietary" \
      org.opencontainers.image.base.name="docker.io/library/python:3.11.14-slim-bookworm"

# HOST: gunicorn.conf.py listens on loopback unless told otherwise; in a container it must take
# connections from outside. Metrics (/metrics, served by the gunicorn master) stay on their own
# internal port: publish 8000 only. PYTHONPATH: `import service` works from any directory.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app \
    POPLITEAL_CONFIG=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WEB_CONCURRENCY=2 \
    POPLITEAL_METRICS_PORT=9464

# A fixed, unprivileged user and group: volumes and Kubernetes securityContext can name 10001.
# /app/instance holds the SQLite file when no DATABASE_URL is given; the only path it writes
# besides /tmp (the root file system can be mounted read-only).
RUN groupadd --system --gid 10001 popliteal \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin popliteal \
    && mkdir -p /app/instance \
    && chown 10001:10001 /app/instance

WORKDIR /app

COPY --from=build /opt/venv /opt/venv
# The source stays owned by root: the service cannot change its own code.
COPY gunicorn.conf.py ./
COPY rules ./rules
COPY schemas ./schemas
COPY service ./service
# Bytecode now, while the file system is writable: at run time it is read-only.
RUN python -m compileall -q -j 0 /app

VOLUME ["/app/instance"]
USER 10001:10001
EXPOSE 8000 9464

HEALTHCHECK --interval=30s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/healthz', timeout=2)"]

# Exec form: gunicorn is PID 1 and gets SIGTERM itself (graceful stop). Bind address, workers
# (WEB_CONCURRENCY), timeouts, JSON logs and the metrics port all come from gunicorn.conf.py.
CMD ["gunicorn", "--config", "gunicorn.conf.py", "service.wsgi:app"]

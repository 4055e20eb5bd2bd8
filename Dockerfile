# Popliteal: clinical decision-support API, served by gunicorn.
FROM python:3.11.14-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    POPLITEAL_CONFIG=production \
    WEB_CONCURRENCY=2

WORKDIR /app

# Dependencies first, in their own layer: rebuilt only when the pins change. The runtime
# dependencies are read from pyproject.toml and pinned by constraints.txt.
COPY pyproject.toml constraints.txt ./
RUN python -c "import subprocess, sys, tomllib; \
deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']; \
subprocess.check_call([sys.executable, '-m', 'pip', 'install', '--no-cache-dir', '-c', 'constraints.txt', *deps])"

COPY README.md ./
COPY rules ./rules
COPY schemas ./schemas
COPY service ./service
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --no-create-home popliteal

USER 10001
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]

# gunicorn takes its worker count from WEB_CONCURRENCY (2 above). No control socket: nothing
# manages the server from inside the container, and the file system is read-only there.
CMD ["gunicorn", "--bind", "0.0.0.0:8000", "--access-logfile", "-", "--no-control-socket", \
     "service.wsgi:app"]

# One image for every Flotilla process; what a container runs is chosen when it starts.
#
#   docker build -t flotilla:latest .
#   docker run -e SERVICE=auth_service -e PORT=8001 -e AUTH_DATABASE_URL=... flotilla:latest
#
# Runtime variables of the default command (docker/serve.sh):
#   SERVICE  the package to serve: gateway, auth_service, events_service, tickets_service,
#            activity_service, media_service, datapoints_service or scheduler_service
#   PORT     the port it listens on (default 8000; the health check asks it for /health).
#            The suite's ports: gateway 8000, auth_service 8001, events_service 8002,
#            tickets_service 8003, activity_service 8004, media_service 8005,
#            datapoints_service 8006, scheduler_service 8007.
# Other commands of the same image (docker-compose.yml runs them all):
#   python -m servicekit.migrate <package>   the service's database to head, under a lock;
#                                            run it (and, for auth_service, `flask --app
#                                            auth_service create-admin`) before the service
#   rq worker ..., flask --app <package> <command>, python -m servicekit.streams ...
#
# PROMETHEUS_MULTIPROC_DIR (/tmp/flotilla-metrics): where gunicorn's workers keep their
# metrics so that /metrics sums them; the gunicorn master creates and empties it at start.
# The image runs with a read-only root file system when /tmp is writable (a tmpfs or an
# emptyDir) and the state directories under /app/var it uses are volumes.

# --- build stage: install the runtime lock into a virtual environment ------------------
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

# A compiler, for the few dependencies that may have to build from source on this
# platform; it stays in this stage and never reaches the final image.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

# The runtime set only (requirements-local.txt and requirements-dev.txt are for a
# developer's machine), every package checked against its locked hashes.
COPY requirements.txt /tmp/requirements.txt
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.txt

# --- final stage: the runtime image ---------------------------------------------------
FROM python:3.11-slim

ENV PORT=8000 \
    FLOTILLA_VAR_DIR=/app/var \
    PROMETHEUS_MULTIPROC_DIR=/tmp/flotilla-metrics \
    PATH="/opt/venv/bin:${PATH}" \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# An unprivileged account for the process. The writable state directories are created
# here, owned by that account, so that named volumes mounted on them start with the
# right owner.
RUN groupadd --system --gid 10001 flotilla \
    && useradd --system --uid 10001 --gid flotilla --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin flotilla \
    && mkdir -p /app/var/keys /app/var/media /app/var/outbox /app/var/logs \
       "${PROMETHEUS_MULTIPROC_DIR}" \
    && chown -R flotilla:flotilla /app/var "${PROMETHEUS_MULTIPROC_DIR}"

COPY --from=build /opt/venv /opt/venv

WORKDIR /app

# The source: every package, copied explicitly (never the local .venv, var/ or .git).
# The code stays owned by root, read-only for the service account.
COPY servicekit/ ./servicekit/
COPY gateway/ ./gateway/
COPY auth_service/ ./auth_service/
COPY events_service/ ./events_service/
COPY tickets_service/ ./tickets_service/
COPY activity_service/ ./activity_service/
COPY media_service/ ./media_service/
COPY datapoints_service/ ./datapoints_service/
COPY scheduler_service/ ./scheduler_service/
COPY docker/serve.sh ./docker/serve.sh

USER flotilla:flotilla

EXPOSE 8000-8007

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/health', timeout=4)" || exit 1

# gunicorn serving SERVICE on PORT: the services on servicekit's worker, the gateway on
# its own event-loop worker (docker/serve.sh). A container that runs another command
# (a migration, a worker) replaces this one.
CMD ["/app/docker/serve.sh"]

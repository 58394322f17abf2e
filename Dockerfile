# One image recipe for every Flotilla process; the SERVICE build argument picks
# the package to serve and PORT the port it listens on, e.g.
#
#   docker build --build-arg SERVICE=auth_service --build-arg PORT=8001 -t flotilla/auth_service .
#
# Ports: gateway 8000, auth_service 8001, events_service 8002, tickets_service 8003,
# activity_service 8004, media_service 8005, datapoints_service 8006, scheduler_service 8007.
# The RQ worker uses the scheduler_service image with another command (see docker-compose.yml).

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

ARG SERVICE
ARG PORT=8000

ENV SERVICE=${SERVICE} \
    PORT=${PORT} \
    FLOTILLA_VAR_DIR=/app/var \
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
    && mkdir -p /app/var/keys /app/var/media \
    && chown -R flotilla:flotilla /app/var

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

# Fail the build early on a missing or unknown SERVICE.
RUN if [ -z "${SERVICE}" ]; then echo "the build argument SERVICE is required" >&2; exit 1; fi \
    && if [ ! -f "${SERVICE}/wsgi.py" ] && [ "${SERVICE}" != gateway ]; then echo "unknown SERVICE: no ${SERVICE}/wsgi.py" >&2; exit 1; fi

USER flotilla:flotilla

EXPOSE ${PORT}

HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ['PORT'] + '/health', timeout=4)" || exit 1

# The services are WSGI apps on servicekit's worker; the gateway runs its own event-loop
# worker (gateway/gunicorn_conf.py), which builds the gateway inside its loop.
CMD ["sh", "-c", "if [ \"${SERVICE}\" = gateway ]; then exec gunicorn -c gateway/gunicorn_conf.py gateway.app:create_app --bind \"0.0.0.0:${PORT}\"; else exec gunicorn -c servicekit/gunicorn_conf.py \"${SERVICE}.wsgi:app\" --bind \"0.0.0.0:${PORT}\"; fi"]

#!/bin/sh
# The image's default command: serve the package named by SERVICE on PORT with gunicorn.
#
#   SERVICE  gateway, or a service package (auth_service, events_service, ...); required
#   PORT     the port to listen on, on every interface (default 8000)
#
# The services run servicekit's gunicorn settings on their WSGI app; the gateway runs its
# own event-loop worker (gateway/gunicorn_conf.py), which also binds GATEWAY_METRICS_BIND
# when set, so the public address goes in GUNICORN_BIND rather than on the command line
# (a --bind there would replace both).
set -eu

cd "$(dirname "$0")/.."
PORT="${PORT:-8000}"
export GUNICORN_BIND="0.0.0.0:${PORT}"

case "${SERVICE:-}" in
    "")
        echo "serve: SERVICE is not set: name the package to serve (gateway, auth_service, ...)" >&2
        exit 64
        ;;
    gateway)
        exec gunicorn -c gateway/gunicorn_conf.py gateway.app:create_app
        ;;
    *)
        if [ ! -f "${SERVICE}/wsgi.py" ]; then
            echo "serve: unknown SERVICE ${SERVICE}: there is no ${SERVICE}/wsgi.py" >&2
            exit 64
        fi
        exec gunicorn -c servicekit/gunicorn_conf.py "${SERVICE}.wsgi:app"
        ;;
esac

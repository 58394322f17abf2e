"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py events_service.wsgi:app`."""

from events_service import create_app

app = create_app()

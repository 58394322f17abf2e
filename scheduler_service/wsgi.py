"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py scheduler_service.wsgi:app`."""

from scheduler_service import create_app

app = create_app()

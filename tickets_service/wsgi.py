"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py tickets_service.wsgi:app`."""

from tickets_service import create_app

app = create_app()

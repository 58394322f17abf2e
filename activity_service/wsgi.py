"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py activity_service.wsgi:app`."""

from activity_service import create_app

app = create_app()

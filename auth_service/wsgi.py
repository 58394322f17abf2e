"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py auth_service.wsgi:app`."""

from auth_service import create_app

app = create_app()

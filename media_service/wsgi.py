"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py media_service.wsgi:app`."""

from media_service import create_app

app = create_app()

"""`app` for gunicorn: `gunicorn -c servicekit/gunicorn_conf.py datapoints_service.wsgi:app`."""

from datapoints_service import create_app

app = create_app()

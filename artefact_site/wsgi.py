"""WSGI entry point (gunicorn in `make run` and in the Docker image)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "artefact_site.settings")

application = get_wsgi_application()

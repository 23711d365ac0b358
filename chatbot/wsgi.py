"""The WSGI application: what ``manage.py runserver`` (WSGI_APPLICATION) serves."""

import os

from django.core.wsgi import get_wsgi_application

from conversations.bodylimits import WSGIBodyLimit

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "chatbot.settings")

# Bodies are limited before Django reads them (see conversations/bodylimits.py).
application = WSGIBodyLimit(get_wsgi_application())

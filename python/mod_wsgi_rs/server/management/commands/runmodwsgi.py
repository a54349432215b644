"""``manage.py runmodwsgi`` for projects listing ``mod_wsgi_rs.server``."""

from mod_wsgi_rs.express.management.commands.runmodwsgi import Command  # noqa: F401

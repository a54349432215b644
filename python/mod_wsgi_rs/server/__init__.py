"""mod_wsgi 4.x's ``mod_wsgi.server`` names: put ``mod_wsgi_rs.server`` (or, as in
mod_wsgi 6, ``mod_wsgi_rs.express``) in INSTALLED_APPS for ``manage.py runmodwsgi``."""

from .. import module_location, where  # noqa: F401

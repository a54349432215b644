"""``manage.py runmodwsgi [wsgi-express options]``: serve this Django project through
Apache and mod_wsgi_rs, its WSGI_APPLICATION imported by module name, STATIC_ROOT and
MEDIA_ROOT served by Apache at STATIC_URL and MEDIA_URL."""

import os

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mod_wsgi_rs import express


def _alias(url, root):
    """--url-alias for a settings URL and directory, when both are usable."""
    if not url or not root or "://" in str(url) or not os.path.isdir(str(root)):
        return []
    url = "/" + str(url).strip("/")
    return ["--url-alias", url, str(root)]


class Command(BaseCommand):
    help = ("Serve the project with Apache and mod_wsgi_rs (wsgi-express start-server); "
            "every other argument is a wsgi-express option, like --port 8000.")

    def run_from_argv(self, argv):
        # Everything after the command name goes to wsgi-express unchanged, so all of
        # its options (and its --help) apply.
        self.handle(*argv[2:])

    def handle(self, *args, **options):
        target = getattr(settings, "WSGI_APPLICATION", None)
        if not target or "." not in target:
            raise CommandError("settings.WSGI_APPLICATION is not set (like 'mysite.wsgi.application')")
        module, callable_object = target.rsplit(".", 1)
        base = getattr(settings, "BASE_DIR", None) or os.getcwd()
        command = [
            "--application-type", "module",
            "--entry-point", module,
            "--callable-object", callable_object,
            "--working-directory", str(base),
        ]
        command += _alias(getattr(settings, "STATIC_URL", None),
                          getattr(settings, "STATIC_ROOT", None))
        command += _alias(getattr(settings, "MEDIA_URL", None),
                          getattr(settings, "MEDIA_ROOT", None))
        express.start_server(*command, *args)

"""URL routes of the example project."""
import os
import sys

from django.http import HttpResponse, JsonResponse
from django.urls import path


def index(request):
    return HttpResponse("Hello from Django under mod_wsgi_rs\n", content_type="text/plain")


def info(request):
    return JsonResponse(
        {
            "pid": os.getpid(),
            "python": sys.version.split()[0],
            "script_name": request.META.get("SCRIPT_NAME", ""),
            "path": request.path,
            "process_group": request.META.get("mod_wsgi.process_group", ""),
        }
    )


urlpatterns = [
    path("", index),
    path("info", info),
]

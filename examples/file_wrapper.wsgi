# Serves this file itself through wsgi.file_wrapper, which Apache sends with its file
# buckets (and sendfile() under WSGIEnableSendfile On).
def application(environ, start_response):
    f = open(__file__, "rb")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return environ["wsgi.file_wrapper"](f)

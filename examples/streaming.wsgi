# A generator response: each block is flushed to the client as it is produced.
import time


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])

    def blocks():
        for i in range(5):
            yield b"tick %d\n" % i
            time.sleep(0.5)

    return blocks()

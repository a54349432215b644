# A Flask application runs unchanged (apt-get install python3-flask).
from flask import Flask, jsonify, request

app = Flask(__name__)


@app.route("/")
def index():
    return "Hello from Flask under mod_wsgi_rs"


@app.route("/whoami")
def whoami():
    return jsonify(remote_addr=request.remote_addr, script_root=request.script_root)


application = app

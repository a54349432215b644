//! A real Flask application runs unchanged: routing, JSON, form posts, its own 404s.

mod common;
use common::{Apache, Mpm};

const FLASK_APP: &str = r#"
from flask import Flask, jsonify, request
app = Flask(__name__)

@app.route("/")
def index():
    return "hello from flask"

@app.route("/json/<name>")
def as_json(name):
    return jsonify(name=name, args=request.args.to_dict(), script_root=request.script_root)

@app.route("/form", methods=["POST"])
def form():
    return "%s=%s" % (request.form["key"], len(request.form["big"]))

application = app
"#;

#[test]
fn flask_app_runs_unchanged() {
    for mpm in [Mpm::Prefork, Mpm::Event] {
        let mut apache = Apache::start(
            mpm,
            "WSGIScriptAlias /flask {root}/app/flask_app.wsgi\n",
            &[("app/flask_app.wsgi", FLASK_APP)],
        );
        let r = apache.get("/flask/");
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "hello from flask"),
            "{mpm:?}"
        );
        let r = apache.get("/flask/json/ada?x=1");
        assert_eq!(r.header("Content-Type"), Some("application/json"));
        let text = r.text();
        assert!(
            text.contains("\"name\":\"ada\"") || text.contains("\"name\": \"ada\""),
            "{text}"
        );
        assert!(
            text.contains("/flask"),
            "request.script_root comes from SCRIPT_NAME: {text}"
        );
        let big = "x".repeat(100_000);
        let body = format!("key=value&big={big}");
        let r = apache.request(
            "POST",
            "/flask/form",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            body.as_bytes(),
        );
        assert_eq!(r.text(), "value=100000");
        assert_eq!(apache.get("/flask/nowhere").status, 404);
        apache.stop();
    }
}

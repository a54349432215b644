"""Unit tests of scripts/upstream_suite.py's pure parts (no checkout, no Apache needed).

Run: python3 -m unittest scripts/upstream_suite_test.py
"""

import os
import sys
import tempfile
import textwrap
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import upstream_suite as us  # noqa: E402


class ParseOutput(unittest.TestCase):
    def test_counts_assertions_before_the_summary(self):
        text = textwrap.dedent("""\
            == environ ==
              PASS: one
              FAIL: two (body mismatch)
              PASS: three
            ========================================
            Results: 2 passed, 1 failed
            ========================================

            Failures:
              FAIL: two
            """)
        r = us.parse_output("environ", text, "/nonexistent")
        self.assertEqual((r.state, r.passed, r.failed), ("failed", 2, 1))
        self.assertEqual(r.note(), "two (body mismatch)")

    def test_refused_configuration_names_the_directive(self):
        text = ("AH00526: Syntax error on line 676 of /x/httpd.conf:\n"
                "Invalid command 'WSGIHandlerScript', perhaps misspelled or defined by a "
                "module not included in the server configuration\n")
        r = us.parse_output("environ", text, "/nonexistent")
        self.assertEqual(r.state, "no server")
        self.assertEqual(r.note(), "no server: config refused: Invalid command "
                                   "'WSGIHandlerScript'")

    def test_server_that_never_wrote_its_pid_reports_the_first_error_line(self):
        with tempfile.NamedTemporaryFile("w", suffix=".log", delete=False) as log:
            log.write("[x] [wsgi:info] [pid 1] fine\n[x] [core:emerg] [pid 1] broken\n")
        try:
            r = us.parse_output("environ", "ERROR: Server did not start\n", log.name)
        finally:
            os.unlink(log.name)
        self.assertEqual((r.state, r.reason), ("no server", "[x] [core:emerg] [pid 1] broken"))


    def test_harness_ended_by_curl_names_the_exit_and_the_last_assertion(self):
        text = "== response ==\n  PASS: one\n  PASS: two\n"
        r = us.parse_output("response", text, "/nonexistent", 18)
        self.assertEqual((r.state, r.passed), ("incomplete", 2))
        self.assertEqual(r.note(), "incomplete: curl exit 18 (response body cut short) "
                                   "ended the harness after 'two'")


class Adapt(unittest.TestCase):
    def test_drop_directive_comments_out_continuation_lines(self):
        conf = ("A 1\nWSGIHandlerScript h '/r/handler.wsgi' \\\n"
                "    process-group=g\nB 2\n")
        out = us.drop_directive(conf, "WSGIHandlerScript", "why")
        self.assertEqual(out, "A 1\n# (why) WSGIHandlerScript h '/r/handler.wsgi' \\\n"
                              "# (why)     process-group=g\nB 2\n")

    def test_drop_directive_only_where_the_line_names_the_target(self):
        conf = "WSGIImportScript '/a/app.py'\nWSGIImportScript '/r/handler.wsgi'\n"
        out = us.drop_directive(conf, "WSGIImportScript", "why", naming="/handler.wsgi'")
        self.assertEqual(out, "WSGIImportScript '/a/app.py'\n"
                              "# (why) WSGIImportScript '/r/handler.wsgi'\n")

    def test_static_dispatch_writes_what_the_script_returns_per_mount(self):
        with tempfile.TemporaryDirectory() as d:
            script = os.path.join(d, "dispatch.py")
            with open(script, "w", encoding="utf-8") as f:
                f.write(textwrap.dedent("""\
                    def process_group(environ):
                        if environ["SCRIPT_NAME"].startswith("/slow"):
                            return "slow"
                        return "localhost:" + environ["DAEMON_PORT"]
                    def application_group(environ):
                        return "sub" if environ["SCRIPT_NAME"] == "/sub" else ""
                    """))
            include = (f"SetEnv DAEMON_PORT 9876\nWSGIDispatchScript {script}\n"
                       "WSGIScriptAlias /slow /t/slow.py process-group=x application-group=%{GLOBAL}\n"
                       "WSGIScriptAlias /sub /t/sub.py\n")
            out = us.static_dispatch(include, "9876").splitlines()
        self.assertEqual(out[0], "SetEnv DAEMON_PORT 9876")
        self.assertTrue(out[1].startswith("# (--adapt"), out[1])
        self.assertEqual(out[2], "WSGIScriptAlias /slow /t/slow.py process-group=slow "
                                 "application-group=%{GLOBAL}")
        self.assertEqual(out[3], "WSGIScriptAlias /sub /t/sub.py "
                                 "process-group=localhost:9876 application-group=sub")

    def test_static_dispatch_leaves_a_file_without_dispatch_script_alone(self):
        include = "WSGIScriptAlias /a /t/a.py process-group=g\n"
        self.assertEqual(us.static_dispatch(include, "80"), include)


class Table(unittest.TestCase):
    def test_failure_column_only_for_modules_that_failed(self):
        ok = us.SuiteResult("environ", "passed", 40, 0)
        bad = us.SuiteResult("environ", "no server", 0, 0,
                             reason="config refused: Invalid command 'X'")
        table = us.render_table(["environ"], [us.Module("rs", "/m.so"), us.Module("c", None)],
                                {"rs": {"environ": bad}, "c": {"environ": ok}})
        self.assertEqual(table.splitlines(), [
            "| suite | rs passed | failed | c passed | failed | first failure (rs) |",
            "| --- | --- | --- | --- | --- | --- |",
            "| environ | 0 | 0 + | 40 | 0 | no server: config refused: Invalid command 'X' |",
            "| **total** | **0** | **0** | **40** | **0** |  |",
        ])


if __name__ == "__main__":
    unittest.main()

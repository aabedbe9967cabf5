"""The viewer's web app (Flask, WSGI): routes that read the registry and this machine's suite runs and render
templates. Read-only: only GET (and HEAD) is routed, nothing is written to the store, and no code from an entry is
run, on the server or in the browser (every page is sent with a content security policy that allows the viewer's
own script and nothing else, and an entry's files are shown as escaped text).

A viewer bound to a loopback address answers only requests addressed to one (the ``Host`` header), so that a web
page elsewhere cannot reach it through a name that resolves to 127.0.0.1 (DNS rebinding).
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, abort, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException

from registry_cli.apps.viewer import charts
from registry_cli.apps.viewer.compare import compare
from registry_cli.apps.viewer.datums import Evaluations, datum_page, datum_view, read_file
from registry_cli.apps.viewer.entries import entry_file, entry_page, entry_view
from registry_cli.apps.viewer.runs import progress, suite_run, suite_runs
from registry_cli.apps.viewer.tables import TableKeeper, TableQuery, table_page
from registry_cli.core.registry import Registry
from registry_cli.errors import EntryNotFoundError, NearaiError, UsageError

POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
          "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def create_app(registry: Registry, host: str = "127.0.0.1") -> Flask:
    """The app over ``registry`` (and the suite runs under its home), served on ``host``."""
    app = Flask(__name__)
    app.config.update(JSON_SORT_KEYS=False, TEMPLATES_AUTO_RELOAD=False)
    app.jinja_env.globals.update(charts=charts, pct=charts.pct)
    home = registry.config.home
    keeper, opened = TableKeeper(registry), Evaluations(registry)

    @app.before_request
    def only_addressed_to_us() -> None:
        if _loopback(host) and request.host.lower().rsplit(":", 1)[0] not in LOOPBACK_NAMES:
            abort(421)

    @app.after_request
    def headers(response: Response) -> Response:
        response.headers["Content-Security-Policy"] = POLICY
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    @app.errorhandler(NearaiError)
    def failed(e: NearaiError) -> tuple[str, int]:
        code = 404 if isinstance(e, EntryNotFoundError) else 400 if isinstance(e, UsageError) else 502
        return render_template("error.html", message=e.message, hint=e.hint), code

    @app.errorhandler(Exception)
    def broken(e: Exception) -> Any:
        if isinstance(e, HTTPException):  # 404, 405, 421: as they are
            return e
        app.logger.exception("the viewer failed")
        return render_template("error.html", message=f"the viewer failed: {type(e).__name__}: {e}"[:300],
                               hint="see the terminal running `nearai view`"), 500

    @app.context_processor
    def links() -> dict[str, Any]:
        return {"query_with": query_with, "page_args": lambda n: query_with(page=str(n))}

    _evaluation_routes(app, keeper, opened)
    _registry_routes(app, registry, home)
    return app


def query_with(**changes: str) -> str:
    """This request's query string with ``changes`` (an empty value drops the parameter)."""
    pairs = [(k, v) for k, v in request.args.items(multi=True) if k not in changes]
    pairs += [(k, v) for k, v in changes.items() if v]
    return urlencode(pairs)


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return host == "localhost"


def _int(name: str, default: int = 1) -> int:
    try:
        return int(request.args.get(name, default))
    except ValueError:
        return default


def _evaluation_routes(app: Flask, keeper: TableKeeper, opened: Evaluations) -> None:
    """The table, an evaluation's datums, one datum, a file of its run, comparisons."""


    @app.get("/")
    def index() -> Any:
        return redirect(url_for("evaluations"))

    @app.get("/evaluations")
    def evaluations() -> str:
        a = request.args
        q = TableQuery(a.get("benchmark", ""), a.get("model", ""), a.get("agent", ""), a.get("tag", ""),
                       a.get("sort", ""), a.get("desc", "") == "1", _int("page"))
        return render_template("table.html", page=table_page(keeper, q), q=q)

    @app.get("/evaluation/<path:entry>/datum/<int:line>")
    def datum(entry: str, line: int) -> str:
        return render_template("datum.html", v=datum_view(opened, entry, line))

    @app.get("/evaluation/<path:entry>/file")
    def evaluation_file(entry: str) -> str:
        ev = opened.open(entry)
        path = request.args.get("path", "")
        text, note = read_file(ev, path)
        return render_template("file.html", entry=ev.info.entry, path=path, text=text, note=note)

    @app.get("/evaluation/<path:entry>")
    def evaluation(entry: str) -> str:
        a = request.args
        page = datum_page(opened, entry, a.get("status", ""), a.get("q", ""), _int("page"))
        return render_template("evaluation.html", page=page, status=a.get("status", ""), search=a.get("q", ""))

    @app.get("/compare")
    def comparison() -> str:
        entries = [e for e in request.args.getlist("e") if e]
        result = compare(opened, entries, request.args.get("show", "flipped"), _int("page"))
        rows = [(p.label, p.diff["diff"], p.diff["ci95_low"], p.diff["ci95_high"]) for p in result.pairs if p.diff]
        return render_template("compare.html", c=result, forest_rows=rows)



def _registry_routes(app: Flask, registry: Registry, home: Path) -> None:
    """Suite runs (and their live progress) and registry entries."""

    @app.get("/suites")
    def suites() -> str:
        return render_template("suites.html", runs=suite_runs(home))

    @app.get("/suites/<name>/<stamp>")
    def suite(name: str, stamp: str) -> str:
        state, summary = suite_run(home, name, stamp)
        return render_template("suite.html", state=state, summary=summary)

    @app.get("/api/suites/<name>/<stamp>")
    def suite_progress(name: str, stamp: str) -> Response:
        return jsonify(progress(home, name, stamp))

    @app.get("/entries")
    def entries() -> str:
        a = request.args
        return render_template("entries.html", page=entry_page(registry, a.get("category", ""), a.get("q", ""),
                                                               _int("page")),
                               category=a.get("category", ""), search=a.get("q", ""))

    @app.get("/entry/<path:entry>/file")
    def file_of_entry(entry: str) -> str:
        path = request.args.get("path", "")
        text, note = entry_file(registry, entry, path)
        return render_template("file.html", entry=entry, path=path, text=text, note=note)

    @app.get("/entry/<path:entry>")
    def entry_page_(entry: str) -> str:
        info, versions = entry_view(registry, entry)
        return render_template("entry.html", info=info, versions=versions)

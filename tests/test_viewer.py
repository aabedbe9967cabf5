"""`nearai view` driven in a real browser (Debian's chromium through chromium-driver and selenium) over evaluations
recorded by real runs on a moto S3 store: the table, filters, a datum's transcript, a comparison of two models, a
running suite's live progress, registry entries. Every page is screenshot at 1280x800 (kept under
``test-artifacts/viewer/``) and checked for layout: nothing wider than the window, nothing off its edges.

Also, over HTTP: read-only (only GET), answering loopback names only, a content security policy on every page, an
entry's HTML shown as text and never run, one-line errors for a bad --host or a port in use, and the viewer's URL
printed by the terminal commands that name an entry or a suite run while it runs.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from examples.make_addition_dataset import build
from tests.conftest import ROOT, Env, free_port, home_env, make_s3_bucket, write_entry
from tests.openai_server import FakeOpenAI

pytestmark = pytest.mark.slow  # real CLI processes, a browser

ARTIFACTS = Path(os.environ.get("NEARAI_TEST_ARTIFACTS", ROOT / "test-artifacts")) / "viewer"
AGENT = ROOT / "examples" / "addition_agent"
SLOW_SUITE = """name = "watched"
parallel = 1
[defaults]
api_base = "{url}"
solver = "ThreeDigitAdditionSolver"
dataset = "{dataset}"
max_concurrent = 2
[[tasks]]
model = "slow-one"
[[tasks]]
model = "slow-two"
"""


@dataclass
class Viewer:
    env: Env
    url: str
    proc: subprocess.Popen[str]
    entries: dict[str, str]  # alpha, beta, agent -> evaluation entry
    dataset: Path


def start_viewer(env: Env, *args: str) -> tuple[subprocess.Popen[str], str]:
    """`nearai view` on a free port; its process and the URL it printed."""
    proc = subprocess.Popen([*Env.cli(), "view", "--port=0", *args], env=env.vars, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("nearai view: http://"):
        proc.kill()
        _, err = proc.communicate()
        raise AssertionError(line + err)
    return proc, line.split()[2]


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.wait(timeout=30)


@pytest.fixture(scope="module")
def viewer(tmp_path_factory: pytest.TempPathFactory, moto_endpoint: str) -> Iterator[Viewer]:
    """Three evaluations of one dataset recorded on S3 (alpha; beta, which also gets sums divisible by 3 wrong; alpha
    through an agent) and a viewer over them."""
    tmp = tmp_path_factory.mktemp("viewer")
    env = home_env(tmp / "home", f"s3://{make_s3_bucket(moto_endpoint)}/reg", moto_endpoint)
    server = FakeOpenAI(skew={"beta": 3}).start()
    try:
        ds = build(tmp / "3_digit_addition", size=60)
        base = (str(ds), "ThreeDigitAdditionSolver", f"--api_base={server.url}", "--record", "--quiet")
        entries = {}
        for name, extra in (("alpha", ("--model=alpha",)), ("beta", ("--model=beta",)),
                            ("agent", ("--model=alpha", f"--agent={AGENT}"))):
            out = env.run("benchmark", "run", *base, *extra, check=True, timeout=300).stdout
            entries[name] = out.split("recorded evaluation ")[1].split()[0]
    finally:
        server.stop()
    proc, url = start_viewer(env)
    try:
        yield Viewer(env, url, proc, entries, ds)
    finally:
        stop(proc)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if shutil.which("chromium") is None or shutil.which("chromedriver") is None:
        pytest.skip("Debian chromium and chromium-driver are not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or ""
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,800", "--disable-background-timer-throttling",
                 "--disable-renderer-backgrounding", "--disable-backgrounding-occluded-windows"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver") or ""), options=options)
    inner = driver.execute_script("return [window.outerWidth - window.innerWidth, window.outerHeight - window.innerHeight]")
    driver.set_window_size(1280 + inner[0], 800 + inner[1])  # a 1280x800 page, whatever the window's frame takes
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


LAYOUT = """
const width = document.documentElement.clientWidth;
const outside = [];
for (const el of document.querySelectorAll('body *')) {
  const r = el.getBoundingClientRect();
  const style = getComputedStyle(el);
  if ((r.width === 0 && r.height === 0) || style.display === 'none' || style.visibility === 'hidden') continue;
  if (r.left < -1 || r.right > width + 1) outside.push(`${el.tagName}.${el.className} ${r.left}..${r.right}`);
  if (['hidden', 'clip'].includes(style.overflowX) && el.scrollWidth > el.clientWidth + 1) outside.push(`clipped ${el.tagName}`);
}
return {scroll: document.documentElement.scrollWidth, width: width, inner: window.innerWidth,
        height: window.innerHeight, outside: outside.slice(0, 8)};
"""


def screenshot(driver: Any, name: str) -> None:
    """Keep the page as a 1280x800 PNG and check that it fits: no horizontal scrolling, nothing off an edge."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))
    layout = driver.execute_script(LAYOUT)
    assert layout["inner"] == 1280 and layout["height"] == 800, layout
    assert layout["scroll"] <= layout["width"] and not layout["outside"], (name, layout)


def visit(driver: Any, url: str) -> None:
    driver.get(url)
    title = driver.title
    assert "error" not in title, driver.find_element("id", "error-message").text


def follow(driver: Any, element: Any) -> None:
    """Click a link or a form's button and wait for the page it leads to (until then, elements found are the old
    page's, gone stale under a loaded machine)."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element("tag name", "html")
    element.click()
    WebDriverWait(driver, 60).until(expected_conditions.staleness_of(page))
    WebDriverWait(driver, 60).until(lambda d: d.execute_script("return document.readyState") == "complete")


def texts(driver: Any, css: str) -> list[str]:
    return [str(e.text) for e in driver.find_elements("css selector", css)]


def solutions(env: Env, entry: str) -> list[dict[str, Any]]:
    from evaluation.solutions import read_solutions

    return read_solutions(env.registry(), entry)


def test_the_table_filters_sorts_and_draws_intervals(viewer: Viewer, browser: Any) -> None:
    visit(browser, viewer.url)
    rows = browser.find_elements("css selector", "#evaluations tbody tr")
    assert len(rows) == 3
    for bar in browser.find_elements("css selector", "svg.ci"):  # a bar and its 95% interval per score
        lo, score, hi = (float(bar.get_attribute(f"data-{k}")) for k in ("lo", "score", "hi"))
        assert 0 <= lo <= score <= hi <= 1
    table = json.loads(viewer.env.run("evaluation", "table", "--format=json", check=True).stdout)
    shown = {tuple(texts(row, "td.key")): row.find_element("css selector", ".score-link").text for row in rows}
    for r in table["rows"]:  # the same pivot as `evaluation table`
        assert shown[(r["model"], r["agent"] or "—")] == f"{100 * r['3_digit_addition/score']:.1f}%"
    screenshot(browser, "table")

    browser.find_element("name", "model").send_keys("beta")
    follow(browser, browser.find_element("id", "apply"))
    assert texts(browser, "#evaluations td[data-column=model]") == ["openai/beta"]
    assert "1 of 3 rows" in browser.find_element("id", "row-count").text

    visit(browser, viewer.url + "/evaluations?sort=3_digit_addition&desc=1")
    scores = [float(s.rstrip("%")) for s in texts(browser, "#evaluations .score-link")]
    assert scores == sorted(scores, reverse=True) and scores[-1] < scores[0]  # beta last
    follow(browser, browser.find_element("css selector", "th a.sort"))  # by model, A to Z
    assert texts(browser, "#evaluations td[data-column=model]")[-1] == "openai/beta"


def test_a_datum_shows_its_transcript(viewer: Viewer, browser: Any) -> None:
    visit(browser, viewer.url)
    link = next(a for a in browser.find_elements("css selector", ".score-link")
                if a.get_attribute("title") == viewer.entries["agent"])
    follow(browser, link)
    assert browser.find_element("css selector", "h1").text == viewer.entries["agent"]
    assert len(browser.find_elements("css selector", "#datums tbody tr")) == 50  # a page of 60
    screenshot(browser, "evaluation")
    rows = solutions(viewer.env, viewer.entries["agent"])
    failed = sum(1 for r in rows if r["status"] == "failed")
    browser.find_element("css selector", "select[name=status] option[value=passed]").click()
    follow(browser, browser.find_element("id", "apply"))
    assert set(texts(browser, "#datums .status")) == {"passed"}
    assert browser.find_element("id", "datum-count").text == f"{60 - failed} datums"

    follow(browser, browser.find_elements("css selector", "a.datum-link")[0])
    assert browser.find_element("css selector", "h1").text.startswith("Datum")
    messages = texts(browser, "li.message")
    assert messages and messages[0].startswith("USER") and "Please add the following numbers" in messages[0]
    assert "Wrote file result.txt" in browser.find_element("css selector", "ol.logs").text
    assert browser.find_element("css selector", "#output pre").text.isdigit()
    screenshot(browser, "datum")


def test_two_models_compared_on_their_shared_datums(viewer: Viewer, browser: Any) -> None:
    visit(browser, viewer.url)
    for box in browser.find_elements("css selector", "input[name=e]"):
        if box.get_attribute("value") in (viewer.entries["alpha"], viewer.entries["beta"]):
            box.click()
    follow(browser, browser.find_element("id", "compare"))
    alpha = {r["datum_hash"]: r["status"] == "passed" for r in solutions(viewer.env, viewer.entries["alpha"])}
    beta = {r["datum_hash"]: r["status"] == "passed" for r in solutions(viewer.env, viewer.entries["beta"])}
    lost = sum(1 for h in alpha if alpha[h] and not beta[h])
    gained = sum(1 for h in alpha if beta[h] and not alpha[h])
    assert lost > 0  # beta gets some sums wrong that alpha gets right
    cells = texts(browser, "#pairs tbody td")
    assert cells[0] == "openai/beta" and cells[1] == "60"
    assert cells[2] == f"{100 * (gained - lost) / 60:+.1f} pts" and cells[4:6] == [str(gained), str(lost)]
    assert browser.find_element("id", "flip-count").text == f"{lost + gained} datums"
    for row in browser.find_elements("css selector", "#side-by-side tbody tr"):  # every listed datum flips
        statuses = texts(row, ".status")
        assert len(statuses) == 2 and statuses[0] != statuses[1]
    diff = browser.find_element("css selector", "svg.forest g.pair")
    assert float(diff.get_attribute("data-lo")) <= float(diff.get_attribute("data-diff")) < 0
    screenshot(browser, "compare")


def test_a_running_suite_shows_its_progress_live(viewer: Viewer, browser: Any, tmp_path: Path) -> None:
    server = FakeOpenAI(latency=0.05).start()
    config = tmp_path / "watched.toml"
    config.write_text(SLOW_SUITE.format(url=server.url, dataset=viewer.dataset))
    proc = subprocess.Popen([*Env.cli(), "suite", "run", str(config)], env=viewer.env.vars,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while server.requests < 4 and time.time() < deadline:
            time.sleep(0.1)
        visit(browser, viewer.url + "/suites")
        browser.get(browser.find_element("css selector", "#suite-runs tbody a").get_attribute("href"))
        seen = {int(browser.find_element("id", "run-done").text)}
        assert browser.find_element("id", "run-status").text == "running"
        while len(seen) < 3 and time.time() < deadline:  # the page changes without being loaded again
            time.sleep(0.3)
            seen.add(int(browser.find_element("id", "run-done").text))
        assert len(seen) >= 3, seen
        assert int(browser.find_element("id", "progress").get_attribute("data-polls")) >= 2
        screenshot(browser, "suite-running")
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert f"view: {viewer.url}/suites/watched/" in err  # the finished run names its page
        summary = viewer.env.run("suite", "summarize", "watched", "--format=json", check=True)
        assert f"view: {viewer.url}/suites/watched/" in summary.stderr and json.loads(summary.stdout)
        deadline = time.time() + 20
        while time.time() < deadline and not _final(browser):  # the page loads itself again once, with the summary
            time.sleep(0.3)
        assert _final(browser) and browser.find_element("id", "progress").get_attribute("data-polls") is None
        assert browser.find_element("id", "run-done").text == browser.find_element("id", "run-total").text == "120"
        assert len(browser.find_elements("css selector", "#summary-cells tbody tr")) == 2
        screenshot(browser, "suite-done")
    finally:
        if proc.poll() is None:
            proc.kill()
        server.stop()


def _final(driver: Any) -> bool:
    """Whether the page shows a completed run (False while it is being loaded again)."""
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException

    try:
        return bool(driver.find_element("id", "run-status").text == "completed")
    except (NoSuchElementException, StaleElementReferenceException):
        return False


def test_entries_versions_and_files(viewer: Viewer, browser: Any) -> None:
    visit(browser, viewer.url + "/entries?category=evaluation")
    assert len(browser.find_elements("css selector", "#entries tbody tr")) == 3
    follow(browser, browser.find_element("link text", viewer.entries["beta"]))
    assert texts(browser, "#versions li") == ["0.0.1"]
    follow(browser, browser.find_element("link text", "solutions.jsonl"))
    first = browser.find_element("id", "file-text").text.splitlines()[0]
    assert json.loads(first)["datum_hash"]
    screenshot(browser, "entry-file")


def test_the_static_report_names_what_tells_each_bar_apart_and_fits(viewer: Viewer, browser: Any,
                                                                     tmp_path: Path) -> None:
    page = tmp_path / "report.html"
    viewer.env.run("evaluation", "report", f"--html={page}", check=True)
    browser.get(page.as_uri())
    labels = texts(browser, "#chart text.label")
    assert len(labels) == 3 and len(set(labels)) == 3  # no two bars with the same label
    assert any("addition-agent" in label for label in labels) and any("openai/beta" in label for label in labels)
    assert browser.find_element("tag name", "body").get_attribute("data-labels-inside") == "true"
    screenshot(browser, "report")


def _get(url: str, method: str = "GET", host: str = "") -> tuple[int, dict[str, str], str]:
    req = urllib.request.Request(url, method=method, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read().decode()


def test_read_only_loopback_and_nothing_of_an_entry_runs(local_env: Env, browser: Any, tmp_path: Path) -> None:
    page = "<script>window.pwned = 1</script><img src=x onerror='window.pwned = 2'>"
    local_env.run("registry", "upload", str(write_entry(tmp_path / "evil", "evil", "1.0.0", {"page.html": page})),
                  check=True)
    proc, url = start_viewer(local_env)
    try:
        assert url.startswith("http://127.0.0.1:")
        status, headers, _ = _get(url + "/entries")
        assert status == 200 and "script-src 'self'" in headers["Content-Security-Policy"]
        assert headers["X-Content-Type-Options"] == "nosniff"
        assert _get(url + "/entries", "POST")[0] == 405  # nothing can be changed through it
        assert _get(url + "/entries", host="attacker.example")[0] == 421  # DNS rebinding
        status, _, body = _get(url + "/entry/tester/evil/1.0.0/file?path=page.html")
        assert status == 200 and "&lt;script&gt;" in body and "<script>window" not in body
        assert _get(url + "/entry/tester/nothing/1.0.0")[0] == 404
        browser.get(url + "/entry/tester/evil/1.0.0/file?path=page.html")
        assert browser.execute_script("return window.pwned === undefined")
        assert page in browser.find_element("id", "file-text").text
    finally:
        stop(proc)
    assert not (local_env.home / "viewer.json").exists()  # the marker goes with the viewer


def test_bad_host_and_busy_port_are_one_line_errors(local_env: Env) -> None:
    bad = local_env.run("view", "--host=not-an-address")
    assert bad.returncode == 2 and "--host" in bad.stderr and bad.stderr.count("\n") == 1
    bad = local_env.run("view", "--port=70000")
    assert bad.returncode == 2 and "is not a port" in bad.stderr and bad.stderr.count("\n") == 1
    proc, url = start_viewer(local_env)
    try:
        busy = local_env.run("view", f"--port={url.rsplit(':', 1)[1]}")
        assert busy.returncode == 2 and "cannot listen" in busy.stderr and busy.stderr.count("\n") == 1
    finally:
        stop(proc)
    assert free_port()  # nothing left listening of ours is needed for the next test


def test_terminal_commands_print_the_view_url_while_a_viewer_runs(viewer: Viewer) -> None:
    entry = viewer.entries["alpha"]
    out = viewer.env.run("evaluation", "read_solutions", entry, check=True)
    assert f"view: {viewer.url}/evaluation/{entry}" in out.stderr and "view:" not in out.stdout
    info = viewer.env.run("registry", "info", entry, check=True)
    assert f"view: {viewer.url}/entry/{entry}" in info.stderr
    table = viewer.env.run("evaluation", "table", "--format=json", "--benchmark=3_digit_addition", check=True)
    assert f"view: {viewer.url}/evaluations?benchmark=3_digit_addition" in table.stderr and json.loads(table.stdout)
    listed = viewer.env.run("registry", "list", "--category=evaluation", check=True)
    assert f"view: {viewer.url}/entries?category=evaluation" in listed.stderr
    stop(viewer.proc)
    quiet = viewer.env.run("evaluation", "read_solutions", entry, check=True)
    assert "view:" not in quiet.stderr  # the marker of a stopped viewer is ignored (and gone)
    viewer.proc, viewer.url = start_viewer(viewer.env)

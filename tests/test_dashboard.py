"""`tsattn dashboard`: a self-contained page, rendered by a real headless Chromium from a real sweep."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, run_tsattn

ARTIFACTS = Path(os.environ.get("TSATTN_TEST_ARTIFACTS", REPO / "test-artifacts"))


@pytest.fixture(scope="module")
def report(tiny_sweep, tmp_path_factory):
    _, uri, _, _ = tiny_sweep
    path = tmp_path_factory.mktemp("dashboard") / "report.html"
    # The one real `tsattn dashboard` process.
    result = run_tsattn(["dashboard", "--experiment", "weather", "--tracking-uri", uri, "-o", str(path)], path.parent)
    assert result.returncode == 0, result.stderr
    return path


def _chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    pytest.skip("no Chromium on this machine (.ci/run installs Debian's chromium; apt-get install chromium)")


def _chromium_run(*args: str) -> subprocess.CompletedProcess:
    command = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    command += ["--enable-logging=stderr", "--v=0", "--virtual-time-budget=5000", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_page_is_one_file_that_asks_for_nothing_outside(report):
    html = report.read_text()
    assert "Content-Security-Policy" in html and "default-src 'none'" in html
    # No external scripts, styles, images or links: every src/href would be a request.
    assert not re.search(r"""\b(src|href)\s*=\s*["'](?!data:)""", html)
    assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", html)  # the SVG namespace is a name, not a fetch
    assert report.stat().st_size < 2_000_000


def test_headless_chromium_renders_every_section_without_errors(report, tiny_sweep):
    dom_result = _chromium_run("--dump-dom", report.as_uri())
    assert dom_result.returncode == 0, dom_result.stderr[-2000:]
    dom = dom_result.stdout
    console = [line for line in dom_result.stderr.splitlines() if "CONSOLE" in line or "Refused" in line]
    assert console == [], console  # no script error, no blocked (network) request
    assert 'data-rendered="ok"' in dom
    assert re.search(r'<pre id="errors" hidden=""></pre>', dom)

    sections = {
        name: _section(dom, name) for name in ("leaderboard", "curves", "horizon", "forecasts", "attention", "configs")
    }
    assert sections["leaderboard"].count("<tr>") == 1 + 2  # header + attention_seq2seq and linear
    assert "attention_seq2seq-weather-seed2 FAILED (NaN loss)" in sections["leaderboard"]
    assert sections["curves"].count('class="series"') >= 2 * 2 * 2  # 2 models x 2 runs x (train, val) curves
    assert sections["horizon"].count('class="series"') == 4  # two models and both baselines
    assert sections["forecasts"].count('class="series"') >= 2 * 2  # actual and forecast, both models
    assert sections["attention"].count('class="cell"') == 12 * 48  # H x L weights of the attention model
    assert "model/net/_target_" in sections["configs"]

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    screenshot = ARTIFACTS / "dashboard.png"
    shot = _chromium_run("--window-size=1400,3200", f"--screenshot={screenshot}", report.as_uri())
    assert shot.returncode == 0 and screenshot.stat().st_size > 20_000


def test_leaderboard_sorts_when_a_column_is_clicked(report, tmp_path):
    # The page sorts itself: click "mean" twice (ascending, then descending) and dump the result.
    clicking = report.read_text().replace(
        "</body>",
        "<script>const th = [...document.querySelectorAll('#leaderboard th')].find(t => t.textContent === 'mean');"
        "th.click(); th.click();</script></body>",
    )
    page = tmp_path / "clicked.html"
    page.write_text(clicking)
    dom = _chromium_run("--dump-dom", page.as_uri()).stdout
    body = _section(dom, "leaderboard").split("<tbody>")[1]
    rows = [re.findall(r'<td class="[^"]*" data-value="([^"]*)">', row) for row in re.findall(r"<tr>(.*?)</tr>", body)]
    means = [float(row[3]) for row in rows]  # rank, model, data, mean, ...
    assert len(means) == 2 and means == sorted(means, reverse=True)
    assert 'class="sorted"' in dom  # descending after the second click


def _section(dom: str, name: str) -> str:
    match = re.search(rf'<section id="{name}">(.*?)</section>', dom, re.S)
    assert match, f"section {name} missing"
    return match.group(1)


HOSTILE = "</script><script>document.title='pwned'</script><img src=x onerror=alert(1)> & __CSS__ __PAYLOAD__"


def test_every_string_from_mlflow_is_escaped(tmp_path):
    """Experiment, run, model and setting names come from a store anyone may write to: none becomes markup."""
    import json

    from tsattn.dashboard import render

    payload = {
        "experiment": HOSTILE,
        "summary": HOSTILE,
        "leaderboard": {
            "columns": ["rank", "model", "mean"],
            "text_columns": ["model"],
            "percent_columns": [],
            "rows": [[1, HOSTILE, 0.5]],
            "apart": [{"run": HOSTILE, "run_id": "x", "status": "FAILED", "why": HOSTILE}],
        },
        "curves": {},
        "horizon": {"metric": "mse", "models": {HOSTILE: [0.1, 0.2]}, "baselines": {}},
        "forecasts": {},
        "attention": {},
        "configs": {"columns": [HOSTILE], "rows": [[HOSTILE, HOSTILE]]},
    }
    page = render(payload)
    assert "<img" not in page
    assert page.count("<script") == page.count("</script>") == 2  # the payload and the page's script, no more
    assert "<title>tsattn: &lt;/script&gt;&lt;script&gt;" in page
    embedded = page.split('<script id="payload" type="application/json">', 1)[1].split("</script>", 1)[0]
    assert json.loads(embedded)["leaderboard"]["rows"][0][1] == HOSTILE  # intact once parsed

    path = tmp_path / "hostile.html"
    path.write_text(page)
    dom = _chromium_run("--dump-dom", path.as_uri()).stdout
    assert 'data-rendered="ok"' in dom and "<img" not in dom.lower()
    title = dom.split("<title>", 1)[1].split("</title>", 1)[0]
    assert title.startswith("tsattn: &lt;/script&gt;") and title != "pwned"  # text, and no script ran
    assert "__CSS__ __PAYLOAD__" in page.split("</title>", 1)[0]  # markers in a name are not filled in

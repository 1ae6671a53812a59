"""End to end in a real headless Chromium: upload the sample through the page, run with the tiny
models, search, and see passages in both result columns.

Uses Debian's ``chromium`` (never a downloaded browser), driven by playwright-python. Every wait is
bounded, and the app server is stopped in a ``finally``. Screenshots go under ``tmp_path`` and, when
``ADAPT_SCREENSHOT_DIR`` is set, are copied there too.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "app" / "streamlit_app.py"
PAIRS = ROOT / "sample_data" / "agriculture_pairs.csv"
CHROMIUM = shutil.which("chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
SERVER_START_S = 90
STEP_MS = 60_000
RUN_MS = 300_000

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install chromium)"),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def app_url(tmp_path, cache_dir):
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "ADAPT_APP_DIR": str(tmp_path / "app"), "ADAPT_CACHE": str(cache_dir)}
    log = open(tmp_path / "server.log", "wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(APP), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
         "--server.fileWatcherType", "none"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            if server.poll() is not None:
                pytest.fail(f"the app server exited ({server.returncode}):\n{(tmp_path / 'server.log').read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app server did not answer within {SERVER_START_S} s")
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(10)
        log.close()


def settle(page) -> None:
    """Wait until the app has finished rerunning after an interaction."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=stStatusWidgetRunningIcon]')",
                           timeout=STEP_MS)


def enter(page, key: str, text: str) -> None:
    field = page.locator(f".st-key-{key} input")
    field.fill(text)
    field.press("Enter")
    settle(page)


def top(page, selector: str) -> None:
    """Scroll so that ``selector`` is at the top of the window (for the screenshots)."""
    page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.wait_for_timeout(300)


def keep(shot: Path) -> None:
    folder = os.environ.get("ADAPT_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(folder) / shot.name)


def test_upload_run_and_compare_in_a_real_browser(app_url, tiny, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=STEP_MS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1800})
            page.set_default_timeout(STEP_MS)
            expect.set_options(timeout=STEP_MS)
            page.goto(app_url)
            expect(page.get_by_role("heading", name="1. Upload your pairs")).to_be_visible()
            settle(page)
            expect(page.get_by_role("button", name="Deploy")).to_have_count(0)  # app/.streamlit/config.toml

            page.locator("[class*='st-key-pairs_file'] input[type=file]").set_input_files(str(PAIRS))
            expect(page.get_by_text("669 rows read; none dropped")).to_be_visible()
            settle(page)
            preview = page.get_by_test_id("stTable")
            passage = pd.read_csv(PAIRS)["passage"].iloc[0]
            expect(preview).to_contain_text(passage)  # the whole passage, wrapped, inside the page's width
            assert preview.evaluate("e => e.scrollWidth <= e.clientWidth + 1")
            top(page, "[data-testid=stTable]")
            page.screenshot(path=tmp_path / "adapt_app_preview.png")
            enter(page, "base", str(tiny["student"]))
            enter(page, "guide", str(tiny["guide"]))
            enter(page, "epochs", "1")
            enter(page, "batch_size", "16")
            expect(page.get_by_text("(a local folder).")).to_have_count(2)

            page.get_by_role("button", name="Run the adaptation").click()
            # the progress bar, unless the tiny run is already done by the time we look
            expect(page.get_by_test_id("stProgress").or_(page.get_by_role("tab", name="3. Results")).first
                   ).to_be_visible()
            expect(page.get_by_role("tab", name="3. Results")).to_be_visible(timeout=RUN_MS)
            expect(page.get_by_text("Finished in")).to_be_visible()
            settle(page)
            headline = page.locator(".st-key-headline")
            expect(headline).to_contain_text(re.compile(r"(Fine-tuned|Hybrid): test NDCG@10 change"))
            expect(headline).to_contain_text(re.compile(r"held-out test questions,? (its|the fine-tuned model's) "
                                                        r"NDCG@10 is "))
            assert "\\" not in headline.inner_text()  # escaped text shows as itself
            top(page, ".st-key-run")
            page.screenshot(path=tmp_path / "adapt_app_results.png")

            page.get_by_role("tab", name="4. Compare search").click()
            enter(page, "query", "tiny green bugs all over my rose buds")
            for which in ("base", "finetuned", "hybrid"):
                cards = page.locator(f".st-key-hits_{which} [class*='st-key-hit_{which}_']")
                expect(cards).to_have_count(5)
                expect(cards.first).to_contain_text("score")
                assert len(cards.first.inner_text()) > 100  # a whole passage, not just its header
                for card in cards.all():  # each result's move against base, as a badge
                    moved = re.search(r"▲ up \d+ · was #\d+|▼ down \d+ · was #\d+|= same|\bnew\b",
                                      card.inner_text())
                    assert (moved is None) == (which == "base"), card.inner_text()[:200]
            top(page, ".st-key-query")
            shot = tmp_path / "adapt_app_compare.png"
            page.screenshot(path=shot)
            for name in ("adapt_app_preview.png", "adapt_app_results.png"):
                keep(tmp_path / name)
            keep(shot)
        finally:
            browser.close()

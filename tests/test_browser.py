"""End to end in a real headless Chromium, as a person walks it: upload the sample through the page, run
with the tiny models, read the headline (scrolled into view), compare a typed query with movement badges,
and open a per-question row in Compare, where its relevant passages come first.

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
HEADER_PX, ROW_PX, ROW_BOX_X = 35, 35, 18  # a dataframe's header and row height, and its row boxes' column

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
            progress = page.get_by_test_id("stProgress")
            expect(progress.or_(page.get_by_role("tab", name="3. Results")).first).to_be_visible()
            expect(progress.or_(page.get_by_role("tab", name="3. Results")).first).to_contain_text(
                re.compile(r"· \d+:\d\d elapsed|3\. Results"))
            shot_by = time.monotonic() + 60  # a screenshot of the bar in training, if the tiny run gets there
            while time.monotonic() < shot_by and progress.is_visible():
                if "Training" in (progress.text_content() or ""):
                    progress.evaluate("e => e.scrollIntoView({block: 'center'})")
                    page.screenshot(path=tmp_path / "adapt_app_progress.png")
                    break
                page.wait_for_timeout(250)
            top(page, "h1")  # looking at the top of the page, far above where the results will be
            expect(page.get_by_role("tab", name="3. Results")).to_be_visible(timeout=RUN_MS)
            expect(page.get_by_text("Finished in")).to_be_visible()
            settle(page)
            headline = page.locator(".st-key-headline")
            expect(headline).to_be_in_viewport(ratio=1)  # the page jumped to the results, no scrolling by hand
            page.wait_for_timeout(1000)  # the jump holds for a moment while the page below is drawn
            expect(headline).to_contain_text(re.compile(r"(Fine-tuned|Hybrid): test NDCG@10 change"))
            expect(headline).to_contain_text(re.compile(r"held-out test questions,? (its|the fine-tuned model's) "
                                                        r"NDCG@10 is "))
            assert "\\" not in headline.inner_text()  # escaped text shows as itself
            page.screenshot(path=tmp_path / "adapt_app_results.png")

            page.get_by_role("tab", name="4. Compare search").click()
            settle(page)
            enter(page, "query", "tiny green bugs all over my rose buds")
            expect(page.get_by_text("Your own query: no passage is known to be relevant to it.")).to_be_visible()
            for which in ("base", "finetuned", "hybrid"):
                cards = page.locator(f".st-key-hits_{which} [class*='st-key-hit_{which}_']")
                expect(cards).to_have_count(5)
                expect(cards.first).to_contain_text("score")
                assert len(cards.first.inner_text()) > 100  # a whole passage, not just its header
                for card in cards.all():  # each result's move against base, as a badge
                    moved = re.search(r"▲ up \d+ · was #\d+|▼ down \d+ · was #\d+|= same|\bnew\b",
                                      card.inner_text())
                    assert (moved is None) == (which == "base"), card.inner_text()[:200]

            page.get_by_role("tab", name="5. Per question").click()
            settle(page)
            page.get_by_text("All", exact=True).click()
            settle(page)
            table = page.get_by_test_id("stDataFrame").filter(visible=True)
            expect(table).to_be_visible()
            top(page, "[data-testid=stDataFrame] >> visible=true")
            page.wait_for_timeout(500)
            per_query = pd.read_csv(next((tmp_path / "app" / "runs").iterdir()) / "per_query.csv")
            question = per_query.sort_values("rank_change", ascending=False, kind="stable")["question"].iloc[0]
            table.click(position={"x": ROW_BOX_X, "y": HEADER_PX + ROW_PX // 2})  # the first row's box
            settle(page)
            expect(page.get_by_role("tab", name="4. Compare search")).to_have_attribute("aria-selected", "true")
            expect(page.locator(".st-key-query input")).to_have_value(question)
            pinned = page.locator("[class*='st-key-pinned_']")
            expect(pinned.first).to_be_visible()
            expect(pinned.first).to_contain_text("✓ relevant")
            expect(pinned.first).to_contain_text(re.compile(r"Base: (#\d+|not in the top 100)"))
            expect(pinned.first).to_contain_text(re.compile(r"Fine-tuned: (#\d+ (▲ up|▼ down|= same|new)|not in)"))
            expect(page.get_by_text(re.compile(r"^This is a test question: its"))).to_be_visible()
            top(page, ".st-key-pick_order")
            page.screenshot(path=tmp_path / "adapt_app_compare.png")
            for name in ("adapt_app_preview.png", "adapt_app_progress.png", "adapt_app_results.png",
                         "adapt_app_compare.png"):
                if (tmp_path / name).exists():
                    keep(tmp_path / name)
        finally:
            browser.close()

"""The studio in a real browser: headless Chromium (Debian's chromium + chromium-driver)
driven by Selenium against a running server. Skips, saying why, only where no browser
can be found (`make setup` installs one as root with apt)."""

import shutil
import socket
import threading
import time

import numpy as np
import pytest

from conftest import REPO, random_performance
from tatumflow import read_midi, write_midi

FIX = REPO / "tests" / "fixtures"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
DRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install chromium and chromium-driver (Debian), as `make setup` does as root")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    import uvicorn

    from tatumflow.server.studio import create_app

    ws = tmp_path_factory.mktemp("studio")
    app = create_app(ws, checkpoints=[str(FIX / "tatumflow_v1"), str(FIX / "music_rnn_v1")])
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    t0 = time.time()
    while not server.started and time.time() - t0 < 20:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(5)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1300,1800", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(a)
    driver = webdriver.Chrome(service=Service(DRIVER), options=opts)
    yield driver
    driver.quit()


def until(driver, predicate, timeout=60, what="the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: predicate(d), message=what)


def js(driver, code):
    return driver.execute_script(code)


def test_open_hear_generate_download_and_see_an_error(studio, browser, tmp_path):
    import httpx
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    browser.get(studio)
    until(browser, lambda d: js(d, "return document.body.dataset.ready") == "1", what="the page to load")
    # open: upload a MIDI file, see its piano roll
    p = write_midi(random_performance(np.random.default_rng(3), 70, span=8.0, pedal=False), tmp_path / "take.mid")
    browser.find_element(By.ID, "upload").send_keys(str(p))
    until(browser, lambda d: js(d, "return document.getElementById('roll').dataset.notes") == "70",
          what="the piano roll of 70 notes")
    assert browser.find_element(By.ID, "current-name").text == "take.mid"
    # hear it: the audio element loads and lasts as long as the music (plus the release tail)
    until(browser, lambda d: js(d, "return document.getElementById('player').readyState") >= 1, what="audio")
    duration = js(browser, "return document.getElementById('player').duration")
    assert duration == pytest.approx(read_midi(p).end + 1.5, abs=0.1)
    # generate with two modes of TatumFlow, then a Music RNN continuation
    runs = [("tatumflow_v1", "continuation"), ("tatumflow_v1", "unconditional"), ("music_rnn_v1", "continuation")]
    seen = set()
    for model, mode in runs:
        Select(browser.find_element(By.ID, "model")).select_by_value(str(FIX / model))
        Select(browser.find_element(By.ID, "mode")).select_by_value(mode)
        for field, value in (("p-seconds", "3"), ("p-steps", "4")):
            el = browser.find_element(By.ID, field)
            if el.is_displayed():
                el.clear()
                el.send_keys(value)
        before = js(browser, "return state.current.id")
        browser.find_element(By.ID, "generate-btn").click()
        until(browser, lambda d: js(d, "return document.getElementById('job-status').dataset.status") == "done"
              and js(d, "return state.current.id") != before, timeout=120, what=f"{model} {mode} to finish")
        cur = js(browser, "return state.current")
        assert cur["kind"] == "generated" and cur["params"]["mode"] == mode
        seen.add(cur["id"])
    assert len(seen) == 3
    rows = browser.find_elements(By.CSS_SELECTOR, "#history tbody tr")
    assert len(rows) == 4 and "generated" in rows[0].text
    # download the result and parse it
    href = browser.find_element(By.ID, "dl-midi").get_attribute("href")
    (tmp_path / "down.mid").write_bytes(httpx.get(href).content)
    assert len(read_midi(tmp_path / "down.mid")) == js(browser, "return state.current.notes")
    # rate it: 19 bars with their spread
    browser.find_element(By.ID, "assess-btn").click()
    until(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ratings .bar")) == 19, what="19 ratings")
    # an error is shown on the page, and the page keeps working
    (tmp_path / "notes.mid").write_text("these are not notes")
    browser.find_element(By.ID, "upload").send_keys(str(tmp_path / "notes.mid"))
    until(browser, lambda d: d.find_element(By.ID, "error").is_displayed(), what="the error message")
    assert "not a MIDI file" in browser.find_element(By.ID, "error-text").text
    browser.find_element(By.ID, "error-close").click()
    Select(browser.find_element(By.ID, "example-select")).select_by_value("bach_chorale_bwv101_7")
    browser.find_element(By.ID, "example-btn").click()
    until(browser, lambda d: d.find_element(By.ID, "current-name").text == "bach_chorale_bwv101_7", what="example")

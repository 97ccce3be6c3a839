"""The README's studio screenshot: start the studio, open a built-in example, rate it, capture.

    python scripts/studio_screenshot.py [--out docs/studio.png]

Needs headless Chromium and chromedriver (Debian: chromium, chromium-driver).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    import uvicorn
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from tatumflow.server.studio import create_app

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "studio.png")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as ws, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        app = create_app(ws, checkpoints=[str(REPO / "tests" / "fixtures" / "music_rnn_v1")])
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        threading.Thread(target=server.run, daemon=True).start()
        while not server.started:
            time.sleep(0.05)
        opts = webdriver.ChromeOptions()
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1180,1500",
                  "--hide-scrollbars"):
            opts.add_argument(a)
        driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
        try:
            driver.get(f"http://127.0.0.1:{port}/")
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: d.execute_script("return document.body.dataset.ready") == "1")
            Select(driver.find_element(By.ID, "example-select")).select_by_value("bach_chorale_bwv10_7")
            driver.find_element(By.ID, "example-btn").click()
            wait.until(lambda d: d.execute_script("return document.getElementById('roll').dataset.notes"))
            driver.find_element(By.ID, "assess-btn").click()
            wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ratings .bar")) == 19)
            args.out.parent.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(args.out))
        finally:
            driver.quit()
            server.should_exit = True
    print(args.out)


if __name__ == "__main__":
    main()

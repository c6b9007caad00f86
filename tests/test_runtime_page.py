"""The daemon's live page (issue 8): served from package data, driven by headless Chromium against the
real daemon on file sources (acceptance 1), working with nothing but 127.0.0.1 (acceptance 3).

Chromium is Debian's (`apt-get install chromium chromium-driver`) driven through Selenium with the
system chromedriver, so nothing is downloaded at test time. Without them the browser test skips; the
HTTP checks of the page's files and the thumbnail run everywhere (also in the Python 3.10 job).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import requests

from test_runtime_daemon import start_daemon, stop
from test_runtime_media import make_media

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "s3cret-page-token"


def launch_chromium(width: int = 1280, height: int = 1000):
    """Headless Debian Chromium through Selenium, offline: every host name but 127.0.0.1 fails to
    resolve, so the page passes only if it needs nothing beyond the daemon. Returns (driver, profile
    dir to delete)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="the live-page test needs `pip install selenium`")
    from selenium.webdriver.chrome.service import Service

    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip(f"the live-page test needs {CHROMIUM} and {CHROMEDRIVER}: apt-get install chromium chromium-driver")
    profile = tempfile.mkdtemp(prefix="karmma-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", f"--user-data-dir={profile}", f"--window-size={width},{height}",
                 "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    # An explicit chromedriver: Selenium Manager then downloads nothing.
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    return driver, profile


@pytest.fixture(scope="module")
def media(tiny_data_root: Path, tmp_path_factory: pytest.TempPathFactory):
    # A longer video than the daemon tests': the browser must see the rgb-and-audio profile while it lasts.
    return make_media(tiny_data_root, tmp_path_factory.mktemp("page-media"), video_s=6.0, wav_s=14.0)


def test_thumbnail_is_encoded_at_most_twice_a_second() -> None:
    from karmma_edge.edge_runtime.thumbnail import Thumbnail

    class FakeClock:
        t = 0.0

        def now(self) -> float:
            return self.t

    clock, frame = FakeClock(), np.zeros((32, 32, 3), np.uint8)
    thumb = Thumbnail(lambda: frame, clock)
    for i in range(100):            # 50 requests a second for 2 s
        clock.t = i * 0.02
        jpeg = thumb.jpeg()
    assert thumb.encodes == 4 and jpeg[:2] == b"\xff\xd8"
    thumb.clear()                   # a mute: the next request re-encodes (and finds no frame)
    frame = None
    assert thumb.jpeg() is None


@pytest.mark.timeout(90)
def test_page_and_thumbnail_over_http(tiny_bundle: Path, media, tmp_path: Path) -> None:
    """The page and its files come from package data with a same-origin-only policy, reference nothing
    off the device and never contain the token; with a token set they, like the data, need it (the
    page's entry takes it as ?token= and answers with a cookie); the thumbnail is a small JPEG, gone
    while muted."""
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", f"file:{media.video}", "--audio", f"file:{media.wav}",
                          config={"http": {"token": TOKEN}})
    try:
        assert requests.get(f"{daemon.url}/", timeout=5).status_code == 401
        browser = requests.Session()
        page = browser.get(f"{daemon.url}/?token={TOKEN}", timeout=5)
        assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
        assert "default-src 'self'" in page.headers["Content-Security-Policy"]
        for name, kind in (("page.js", "text/javascript"), ("page.css", "text/css")):
            assert requests.get(f"{daemon.url}/static/{name}", timeout=5).status_code == 401, name
            r = browser.get(f"{daemon.url}/static/{name}", timeout=5)
            assert r.status_code == 200 and r.headers["Content-Type"].startswith(kind), name
            assert "https://" not in r.text and TOKEN not in r.text
        assert TOKEN not in page.text and "https://" not in page.text
        assert browser.get(f"{daemon.url}/static/secrets.txt", timeout=5).status_code == 404

        daemon.wait_for(lambda h: h["sensors"]["rgb"]["live"], "the camera to be live")
        thumbnail = f"{daemon.url}/v1/sensors/rgb/thumbnail.jpg"
        assert requests.get(thumbnail, timeout=5).status_code == 401
        r = browser.get(thumbnail, timeout=5)
        assert r.status_code == 200 and r.headers["Content-Type"] == "image/jpeg"
        image = cv2.imdecode(np.frombuffer(r.content, np.uint8), cv2.IMREAD_COLOR)
        assert image.shape[1] == 160 and len(r.content) < 20_000

        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert requests.post(f"{daemon.url}/v1/sensors/rgb", json={"enabled": False}, headers=auth,
                             timeout=5).status_code == 200
        r = browser.get(thumbnail, timeout=5)
        assert r.status_code == 404 and "muted" in r.json()["error"]   # privacy: no frame while muted
        assert browser.get(f"{daemon.url}/healthz", timeout=5).status_code == 200   # old routes intact
    finally:
        stop(daemon)


@pytest.mark.timeout(150)
def test_page_follows_profiles_and_mutes_the_mic(tiny_bundle: Path, media, tmp_path: Path) -> None:
    """Acceptance 1 and 3: rgb-and-audio profile, then `audio` after the video ends; the page's Mute
    button (with the token from ?token=) mutes the mic and /healthz agrees; a killed daemon shows
    'stream disconnected'. The browser can resolve no host but 127.0.0.1."""
    # The browser first (this skips without selenium or Chromium): the daemon's start starts the video.
    driver, profile = launch_chromium()
    from selenium.webdriver.common.by import By
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait
    daemon = start_daemon(tiny_bundle, tmp_path, "--rgb", f"file:{media.video}", "--audio", f"file:{media.wav}",
                          config={"http": {"token": TOKEN}})
    try:
        # The page replaces its top-k lists on every prediction, so an element found a moment ago can be
        # gone by the time its text is read: waits retry then, and one-off reads run inside the page.
        wait = WebDriverWait(driver, 20, poll_frequency=0.1, ignored_exceptions=[StaleElementReferenceException])
        texts = lambda css: driver.execute_script(
            "return Array.from(document.querySelectorAll(arguments[0]), e => e.textContent)", css)
        text = lambda element_id: driver.find_element(By.ID, element_id).text
        driver.get(f"{daemon.url}/?token={TOKEN}")
        wait.until(lambda d: "token=" not in d.current_url)   # taken into localStorage, out of the address bar

        wait.until(lambda d: {"rgb", "audio"} <= set(text("profile").split("+")),
                   "the page never showed a profile with rgb and audio")
        # Tiles follow /healthz (polled once a second), the profile follows the event stream.
        tile = lambda sensor: driver.find_element(By.ID, f"tile-{sensor}")
        wait.until(lambda d: [tile(s).get_attribute("data-state") for s in ("rgb", "audio")] == ["live", "live"],
                   "the camera and microphone tiles never both said live")
        assert "LIVE" in driver.find_element(By.CSS_SELECTOR, "#tile-audio .state").text
        wait.until(lambda d: d.execute_script(
            "const i = document.querySelector('#tile-rgb .thumb img'); return i.complete && i.naturalWidth === 160"),
            "the camera thumbnail never loaded")
        assert len(texts("#top-action li")) == 5
        assert texts("#top-verb li .pct")[0].endswith("%")

        wait.until(lambda d: text("profile") == "audio", "the page never showed `audio` after the video ended")
        wait.until(lambda d: tile("rgb").get_attribute("data-state") == "dead")
        assert "ended" in driver.find_element(By.CSS_SELECTOR, "#tile-rgb .state").text
        assert "audio" in text("switches")

        mute = driver.find_element(By.CSS_SELECTOR, "#tile-audio button.mute")
        assert mute.text == "Mute"
        mute.click()
        wait.until(lambda d: tile("audio").get_attribute("data-state") == "muted",
                   "the microphone tile never turned muted")
        assert "MUTED" in driver.find_element(By.CSS_SELECTOR, "#tile-audio .state").text
        assert driver.find_element(By.CSS_SELECTOR, "#tile-audio button.mute").text == "Unmute"
        assert driver.find_element(By.CSS_SELECTOR, "#tile-audio .error").text == ""
        health = daemon.health()
        assert health["muted"] == ["audio"] and health["sensors"]["audio"]["muted"] is True
        assert health["live"] == []
        wait.until(lambda d: text("profile").startswith("none"))

        # Acceptance 3: everything the page loaded came from the daemon on 127.0.0.1.
        urls = driver.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
        assert urls and all(u.startswith(daemon.url) for u in urls), urls
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE" and "thumbnail" not in e["message"]]
        assert not errors, errors

        stop(daemon)
        wait.until(lambda d: d.find_element(By.ID, "banner").is_displayed(), "no disconnected banner")
        assert text("banner") == "stream disconnected — reconnecting…"
        assert "reconnecting" in text("stream")
    finally:
        stop(daemon)
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)

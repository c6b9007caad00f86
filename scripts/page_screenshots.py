#!/usr/bin/env python3
"""Screenshots of the daemon's live page in each state (issue 8, acceptance 2).

Starts `karmma-edge serve` on file sources (a video shorter than the WAV, made from the dataset's
frames as in the runtime tests), opens the page in headless Debian Chromium and writes:

    live-page-1-both-live.png      camera and microphone live, rgb-and-audio profile
    live-page-2-audio-only.png     after the video ended: the `audio` profile, the camera dead ("ended")
    live-page-3-mic-muted.png      the microphone muted through the page's button: nothing live
    live-page-4-disconnected.png   the daemon killed: the page says the stream is disconnected

    python scripts/page_screenshots.py --bundle BUNDLE --data DATASET_ROOT --out docs/img

Needs `apt-get install chromium chromium-driver` and `pip install selenium` (see docs/live-page.md).
"""

from __future__ import annotations

import argparse
import io
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

WIDTH = 1200


def save(driver, path: Path) -> None:
    """A full-page PNG: the window is resized to the page's height first. Palette-quantised (the page
    is flat colours) when Pillow is present, to keep the docs small."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": WIDTH, "height": height, "deviceScaleFactor": 1, "mobile": False})
    time.sleep(0.3)   # one layout and paint at the new size
    png = driver.get_screenshot_as_png()
    try:
        from PIL import Image

        image = Image.open(io.BytesIO(png)).convert("RGB").quantize(colors=256, method=Image.Quantize.FASTOCTREE)
        image.save(path, optimize=True)
    except ImportError:
        path.write_bytes(png)
    print(f"wrote {path} ({path.stat().st_size // 1024} KB)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bundle", type=Path, required=True)
    ap.add_argument("--data", type=Path, required=True, help="dataset root whose RGB frames make the test video")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--video-s", type=float, default=25.0, help="video length; the WAV lasts 40 s longer")
    args = ap.parse_args()

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    from test_runtime_daemon import start_daemon, stop
    from test_runtime_media import make_media
    from test_runtime_page import launch_chromium

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="karmma-page-"))
    media = make_media(args.data, work / "media", video_s=args.video_s, wav_s=args.video_s + 40)
    driver, profile = launch_chromium(WIDTH, 1000)
    daemon = start_daemon(args.bundle, work, "--rgb", f"file:{media.video}", "--audio", f"file:{media.wav}",
                          config={"inference": {"stride_s": 0.5, "queue_size": 8}})
    try:
        wait = WebDriverWait(driver, 60, poll_frequency=0.2)
        state = lambda sensor: driver.find_element(By.ID, f"tile-{sensor}").get_attribute("data-state")
        driver.get(daemon.url + "/")

        # Both live: wait long enough for the charts to have a history worth looking at.
        wait.until(lambda d: set(d.find_element(By.ID, "profile").text.split("+")) >= {"rgb", "audio"})
        wait.until(lambda d: state("rgb") == "live" and state("audio") == "live")
        time.sleep(max(0.0, args.video_s - 8))
        save(driver, args.out / "live-page-1-both-live.png")

        wait.until(lambda d: d.find_element(By.ID, "profile").text == "audio" and state("rgb") == "dead")
        time.sleep(12)   # a stretch of `audio` on the timeline after the switch
        save(driver, args.out / "live-page-2-audio-only.png")

        driver.find_element(By.CSS_SELECTOR, "#tile-audio button.mute").click()
        wait.until(lambda d: state("audio") == "muted" and d.find_element(By.ID, "profile").text.startswith("none"))
        time.sleep(5)    # the gap in the timeline
        save(driver, args.out / "live-page-3-mic-muted.png")

        stop(daemon)
        wait.until(lambda d: d.find_element(By.ID, "banner").is_displayed())
        wait.until(lambda d: "unreachable" in d.find_element(By.ID, "daemon").text)
        save(driver, args.out / "live-page-4-disconnected.png")
    finally:
        stop(daemon)
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

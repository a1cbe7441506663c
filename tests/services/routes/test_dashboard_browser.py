"""The dashboard in a real browser: headless Chromium against a real uvicorn server.

The whole loop (producer, predictor, learner, trainer, monitor, notifier) runs inside the
server process on the embedded backends, so events flow while the page polls. The test waits
until both charts received points, then keeps a screenshot in artifacts/test-screenshots/.

Debian's ``chromium`` and ``chromium-driver`` packages provide the browser and its driver; the
test skips without them on a laptop and fails under CI=true, where they must be installed.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

from meander.config import Settings
from meander.producers.synthetic import synthetic
from meander.services.auth import new_key
from tests.services.conftest import Serve

IN_CI = os.environ.get("CI", "").lower() == "true"
CHROMIUM = os.environ.get("MEANDER_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("MEANDER_CHROMEDRIVER", "/usr/bin/chromedriver")
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "test-screenshots"
DEADLINE = 120  # seconds for the loop to start and the page to draw; it usually takes a few
STORY = 60  # seconds the screenshot may wait for a drift and a promotion to be drawn

Received = dict[str, Any]


def _missing(reason: str) -> None:
    message = f"{reason}; install Debian's chromium and chromium-driver packages"
    if IN_CI:
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


@pytest.fixture
def browser() -> Iterator[webdriver.Chrome]:
    """Headless Chromium with a 1280x800 page, through the system chromedriver."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            _missing(f"{path} is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,800"):
        options.add_argument(argument)
    options.add_argument("--disable-dev-shm-usage")  # containers often have a tiny /dev/shm
    try:
        driver = webdriver.Chrome(options=options, service=DriverService(CHROMEDRIVER))
    except WebDriverException as error:
        _missing(f"headless Chromium did not start: {error.msg}")
    try:
        # The window size includes the browser's frame; the page itself should be 1280x800.
        metrics = {"width": 1280, "height": 800, "deviceScaleFactor": 1, "mobile": False}
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
        yield driver
    finally:
        driver.quit()


def _settings() -> Settings:
    stream = synthetic("agrawal").stream_config(
        "agrawal",
        model="tree.HoeffdingTreeClassifier(grace_period=50, delta=0.001)",
        candidates=["tree.HoeffdingAdaptiveTreeClassifier(seed=42)"],
        promotion={"min_samples": 200},
        learning={"publish_every": 250, "max_challengers": 1, "replay_window": 1_000},
    )
    return Settings(
        streams=[stream],
        # A paced, endless source whose concept changes every 6000 events: a drift and the
        # promotion that answers it come while the page watches.
        producer={
            "source": "agrawal",
            "rate": 1_000,
            "drift_every": 6_000,
            "label_delay": 20,
            "progress": False,
        },
        service={
            "anonymous_scopes": ["read"],
            "components": ["learner", "predictor", "trainer", "monitor", "notifier", "producer"],
        },
    )


def _received(driver: WebDriver) -> Received:
    """What the page says it received and drew."""
    received: Received | None = driver.execute_script(
        """
        const d = window.meanderDashboard;
        if (!d) return null;
        const drawn = (kind) =>
          document.querySelectorAll(`#metric-chart .marker[data-kind="${kind}"]`).length;
        return {charts: d.charts, polls: d.state.polls, error: d.state.lastError,
                stream: d.overview && d.overview.stream,
                drifts: drawn("concept_drift"), promotions: drawn("promoted")};
        """
    )
    return received or {"charts": {}, "polls": 0, "error": None, "drifts": 0, "promotions": 0}


def _wait(driver: WebDriver, seconds: float, done: Callable[[Received], bool]) -> bool:
    try:
        WebDriverWait(driver, seconds, poll_frequency=0.5).until(lambda d: done(_received(d)))
    except TimeoutException:
        return False
    return True


def _charted(received: Received) -> bool:
    charts = received["charts"]
    return bool(charts.get("throughput", 0) > 0 and charts.get("metric", 0) > 0)


def test_the_dashboard_charts_the_running_loop(serve: Serve, browser: webdriver.Chrome) -> None:
    base = serve(_settings())
    browser.get(f"{base}/dashboard")

    if not _wait(browser, DEADLINE, _charted):
        pytest.fail(f"the charts got no data in {DEADLINE}s; the page has {_received(browser)}")
    for chart in ("throughput-chart", "metric-chart"):  # the elements say it too
        points = browser.find_element("id", chart).get_attribute("data-points")
        assert points is not None and int(points) > 0, chart
    assert _received(browser)["error"] is None
    # Nothing the page did was refused: no script error, no request blocked by the CSP.
    console: list[dict[str, Any]] = browser.get_log("browser")  # type: ignore[no-untyped-call]
    assert [entry["message"] for entry in console if entry["level"] == "SEVERE"] == []
    versions = [cell.text for cell in browser.find_elements("css selector", "#lineage th")]
    assert versions[-1] == "v1"  # the first champion, registered from the configuration

    # A screenshot worth keeping shows a drift and the promotion that answered it; when they
    # come depends on the model, so this wait is bounded and not a check.
    _wait(browser, STORY, lambda r: r["drifts"] > 0 and r["promotions"] > 0 and r["polls"] > 10)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SCREENSHOTS / "dashboard.png"))


def _guarded(*streams: str) -> tuple[Settings, str]:
    """Settings of quiet streams that only a key with the read scope may see, and the key."""
    key, digest = new_key()
    settings = Settings(
        streams=[synthetic("sea").stream_config(name) for name in streams],
        service={"api_keys": [{"name": "on-call", "digest": digest, "scopes": ["read"]}]},
    )
    return settings, key


def test_a_key_given_in_the_address_is_kept_and_hidden(
    serve: Serve, browser: webdriver.Chrome
) -> None:
    settings, key = _guarded("first", "second")
    base = serve(settings)
    browser.get(f"{base}/dashboard?key={key}&stream=second")

    assert _wait(browser, DEADLINE, lambda r: r["stream"] == "second"), _received(browser)
    assert key not in browser.current_url and browser.current_url.endswith("stream=second")
    assert browser.execute_script("return localStorage.getItem('meander.apiKey')") == key
    picker = Select(browser.find_element("id", "stream"))
    assert [option.text for option in picker.options] == ["first", "second"]
    picker.select_by_visible_text("first")
    assert _wait(browser, DEADLINE, lambda r: r["stream"] == "first"), _received(browser)
    assert browser.current_url.endswith("stream=first")


def test_without_a_key_the_page_asks_for_one(serve: Serve, browser: webdriver.Chrome) -> None:
    settings, key = _guarded("only")
    browser.get(serve(settings) + "/dashboard")
    form = browser.find_element("id", "key-form")
    WebDriverWait(browser, DEADLINE).until(lambda _: form.is_displayed())
    assert "API key is required" in browser.find_element("id", "key-reason").text
    assert not browser.find_element("id", "picker").is_displayed()  # one stream: no picker

    browser.find_element("id", "key").send_keys(key)
    browser.find_element("css selector", "#key-form button").click()
    assert _wait(browser, DEADLINE, lambda r: r["stream"] == "only"), _received(browser)
    assert not form.is_displayed()

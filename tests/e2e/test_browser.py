"""A person's whole session in a real browser, against the local demo.

Debian's chromium and chromedriver, driven by selenium (never selenium-manager:
nothing is downloaded). The demo (``scripts/demo.py``) provides slapd, the
devcluster with the process runtime and RBAC, and JupyterHub. Screenshots of the spawn
page and of JupyterLab are saved under ``LSST_HUB_E2E_SCREENSHOTS`` (default:
the test's temporary directory).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.demo_support import RunningDemo, demo_state_dir

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the demo runs servers as other uids: root"),
    pytest.mark.skipif(
        not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
        reason="needs Debian's chromium and chromium-driver (SETUP_BROWSER=1 scripts/setup.sh)",
    ),
]

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.common.exceptions import (  # noqa: E402
    JavascriptException,
    StaleElementReferenceException,
    TimeoutException,
    WebDriverException,
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ec  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# A page that navigates while we look at it (a form post, the spawn page moving on to
# JupyterLab) leaves the element we held behind: look again instead of failing.
_RETRY_ON = (StaleElementReferenceException, JavascriptException)


def _wait(driver: Any, timeout: float, poll_frequency: float = 0.5) -> WebDriverWait[Any]:
    return WebDriverWait(
        driver, timeout, poll_frequency=poll_frequency, ignored_exceptions=_RETRY_ON
    )


RECORD_PROGRESS = """
(() => {
  const Original = window.EventSource;
  if (!Original) return;
  window.EventSource = function (url, options) {
    const source = new Original(url, options);
    source.addEventListener("message", (event) => {
      const log = JSON.parse(localStorage.getItem("progressEvents") || "[]");
      log.push(event.data);
      localStorage.setItem("progressEvents", JSON.stringify(log));
    });
    return source;
  };
  window.EventSource.prototype = Original.prototype;
})();
"""


def progress_messages(driver: Any) -> list[str]:
    """The progress events' messages recorded by RECORD_PROGRESS."""
    raw = driver.execute_script("return localStorage.getItem('progressEvents') || '[]'")
    return [str(json.loads(data).get("message", "")) for data in json.loads(raw)]


@pytest.fixture(scope="module")
def demo() -> Iterator[RunningDemo]:
    # One demo for the module (a start takes many seconds): the wrong password leaves
    # alice one failure, far below any login limit, and no test stops the demo.
    with demo_state_dir() as state:
        running = RunningDemo(state)
        try:
            yield running
        finally:
            if running.process.poll() is None:
                with contextlib.suppress(Exception):
                    running.interrupt()
            running.kill()


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-quic",
        "--window-size=1280,900",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(service=service, options=options)
    driver.set_page_load_timeout(60)
    # Record every server-sent progress event in localStorage, so the test can read
    # what the spawn page was told even after it has moved on to JupyterLab.
    driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": RECORD_PROGRESS})
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    directory = Path(os.environ.get("LSST_HUB_E2E_SCREENSHOTS") or tmp_path / "screenshots")
    directory.mkdir(parents=True, exist_ok=True)

    def take(driver: Any, name: str) -> Path:
        path = directory / f"{name}.png"
        driver.save_screenshot(str(path))
        return path

    return take


def log_in(driver: Any, url: str, user: str, password: str) -> None:
    driver.get(f"{url}/hub/login")
    _wait(driver, 30).until(ec.presence_of_element_located((By.ID, "username_input")))
    driver.find_element(By.ID, "username_input").send_keys(user)
    driver.find_element(By.ID, "password_input").send_keys(password)
    driver.find_element(By.ID, "login_submit").click()


def wait_text(driver: Any, text: str, timeout: float) -> None:
    _wait(driver, timeout).until(lambda d: text in d.find_element(By.TAG_NAME, "body").text)


def wait_or_explain(
    demo: RunningDemo, driver: Any, condition: Callable[[Any], bool], timeout: float, what: str
) -> None:
    """Wait for ``condition``; on time-out fail with what the browser and the hub saw."""
    try:
        _wait(driver, timeout).until(condition)
    except TimeoutException:
        page = driver.execute_script("return document.body ? document.body.innerText : ''")
        pytest.fail(
            f"no {what} after {timeout} s; the browser is at {driver.current_url}:\n{page}\n"
            + demo.diagnostics()
        )


def test_wrong_password_shows_the_login_error(demo: RunningDemo, browser: Any) -> None:
    log_in(browser, demo.url, "alice", "not-her-password")
    wait_text(browser, "Invalid username or password", 30)
    # The page itself was answered with 403, as JupyterHub does for a refused login.
    status = browser.execute_script(
        "return performance.getEntriesByType('navigation')[0].responseStatus"
    )
    assert status == 403
    assert "/hub/login" in browser.current_url


def test_alice_spawns_works_and_stops(
    demo: RunningDemo, browser: Any, screenshot: Callable[[Any, str], Path]
) -> None:
    log_in(browser, demo.url, "alice", demo.info["people"]["alice"])

    # The spawn progress page names the node the server is placed on. The page moves
    # on to JupyterLab as soon as the server answers: take the screenshot if we are
    # still there, and check the message from the recorded events either way.
    wait_or_explain(
        demo,
        browser,
        lambda d: "/spawn-pending/" in d.current_url or "/user/alice/" in d.current_url,
        120,
        "the spawn page",
    )
    with contextlib.suppress(TimeoutException):
        _wait(browser, 30, poll_frequency=0.1).until(
            lambda d: "Starting on node-" in d.execute_script("return document.body.textContent")
        )
        if "/spawn-pending/" in browser.current_url:
            with contextlib.suppress(WebDriverException):
                browser.find_element(By.CSS_SELECTOR, "#progress-details summary").click()
            screenshot(browser, "spawn-progress")

    # JupyterLab opens.
    wait_or_explain(demo, browser, lambda d: "/user/alice/lab" in d.current_url, 180, "JupyterLab")
    _wait(browser, 120).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, "#jp-main-dock-panel"))
    )
    _wait(browser, 60).until(lambda d: "JupyterLab" in d.title)
    time.sleep(2)  # let the launcher render for the screenshot
    screenshot(browser, "jupyterlab")
    messages = progress_messages(browser)
    assert any(m.startswith("Starting on node-") for m in messages), messages
    assert demo.pods() == ["jupyter-alice"]

    # The session writes a file into the home (the contents API, from the page).
    status = browser.execute_async_script(
        """
        const done = arguments[arguments.length - 1];
        const xsrf = (document.cookie.match(/(?:^|; )_xsrf=([^;]*)/) || [])[1] || "";
        fetch("/user/alice/api/contents/written-in-the-browser.txt", {
          method: "PUT",
          headers: {"Content-Type": "application/json", "X-XSRFToken": decodeURIComponent(xsrf)},
          body: JSON.stringify({type: "file", format: "text", content: "from chromium\\n"}),
        }).then(r => done(r.status), e => done(String(e)));
        """
    )
    assert status in (200, 201)
    home_file = Path(demo.info["host_root"]) / "gpfs/home/alice/written-in-the-browser.txt"
    assert home_file.read_text() == "from chromium\n"

    # Stop the server from the hub home page.
    browser.get(f"{demo.url}/hub/home")
    stop = _wait(browser, 30).until(ec.element_to_be_clickable((By.ID, "stop")))
    # The button only works once the page's script has hooked it up (slow under load).
    _wait(browser, 60).until(
        lambda d: d.execute_script(
            "const e = window.jQuery && jQuery._data(document.getElementById('stop'), 'events');"
            "return !!(e && e.click);"
        )
    )
    stop.click()
    wait_or_explain(
        demo,
        browser,
        lambda d: "Start My Server" in d.find_element(By.ID, "start").text,
        120,
        "stopped server on the home page",
    )

    # The pod is gone from the cluster; the home and the file stay.
    deadline = time.monotonic() + 60
    while demo.pods() and time.monotonic() < deadline:
        time.sleep(0.5)
    assert demo.pods() == []
    assert home_file.read_text() == "from chromium\n"
    pvcs = demo.kube(f"/api/v1/namespaces/{demo.info['namespace']}/persistentvolumeclaims")
    assert [p["metadata"]["name"] for p in pvcs["items"]] == ["home-alice"]

"""A person in a real browser: headless Chromium opens /docs, authorises with an API key through
Swagger UI's Authorize dialog, tries POST /v1/assess, and sees the live 201 answer with a
triage level. Runs against the service under gunicorn.

Chromium and chromedriver are Debian's (scripts/test installs them), given to Selenium by path
so that it never looks for or downloads a driver. Without them the test is skipped locally; in
CI (CI=true) it fails instead, so it can never silently not run.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from service.docs import MINIMUM_SWAGGER_UI

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LEVELS = ("emergency", "urgent", "see_professional", "self_care")
ASSESS = "#operations-assessment-post_v1_assess"
LIVE_RESPONSE = f"{ASSESS} .live-responses-table tr.response"
TIMEOUT = 60

# Every URL the page asked for: its own elements' and the browser's record of fetched resources.
REQUESTED_URLS = """
return [
  location.href,
  ...[...document.querySelectorAll('script[src], link[href], img[src], iframe[src]')]
      .map(e => e.src || e.href),
  ...performance.getEntriesByType('resource').map(e => e.name),
];
"""


def _require_debian_chromium() -> None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not os.access(path, os.X_OK)]
    if not missing:
        return
    message = f"the browser test needs Debian's chromium and chromium-driver: no {missing}"
    if os.environ.get("CI") == "true":
        pytest.fail(f"{message}; in CI it must run, not be skipped")
    pytest.skip(message)


@pytest.fixture
def browser():
    _require_debian_chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tempfile.mkdtemp(prefix="popliteal-chromium-")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1400,2000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(TIMEOUT)
    driver.set_script_timeout(TIMEOUT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def _off_machine(browser, origin: str) -> list[str]:
    urls = browser.execute_script(REQUESTED_URLS)
    assert len(urls) > 3, urls  # the page, Swagger UI's script and stylesheet, the spec
    return [
        url
        for url in urls
        if urlsplit(url).scheme not in ("data", "blob") and urlsplit(url).netloc != origin
    ]


def test_try_it_out_on_assess_shows_a_triage_level(browser, live_server):
    wait = WebDriverWait(browser, TIMEOUT)
    origin = urlsplit(live_server.url).netloc
    browser.get(f"{live_server.url}/docs")

    operation = wait.until(
        ec.element_to_be_clickable((By.ID, "operations-assessment-post_v1_assess"))
    )
    # Swagger UI's assets and the spec came from this server: /docs works offline.
    assert _off_machine(browser, origin) == []
    # The Swagger UI running in the page is the pinned one or newer (it reports its version).
    running = browser.execute_script("return window.versions.swaggerUI.version")
    assert tuple(int(part) for part in running.split(".")) >= MINIMUM_SWAGGER_UI, running

    # Authorize: the bearer scheme's dialog takes the key, as a new user would paste it.
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    key_input = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux .auth-container input"))
    )
    key_input.send_keys(live_server.key)
    browser.find_element(By.CSS_SELECTOR, ".modal-ux .auth-btn-wrapper .authorize").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".modal-ux .btn-done"))).click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))

    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{ASSESS} .try-out__btn"))).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{ASSESS} .execute"))).click()

    status = wait.until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, f"{LIVE_RESPONSE} .response-col_status"))
    )
    assert status.text.strip().startswith("201"), status.text
    body = browser.find_element(
        By.CSS_SELECTOR, f"{LIVE_RESPONSE} .response-col_description pre"
    ).text
    assert '"level"' in body
    assert any(f'"{level}"' in body for level in LEVELS), body[:500]
    answer = json.loads(body)  # the whole answer is on show
    assert answer["triage"]["level"] in LEVELS
    assert answer["links"]["self"] == f"/v1/assessments/{answer['id']}"
    # The live request went to this server too, and nothing else left the machine meanwhile.
    assert _off_machine(browser, origin) == []

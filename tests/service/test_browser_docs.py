"""A person in a real browser: headless Chromium opens /docs, reads Swagger UI's Authorize dialog
(which field is for what, how to get a key), authorises with an API key, tries POST /v1/assess
and sees the live 201 answer with a triage level; executes the same example again and gets a
second record (the page sends a fresh Idempotency-Key each time), and a key typed in makes a
retry a replay. Runs against the service under gunicorn.

Chromium and chromedriver are Debian's (scripts/test installs them), given to Selenium by path
so that it never looks for or downloads a driver. Without them the test is skipped locally; in
CI (CI=true) it fails instead, so it can never silently not run.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import NamedTuple
from urllib.parse import urlsplit

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from service.docs import MINIMUM_SWAGGER_UI

pytestmark = [pytest.mark.browser, pytest.mark.live]

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LEVELS = ("emergency", "urgent", "see_professional", "self_care")
ASSESS = "#operations-assessment-post_v1_assess"
LIVE_RESPONSE = f"{ASSESS} .live-responses-table tr.response"
REQUEST_ID_HEADER = re.compile(r"x-request-id: (\S+)")
REPLAYED = "idempotent-replayed"
IDEMPOTENCY_KEY_FIELD = "tr[data-param-name='Idempotency-Key'] input"
FOCUSED_SCHEME = "./ancestor::div[contains(@class, 'auth-container')]"
RESPONSE_HEADERS = ".//h5[text()='Response headers']/following-sibling::pre"
# The header as Swagger UI's curl line shows it: -H 'Idempotency-Key: <a version 4 UUID>'.
IDEMPOTENCY_KEY_SENT = re.compile(
    r"Idempotency-Key: ([0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})"
)
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


class LiveAnswer(NamedTuple):
    status: str
    body: str
    headers: str  # lower-cased, as Swagger UI shows them
    curl: str  # the request as sent, requestInterceptor's changes included

    def sent_key(self) -> str | None:
        sent = IDEMPOTENCY_KEY_SENT.search(self.curl)
        return sent.group(1) if sent else None


def _read_authorize_dialog(browser, wait) -> str:
    """Opens Swagger UI's Authorize dialog and reads it as a person would."""
    browser.find_element(By.CSS_SELECTOR, ".auth-wrapper .authorize").click()
    dialog = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
    return dialog.text


def _focused_scheme(browser) -> str:
    """The heading of the Authorize dialog's scheme whose field has the focus."""
    container = browser.switch_to.active_element.find_element(By.XPATH, FOCUSED_SCHEME)
    return container.find_element(By.TAG_NAME, "h4").text


def _authorize(browser, wait, key: str) -> None:
    """Pastes the key into the API key scheme's field (not the CDS clients' one) and closes."""
    [api_key] = [
        container
        for container in browser.find_elements(By.CSS_SELECTOR, ".modal-ux .auth-container")
        if container.find_element(By.TAG_NAME, "h4").text.startswith("apiKey")
    ]
    api_key.find_element(By.TAG_NAME, "input").send_keys(key)
    api_key.find_element(By.CSS_SELECTOR, ".auth-btn-wrapper .authorize").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, ".modal-ux .btn-done"))).click()
    wait.until(ec.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))


def _live_answer(browser) -> LiveAnswer:
    answer = browser.find_element(By.CSS_SELECTOR, LIVE_RESPONSE)
    return LiveAnswer(
        status=answer.find_element(By.CSS_SELECTOR, ".response-col_status").text.strip(),
        body=answer.find_element(By.CSS_SELECTOR, ".highlight-code pre").text,
        headers=answer.find_element(By.XPATH, RESPONSE_HEADERS).text.lower(),
        curl=browser.find_element(By.CSS_SELECTOR, f"{ASSESS} .curl-command pre").text,
    )


def _execute(browser, wait, shown_before: LiveAnswer | None = None) -> LiveAnswer:
    """Clicks Execute and waits until the page shows the new answer whole: headers other than
    those already on show (X-Request-ID is new for every request, replays included), and the
    body that came with them (it names the same request, unless it is a replay's)."""
    browser.find_element(By.CSS_SELECTOR, f"{ASSESS} .execute").click()

    def new_answer(driver):
        try:
            answer = _live_answer(driver)
            body = json.loads(answer.body)
        except (NoSuchElementException, StaleElementReferenceException, ValueError):
            return False
        request_id = REQUEST_ID_HEADER.search(answer.headers)
        if request_id is None or (shown_before and answer.headers == shown_before.headers):
            return False
        whole = body.get("request_id") == request_id.group(1) or REPLAYED in answer.headers
        return answer if whole else False

    return wait.until(new_answer)


def _check_authorize_dialog(dialog: str) -> None:
    """It says which of its two bearer fields is for what, and how to get an API key."""
    assert "Bearer ." not in dialog, dialog  # a placeholder eaten as an HTML tag
    assert "API key: for every /v1 endpoint" in dialog, dialog
    assert "./scripts/run" in dialog, dialog
    assert "keys create --tenant NAME" in dialog, dialog
    assert "for EHR CDS clients calling /cds-services" in dialog, dialog
    assert "not needed for /v1" in dialog, dialog


def _open_assess(browser, wait, operation) -> WebElement:
    """Opens POST /v1/assess for "Try it out"; its Idempotency-Key field."""
    operation.find_element(By.CSS_SELECTOR, ".opblock-summary").click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, f"{ASSESS} .try-out__btn"))).click()
    return browser.find_element(By.CSS_SELECTOR, f"{ASSESS} {IDEMPOTENCY_KEY_FIELD}")


def test_a_new_user_authorises_and_executes_the_same_example_twice(browser, live_server):
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

    _check_authorize_dialog(_read_authorize_dialog(browser, wait))
    # A key pasted straight away lands in the API key's field, not the CDS clients' one.
    assert _focused_scheme(browser).startswith("apiKey"), _focused_scheme(browser)
    _authorize(browser, wait, live_server.key)
    key_field = _open_assess(browser, wait, operation)
    assert key_field.get_attribute("value") == ""  # no fixed key for every Execute to share

    first = _execute(browser, wait)
    assert first.status.startswith("201"), first
    answer = json.loads(first.body)  # the whole answer is on show
    assert answer["triage"]["level"] in LEVELS
    assert any(f'"{level}"' in first.body for level in LEVELS), first.body[:500]
    assert answer["links"]["self"] == f"/v1/assessments/{answer['id']}"

    # The same example again is a new record, not a 422 for a reused key nor a replay: the
    # page sent a fresh Idempotency-Key each time.
    second = _execute(browser, wait, first)
    assert second.status.startswith("201"), second
    assert json.loads(second.body)["id"] != answer["id"]
    assert REPLAYED not in second.headers, second.headers
    assert None not in (first.sent_key(), second.sent_key()), (first.curl, second.curl)
    assert first.sent_key() != second.sent_key()

    # A key typed in is sent as it is: a retry with it is a replay of its first answer.
    own_key = str(uuid.uuid4())
    key_field.send_keys(own_key)
    stored = _execute(browser, wait, second)
    assert stored.status.startswith("201"), stored
    retried = _execute(browser, wait, stored)
    assert (stored.sent_key(), retried.sent_key()) == (own_key, own_key)
    assert f"{REPLAYED}: true" in retried.headers, retried.headers
    assert json.loads(retried.body)["id"] == json.loads(stored.body)["id"] != answer["id"]
    # The live requests went to this server too, and nothing else left the machine meanwhile.
    assert _off_machine(browser, origin) == []

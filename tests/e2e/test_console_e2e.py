"""The web console in a real headless Chromium (Debian's `chromium` + `chromedriver`, driven by
Selenium) against gunicorn (gevent worker) and the sandbox upstream, in embedded task mode.

A user signs in with a key, reads the balance, streams a chat answer, submits an image and a
music task from the forms, watches them finish, sees the image and plays the track, uploads a
file and finds it listed. A failing test saves a screenshot under its pytest tmp dir and
prints the path.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import need_service
from tests.e2e.procs import Account, TaskStack, wait_until
from tests.e2e.stack import running
from tests.unit.test_webhooks import Receiver

pytestmark = pytest.mark.e2e

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
TIMEOUT = 90  # generous: the machine is shared; every wait ends at an event, not a sleep


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[TaskStack]:
    yield from running(TaskStack(tmp_path_factory.mktemp("console")))


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[Any]:
    need_service("chromium", bool(CHROMIUM and CHROMEDRIVER),
                 "install Debian's chromium and chromium-driver (apt-get install -y chromium "
                 "chromium-driver), as .ci/run does")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--mute-audio",
                "--autoplay-policy=no-user-gesture-required", "--window-size=1280,1000",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER, log_output=str(profile / "driver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shots(browser, tmp_path: Path, request) -> Iterator[Callable[[str], Path]]:
    """Screenshots: `shots(name)` saves one; a failing test saves `failure.png` (path printed)."""

    def take(name: str) -> Path:
        path = tmp_path / f"{name}.png"
        browser.save_screenshot(str(path))
        return path

    failed_before = request.session.testsfailed
    yield take
    if request.session.testsfailed > failed_before:
        print(f"\nconsole screenshot: {take('failure')}")


@pytest.fixture(scope="module")
def account(stack: TaskStack) -> Account:
    return stack.new_account("500", name="Console tester")


def wait_for(driver: Any, condition: Callable[[Any], Any], what: str,
             timeout: float = TIMEOUT) -> Any:
    from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page redraws what it polls: an element found a moment ago may be gone; look again.
    return WebDriverWait(driver, timeout, poll_frequency=0.2, ignored_exceptions=(
        NoSuchElementException, StaleElementReferenceException)).until(
        condition, message=f"timed out waiting for {what}")


def el(driver: Any, css: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css)


def visible(css: str) -> Callable[[Any], Any]:
    def check(driver: Any) -> Any:
        with contextlib.suppress(Exception):
            found = el(driver, css)
            if found.is_displayed():
                return found
        return None

    return check


def sign_in(driver: Any, stack: TaskStack, key: str) -> None:
    # A fresh document per test: from /console#… only the fragment would change, and form
    # and filter choices of the previous test would still be on the page.
    driver.get("about:blank")
    driver.get(f"{stack.url}/console#key={key}")
    wait_for(driver, visible("#page-overview"), "the overview after signing in")


@pytest.fixture
def signed_in(browser, stack: TaskStack, account: Account, shots) -> Any:
    sign_in(browser, stack, account.key)
    return browser


def test_sign_in_shows_balance_and_keeps_the_key_out_of_urls(browser, stack, account, shots):
    sign_in(browser, stack, account.key)
    # The fragment is gone from the address bar; the key lives in sessionStorage only.
    assert account.key not in browser.current_url
    assert browser.current_url.endswith("/console#overview")
    assert browser.execute_script(
        "return sessionStorage.getItem('beatra.console.key')") == account.key
    assert browser.get_cookies() == []

    expected = account.get("/v1/account").json()
    balance = wait_for(browser, lambda d: el(d, "#ov-balance").text not in ("…", "")
                       and el(d, "#ov-balance").text, "the balance")
    assert balance == expected["balance"]  # the API's decimal string, not reformatted
    assert el(browser, "#ov-reserved").text == expected["reserved"]
    assert el(browser, "#ov-spent").text == expected["key"]["spent"]
    wait_for(browser, visible("#ov-usage-total"), "the usage chart")
    assert el(browser, "#ov-chart svg").get_attribute("role") == "img"
    assert len(browser.find_elements("css selector", "#ov-chart rect.bar")) == 30
    shots("overview")

    # Phone width: nothing wider than the screen.
    browser.set_window_size(390, 844)
    try:
        assert browser.execute_script(
            "return document.documentElement.scrollWidth <= window.innerWidth")
        shots("overview-phone")
    finally:
        browser.set_window_size(1280, 1000)

    # Sign out forgets the key; a wrong key shows the API's error with its request id.
    el(browser, "#signout").click()
    wait_for(browser, visible("#signin-form"), "the sign-in form")
    assert browser.execute_script("return sessionStorage.getItem('beatra.console.key')") is None
    el(browser, "#signin-key").send_keys("bk_not-a-real-key")
    el(browser, "#signin-form button[type=submit]").click()
    error = wait_for(browser, visible("#signin-error .error"), "the sign-in error")
    assert "Invalid, revoked or expired API key" in error.text
    assert el(browser, "#signin-error .request-id").text.startswith("req_")
    el(browser, "#signin-key").clear()
    el(browser, "#signin-key").send_keys(account.key)
    el(browser, "#signin-form button[type=submit]").click()
    wait_for(browser, visible("#page-overview"), "the overview after signing in by form")


def test_chat_streams_reasoning_answer_and_credits(signed_in, shots):
    from selenium.webdriver.support.ui import Select

    browser = signed_in
    browser.get(browser.current_url.split("#")[0] + "#chat")
    wait_for(browser, lambda d: len(Select(el(d, "#chat-model")).options) > 0, "the model list")
    options = [o.text for o in Select(el(browser, "#chat-model")).options]
    assert "deepseek-reasoner" in options and "gpt-image-2" not in options
    Select(el(browser, "#chat-model")).select_by_visible_text("deepseek-reasoner")
    el(browser, "#chat-input").send_keys("[sandbox:chunks=6,chunk_delay=0.05] Say hello")
    el(browser, "#chat-send").click()
    credits = wait_for(browser, lambda d: "credits" in el(d, ".turn.assistant .credits").text
                       and el(d, ".turn.assistant .credits"), "the usage chunk")
    assert el(browser, ".turn.assistant .answer").text.strip()
    assert el(browser, ".turn.assistant .reasoning").text.strip()
    assert el(browser, ".turn.assistant .reasoning-box").is_displayed()
    assert "request req_" in credits.text
    assert browser.find_elements("css selector", ".turn.assistant .error") == []
    shots("chat")

    # An upstream failure mid-stream is shown with its message, never swallowed.
    el(browser, "#chat-input").send_keys("[sandbox:chunks=5,error_after=2] and then?")
    el(browser, "#chat-send").click()
    error = wait_for(browser, visible(".turn.assistant:last-child .error"), "the stream error")
    assert error.text.strip()
    assert "request id" in error.text.lower()


def _submit(browser: Any, kind: str, fill: Callable[[], None]) -> str:
    from selenium.webdriver.support.ui import Select

    Select(el(browser, "#create-kind")).select_by_value(kind)
    fill()
    el(browser, f"#form-{kind} button[type=submit]").click()
    created = wait_for(browser, visible(f"#form-{kind} .created-task"), f"the {kind} task id")
    return created.text


def test_image_and_music_tasks_finish_render_and_play(signed_in, account, shots):
    from selenium.webdriver.support.ui import Select

    browser = signed_in
    base = browser.current_url.split("#")[0]
    browser.get(base + "#create")
    wait_for(browser, visible("#form-t2i"), "the create page")

    def image() -> None:
        el(browser, "#t2i-prompt").send_keys("a lighthouse at dusk")
        Select(el(browser, "#t2i-aspect_ratio")).select_by_visible_text("1:1")

    def music() -> None:
        Select(el(browser, "#t2m-model")).select_by_visible_text("minimax-music-2.6")
        el(browser, "#t2m-prompt").send_keys("[sandbox:seconds=3] calm lo-fi piano")
        el(browser, "#t2m-lyrics").send_keys("[Verse]\nrain on the window")

    image_id = _submit(browser, "t2i", image)
    music_id = _submit(browser, "t2m", music)
    assert account.task(image_id)["capability"] == "images.generations"

    el(browser, "a[data-nav=tasks]").click()
    for task_id in (image_id, music_id):
        wait_for(browser, visible(f'li[data-task-id="{task_id}"][data-status="succeeded"]'),
                 f"task {task_id} to succeed in the list")

    img = wait_for(browser, visible(f'li[data-task-id="{image_id}"] img'), "the image")
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth", img), "the image to load")
    assert browser.execute_script("return arguments[0].naturalWidth", img) > 0

    audio = el(browser, f'li[data-task-id="{music_id}"] audio')
    state = browser.execute_async_script("""
        const [audio, done] = arguments;
        audio.play().then(() => done({ok: true, duration: audio.duration, paused: audio.paused}),
                          (e) => done({ok: false, error: String(e)}));
    """, audio)
    assert state["ok"], state
    assert state["duration"] > 0 and not state["paused"]
    assert el(browser, f'li[data-task-id="{music_id}"] a[download]').get_attribute("href")
    # Billing lines come from the task envelope.
    summary = el(browser, f'li[data-task-id="{image_id}"] details.billing summary')
    assert "credits charged" in summary.text
    shots("tasks")

    # A refresh (as every poll does) keeps the playing element: cards are rebuilt only when
    # what they show changes.
    fetched = "return performance.getEntriesByType('resource')" \
              ".filter(e => e.name.includes('/v1/tasks?')).length"
    before = browser.execute_script(fetched)
    el(browser, "#tasks-refresh").click()
    wait_for(browser, lambda d: d.execute_script(fetched) > before, "another task list read")
    assert browser.execute_script("return arguments[0].isConnected && !arguments[0].paused",
                                  audio)


def test_image_and_music_from_uploaded_inputs(signed_in, account, tmp_path, shots):
    from selenium.webdriver.support.ui import Select

    from beatra.sandbox.media import image_bytes, mp3_bytes

    browser = signed_in
    picked = account.post("/v1/uploads", files={"file": ("in.png", image_bytes(64, 64, "png"),
                                                         "image/png")}).json()["artifact_id"]
    reference = tmp_path / "reference.mp3"
    reference.write_bytes(mp3_bytes(8.0))  # MiniMax covers take 6-360 s
    browser.get(browser.current_url.split("#")[0] + "#create")
    wait_for(browser, visible("#form-t2i"), "the create page")

    def from_picker() -> None:  # image-to-image from an artifact already uploaded
        wait_for(browser, lambda d: d.find_elements(
            "css selector", f'#i2i-artifact option[value="{picked}"]'), "the uploads picker")
        Select(el(browser, "#i2i-artifact")).select_by_value(picked)
        el(browser, "#i2i-prompt").send_keys("the same, in watercolour")

    def from_file() -> None:  # reference audio uploaded by the form itself
        el(browser, "#r2m-file").send_keys(str(reference))
        el(browser, "#r2m-prompt").send_keys("[sandbox:seconds=3] a jazz cover")

    image_id = _submit(browser, "i2i", from_picker)
    music_id = _submit(browser, "r2m", from_file)
    assert account.task(music_id)["capability"] == "music.reference_audio_to_music"
    el(browser, "a[data-nav=tasks]").click()
    for task_id in (image_id, music_id):
        wait_for(browser, visible(f'li[data-task-id="{task_id}"][data-status="succeeded"]'),
                 f"task {task_id} to succeed")
    img = el(browser, f'li[data-task-id="{image_id}"] img')
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img), "the image")
    audio = el(browser, f'li[data-task-id="{music_id}"] audio')
    wait_for(browser, lambda d: d.execute_script(
        "return arguments[0].readyState >= 1 && arguments[0].duration > 0", audio),
        "the track's metadata")


def test_live_progress_cancel_and_filters(signed_in, account, shots):
    from selenium.webdriver.support.ui import Select

    browser = signed_in
    base = browser.current_url.split("#")[0]
    browser.get(base + "#create")

    def slow_suno() -> None:
        Select(el(browser, "#t2m-model")).select_by_visible_text("suno-5.5")
        el(browser, "#t2m-prompt").send_keys("[sandbox:suno_step=30] a slow sea shanty")

    task_id = _submit(browser, "t2m", slow_suno)
    el(browser, "a[data-nav=tasks]").click()
    card = f'li[data-task-id="{task_id}"]'
    wait_for(browser, visible(f"{card} progress"), "the live progress bar")
    el(browser, f"{card} button.danger").click()
    wait_for(browser, visible(f'{card}[data-status="canceled"]'), "the task to be canceled")
    assert account.task(task_id)["status"] == "canceled"
    assert "Refunded" in browser.execute_script(
        "return arguments[0].textContent", el(browser, f"{card} details.billing"))

    # Filters go to the API: only canceled music tasks are listed.
    Select(el(browser, "#tasks-status")).select_by_visible_text("canceled")
    el(browser, "#tasks-filter button[type=submit]").click()
    wait_for(browser, lambda d: d.execute_script(
        "return [...document.querySelectorAll('#task-list li')]"
        ".every(li => li.dataset.status === 'canceled') && "
        "document.querySelectorAll('#task-list li').length"), "the filtered list")
    assert browser.find_elements("css selector", card)
    shots("canceled")


def test_webhook_state_and_redeliver(browser, stack, shots):
    receiver = Receiver([])
    try:
        hooked = stack.new_account("100", name="Webhooks")
        stack.cli("webhooks", "set", "--account", hooked.account_id, "--url", receiver.url)
        task_id = hooked.submit("/v1/images/generations",
                                {"model": "gpt-image-2", "prompt": "a kite"})["task_id"]
        hooked.wait(task_id, until=lambda t: (t.get("callback") or {}).get("status")
                    == "delivered")
        assert len(receiver.requests) == 1

        sign_in(browser, stack, hooked.key)
        el(browser, "a[data-nav=tasks]").click()
        card = f'li[data-task-id="{task_id}"]'
        status = wait_for(browser, visible(f"{card} .callback-status"), "the webhook state")
        assert status.text == "delivered"
        el(browser, f"{card} .callback button").click()
        wait_until(lambda: len(receiver.requests) >= 2, timeout=TIMEOUT,
                   what="the redelivered webhook")
        assert browser.find_elements("css selector", f"{card} .task-msg .error") == []
        first, again = receiver.requests[0][0], receiver.requests[1][0]
        assert first["webhook-id"] == again["webhook-id"]  # the same event, sent again
        shots("webhook")
    finally:
        receiver.close()


def test_api_validation_error_shows_beside_its_field(signed_in, tmp_path, shots):
    from selenium.webdriver.support.ui import Select

    browser = signed_in
    browser.get(browser.current_url.split("#")[0] + "#create")
    Select(el(browser, "#create-kind")).select_by_value("t2m")
    # Checked in the browser first: lyrics with instrumental.
    el(browser, "#t2m-prompt").send_keys("ambient")
    el(browser, "#t2m-lyrics").send_keys("la la")
    el(browser, "#t2m-instrumental").click()
    el(browser, "#form-t2m button[type=submit]").click()
    wait_for(browser, lambda d: el(d, "#t2m-lyrics-err").text, "the local lyrics error")
    assert el(browser, "#t2m-lyrics").get_attribute("aria-invalid") == "true"

    # Refused by the API: a text file as reference audio. The 422's param names the field.
    note = tmp_path / "not-audio.txt"
    note.write_text("this is not audio\n")
    Select(el(browser, "#create-kind")).select_by_value("r2m")
    el(browser, "#r2m-file").send_keys(str(note))
    el(browser, "#r2m-prompt").send_keys("a cover")
    el(browser, "#form-r2m button[type=submit]").click()
    error = wait_for(browser, visible("#form-r2m .form-error .error"), "the API's 422")
    assert "invalid_request" in error.text and "HTTP 422" in error.text
    assert el(browser, "#form-r2m .form-error .request-id").text.startswith("req_")
    assert el(browser, "#r2m-reference_audio-err").text
    shots("validation")


def test_upload_with_progress_then_listed(signed_in, stack, account, tmp_path, shots):
    browser = signed_in
    browser.get(browser.current_url.split("#")[0] + "#uploads")
    wait_for(browser, visible("#page-uploads"), "the uploads page")
    data = tmp_path / "song.mp3"
    from beatra.sandbox.media import mp3_bytes

    data.write_bytes(mp3_bytes(2.0))
    el(browser, "#upload-file").send_keys(str(data))
    uploaded = wait_for(browser, visible("#upload-status .uploaded-id"), "the upload").text
    assert el(browser, "#upload-progress").get_attribute("value") == "100"
    wait_for(browser, visible(f'#uploads-table tr[data-artifact-id="{uploaded}"]'),
             "the upload in the list")
    listed = [i["artifact_id"] for i in account.get("/v1/uploads").json()["data"]]
    assert uploaded in listed
    shots("uploads")

    # Back on the overview, the day's spending (chat + image + music) is in the chart.
    el(browser, "a[data-nav=overview]").click()
    total = wait_for(browser, lambda d: "credits" in el(d, "#ov-usage-total").text
                     and el(d, "#ov-usage-total").text, "the usage total")
    assert total != "Total over 30 days: 0 credits"
    assert browser.execute_script(
        "return Math.max(...[...document.querySelectorAll('#ov-chart rect.bar')]"
        ".map(r => r.getBBox().height))") > 0
    assert el(browser, "#ov-spent").text == account.get("/v1/account").json()["key"]["spent"]
    shots("overview-with-usage")
    # The assets the page loaded carry long-lived cache headers.
    src = el(browser, "script[src]").get_attribute("src")
    assert requests.get(src, timeout=30).headers["Cache-Control"].endswith("immutable")
    assert os.path.basename(src).startswith("console.js?v=")


def test_overview_says_so_when_account_and_usage_routes_are_missing(browser, stack, account,
                                                                  shots):
    sign_in(browser, stack, account.key)
    wait_for(browser, lambda d: el(d, "#ov-balance").text not in ("…", ""), "the balance")
    # A server without those two routes: send their reads to a path beatra really answers 404.
    browser.execute_script("""
        const real = window.fetch;
        window.fetch = (url, init) => real(/^\\/v1\\/(account|usage)/.test(url)
            ? `/v1/not-built${url}` : url, init);
    """)
    el(browser, "#ov-refresh").click()
    notes = wait_for(browser, lambda d: len(d.find_elements(
        "css selector", "#page-overview .notice")) == 2 and d.find_elements(
        "css selector", "#page-overview .notice"), "the not-available notices")
    assert all("not available on this server" in n.text for n in notes)
    assert el(browser, "#ov-balance").text == "—"
    assert browser.find_elements("css selector", "#page-overview .error") == []
    el(browser, "a[data-nav=tasks]").click()  # the rest of the console still works
    wait_for(browser, visible("#task-list li, #tasks-empty"), "the task list")


def test_every_page_runs_without_csp_violations_or_script_errors(browser, stack, account,
                                                                 shots):
    browser.get_log("browser")  # start from an empty log
    sign_in(browser, stack, account.key)
    for page in ("overview", "tasks", "create", "chat", "uploads"):
        el(browser, f"a[data-nav={page}]").click()
        wait_for(browser, visible(f"#page-{page}"), f"the {page} page")
        assert el(browser, f"a[data-nav={page}]").get_attribute("aria-current") == "page"
    # The uploads list is drawn: the script has run every page without throwing.
    wait_for(browser, visible("#page-uploads #uploads-table tbody tr"), "the uploads list")
    problems = [entry["message"] for entry in browser.get_log("browser")
                if "Content Security Policy" in entry["message"]
                or (entry["level"] == "SEVERE" and "console.js" in entry["message"])]
    assert problems == []

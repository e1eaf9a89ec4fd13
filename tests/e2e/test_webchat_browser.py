"""The web chat page in a real headless Chromium, talking to a real `rasa run` over socket.io.

Debian's ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``) are driven with
selenium; nothing is downloaded at run time. The test holds the conversation a customer would —
an order lookup, a button click, a knowledge answer with its sources, Chinese — and checks what
the page shows (DOM text); a screenshot is saved under ``KEFU_TEST_ARTIFACTS`` (default:
the test's temporary folder).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.browser]

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


@pytest.fixture(scope="module")
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    webdriver = pytest.importorskip("selenium.webdriver")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--lang=zh-CN"):
        options.add_argument(flag)
    options.add_argument("--window-size=720,1000")
    driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(driver, condition, timeout=60):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)


def _bot_texts(driver) -> list[str]:
    return [li.text for li in driver.find_elements("css selector", "#kefu-messages li.bot")]


def _say(driver, text: str, expect: str, timeout: float = 60) -> list[str]:
    before = len(_bot_texts(driver))
    box = driver.find_element("id", "kefu-input")
    box.send_keys(text)
    driver.find_element("id", "kefu-send").click()
    _wait(
        driver,
        lambda d: any(expect in t for t in _bot_texts(d)[before:]),
        timeout,
    )
    return _bot_texts(driver)[before:]


def test_a_customer_conversation_in_the_browser(servers, browser, tmp_path):
    driver = browser
    driver.get(f"{servers.rasa_url}/webhooks/socketio/chat")
    _wait(driver, lambda d: d.find_element("id", "kefu-status").text == "online")

    _say(driver, "where is my order?", "order number")
    _say(driver, "KF100234", "phone number or e-mail")
    status = _say(driver, "13800138000", "SF1402938475")
    assert any("on its way" in t for t in status)

    # a knowledge answer: the citation is its own, styled "sources" line
    _say(driver, "how long do refunds take?", "3 working days")
    sources = driver.find_elements("css selector", "#kefu-messages li.sources")
    assert sources and "refunds.md" in sources[-1].text

    # buttons are rendered and clickable; the click sends the payload and shows the title
    _say(driver, "blorp zxqv wuzzle fnord", "human agent")
    buttons = driver.find_elements("css selector", "#kefu-messages li.bot .buttons button")
    assert buttons, "the offer of a human has buttons"
    title = buttons[0].text
    before = len(_bot_texts(driver))
    buttons[0].click()
    _wait(driver, lambda d: any("ticket T-" in t for t in _bot_texts(d)[before:]))
    users = [li.text for li in driver.find_elements("css selector", "#kefu-messages li.user")]
    assert users[-1] == title and not buttons[0].is_enabled()

    # Chinese in, Chinese out
    zh = _say(driver, "退款多久到账？", "来源")
    assert any("工作日" in t or "退款" in t for t in zh)

    # a reconnect resumes the same conversation (the signed session id is kept)
    session = driver.execute_script("return localStorage.getItem('kefu.session')")
    driver.execute_script("window.kefuChat.reconnect()")
    _wait(driver, lambda d: d.find_element("id", "kefu-status").text == "online")
    assert driver.execute_script("return localStorage.getItem('kefu.session')") == session

    artifacts = Path(os.environ.get("KEFU_TEST_ARTIFACTS") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "webchat.png"
    driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000
    page = driver.find_element("id", "kefu-messages").text
    assert "KF100234" in page and "来源" in page


def test_the_typing_indicator_shows_during_a_turn(servers, browser):
    driver = browser
    driver.get(f"{servers.rasa_url}/webhooks/socketio/chat")
    _wait(driver, lambda d: d.find_element("id", "kefu-status").text == "online")
    driver.execute_script(
        "window.__typing = false;"
        "new MutationObserver(function () {"
        "  if (!document.getElementById('kefu-typing').hidden) { window.__typing = true; }"
        "}).observe(document.getElementById('kefu-typing'), {attributes: true});"
    )
    _say(driver, "hello", "Demo Shop")
    assert driver.execute_script("return window.__typing") is True
    assert driver.find_element("id", "kefu-typing").get_attribute("hidden") is not None


def test_a_too_long_message_gets_a_clear_error_on_the_page(servers, browser):
    driver = browser
    driver.get(f"{servers.rasa_url}/webhooks/socketio/chat")
    _wait(driver, lambda d: d.find_element("id", "kefu-status").text == "online")
    driver.execute_script(
        "document.getElementById('kefu-input').removeAttribute('maxlength');"
        "document.getElementById('kefu-input').value = 'x'.repeat(5000);"
    )
    driver.find_element("id", "kefu-send").click()
    _wait(driver, lambda d: d.find_elements("css selector", "#kefu-messages li.error"))
    error = driver.find_elements("css selector", "#kefu-messages li.error")[-1].text
    assert "limit is 4000" in error

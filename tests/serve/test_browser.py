"""A real browser on the running demo: headless Chromium (Debian's `chromium` + `chromium-driver`).

It loads the page, attaches a photo, sends a question, waits for the streamed answer and saves a
screenshot to the test's folder. For the README's picture:

    DEMO_SCREENSHOT=docs/images/demo.png [DEMO_SCREENSHOT_MODEL=playground/checkpoints/quickstart-finetune] \
        python -m pytest tests/serve/test_browser.py

copies it there, and with DEMO_SCREENSHOT_MODEL the page serves that model instead of the tiny one.
DEMO_SCREENSHOT_IMAGE and DEMO_SCREENSHOT_QUESTION replace the example photo and its question.
"""

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from .conftest import SLIDER_DEFAULTS, running_demo
from .test_gradio_demo import final, new_client, send

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
WINDOW = (1280, 1000)

pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver packages (apt-get install chromium chromium-driver)",
)


@pytest.fixture
def browser(tmp_path):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={tmp_path / 'chromium-profile'}", "--window-size={},{}".format(*WINDOW)):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(request, tmp_path):
    model = os.environ.get("DEMO_SCREENSHOT_MODEL")
    if not model:
        yield request.getfixturevalue("demo_server")
        return
    with running_demo(Path(model), tmp_path) as demo:
        yield demo


def test_chat_in_a_browser(browser, served, example_photos, tmp_path):
    photo, question = example_photos[0], "What animal is this?"
    if os.environ.get("DEMO_SCREENSHOT_IMAGE"):  # e.g. a held-out scene for the quick start's model
        photo = Path(os.environ["DEMO_SCREENSHOT_IMAGE"]).resolve()  # the browser needs an absolute path
        question = os.environ.get("DEMO_SCREENSHOT_QUESTION", question)
    # The server's sliders start at greedy decoding and 24 new tokens: the browser must get this answer.
    expected = final(send(new_client(served.url), question, photo, SLIDER_DEFAULTS))[-1][1]

    browser.get(served.url)
    wait = WebDriverWait(browser, 60)
    textarea = wait.until(lambda page: page.find_element(By.CSS_SELECTOR, "#message textarea"))
    browser.find_element(By.CSS_SELECTOR, "#message input[type=file]").send_keys(str(photo))
    wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#message img"))  # the upload's thumbnail
    textarea.send_keys(question)
    textarea.send_keys(Keys.ENTER)

    def finished_answer(page):
        answers = page.find_elements(By.CSS_SELECTOR, "#chatbot [data-testid=bot]")
        done = answers and answers[-1].text.strip() and page.find_element(By.CSS_SELECTOR, "#message textarea").is_enabled()
        return answers[-1].text.strip() if done else None

    answer = wait.until(finished_answer)
    assert answer == expected
    user_messages = [element.text for element in browser.find_elements(By.CSS_SELECTOR, "#chatbot [data-testid=user]")]
    assert question in user_messages
    shown_image = browser.find_element(By.CSS_SELECTOR, "#chatbot [data-testid=user] img")
    assert photo.name in shown_image.get_attribute("src")
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", shown_image) == Image.open(photo).width

    screenshot = tmp_path / "demo.png"
    assert browser.save_screenshot(str(screenshot))
    width, height = Image.open(screenshot).size
    assert width == WINDOW[0] and height > WINDOW[1] // 2
    if os.environ.get("DEMO_SCREENSHOT"):
        shutil.copyfile(screenshot, os.environ["DEMO_SCREENSHOT"])

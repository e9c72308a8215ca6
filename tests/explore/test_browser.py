"""The explorer in a real browser: headless Chromium (Debian's ``chromium`` and
``chromium-driver``) driven by Selenium. Draw a stroke, see a prediction, click
a conv2 cell and check the products shown sum to the value shown, switch to the
backward view, and look at the page at a phone's width. A failing test saves a
screenshot of the page (its path is printed).

Outside CI these tests skip when Selenium or Chromium is missing, saying how to
install them (``apt-get install chromium chromium-driver`` and
``pip install selenium``); under CI (``CI`` set) a missing browser is a failure:
``.ci/run`` installs it.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

INSTALL = "apt-get install chromium chromium-driver && pip install selenium"


def _need(condition, what):
    if condition:
        return
    message = f"{what} is missing: {INSTALL}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        webdriver = None
    _need(webdriver is not None, "Selenium")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    _need(chromium and driver_path, "Chromium or its driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900",
                 "--disable-dev-shm-usage"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, explorer_url, request):
    """The page, loaded and ready; a screenshot is saved if the test fails."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.set_window_size(1200, 900)
    browser.get(explorer_url + "/")
    ready = "return document.body.dataset.ready"
    WebDriverWait(browser, 30).until(lambda d: d.execute_script(ready))
    yield browser
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        folder = Path(os.environ.get("NPCNN_SCREENSHOTS", "explore-screenshots"))
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{request.node.name}.png"
        browser.save_screenshot(str(path))
        print(f"screenshot of the failing page: {path.resolve()}")


def wait(driver, condition, seconds=30):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds).until(condition)


def settled(driver):
    """Wait until the page has no request in flight (the last drawing is shown)."""
    wait(driver, lambda d: d.execute_script("return state.pending === 0"))


def draw_stroke(driver):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    pad = driver.find_element(By.ID, "pad")
    actions = ActionChains(driver).move_to_element_with_offset(pad, 0, -90).click_and_hold()
    for _ in range(9):
        actions.move_by_offset(0, 20)
    actions.release().perform()
    settled(driver)


def test_drawing_a_stroke_gives_the_models_prediction(page, explorer_url):
    from .conftest import request

    draw_stroke(page)
    ink = page.execute_script("return state.image.flat().reduce((a, b) => a + b, 0)")
    assert ink > 5  # the stroke reached the 28x28 grid
    image = page.execute_script("return state.image")
    _, expected = request(explorer_url, "/api/predict", {"image": image})
    want = str(expected["prediction"])  # the page asks again when the stroke ends
    shown = "return document.getElementById('prediction').dataset.prediction"
    wait(page, lambda d: d.execute_script(shown) == want)
    assert len(page.find_elements("css selector", "#bars .bar")) == 10
    assert len(page.find_elements("css selector", 'canvas[data-layer="0"]')) == 32  # conv1's maps


def test_a_conv2_cell_shows_products_that_sum_to_the_value_shown(page):
    draw_stroke(page)
    cell = page.find_element("css selector", 'canvas[data-layer="2"][data-channel="5"]')
    cell.click()  # the middle of a 14x14 map: row 7, col 7
    settled(page)
    shown = wait(page, lambda d: d.find_elements("id", "explain-sum"))[0]
    data = {k: float(shown.get_attribute(f"data-{k}")) for k in ("sum", "bias", "z", "value")}
    products = page.execute_script(
        "return JSON.parse(document.getElementById('explain').dataset.allProducts)"
    )
    assert len(products) == 5 * 5 * 32
    assert sum(products) == pytest.approx(data["sum"], rel=1e-5, abs=1e-6)
    assert data["sum"] + data["bias"] == pytest.approx(data["z"])
    assert data["value"] == pytest.approx(max(data["z"], 0.0))  # conv2's ReLU
    assert "npcnn/ops/conv2d.py" in page.find_element("id", "explain").text


def test_the_backward_view_shows_the_gradients(page):
    page.find_element("id", "tab-backward").click()
    loss = wait(page, lambda d: d.find_element("id", "loss").get_attribute("data-loss"))
    assert float(loss) > 0
    assert page.find_element("id", "saliency").get_attribute("width") == "28"
    assert len(page.find_elements("css selector", "#kernel-grads canvas")) == 32
    assert page.find_element("id", "forward").get_attribute("hidden") is not None


def test_the_keyboard_reaches_the_explanation(page):
    from selenium.webdriver.common.keys import Keys

    row = page.find_element("id", "explain-row")
    row.clear()
    row.send_keys("3", Keys.ENTER)  # the form's submit, from the keyboard
    shown = wait(page, lambda d: d.find_elements("id", "explain-sum"))[0]
    assert "conv1" in page.find_element("id", "explain").text and shown.get_attribute("data-value")


def test_the_page_fits_a_phones_width(page):
    page.set_window_size(375, 800)
    overflow = page.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 1, f"the page scrolls sideways by {overflow} px at 375 px"
    pad = page.find_element("id", "pad")
    assert pad.is_displayed() and pad.size["width"] <= 375

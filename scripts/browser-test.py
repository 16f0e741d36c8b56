"""Drives the ea-weights web UI in headless Chromium (scripts/browser-test.sh starts the server)."""
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

url, out = sys.argv[1], sys.argv[2]
options = webdriver.ChromeOptions()
options.binary_location = "/usr/bin/chromium"
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1050",
             "--autoplay-policy=no-user-gesture-required"]:
    options.add_argument(flag)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 120, poll_frequency=0.1)


def step(message):
    print(f"browser-test: {message}", flush=True)


def generate(prompt, seed):
    before = len(driver.find_elements(By.CSS_SELECTOR, "#history li"))
    prompt_box = driver.find_element(By.ID, "prompt")
    prompt_box.clear()
    prompt_box.send_keys(prompt)
    for field, value in [("steps", "6"), ("frames", "8"), ("seed", str(seed))]:
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    Select(driver.find_element(By.ID, "sampler")).select_by_visible_text("Euler")
    driver.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, ".job[data-state]"))
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#history li")) == before + 1)
    error = driver.find_element(By.ID, "formError").text
    assert not error, error


try:
    start = time.time()
    driver.get(url)
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#transformer option"))
    step(f"page loaded; transformer {driver.find_element(By.ID, 'transformer').get_attribute('value')}")
    # A bad number is refused by the server with the field named, shown in the form.
    steps = driver.find_element(By.ID, "steps")
    driver.find_element(By.ID, "prompt").send_keys("x")
    driver.execute_script("arguments[0].removeAttribute('max'); arguments[0].value = '500';", steps)
    driver.find_element(By.ID, "generate").click()
    wait.until(lambda d: d.find_element(By.ID, "formError").text.startswith("steps:"))
    step(f"bad input shown: {driver.find_element(By.ID, 'formError').text}")

    generate("A snowy forest landscape with a dirt road", 43)
    # The video element plays the new run.
    wait.until(lambda d: d.execute_script(
        "const v = document.getElementById('video'); return v.readyState >= 2 && v.currentTime > 0 && !v.paused && v.videoWidth > 0;"))
    width, height = driver.execute_script("const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight];")
    step(f"video plays: {width}x{height}")
    generate("A snowy forest landscape with a dirt road", 44)
    wait.until(lambda d: d.execute_script("const v = document.getElementById('video'); return v.currentTime > 0 && !v.paused;"))
    time.sleep(0.5)
    driver.set_window_size(1400, 1250)
    driver.execute_script("window.scrollTo(0, 0);")
    time.sleep(0.3)
    driver.save_screenshot(f"{out}/generate.png")
    driver.set_window_size(1400, 1050)

    # "Use these settings" refills the form from the older run.
    driver.find_elements(By.CSS_SELECTOR, "#history li")[1].find_element(By.CSS_SELECTOR, "button.use").click()
    assert driver.find_element(By.ID, "seed").get_attribute("value") == "43"
    step("use these settings: seed 43 back in the form")

    boxes = driver.find_elements(By.CSS_SELECTOR, "#history input[type=checkbox]")
    boxes[0].click()
    boxes[1].click()
    driver.find_element(By.ID, "compareSelected").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#compareTable tbody tr")) == 8)
    wait.until(lambda d: d.execute_script(
        "return [...document.querySelectorAll('#compareTable img')].every(i => i.complete && i.naturalWidth > 0);"))
    step(f"compare: {driver.find_element(By.ID, 'compareSummary').text}")
    driver.save_screenshot(f"{out}/compare.png")

    driver.find_element(By.CSS_SELECTOR, ".tab[data-view=models]").click()
    wait.until(lambda d: "kind" in d.find_element(By.ID, "inspection").text)
    driver.save_screenshot(f"{out}/models.png")
    step(f"models view shown; done in {time.time() - start:.1f} s")
finally:
    driver.quit()

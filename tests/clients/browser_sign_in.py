"""Signs in to the dashboard in headless Chromium, driven through ChromeDriver (Debian's
chromium and chromium-driver; selenium from PyPI), and reports what the page shows.

usage: browser_sign_in.py URL SCREENSHOT
  Opens URL (the dashboard, e.g. with ?sign_in=ISSUER), follows the sign-in through the
  identity provider and back, waits until the page says it shows Workspaces or that the
  sign-in failed, saves a screenshot, and prints one JSON object: who is signed in, the
  status line, the page's DOM, and the browser console's errors.
"""

import json
import os
import sys

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.support.ui import WebDriverWait


def main():
    url, screenshot = sys.argv[1], sys.argv[2]
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("SIMTALLY_TEST_CHROMIUM", "/usr/bin/chromium")
    for flag in ["--headless", "--no-sandbox", "--disable-gpu", "--window-size=1200,1000"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("SIMTALLY_TEST_CHROMEDRIVER", "/usr/bin/chromedriver"))
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.set_page_load_timeout(30)
        driver.get(url)
        status = lambda d: d.find_element("id", "status").text
        # The page is replaced while the sign-in redirects: an element read during that is
        # stale or not there yet, and is read again.
        WebDriverWait(
            driver, 30, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException)
        ).until(
            lambda d: status(d).startswith(("Showing", "Sign-in failed", "That token", "You have"))
        )
        driver.save_screenshot(screenshot)
        errors = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] == "SEVERE"]
        print(json.dumps({
            "who": driver.find_element("id", "who").text,
            "status": status(driver),
            "url": driver.current_url,
            "dom": driver.page_source,
            "console_errors": errors,
        }))
    finally:
        driver.quit()


if __name__ == "__main__":
    sys.exit(main())

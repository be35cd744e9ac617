"""The desk in a real browser: Debian's Chromium driven by WebDriver.

The story: a coordinator publishes a directory with two focal points in Lima;
a survivor sends two reports with a photo through a real amparo-relay (the
`amparo` CLI, her own encrypted profile); the focal point starts amparo-desk,
unlocks it with her PIN, syncs, filters, opens the case, sees the photo and
what she said for statistics, replies, sets a status, writes an internal note,
classifies the case (GBVIMS), refers the other case to the second office,
reads the month's statistics (tables and server-drawn SVG charts), syncs, and
locks. The survivor's next sync shows the reply and
both statuses. On every screen, axe-core (from npm) must find no serious or
critical accessibility violation; a screenshot of each screen is saved.

Run by desk/browser.sh, which installs what it needs and says where the
programs are (AMPARO_BIN, AMPARO_RELAY_BIN, AMPARO_DESK_BIN, AXE_JS,
SCREENSHOTS).
"""

import json
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.select import Select
from selenium.webdriver.support.ui import WebDriverWait

AMPARO = os.environ["AMPARO_BIN"]
RELAY = os.environ["AMPARO_RELAY_BIN"]
DESK = os.environ["AMPARO_DESK_BIN"]
AXE_JS = open(os.environ["AXE_JS"], encoding="utf-8").read()
SHOTS = os.environ["SCREENSHOTS"]
CANARY = "CANARY-DESK-5531"
FOCAL_PIN = "lima-2468"


def step(text):
    print(f"-- {text}", flush=True)


def png(width, height):
    """A real PNG: a violet-to-orange gradient, so the screenshot shows it."""
    rows = b""
    for y in range(height):
        rows += b"\x00"
        for x in range(width):
            rows += bytes([91 + x * 120 // width, 42 + y * 60 // height, 134 - x * 100 // width])
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


class Person:
    def __init__(self, root, name, pin=None):
        self.dir = os.path.join(root, name)
        self.pin = pin or f"{name}-1357"

    def run(self, *args):
        env = dict(os.environ, AMPARO_PIN=self.pin)
        for k in ("AMPARO_PROFILE", "AMPARO_RELAY", "AMPARO_PROXY"):
            env.pop(k, None)
        out = subprocess.run(
            [AMPARO, "--profile", self.dir, "--lang", "en", "--json", *args],
            env=env, capture_output=True, text=True, timeout=120,
        )
        if out.returncode != 0:
            raise AssertionError(f"amparo {args} failed:\n{out.stdout}\n{out.stderr}")
        return json.loads(out.stdout.strip().splitlines()[-1]) if out.stdout.strip() else {}

    def create(self, role, *extra):
        return self.run("profile", "create", "--role", role, "--dangerously-fast-kdf", *extra)


def focal_toml(id_, name, keys):
    return f"""
[[focal_point]]
id = "{id_}"
name = {{ es = "{name}", pt = "{name}", en = "{name}" }}
organization = "{name}"
regions = ["PE-LIM"]
categories = ["legal_advice", "health_care", "protection_shelter"]
languages = ["es", "pt"]
sealing_key = "{keys['sealing_key']}"
signing_key = "{keys['signing_key']}"
valid_from = "2026-01-01"
valid_until = "2036-01-01"
"""


SERVICE_ROUTE = '''
[[service_route]]
id = "lima-pep"
region = "PE-LIM"
service = "sti_hiv_pep"
name = { es = "Hospital Arzobispo Loayza", pt = "Hospital Arzobispo Loayza", en = "Arzobispo Loayza Hospital" }
description = { es = "PEP en emergencias, 24 horas, sin denuncia previa.", pt = "PEP na emergência, 24 horas, sem denúncia prévia.", en = "PEP at the emergency room, 24 hours, no police report needed." }
contact = "Av. Alfonso Ugarte 848"
'''


def start_relay(data_dir, coordinator_key, listen="127.0.0.1:0", extra=(), log=None):
    relay = subprocess.Popen(
        [RELAY, "--listen", listen, "--data-dir", data_dir,
         f"--coordinator-key={coordinator_key}", "--admission-max-effort=0", *extra],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, AMPARO_LOG="info"),
    )
    found = {}
    ready = threading.Event()

    def read():
        for line in relay.stderr:
            if log is not None:
                log.append(line)
            m = re.search(r"listening on (http://[^,\s]+).*receipt key (\S+)", line)
            if m and not ready.is_set():
                found["url"], found["key"] = m.group(1), m.group(2)
                ready.set()
    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(60):
        relay.kill()
        raise AssertionError("the relay did not start")
    return relay, found["url"], found["key"]


def start_desk(profile):
    desk = subprocess.Popen(
        [DESK, "--profile", profile, "--no-browser", "--sync-every", "0", "--lock-after", "30"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, RUST_LOG="info"),
    )
    line = desk.stdout.readline()
    m = re.search(r"(http://127\.0\.0\.1:\d+/open\?k=\S+)", line)
    if not m:
        desk.kill()
        raise AssertionError(f"the desk did not say its address: {line!r} {desk.stderr.read()}")
    return desk, m.group(1)


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--window-size=1280,1000", "--lang=es", "--disable-gpu"):
        options.add_argument(arg)
    service = Service(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    return webdriver.Chrome(service=service, options=options)


def axe(driver, screen, strict=False):
    """axe-core on the page as it is: no serious or critical violation
    (with `strict`, no violation at all)."""
    driver.execute_script(AXE_JS)
    result = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "axe.run(document)"
        ".then(r => done({passes: r.passes.length, violations: r.violations.map(v => ({id: v.id,"
        " impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}))}))"
        ".catch(e => done({passes: 0, violations: [{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]}));"
    )
    violations = result["violations"]
    bad = [v for v in violations if strict or v["impact"] in ("serious", "critical")]
    minor = [v["id"] for v in violations if v not in bad]
    print(f"   axe on {screen}: {result['passes']} rules passed, {len(bad)} serious/critical, minor: {minor or 'none'}")
    assert result["passes"] > 0, f"axe did not run on {screen}"
    assert not bad, f"accessibility violations on {screen}: {json.dumps(bad, indent=1)}"


def click_and_load(driver, element):
    """Clicks something that loads a new page, and waits until it has."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    WebDriverWait(driver, 30).until(EC.staleness_of(old))
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")


def shot(driver, name):
    path = os.path.join(SHOTS, f"{name}.png")
    # The whole page, not only the window.
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1280, max(800, min(height + 40, 4000)))
    driver.save_screenshot(path)
    driver.set_window_size(1280, 1000)
    print(f"   screenshot {path}")


def main():
    shutil.rmtree(SHOTS, ignore_errors=True)
    os.makedirs(SHOTS)
    root = tempfile.mkdtemp(prefix="amparo-desk-story-")
    relay = desk = driver = None
    relay_log = []
    try:
        step("a coordinator, a relay, two focal points in Lima, a survivor")
        coordinator = Person(root, "coordinator")
        key = coordinator.create("coordinator")["coordinator_key"]
        relay, url, receipt = start_relay(os.path.join(root, "relay"), key, log=relay_log)
        common = ["--relay", url, f"--coordinator-key={key}"]
        office = Person(root, "defensoria", FOCAL_PIN)
        a = office.create("focal-point", *common, "--focal-point-id", "pe-lima-defensoria")
        office.run("profile", "set", "--language", "es")
        refuge = Person(root, "refugio")
        b = refuge.create("focal-point", *common, "--focal-point-id", "pe-lima-refugio")
        survivor = Person(root, "survivor")
        survivor.create("survivor", *common)
        coordinator.run("profile", "set", "--relay", url)
        source = os.path.join(root, "directory.toml")
        with open(source, "w", encoding="utf-8") as f:
            f.write(focal_toml("pe-lima-defensoria", "Defensoría del Pueblo Lima", a))
            f.write(focal_toml("pe-lima-refugio", "Casa Refugio Lima", b))
            f.write(SERVICE_ROUTE)
            f.write(f'\n[[relay]]\nname = "test"\nreceipt_key = "{receipt}"\n')
        signed = os.path.join(root, "directory.amparo")
        coordinator.run("coordinator", "sign", source, "--out", signed)
        coordinator.run("coordinator", "publish", signed)
        survivor.run("directory", "refresh")

        step("she sends two reports with a photo through the relay")
        photo = os.path.join(root, "foto.png")
        with open(photo, "wb") as f:
            f.write(png(320, 200))
        first = survivor.run(
            "report", "write", "--text",
            f"Dos policías me detuvieron sin motivo y me quitaron el dinero. {CANARY}",
            "--violence", "arbitrary-detention", "--violence", "extortion",
            "--aggressor", "police-or-security", "--need", "legal-advice",
            "--region", "PE-LIM", "--country", "PE", "--attach", photo,
            "--setting", "urban", "--age", "age-18-plus", "--reported-elsewhere", "no", "--count-me",
        )["report"]
        # The second: she answers nothing for statistics (so it is not counted).
        second = survivor.run(
            "report", "write", "--text", "Un cliente me amenazó con un cuchillo y tengo miedo de volver.",
            "--violence", "threats", "--aggressor", "client", "--need", "protection-shelter",
            "--region", "PE-LIM", "--country", "PE", "--attach", photo,
        )["report"]
        sent = survivor.run("report", "sync")
        assert sent["reports_delivered"] == 2, f"both reports reach the relay: {sent}"

        step("the focal point opens her desk")
        desk, launch = start_desk(office.dir)
        driver = browser()
        wait = WebDriverWait(driver, 30, ignored_exceptions=(StaleElementReferenceException, NoSuchElementException))
        driver.get(launch)
        wait.until(EC.presence_of_element_located((By.ID, "pin")))
        assert driver.current_url.endswith("/unlock"), driver.current_url
        assert "k=" not in driver.current_url, "the launch secret leaves the address bar"
        axe(driver, "unlock")
        shot(driver, "01-unlock")
        driver.find_element(By.ID, "pin").send_keys("0000")
        click_and_load(driver, driver.find_element(By.ID, "unlock-button"))
        wait.until(EC.presence_of_element_located((By.ID, "unlock-error")))
        driver.find_element(By.ID, "pin").send_keys(FOCAL_PIN)
        click_and_load(driver, driver.find_element(By.ID, "unlock-button"))
        wait.until(EC.presence_of_element_located((By.ID, "case-count")))

        step("she syncs: live progress, two new cases")
        click_and_load(driver, driver.find_element(By.ID, "nav-sync"))
        wait.until(EC.presence_of_element_located((By.ID, "sync-button")))
        driver.find_element(By.ID, "sync-button").click()
        wait.until(lambda d: d.find_element(By.ID, "sync-button").is_enabled()
                   and "2" in d.find_element(By.ID, "sync-line").text)
        line = driver.find_element(By.ID, "sync-line").text
        print(f"   {line}")
        axe(driver, "sync")
        shot(driver, "03-sync")

        step("the cases: two, both new; a filter and a search")
        click_and_load(driver, driver.find_element(By.ID, "nav-cases"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")
        assert len(rows) == 2, len(rows)
        assert len(driver.find_elements(By.CSS_SELECTOR, "tr.unread")) == 2
        axe(driver, "cases")
        shot(driver, "02-cases")
        Select(driver.find_element(By.ID, "violence")).select_by_value("threats")
        click_and_load(driver, driver.find_element(By.ID, "filter-button"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")
        assert [r.get_attribute("data-case") for r in rows] == [second], "filter by kind of violence"
        driver.get(driver.current_url.split("/cases")[0] + "/cases")
        driver.find_element(By.ID, "q").send_keys("POLICIAS")
        click_and_load(driver, driver.find_element(By.ID, "filter-button"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")
        assert [r.get_attribute("data-case") for r in rows] == [first], "search without accents"

        step("the case: the photo, a reply, a status, a note")
        click_and_load(driver, rows[0].find_element(By.TAG_NAME, "a"))
        wait.until(EC.presence_of_element_located((By.ID, "her-words")))
        assert CANARY in driver.find_element(By.ID, "her-words").text
        img = driver.find_element(By.CSS_SELECTOR, "img.photo")
        wait.until(lambda d: d.execute_script("return arguments[0].complete && arguments[0].naturalWidth", img) == 320)
        driver.find_element(By.ID, "reply-text").send_keys("Hola. Somos la Defensoría. Podemos acompañarla a denunciar.")
        click_and_load(driver, driver.find_element(By.ID, "reply-button"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash")))
        Select(driver.find_element(By.ID, "status-select")).select_by_value("in_progress")
        driver.find_element(By.ID, "status-message").send_keys("Su caso está en curso.")
        click_and_load(driver, driver.find_element(By.ID, "status-button"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "case-status"), "curso"))
        driver.find_element(By.ID, "note-text").send_keys("Llamar a la abogada de turno el lunes.")
        click_and_load(driver, driver.find_element(By.ID, "note-button"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "notes"), "abogada"))
        click_and_load(driver, driver.find_element(By.ID, "star-button"))
        assert driver.find_element(By.ID, "star-button").get_attribute("aria-pressed") == "true"
        report = driver.find_element(By.CSS_SELECTOR, "dl.report").text
        assert "Ciudad o pueblo" in report and "18 años o más" in report, report

        step("she classifies it (GBVIMS): internal, counted only because she agreed")
        assert driver.find_element(By.ID, "classification").text == "Sin clasificar"
        Select(driver.find_element(By.ID, "gbv-type")).select_by_value("physical_assault")
        driver.find_element(By.ID, "context-sexual_exploitation").click()
        click_and_load(driver, driver.find_element(By.ID, "classify-button"))
        wait.until(EC.text_to_be_present_in_element((By.ID, "classification"), "Agresión física"))
        assert "explotación" in driver.find_element(By.ID, "classification").text
        assert driver.find_element(By.ID, "context-sexual_exploitation").is_selected()
        axe(driver, "case")
        shot(driver, "04-case")
        # On a tablet's width, the same page (the form stacks, the table scrolls).
        driver.set_window_size(820, 1180)
        driver.save_screenshot(os.path.join(SHOTS, "04-case-tablet.png"))
        driver.set_window_size(1280, 1000)

        step("the other case, referred to the refuge")
        driver.get(driver.current_url.split("/case/")[0] + f"/case/{second}")
        Select(driver.find_element(By.ID, "refer-to")).select_by_value("pe-lima-refugio")
        driver.find_element(By.ID, "refer-note").send_keys("Necesita refugio esta semana.")
        click_and_load(driver, driver.find_element(By.ID, "refer-button"))
        wait.until(EC.presence_of_element_located((By.CSS_SELECTOR, ".flash")))

        step("unreadable envelopes and the directory")
        click_and_load(driver, driver.find_element(By.ID, "nav-rejected"))
        wait.until(EC.presence_of_element_located((By.ID, "none-unreadable")))
        axe(driver, "rejected")
        shot(driver, "05-unreadable")
        click_and_load(driver, driver.find_element(By.ID, "nav-directory"))
        wait.until(EC.presence_of_element_located((By.ID, "focal-points")))
        axe(driver, "directory")
        shot(driver, "06-directory")

        step("the month's statistics: one counted, one without her consent")
        click_and_load(driver, driver.find_element(By.ID, "nav-stats"))
        wait.until(EC.presence_of_element_located((By.ID, "stats-counted")))
        assert driver.find_element(By.ID, "stats-cases").text == "2"
        assert driver.find_element(By.ID, "stats-counted").text == "1"
        assert driver.find_element(By.ID, "excluded-no_consent").text == "1"
        assert driver.find_element(By.ID, "excluded-unclassified").text == "0"
        charts = driver.find_elements(By.CSS_SELECTOR, "svg.chart[role=img]")
        assert len(charts) == 4, len(charts)
        title = driver.find_element(By.ID, "chart-gbv_type-title").get_attribute("textContent")
        assert "Agresión física: 1" in title, title
        bar = driver.find_element(By.CSS_SELECTOR, "#chart-gbv_type rect.bar[width='560']")
        assert bar.value_of_css_property("fill") != "rgb(0, 0, 0)", "desk.css colours the bars"
        assert driver.find_elements(By.ID, "below-threshold"), "one case: below the threshold"
        # This month is not over: it cannot be shared yet.
        assert driver.find_elements(By.ID, "not-over") and not driver.find_elements(By.ID, "publish-form")
        axe(driver, "stats", strict=True)
        shot(driver, "desk-stats")

        step("in Portuguese and English too")
        for lang, word in (("pt", "Casos"), ("en", "Cases")):
            Select(driver.find_element(By.ID, "lang-select")).select_by_value(lang)
            wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == lang)
            assert word in driver.find_element(By.ID, "nav-cases").text
        click_and_load(driver, driver.find_element(By.ID, "nav-cases"))
        shot(driver, "07-cases-en")

        step("what waits goes out")
        click_and_load(driver, driver.find_element(By.ID, "nav-sync"))
        waiting = int(driver.find_element(By.ID, "waiting").text)
        assert waiting >= 3, waiting
        driver.find_element(By.ID, "sync-button").click()
        wait.until(lambda d: d.find_element(By.ID, "sync-button").is_enabled()
                   and d.find_element(By.ID, "waiting").text == "0")

        step("a check-in timer's alert arrives: urgent, first in the list")
        timer = survivor.run(
            "timer", "set", "--to", "pe-lima-defensoria", "--every", "1", "--grace", "0",
            "--text", "Voy al hotel Las Palmeras con un cliente nuevo. Placa ABC-123.",
        )
        assert survivor.run("report", "sync")["timers"]["held"] == 1
        # She does not check in: the relay's hour passes the release (its
        # clock run ahead instead of waiting), then it comes back on the same
        # address with the right time.
        addr = url.removeprefix("http://")
        relay.kill()
        relay.wait()
        log = []
        skew = timer["release_hour"] - int(time.time()) // 3600
        relay, _, _ = start_relay(os.path.join(root, "relay"), key, addr,
                                  [f"--test-clock-skew-hours={skew}"], log)
        deadline = time.time() + 30
        while not any("released the alerts" in line for line in log):
            assert time.time() < deadline, "".join(log)
            time.sleep(0.05)
        relay.kill()
        relay.wait()
        relay, _, _ = start_relay(os.path.join(root, "relay"), key, addr)
        click_and_load(driver, driver.find_element(By.ID, "nav-sync"))
        driver.find_element(By.ID, "sync-button").click()
        wait.until(lambda d: d.find_element(By.ID, "sync-button").is_enabled()
                   and "1" in d.find_element(By.ID, "sync-line").text)
        Select(driver.find_element(By.ID, "lang-select")).select_by_value("es")
        wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("lang") == "es")
        click_and_load(driver, driver.find_element(By.ID, "nav-cases"))
        rows = driver.find_elements(By.CSS_SELECTOR, "#cases-table tbody tr")
        assert len(rows) == 3, len(rows)
        assert "alert" in rows[0].get_attribute("class"), "the alert first"
        assert rows[0].find_element(By.CSS_SELECTOR, ".badge.urgent").text == "ALERTA"
        axe(driver, "cases with an alert", strict=True)
        shot(driver, "09-alert-first")
        click_and_load(driver, rows[0].find_element(By.CSS_SELECTOR, "a"))
        wait.until(EC.presence_of_element_located((By.ID, "timer-alert")))
        box = driver.find_element(By.ID, "timer-alert").text
        assert "dejó de hacer check-in" in box and "Temporizador puesto" in box, box
        assert "ABC-123" in driver.find_element(By.ID, "her-words").text
        axe(driver, "alert case", strict=True)
        shot(driver, "10-alert-case")

        step("she locks the desk")
        click_and_load(driver, driver.find_element(By.ID, "lock"))
        wait.until(EC.presence_of_element_located((By.ID, "pin")))
        driver.get(driver.current_url.split("/unlock")[0] + f"/case/{first}")
        assert driver.current_url.endswith("/unlock"), "a locked desk shows nothing"
        shot(driver, "08-locked")

        step("the survivor's next sync shows the reply and both statuses")
        survivor.run("report", "sync")
        messages = survivor.run("report", "replies")["messages"]
        texts = [m["text"] for m in messages if m["text"]]
        statuses = {(m["report"], m["status"]) for m in messages if m["status"]}
        assert any("Defensoría" in (t or "") for t in texts), messages
        assert (first, "in_progress") in statuses, statuses
        assert (second, "referred") in statuses, statuses
        assert not any("abogada" in (t or "") for t in texts), "internal notes are never sent"

        step("the desk logged nothing of the cases")
        desk.terminate()
        _, err = desk.communicate(timeout=10)
        for secret in (CANARY, "abogada", "Defensoría. Podemos", FOCAL_PIN):
            assert secret not in err, f"{secret} in the desk's log"
        desk = None
        print("the desk story passed")
    except Exception:
        if driver:
            driver.save_screenshot(os.path.join(SHOTS, "failure.png"))
            print(f"the page at the failure ({driver.current_url}):\n{driver.page_source[:4000]}", file=sys.stderr)
        if desk:
            desk.terminate()
            print(f"the desk's log:\n{desk.communicate(timeout=10)[1][-4000:]}", file=sys.stderr)
        print("the relay's log:\n" + "".join(relay_log[-60:]), file=sys.stderr)
        raise
    finally:
        if driver:
            driver.quit()
        for p in (desk, relay):
            if p and p.poll() is None:
                p.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

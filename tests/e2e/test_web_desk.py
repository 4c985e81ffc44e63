"""The web desk in a real browser (Debian's Chromium, driven by Selenium) against real processes.

A customer writes on Telegram (the telegram-test-api emulator, a real bot process) and asks for
a person; the desk (`concierge web`, its own process, on the same stores) shows the ticket. One
agent signs in, claims it and replies; the customer receives the reply on Telegram; a second
agent's browser sees the claim without reloading. A wrong password and a form without its CSRF
token are refused; the dashboard shows the figures of a seeded store. Screenshots of the desk
and the dashboard go to reports/screenshots/.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from core.activity.record import TurnActivity
from core.handover.tickets.sqlite import SqliteTicketStore
from core.handover.tickets.store import Ticket
from core.infra.settings import Settings
from core.shopdb.activity import SqlActivity
from core.shopdb.database import ShopDatabase
from core.shopdb.importer import import_store
from core.turn import replies
from tests.bots.peers import TelegramEmulator, free_port, wait_until
from tests.conftest import REPO_ROOT, demo_store_files
from tests.e2e.handover_world import TOKEN, Bot, telegram_says, telegram_texts
from tests.processes import clean_env

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
SCREENSHOTS = REPO_ROOT / "reports" / "screenshots"
PASSWORDS = {"dana": "dana-desk-password", "eve": "eve-desk-password"}
SLOW = 60.0
CHAT = 8101


def browser() -> webdriver.Chrome:
    """Headless Chromium from Debian's packages (nothing is downloaded)."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if shutil.which(path) is None:
            pytest.fail(f"{path} is missing: apt-get install chromium chromium-driver "
                        "(.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1280,900", "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    return driver


@dataclass
class Desk:
    url: str
    emulator: TelegramEmulator
    tickets: SqliteTicketStore
    store: ShopDatabase
    logs: Path

    def page(self, driver: webdriver.Chrome, path: str) -> None:
        driver.get(self.url + path)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/healthz", timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _seed_dashboard(store: ShopDatabase, tickets: SqliteTicketStore) -> None:
    """Figures the dashboard must show: today's turns, and three rated tickets."""
    now = time.time()

    def turn(intent: str, shown: int = 0, pressed: int | None = None) -> TurnActivity:
        return TurnActivity(at=now, platform="telegram", intent=intent, sentiment="neutral",
                            decision="recommend", first_today=True, shown=shown,
                            pressed=pressed, feedback="details" if pressed else None)

    SqlActivity(store).write([turn("recommend", shown=3), turn("recommend", shown=3),
                              turn("order_status"), turn("other", pressed=1)])
    for n, rating in enumerate((5, 5, 4)):
        tickets.create(Ticket(
            id=f"T-seeded-{n}", conversation_id=f"seeded:{n}", customer=f"seeded-{n}",
            platform="telegram", reason="complaint repeated", status="resolved", rating=rating,
            created_at=now - 3600, updated_at=now - 3000, closed_at=now - 3000,
        ))


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    store_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    store = ShopDatabase(store_url)
    import_store(store, demo_store_files(Settings().demo_dir))
    state = tmp_path / "concierge.sqlite3"
    tickets = SqliteTicketStore(state)
    _seed_dashboard(store, tickets)
    emulator = TelegramEmulator(TOKEN).start()
    port = free_port()
    env = clean_env(
        store_url=store_url,
        state_backend="sqlite",
        sqlite_path=state,
        delivery_wait_s="0.3",
        escalation_sla_s="3600",
        telegram_token=TOKEN,
        telegram_base_url=emulator.url,
        telegram_poll_interval_s="0.05",
        web_port=str(port),
    )
    for login, password in PASSWORDS.items():
        added = subprocess.run(
            [sys.executable, "-m", "bots.cli", "web", "add-agent", login, "--name",
             login.title(), "--password-stdin"],
            input=password + "\n", env=env, cwd=tmp_path, capture_output=True, text=True,
            timeout=120,
        )
        assert added.returncode == 0, added.stderr
    bot = Bot("telegram", env, tmp_path).start()
    web_log = open(tmp_path / "web.log", "wb")  # noqa: SIM115
    web = subprocess.Popen([sys.executable, "-m", "bots.cli", "web"], cwd=tmp_path, env=env,
                           stdout=web_log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _answers(url), SLOW, 0.2)
        yield Desk(url, emulator, tickets, store, tmp_path)
    finally:
        web.terminate()
        web.wait(20)
        web_log.close()
        bot.stop()
        emulator.stop()
        store.close()


def sign_in(desk: Desk, driver: webdriver.Chrome, login: str, password: str) -> None:
    desk.page(driver, "/login")
    driver.find_element(By.ID, "login").send_keys(login)
    driver.find_element(By.ID, "password").send_keys(password, Keys.ENTER)


def text_of(driver: webdriver.Chrome, element_id: str) -> str:
    try:
        return str(driver.find_element(By.ID, element_id).text)
    except WebDriverException:
        return ""


def live_connected(driver: webdriver.Chrome) -> bool:
    """The page listens for changes and has fetched its live part once since it connected
    (so a button found now is not replaced by that first fetch)."""
    return bool(driver.execute_script(
        "var live = document.getElementById('live');"
        "return !!live && live.dataset.connected === 'yes' && !!live.dataset.refreshed;"
    ))


def shot(driver: webdriver.Chrome, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    assert path.stat().st_size > 10_000, path  # a rendered page, not an empty canvas
    return path


def table(driver: webdriver.Chrome, table_id: str) -> list[list[str]]:
    """A figure's numbers as the page shows them (textContent: the table may be folded)."""
    rows: Any = driver.execute_script(
        "return Array.from(document.querySelectorAll('#' + arguments[0] + ' tbody tr'))"
        ".map(r => Array.from(r.cells).map(c => c.textContent.trim()));",
        table_id,
    )
    return [list(row) for row in rows]


@pytest.mark.slow
def test_agents_take_a_telegram_customer_from_the_web_desk(desk: Desk) -> None:
    desk.emulator.send("hi", chat_id=CHAT, user_id=CHAT)
    telegram_says(desk.emulator, CHAT, "Hi")
    desk.emulator.send("I want a person", chat_id=CHAT, user_id=CHAT)
    telegram_says(desk.emulator, CHAT, replies.ESCALATED)
    [ticket] = desk.tickets.list()
    dana, eve = browser(), browser()
    try:
        # A wrong password is refused; the right one lets Dana in.
        sign_in(desk, dana, "dana", "not her password")
        assert "Wrong login or password." in text_of(dana, "login-error")
        assert dana.current_url.endswith("/login")
        sign_in(desk, dana, "dana", PASSWORDS["dana"])
        wait_until(lambda: ticket.id in dana.page_source, SLOW)
        wait_until(lambda: live_connected(dana), SLOW)
        assert "not verified" in dana.find_element(By.ID, f"row-{ticket.id}").text
        shot(dana, "desk-inbox")

        # Eve signs in with the keyboard alone and opens the ticket from the inbox.
        desk.page(eve, "/login")
        eve.switch_to.active_element.send_keys("eve", Keys.TAB, PASSWORDS["eve"], Keys.ENTER)
        wait_until(lambda: ticket.id in eve.page_source, SLOW)
        wait_until(lambda: live_connected(eve), SLOW)
        for _ in range(30):
            focused = eve.switch_to.active_element
            if focused.get_attribute("href") and ticket.id in focused.get_attribute("href"):
                break
            focused.send_keys(Keys.TAB)
        # A new ticket refreshes the inbox under her: the keyboard focus stays on her link.
        before = eve.execute_script("return document.getElementById('live').dataset.refreshed")
        desk.tickets.create(Ticket(id="T-another", conversation_id="another", customer="x",
                                   platform="telegram", reason="complaint repeated",
                                   created_at=time.time(), updated_at=time.time()))
        wait_until(lambda: eve.execute_script(
            "return document.getElementById('live').dataset.refreshed") != before, 15.0)
        wait_until(lambda: "T-another" in eve.page_source, 15.0)
        assert ticket.id in (eve.switch_to.active_element.get_attribute("href") or "")
        eve.switch_to.active_element.send_keys(Keys.ENTER)
        wait_until(lambda: eve.current_url.endswith(f"/tickets/{ticket.id}"), SLOW)
        wait_until(lambda: live_connected(eve), SLOW)
        assert "open" in text_of(eve, "ticket-status")

        # Dana claims it: the customer hears, and Eve's page shows it without a reload.
        desk.page(dana, f"/tickets/{ticket.id}")
        wait_until(lambda: live_connected(dana), SLOW)
        dana.find_element(By.ID, "claim").click()
        wait_until(lambda: "Claimed" in dana.page_source, SLOW)
        telegram_says(desk.emulator, CHAT, "has picked up your request")
        wait_until(lambda: "Dana" in text_of(eve, "ticket-agent"), 15.0)
        assert eve.current_url.endswith(f"/tickets/{ticket.id}")  # no navigation happened

        # Dana replies; the customer receives it on Telegram.
        before = len(telegram_texts(desk.emulator, CHAT))
        dana.find_element(By.ID, "reply-text").send_keys("Your parcel ships today.")
        clicked = time.monotonic()
        dana.find_element(By.ID, "send-reply").click()
        telegram_says(desk.emulator, CHAT, "Your parcel ships today.")
        delivered_ms = (time.monotonic() - clicked) * 1000
        assert len(telegram_texts(desk.emulator, CHAT)) == before + 1
        print(f"agent click -> Telegram delivery: {delivered_ms:.0f} ms")
        wait_until(lambda: "Your parcel ships today." in text_of(eve, "transcript"), 15.0)
        shot(dana, "desk-ticket")

        # A form without the session's CSRF token is refused, even from a signed-in browser.
        status = dana.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch('/tickets/' + arguments[0] + '/resolve', {method: 'POST',"
            " headers: {'Content-Type': 'application/x-www-form-urlencoded'}, body: 'x=1'})"
            ".then(r => done(r.status));",
            ticket.id,
        )
        assert status == 403
        assert desk.tickets.get(ticket.id).status == "claimed"  # type: ignore[union-attr]

        # The dashboard shows the seeded figures, and each as CSV.
        desk.page(dana, "/dashboard")
        csat = dict((row[0], row[1]) for row in table(dana, "csat-table"))
        assert (csat["5"], csat["4"], csat["1"]) == ("2", "1", "0")
        intents = dict((row[0], row[1]) for row in table(dana, "intents-table"))
        assert intents["order_status"] == "1" and int(intents["recommend"]) >= 2
        clicks = table(dana, "click-through-table")
        assert clicks[0][:3] == ["1", "2", "1"] and clicks[2][:3] == ["3", "2", "0"]
        assert len(dana.find_elements(By.CSS_SELECTOR, "svg.chart")) >= 6
        assert dana.find_element(By.LINK_TEXT, "csat.csv").get_attribute("href").endswith(
            "/dashboard/csat.csv")
        shot(dana, "dashboard")
    finally:
        dana.quit()
        eve.quit()

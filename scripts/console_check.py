"""The web console in a real headless browser (Debian's chromium, Selenium).

Run by scripts/console.sh against a live local testnet. Checks, as a user would:
every page loads with no browser console error; a trade made through the CLI shows
on the markets page within seconds; figures on the page equal the API's answers;
an exchange's token sees its own data and the operators-only panels say so.
Screenshots go to $ARTIFACTS. Exits non-zero (an AssertionError) on any failure.
"""

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

URL = os.environ["CONSOLE_URL"]
GENESIS = os.environ["CONSOLE_GENESIS"]
KEYS = os.environ["CONSOLE_KEYS"]
BIN = os.environ["SEISAN_BIN"]
ARTIFACTS = os.environ["ARTIFACTS"]
TOKENS = {
    "clearing-house": os.environ["TOKEN_CLEARING_HOUSE"],
    "exchange-a": os.environ["TOKEN_EXCHANGE_A"],
}
if os.environ.get("TOKEN_OBSERVER"):
    TOKENS["observer"] = os.environ["TOKEN_OBSERVER"]
# Whether the history scripts/console.sh makes must show: a netted cycle, a top-up, a
# pending proposal.
REQUIRE_HISTORY = os.environ.get("CONSOLE_HISTORY") == "1"
# Whether the nodes watch a public chain (reserves, deposits).
CUSTODY = os.environ.get("CONSOLE_CUSTODY") == "1"
PAGES = ["consortium", "markets", "settlement", "custody", "bank"]
# How long a trade may take from the CLI's answer to the page (seconds).
TRADE_VISIBLE_WITHIN_S = 5.0
WAIT_S = 15.0

with open(GENESIS) as file:
    CHAIN = json.load(file)
SCALE = {asset["symbol"]: asset["scale"] for asset in CHAIN["assets"]}
SYMBOL = [asset["symbol"] for asset in CHAIN["assets"]]


def log(message):
    print(f"console: {message}", flush=True)


def api(path, member):
    request = urllib.request.Request(URL + path, headers={"Authorization": TOKENS[member]})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def shown(minor, symbol):
    """A minor-unit amount as a decimal of the asset's scale, as a person writes it."""
    scale = SCALE[symbol]
    number = int(minor)
    sign = "-" if number < 0 else ""
    whole, fraction = divmod(abs(number), 10**scale)
    text = str(whole)
    if scale and fraction:
        text += "." + str(fraction).rjust(scale, "0").rstrip("0")
    return sign + text


def cli(*args):
    command = [BIN, *args, "--node", URL, "--genesis", GENESIS, "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{' '.join(command)} failed: {done.stderr}"
    return json.loads(done.stdout)


def wait(driver, what, predicate, timeout=WAIT_S):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate(driver)
            if value:
                return value
        except Exception:  # the page is still building the element
            value = None
        if time.monotonic() > deadline:
            shot(driver, "timeout")
            raise AssertionError(f"waited {timeout}s for {what}")
        time.sleep(0.1)


def shot(driver, name):
    """The page as far as it goes (the body, not the empty window below it)."""
    path = os.path.join(ARTIFACTS, f"{name}.png")
    try:
        driver.find_element(By.TAG_NAME, "body").screenshot(path)
    except Exception:  # noqa: BLE001 - an empty body: the whole window then
        driver.save_screenshot(path)
    log(f"screenshot {path}")


def console_errors(driver):
    return [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def assert_no_console_errors(driver, where):
    errors = console_errors(driver)
    assert not errors, f"browser console errors on {where}: {errors}"


def browser():
    options = Options()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,2200"]:
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(options=options, service=service)


# The page redraws its tables as blocks arrive (every half second or so): it is read in
# one script call (one consistent snapshot), and a figure is compared with the API's
# until both agree or AGREE_S passes (they read the chain at slightly different heights).
AGREE_S = 5.0


def text(driver, css):
    """The text of the first element matching `css`, or None."""
    return driver.execute_script(
        "const e = document.querySelector(arguments[0]); return e ? e.textContent.trim() : null", css)


def texts(driver, css):
    return driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent.trim())", css)


def cells(driver, css, classes):
    """Per row matching `css`: its cells of the given classes, as a tuple."""
    return [tuple(row) for row in driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(r => arguments[1].map("
        "c => { const e = r.querySelector('.' + c); return e ? e.textContent.trim() : null; }))",
        css, classes)]


def agree(what, on_page, from_api):
    deadline = time.monotonic() + AGREE_S
    while True:
        page, expected = on_page(), from_api()
        if page == expected:
            return page
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: the page shows {page!r}, the API says {expected!r}")
        time.sleep(0.25)


def open_page(driver, page):
    """Shows `page` and waits for a refresh that started after it was shown; a refresh
    that failed fails here, naming the page's error and the browser console's."""
    driver.execute_script("location.hash = arguments[0]", page)
    before = time.time() * 1000
    outcome = wait(driver, f"the {page} page", lambda d: d.execute_script(
        "const footer = document.getElementById('footer').textContent;"
        "if (footer.startsWith('Could not update')) return footer;"
        "return document.body.dataset.page === arguments[0] && footer.startsWith('Updated ') && "
        "Date.parse(footer.split(' ')[1]) >= arguments[1] && 'ok'",
        page, before))
    if outcome != "ok":
        shot(driver, f"failed-{page}")
        raise AssertionError(f"the {page} page: {outcome}; browser console: {console_errors(driver)}")


def sign_in(driver, member):
    # The token in the fragment: never sent to the server, and the page drops it.
    driver.get(URL + "/#token=" + urllib.parse.quote(TOKENS[member]))
    wait(driver, f"{member} signed in", lambda d: (text(d, "#member") or "").startswith(member))
    assert "token" not in driver.current_url, f"the token stays in the address: {driver.current_url}"
    assert driver.execute_script("return sessionStorage.getItem('seisan-token')") == TOKENS[member]


def check_consortium(driver, member):
    open_page(driver, "consortium")
    # Finality latency over time: drawn once two blocks have come in. The nodes run the
    # default idle policy (README, Running a node): a quiet chain finalizes a heartbeat
    # block every 10 s, so two blocks can take 20 s.
    wait(driver, "the finality latency chart", lambda d: d.find_elements(By.CSS_SELECTOR, "#latency polyline"),
         timeout=45)
    # The chain moves on between the two reads: the page's height is the API's or a
    # little older, never ahead of it.
    page_height = int(text(driver, "#status-height"))
    api_height = api("/v1/status", member)["height"]
    assert api_height - 10 <= page_height <= api_height, (page_height, api_height)
    agree("epoch / quorum", lambda: text(driver, "#status-epoch"),
          lambda: "{epoch} / {quorum}".format(**api("/v1/status", member)))
    agree("members", lambda: texts(driver, "#members-table tr td:first-child"),
          lambda: [m["name"] for m in api("/v1/members", member)["members"]])
    # Each validator's last signed height and view, from the certificates the page read:
    # at least a quorum of them, none beyond the chain, and each the height's own view.
    status = api("/v1/status", member)
    signed = {name: text(driver, f'#members-table tr[data-member="{name}"] td.signed') for name in status["validators"]}
    seen = {name: tuple(map(int, value.split(" / "))) for name, value in signed.items() if value != "-"}
    assert len(seen) >= status["quorum"], f"fewer than a quorum of validators seen signing: {signed}"
    for name, (height, view) in seen.items():
        assert 0 < height <= status["height"], (name, height, status["height"])
        certificate = api(f"/v1/blocks/{height}", member)["certificate"]
        assert certificate["vote"]["view"] == view, (name, height, view, certificate["vote"])
        ids = {m["id"]: m["name"] for m in api("/v1/members", member)["members"]}
        assert name in {ids[signer] for signer, _ in certificate["signatures"]}, (name, height, certificate)
    agree("pending proposals", lambda: cells(driver, "#proposals-table tr[data-proposal]", ["approvals"]),
          lambda: [(f"{p['counted_approvals']} of {p['quorum']} ({', '.join(p['approvals'])})",)
                   for p in api("/v1/governance", member)["proposals"] if p["status"] == "open"])
    if REQUIRE_HISTORY:
        assert text(driver, "#proposals-table tr[data-proposal]"), "no pending proposal on the consortium page"
    agree("peers", lambda: sorted(texts(driver, "#peers li")), lambda: sorted(api("/v1/status", member)["peers"]))


def check_markets(driver, member):
    open_page(driver, "markets")
    for pair in CHAIN["pairs"]:
        name = f"{pair['base']}/{pair['quote']}"

        def on_page(side):
            return cells(driver, f'.book[data-pair="{name}"] table[data-side="{side}"] tr[data-order-id]', ["price", "quantity"])

        def from_api(side):
            book = api(f"/v1/book/{pair['base']}/{pair['quote']}", member)
            return [(shown(o["limit_price"], pair["quote"]), shown(o["remaining"], pair["base"])) for o in book[side]]

        for side in ["asks", "bids"]:
            agree(f"{name} {side}", lambda: on_page(side), lambda: from_api(side))
    trades = api("/v1/trades?limit=500", member)["trades"]
    assert trades, "no trades to compare"
    for trade in trades[-10:]:
        base, quote = SYMBOL[trade["pair"]["base"]], SYMBOL[trade["pair"]["quote"]]
        row = cells(driver, f'#trades-table tr[data-trade-id="{trade["id"]}"]', ["price", "quantity", "value"])
        expected = [(shown(trade["price"], quote), shown(trade["quantity"], base), shown(trade["value"], quote))]
        assert row == expected, f"trade {trade['id']}: the page shows {row}, the API says {expected}"
    orders = api(f"/v1/members/{member}/orders", member)["orders"]
    agree("open orders", lambda: texts(driver, "#orders-table tr td:first-child"),
          lambda: [str(o["id"]) for o in orders] or ["no open orders"])


def check_custody(driver, member):
    open_page(driver, "custody")
    columns = ["credited", "debited", "held", "locked"]
    agree("supply", lambda: cells(driver, "#supply-table tr[data-asset]", columns),
          lambda: [tuple(shown(a[c], a["symbol"]) for c in columns) for a in api("/v1/supply", member)["assets"]])
    columns = ["inventory", "customers", "locked"]
    agree(f"balances of {member}", lambda: cells(driver, "#balances-table tr[data-asset]", columns),
          lambda: [tuple(shown(b["balance"][c], b["symbol"]) for c in columns)
                   for b in api(f"/v1/members/{member}/balances", member)["balances"]])
    if not CUSTODY:
        # A node that watches no public chain: the page says so instead of an error.
        assert text(driver, "#no-custody"), "the custody page shows reserves from a node without custody"
        return

    def percent(bps):
        return "-" if bps is None else f"{int(bps) / 100:.2f}%"

    def reserves_from_api():
        return [(r["symbol"], shown(r["liabilities"], r["symbol"]), shown(r["hot"], r["symbol"]),
                 shown(r["cold"], r["symbol"]), percent(r["coverage_bps"]), percent(r["hot_share_bps"]),
                 percent(r["hot_cap_bps"])) for r in api("/v1/reserves", member)["assets"]]

    rows = agree("reserves", lambda: [tuple(r) for r in driver.execute_script(
        "return [...document.querySelectorAll('#reserves-table tr[data-asset]')]"
        ".map(r => [...r.children].map(c => c.textContent.trim()))")], reserves_from_api)
    assert rows and rows[0][0] == "ETH" and rows[0][1] != "0", f"no ETH liabilities on the reserves panel: {rows}"
    def credited(deposit):
        fact = deposit["outcome"][0] if deposit["outcome"] else deposit["attestations"][0][0]
        return shown(fact["amount"], SYMBOL[fact["asset"]])

    agree("deposits", lambda: texts(driver, "#deposits-table tr[data-item] td.amount"),
          lambda: [credited(d) for d in api("/v1/deposits", member)["deposits"]])
    agree("withdrawals", lambda: texts(driver, "#withdrawals-table tr[data-item] td.amount"),
          lambda: [shown(w["amount"], SYMBOL[w["asset"]]) for w in api("/v1/withdrawals", member)["withdrawals"]])


def check_settlement(driver, member, operator):
    open_page(driver, "settlement")
    agree("confirmations (quantity, price)", lambda: cells(driver, "#confirmations-table tr[data-item]", ["quantity", "price"]),
          lambda: [(shown(c["submissions"][0]["terms"]["quantity"], SYMBOL[c["submissions"][0]["terms"]["pair"]["base"]]),
                    shown(c["submissions"][0]["terms"]["price"], SYMBOL[c["submissions"][0]["terms"]["pair"]["quote"]]))
                   for c in api("/v1/confirmations", member)["confirmations"]])
    topups = agree("top-ups (needed, shortfall)", lambda: cells(driver, "#topups-table tr[data-item]", ["needed", "shortfall"]),
                   lambda: [(shown(t["needed"], SYMBOL[t["asset"]]), shown(t["shortfall"], SYMBOL[t["asset"]]))
                            for t in api("/v1/topups", member)["top_ups"]])
    if REQUIRE_HISTORY:
        assert topups, "no top-up request on the settlement page"
    if operator:
        def from_api():
            lines = []
            for cycle in sorted(api("/v1/cycles", member)["cycles"], key=lambda c: -c["id"]):
                for entry in cycle["netting"]:
                    symbol = SYMBOL[entry["asset"]]
                    saving = int(entry["gross"]) - int(entry["net"])
                    lines.append((str(cycle["id"]), symbol, shown(entry["gross"], symbol), shown(entry["net"], symbol),
                                  shown(saving, symbol)))
            return lines

        netting = agree("cycles: gross, net and the saving", lambda: [tuple(r) for r in driver.execute_script(
            "return [...document.querySelectorAll('#cycles-table tr[data-cycle]')]"
            ".filter(r => r.querySelector('.gross').textContent !== '-')"
            ".map(r => [r.dataset.cycle, ...['asset', 'gross', 'net', 'saving'].map(c => r.querySelector('.' + c).textContent)])")],
            from_api)
        if REQUIRE_HISTORY:
            assert any(line[4] != "0" for line in netting), f"no cycle with a netting saving on the page: {netting}"
    else:
        notice = text(driver, "#cycles [data-operators-only]") or ""
        assert "for the clearing house and observers" in notice, notice


def check_bank(driver, member, operator):
    open_page(driver, "bank")
    agree("mirror status", lambda: (text(driver, "#mirror-status") or "").split(" mirror transfers")[0],
          lambda: str(api("/v1/status", member)["mirrors"]["pending"]))
    if operator:
        agree("reconciliation verdict", lambda: (text(driver, "#reconciliation-verdict") or "").split(" (")[0],
              lambda: "Reconciled" if api("/v1/reconciliation", member)["clean"] else "Not reconciled")
        for currency in api("/v1/reconciliation", member)["currencies"]:
            agree(f"{currency} ledger fiat per exchange",
                  lambda: driver.execute_script(
                      "return [...document.querySelectorAll(arguments[0] + ' tr[data-member]')]"
                      ".map(r => [r.dataset.member, r.children[1].textContent])", f"#reconciliation-{currency}"),
                  lambda: [[e["member"], shown(e["ledger_fiat"], currency)]
                           for e in api("/v1/reconciliation", member)["currencies"][currency]["exchanges"]])
    else:
        notice = text(driver, "#reconciliation [data-operators-only]") or ""
        assert "for the clearing house and observers" in notice, notice


def trade_through_the_cli(driver):
    """Places a crossing pair of orders with the CLI and times the fill onto the page."""
    open_page(driver, "markets")
    quantity, price = "0.25", "401000"
    cli("order", "--key", f"{KEYS}/exchange-a.key", "sell", "ETH/JPY", quantity, "--price", price)
    submitted = time.monotonic()
    answer = cli("order", "--key", f"{KEYS}/exchange-b.key", "buy", "ETH/JPY", quantity, "--price", price)
    finalized = time.monotonic()
    fills = [e["fill"] for e in answer["receipt"]["events"] if "fill" in e]
    assert fills, f"the crossing buy did not fill: {answer}"
    trade = fills[0]["trade"]
    css = f'#trades-table tr[data-trade-id="{trade}"]'
    wait(driver, f"trade {trade} on the markets page", lambda d: d.find_elements(By.CSS_SELECTOR, css), TRADE_VISIBLE_WITHIN_S)
    took = time.monotonic() - finalized
    # The receipt's fill (at the resting order's price), as the CLI printed it.
    row = cells(driver, css, ["price", "quantity"])
    assert row == [(shown(fills[0]["price"], "JPY"), shown(fills[0]["quantity"], "ETH"))], row
    assert row == [(price, quantity)], f"the order book held an older order at a better price: {row}"
    log(f"trade {trade} made through the CLI was on the page {took:.2f}s after the CLI printed its receipt, "
        f"{time.monotonic() - submitted:.2f}s after the CLI was started")
    shot(driver, "clearing-house-markets-after-trade")
    return trade, took


def every_page(driver, member, operator):
    """Each page in turn: its figures against the API's, a screenshot, no console error."""
    checks = {
        "consortium": lambda: check_consortium(driver, member),
        "markets": lambda: check_markets(driver, member),
        "settlement": lambda: check_settlement(driver, member, operator),
        "custody": lambda: check_custody(driver, member),
        "bank": lambda: check_bank(driver, member, operator),
    }
    for page in PAGES:
        checks[page]()
        shot(driver, f"{member}-{page}")
        assert_no_console_errors(driver, f"{member}'s {page} page")
        scope = "every panel" if operator else "its own data, the operators-only panels say so"
        log(f"{member} {page}: figures equal the API's ({scope}), no console errors")


def main():
    os.makedirs(ARTIFACTS, exist_ok=True)
    started = time.monotonic()

    driver = browser()
    try:
        driver.get(URL + "/")
        wait(driver, "the sign-in box", lambda d: d.find_element(By.ID, "login").is_displayed())
        shot(driver, "sign-in")
        assert_no_console_errors(driver, "the sign-in page")

        sign_in(driver, "clearing-house")
        check_consortium(driver, "clearing-house")
        wait(driver, "the event stream", lambda d: "event stream" in text(d, "#live"))
        trade, took = trade_through_the_cli(driver)
        every_page(driver, "clearing-house", True)
    finally:
        driver.quit()

    # An exchange, then an observer (a regulator: reads everything, runs no validator).
    for member, operator in [("exchange-a", False), ("observer", True)]:
        if member not in TOKENS:
            continue
        driver = browser()
        try:
            sign_in(driver, member)
            every_page(driver, member, operator)
            if member == "observer":
                roles = driver.execute_script(
                    "return Object.fromEntries([...document.querySelectorAll('#members-table tr')].slice(1)"
                    ".map(r => [r.children[0].textContent, r.children[2].textContent]))")
                assert roles.get("observer") == "observer", f"the observer is not listed as one: {roles}"
        finally:
            driver.quit()

    log(f"passed in {time.monotonic() - started:.1f}s (trade {trade} on the page {took:.2f}s after its receipt); screenshots in {ARTIFACTS}")


if __name__ == "__main__":
    try:
        main()
    except Exception as error:  # noqa: BLE001 - any failure fails the stage, named
        print(f"console: FAILED: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)

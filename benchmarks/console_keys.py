"""The console page's key-to-display time: from a key pressed in the page (a button
click, as a person does it) to the firmware's new screen drawn on the page's canvas,
through the websocket, the emulated PIN pad, the firmware under MicroPython
(-X heapsize=64k), its display pipe and the websocket back. The baseline, measured in
the same page in the same run: the websocket's own round trip (ping/pong), without the
board.

Run by the browser test (tests/browser/test_console_page.py), which prints it and keeps
it as an artefact, and by make bench, which writes it to docs/benchmarks.md."""
import statistics
import time

AMOUNT_KEYS = "1250"          # keyed on the purchase's amount screen: each redraws it
PINGS = 20


def _wait_screen(page, text, timeout_ms=15000):
    page.wait_for_function(
        "t => document.querySelector('#display-text').textContent.includes(t)", arg=text,
        timeout=timeout_ms)


def measure(page, card_id: int = 1, rounds: int = 3) -> dict:
    """Key-to-display times in ms on the amount screen of a purchase, `rounds` times
    the keys of AMOUNT_KEYS, then cancelled; the board idle before and after."""
    samples = []
    for _ in range(rounds):
        _wait_screen(page, "Insert card")
        page.select_option("#card", str(card_id))
        page.click("#swipe")
        _wait_screen(page, "2 Purchase")
        page.click('#pinpad button[data-key="2"]')
        _wait_screen(page, "Enter amount")
        for key in AMOUNT_KEYS:
            before = page.evaluate("posConsole.latencies.length")
            page.click(f'#pinpad button[data-key="{key}"]')
            page.wait_for_function("n => posConsole.latencies.length > n", arg=before)
            samples.append(page.evaluate("posConsole.latencies[posConsole.latencies.length-1].ms"))
        page.click('#pinpad button[data-key="X"]')
        _wait_screen(page, "Insert card")
    pongs_before = page.evaluate("posConsole.pongs.length")
    for n in range(PINGS):
        page.evaluate("n => posConsole.ping(n)", n)
        page.wait_for_function("n => posConsole.pongs.length > n", arg=pongs_before + n)
        time.sleep(0.02)
    pongs = page.evaluate("posConsole.pongs").copy()[pongs_before:]
    return {"key_to_display_ms": samples, "median_ms": statistics.median(samples),
            "max_ms": max(samples), "websocket_rtt_median_ms": statistics.median(pongs)}


def report_lines(result: "dict | None", why_not: str = "") -> list[str]:
    lines = ["", "## Console", ""]
    if result is None:
        return lines + [f"Key-to-display time not measured: {why_not}.", ""]
    ratio = result["median_ms"] / result["websocket_rtt_median_ms"]
    return lines + [
        "`posbridge console` in headless Chromium: a PIN pad key clicked in the page to the "
        "firmware's new screen drawn on the page (websocket, emulated PIN pad, firmware "
        "under MicroPython with a 64 KiB heap, display pipe, websocket back, canvas). "
        f"{len(result['key_to_display_ms'])} presses on a purchase's amount screen.",
        "",
        "| what | time (ms) | baseline (ms) | ratio | baseline is |",
        "|---|---:|---:|---:|---|",
        f"| key press to updated display, median | {result['median_ms']:.1f} | "
        f"{result['websocket_rtt_median_ms']:.1f} | {ratio:.1f} | the page's websocket round "
        "trip (ping/pong), same run |",
        f"| key press to updated display, slowest | {result['max_ms']:.1f} | 16.7 | "
        f"{result['max_ms'] / 16.7:.1f} | one frame at 60 Hz |",
        "",
    ]


def bench() -> list[str]:
    """make bench: start the console, measure in Chromium, the markdown lines."""
    from tests.browser.console_process import ConsoleProcess, chromium_path, launch_chromium
    if chromium_path() is None:
        return report_lines(None, "no chromium on this machine (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return report_lines(None, "the playwright package is not installed")
    console = ConsoleProcess()
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            # bypass_csp: Playwright's waits evaluate script text, which the page's own
            # policy (no eval) refuses
            page = browser.new_context(bypass_csp=True).new_page()
            page.goto(console.url)
            result = measure(page)
            browser.close()
    finally:
        console.stop()
    return report_lines(result)

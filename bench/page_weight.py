"""The staff (tablet) page's weight in a real Chromium: first load and one action's htmx fragment, in bytes.

    .venv/bin/python bench/page_weight.py

A fresh SQLite database, the app on a loopback port (threaded werkzeug server), Debian Chromium through
Playwright with an empty cache. Bytes are the uncompressed response bodies (document, CSS, JS, images, fonts).
Targets: first load < 150 KB, fragment < 4 KB. Baseline in the same run: the login page's first load.
"""
from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from common import database, free_port, make_app, seed_stamp_shop  # noqa: E402

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run"]


def main() -> int:
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    with database("sqlite", "bench_page") as url:
        seed = seed_stamp_shop(url, cards=3, pins=0, bcrypt_rounds=4)
        port = free_port()
        app = make_app(url, BCRYPT_ROUNDS=4, PUBLIC_BASE_URL=f"http://127.0.0.1:{port}")
        server = make_server("127.0.0.1", port, app, threaded=True)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        base = f"http://127.0.0.1:{port}"
        out = {}
        try:
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS, headless=True)
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                page = context.new_page()
                log: list[tuple[str, str, int]] = []

                def on_response(response):
                    try:
                        body = response.body()
                    except Exception:  # noqa: BLE001 - redirects have no body
                        body = b""
                    log.append((response.request.method, response.url, len(body)))

                page.on("response", on_response)

                def load(path: str) -> int:
                    log.clear()
                    page.goto(base + path, wait_until="networkidle")
                    return sum(n for _, _, n in log)

                out["login_first_load"] = load("/login")
                out["login_requests"] = len(log)
                page.fill("input[name=email]", "owner-bench@bench.test")
                page.fill("input[name=password]", "bench-password-1")
                with page.expect_navigation():
                    page.click("button[type=submit], input[type=submit]")
                # a new context = empty cache, logged in with the same cookies
                cookies = context.cookies()
                context2 = browser.new_context(viewport={"width": 1280, "height": 900})
                context2.add_cookies(cookies)
                page.close()
                page = context2.new_page()
                page.on("response", on_response)
                out["tablet_first_load"] = load("/tablet")
                out["tablet_requests"] = [(m, u.replace(base, ""), n) for m, u, n in log]
                out["tablet_card_load"] = load(f"/tablet?card={seed['cards'][0]}")
                log.clear()
                button = page.locator("button[name=action][value=stamp]").first
                with page.expect_response(lambda r: r.request.method == "POST") as info:
                    button.click()
                response = info.value
                page.wait_for_load_state("networkidle")
                out["fragment"] = len(response.body())
                out["fragment_is_htmx"] = response.request.headers.get("hx-request") == "true"
                out["fragment_status"] = response.status
                browser.close()
        finally:
            server.shutdown()
            thread.join(timeout=5)
    print("== page weight (uncompressed bytes, empty cache, Chromium)")
    print(f"  login page first load   {out['login_first_load']:8,d} B ({out['login_requests']} requests) [baseline]")
    print(f"  /tablet first load      {out['tablet_first_load']:8,d} B ({len(out['tablet_requests'])} requests)"
          f"  ratio to login page {out['tablet_first_load'] / out['login_first_load']:.2f}"
          f"  target < 150 KB -> {'PASS' if out['tablet_first_load'] < 150 * 1024 else 'MISS'}")
    for method, path, size in out["tablet_requests"]:
        print(f"      {method:4s} {path[:70]:70s} {size:8,d}")
    print(f"  /tablet?card= load      {out['tablet_card_load']:8,d} B")
    print(f"  stamp action fragment   {out['fragment']:8,d} B (HTTP {out['fragment_status']}, htmx "
          f"{out['fragment_is_htmx']})  target < 4 KB -> {'PASS' if out['fragment'] < 4096 else 'MISS'}")
    print(json.dumps({k: v for k, v in out.items() if k != "tablet_requests"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())

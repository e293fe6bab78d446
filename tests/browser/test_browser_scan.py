"""The tablet scans the customer's QR code (the card number's digits) with the camera: Chromium's fake camera plays
a video of a QR code, the vendored jsQR decodes it and the card panel opens."""
import pytest
import segno

from browser_helpers import ui_login
from tests.conftest import CHROMIUM, CHROMIUM_ARGS

pytestmark = pytest.mark.browser


def write_y4m(path, text, size=480, frames=10):
    """A few identical frames (YUV 4:2:0) showing the QR code of ``text``, for --use-file-for-fake-video-capture."""
    matrix = [list(row) for row in segno.make(text, error="m", micro=False).matrix]
    n = len(matrix) + 8  # quiet zone
    scale = size // n
    offset = (size - scale * len(matrix)) // 2
    luma = bytearray([235]) * (size * size)
    for r, row in enumerate(matrix):
        for c, dark in enumerate(row):
            if dark:
                for y in range(offset + r * scale, offset + (r + 1) * scale):
                    start = y * size + offset + c * scale
                    luma[start:start + scale] = bytes([16]) * scale
    chroma = bytes([128]) * ((size // 2) * (size // 2))
    with open(path, "wb") as out:
        out.write(f"YUV4MPEG2 W{size} H{size} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + bytes(luma) + chroma + chroma)


def test_scan_qr_opens_the_card(live_server, browser, factories, tmp_path, screenshot_dir):
    vendor = factories.vendor("Scan shop")
    program = factories.program(vendor, name="Scan card")
    card = factories.card(program, name="Scanned Customer")
    staff = factories.user(vendor, role="staff")
    video = tmp_path / "qr.y4m"
    write_y4m(video, card.card_number)
    args = CHROMIUM_ARGS + ["--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                            f"--use-file-for-fake-video-capture={video}"]
    # A second Chromium from the same Playwright, started with a fake camera.
    camera_browser = browser.browser_type.launch(executable_path=CHROMIUM, args=args, headless=True)
    try:
        context = camera_browser.new_context(viewport={"width": 768, "height": 1024}, locale="en-GB")
        context.grant_permissions(["camera"], origin=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        ui_login(page, live_server.url, staff.email, staff.plain_password)
        scan = page.get_by_role("button", name="Scan QR")
        scan.wait_for()
        scan.click()
        page.locator(f"section.panel[data-card='{card.card_number}']").wait_for()
        assert "Scanned Customer" in page.locator("section.panel").inner_text()
        assert page.locator("[data-scanner]").is_hidden()  # the camera is released
        assert page.locator("#find").input_value() == card.card_number
        page.screenshot(path=str(screenshot_dir / "tablet-scanned.png"))
    finally:
        camera_browser.close()

"""The emulator's PNG of a screen is the firmware's frame buffer, pixel for pixel."""
import pytest

from posbridge.board import screen_png


def test_mono_vlsb_pixels_land_where_the_ssd1306_puts_them():
    fb = bytearray(1024)
    fb[0] |= 0x01              # x=0, y=0
    fb[127] |= 0x80            # x=127, y=7
    fb[7 * 128 + 5] |= 0x80    # x=5, y=63
    img = screen_png.render(bytes(fb), scale=1)
    lit = {(x, y) for x in range(128) for y in range(64) if img.getpixel((x, y)) == screen_png.ON}
    assert lit == {(0, 0), (127, 7), (5, 63)}


def test_scaled_and_saved(tmp_path):
    path = screen_png.save(bytes([0xFF] * 1024), tmp_path / "s" / "full.png", scale=2)
    from PIL import Image
    with Image.open(path) as img:
        assert img.size == (256, 128)
        assert img.getpixel((255, 127)) == screen_png.ON


def test_wrong_size_is_refused():
    with pytest.raises(ValueError, match="1024"):
        screen_png.render(b"\x00" * 10)

"""Real inputs for the zoo models: photos, rendered text and synthesized speech.

- Photos: the sample images scikit-image ships in its wheel (``skimage/data/*.png|jpg``:
  astronaut, coffee, chelsea the cat, horse, rocket, motorcycles, ...), used as is (the
  calibration set only) and as crops and flips, so every model gets more distinct samples
  than photos. People for the detector: scikit-image's astronaut and cameraman and
  matplotlib's Grace Hopper (``mpl-data/sample_data``), four views to a 2x2 mosaic.
- Text: lines of English words and digits rendered with the DejaVu fonts (Debian's
  ``fonts-dejavu-core``) with Pillow: on plain paper, on photo backgrounds, rotated.
- Speech: sentences spoken by ``espeak-ng`` (Debian package) at 16 kHz, with silence
  between them, cut into the 512-sample chunks a streaming VAD reads.

Everything is deterministic (fixed seeds, fixed sentence lists), and calibration and
validation never share a photo crop, a text line or a sentence.
"""

from __future__ import annotations

import io
import subprocess
import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np

FONTS = Path("/usr/share/fonts/truetype/dejavu")
WORDS = [
    "the",
    "quick",
    "brown",
    "fox",
    "jumps",
    "over",
    "lazy",
    "dog",
    "invoice",
    "total",
    "amount",
    "paid",
    "date",
    "due",
    "order",
    "shipping",
    "address",
    "phone",
    "number",
    "receipt",
    "station",
    "platform",
    "gate",
    "ticket",
    "window",
    "open",
    "closed",
    "monday",
    "friday",
    "london",
    "paris",
    "berlin",
    "coffee",
    "tea",
    "sugar",
    "milk",
    "bread",
    "butter",
    "apple",
    "orange",
    "river",
    "bridge",
    "north",
    "south",
    "east",
    "west",
    "model",
    "package",
    "device",
    "runtime",
    "battery",
]
SENTENCES = (
    "The train to the airport leaves from platform four at ten past nine.",
    "Please remember to switch off the lights before you leave the office.",
    "A small model on the phone can answer much faster than a server.",
    "We measured the latency three times and took the median of the runs.",
    "The weather tomorrow will be cloudy with a chance of rain in the evening.",
    "Turn left at the next corner and walk straight on for two hundred metres.",
    "Every variant is checked against the original model before it ships.",
    "The meeting has been moved to Thursday afternoon at half past three.",
    "Coffee and tea are served in the hall after the second talk.",
    "Our quarterly report shows steady growth in all three regions.",
    "The library closes early on Sundays and public holidays.",
    "Speak clearly and slowly so the machine can recognise each word.",
)


def _pil() -> object:
    from PIL import Image

    return Image


def photos() -> list[np.ndarray]:
    """The scikit-image sample photos (colour ones; grey ones made RGB), uint8 HxWx3."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    names = [
        "astronaut.png",
        "chelsea.png",
        "coffee.png",
        "horse.png",
        "rocket.jpg",
        "motorcycle_left.png",
        "motorcycle_right.png",
        "hubble_deep_field.jpg",
        "camera.png",
        "coins.png",
        "moon.png",
        "page.png",
        "text.png",
        "brick.png",
        "grass.png",
        "gravel.png",
        "retina.jpg",
        "ihc.png",
    ]
    image = _pil()
    out = []
    for name in names:
        path = folder / name
        if not path.exists():
            continue
        img = np.asarray(image.open(path).convert("RGB"))  # type: ignore[attr-defined]
        out.append(img)
    return out


def photo_views(count: int, seed: int, base: list[np.ndarray] | None = None) -> list[np.ndarray]:
    """``count`` views of the photos: whole (seed 0 only: calibration and validation never
    share a view), random crops (40-100% of a side), flips."""
    rng = np.random.default_rng(seed)
    base = photos() if base is None else base
    views = []
    for i in range(count):
        img = base[i % len(base)]
        h, w = img.shape[:2]
        if i >= len(base) or seed != 0:
            s = rng.uniform(0.4, 1.0)
            ch, cw = max(16, int(h * s)), max(16, int(w * s))
            y, x = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
            img = img[y : y + ch, x : x + cw]
            if rng.random() < 0.5:
                img = img[:, ::-1]
        views.append(np.ascontiguousarray(img))
    return views


def people() -> list[np.ndarray]:
    """Photos of people shipped in wheels: scikit-image's astronaut and cameraman, and
    matplotlib's Grace Hopper (``mpl-data/sample_data``; the ``report`` extra), uint8 HxWx3."""
    import skimage

    image = _pil()
    paths = [Path(skimage.__file__).parent / "data" / n for n in ("astronaut.png", "camera.png")]
    try:
        import matplotlib

        paths.append(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg")
    except ImportError:
        pass
    return [
        np.asarray(image.open(p).convert("RGB"))  # type: ignore[attr-defined]
        for p in paths
        if p.exists()
    ]


def mosaic(count: int, seed: int, side: int, fill: int = 114) -> list[np.ndarray]:
    """``count`` side x side images, each a 2x2 mosaic (YOLO's training augmentation) of
    people-photo views, so a detector finds several people per image."""
    views = photo_views(count * 4, seed, people())
    half = side // 2
    out = []
    for i in range(count):
        img = np.full((side, side, 3), fill, dtype=np.uint8)
        for k in range(4):
            y, x = (k // 2) * half, (k % 2) * half
            img[y : y + half, x : x + half] = letterbox(views[i * 4 + k], half, fill)
        out.append(img)
    return out


def resize(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 HxWx3 -> (height, width) with bilinear resampling."""
    image = _pil()
    pil = image.fromarray(img)  # type: ignore[attr-defined]
    return np.asarray(pil.resize((size[1], size[0]), image.BILINEAR))  # type: ignore[attr-defined]


def letterbox(img: np.ndarray, side: int, fill: int = 114) -> np.ndarray:
    """Fit into side x side keeping the aspect ratio, padded with grey (YOLO's way)."""
    h, w = img.shape[:2]
    s = side / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    out = np.full((side, side, 3), fill, dtype=np.uint8)
    y, x = (side - nh) // 2, (side - nw) // 2
    out[y : y + nh, x : x + nw] = resize(img, (nh, nw))
    return out


def text_lines(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    lines = []
    for _ in range(count):
        n = int(rng.integers(1, 4))
        words = [WORDS[int(k)] for k in rng.integers(0, len(WORDS), n)]
        if rng.random() < 0.4:
            words.append(str(int(rng.integers(10, 99999))))
        lines.append(" ".join(words))
    return lines


def _font(size: int, index: int) -> object:
    from PIL import ImageFont

    fonts = sorted(FONTS.glob("DejaVu*.ttf"))
    return ImageFont.truetype(str(fonts[index % len(fonts)]), size)


def render_line(
    text: str, height: int, index: int, background: np.ndarray | None = None
) -> np.ndarray:
    """One text line, dark on light, ``height`` px high, width to fit: uint8 HxWx3."""
    from PIL import Image, ImageDraw

    font = _font(int(height * 0.7), index)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    box = probe.textbbox((0, 0), text, font=font)  # type: ignore[arg-type]
    width = box[2] - box[0] + height // 2
    if background is None:
        shade = 235 + index % 20
        canvas = Image.new("RGB", (width, height), (shade, shade, shade - 5))
    else:
        canvas = Image.fromarray(resize(background, (height, width)))
        canvas = Image.blend(canvas, Image.new("RGB", canvas.size, (240, 240, 240)), 0.75)
    ink = (20 + index % 40, 20, 30)
    draw = ImageDraw.Draw(canvas)
    draw.text(
        (height // 4 - box[0], (height - (box[3] - box[1])) // 2 - box[1]),
        text,
        fill=ink,
        font=font,
    )  # type: ignore[arg-type]
    return np.asarray(canvas)


def fit_width(img: np.ndarray, height: int, width: int, fill: int = 255) -> np.ndarray:
    """Resize to ``height`` keeping the aspect ratio, then pad (or squeeze) to ``width``."""
    h, w = img.shape[:2]
    nw = min(width, max(1, round(w * height / h)))
    out = np.full((height, width, 3), fill, dtype=np.uint8)
    out[:, :nw] = resize(img, (height, nw))
    return out


def document(
    lines: list[str], size: tuple[int, int], index: int, background: np.ndarray | None = None
) -> np.ndarray:
    """A page of text lines at random positions: uint8 HxWx3 of ``size``."""
    from PIL import Image

    rng = np.random.default_rng(index)
    h, w = size
    if background is None:
        page = Image.new("RGB", (w, h), (245, 244, 238))
    else:
        page = Image.fromarray(resize(background, (h, w)))
        page = Image.blend(page, Image.new("RGB", (w, h), (235, 235, 235)), 0.6)
    y = int(rng.integers(4, 20))
    for k, text in enumerate(lines):
        lh = int(rng.integers(18, 34))
        if y + lh >= h:
            break
        line = Image.fromarray(render_line(text, lh, index + k))
        if line.width > w - 8:
            line = line.resize((w - 8, lh))
        x = int(rng.integers(0, max(1, w - line.width)))
        page.paste(line, (x, y))
        y += lh + int(rng.integers(4, 24))
    return np.asarray(page)


def speech(sentences: tuple[str, ...], rate: int = 16000, seed: int = 0) -> np.ndarray:
    """The sentences spoken by espeak-ng (voices en, en-us, en-gb by turns) with 0.3-1 s of
    quiet noise between them, float32 mono at ``rate`` Hz in [-1, 1]."""
    rng = np.random.default_rng(seed)
    voices = ("en", "en-us", "en-gb")
    parts = []
    for i, text in enumerate(sentences):
        wav = subprocess.run(
            ["espeak-ng", "-v", voices[i % 3], "-s", str(150 + 10 * (i % 4)), "--stdout", text],
            check=True,
            capture_output=True,
        ).stdout
        with wave.open(io.BytesIO(wav)) as f:
            sr, frames = f.getframerate(), f.readframes(f.getnframes())
        audio = np.frombuffer(frames, dtype=np.int16).astype(np.float32) / 32768.0
        if sr != rate:
            t = np.arange(0, len(audio), sr / rate)
            audio = np.interp(t, np.arange(len(audio)), audio).astype(np.float32)
        quiet = rng.normal(0, 0.003, int(rate * rng.uniform(0.3, 1.0))).astype(np.float32)
        parts += [quiet, audio]
    return np.concatenate(parts)


def chunks(audio: np.ndarray, size: int) -> Iterator[np.ndarray]:
    for start in range(0, len(audio) - size + 1, size):
        yield audio[start : start + size]

"""Screenshots for the page tests (under tests/pages/artifacts/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

ARTIFACTS = Path(__file__).parent / "artifacts"


class Shooter:
    """Numbered screenshots of one test under tests/pages/artifacts/."""

    def __init__(self, page: Any, name: str) -> None:
        self.page, self.name, self.n = page, name, 0
        ARTIFACTS.mkdir(exist_ok=True)

    def __call__(self, label: str, *, full_page: bool = True) -> Path:
        self.n += 1
        path = ARTIFACTS / f"{self.name}-{self.n:02d}-{label}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

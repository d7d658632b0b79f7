"""The bookings chart on the staff home page, as numbers for an inline SVG (no script): one bar a
day, its count written above it, and a sentence that says the same for screen readers."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

WIDTH = 280
HEIGHT = 80
LABEL_SPACE = 14  # above the tallest bar, for its number
AXIS_SPACE = 14  # below the bars, for the first and last day


@dataclass(frozen=True)
class Bar:
    day: date
    count: int
    x: float
    y: float
    width: float
    height: float

    @property
    def label_x(self) -> float:
        return self.x + self.width / 2


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    width: int = WIDTH
    height: int = HEIGHT + LABEL_SPACE + AXIS_SPACE
    baseline: float = LABEL_SPACE + HEIGHT

    @property
    def total(self) -> int:
        return sum(bar.count for bar in self.bars)

    def summary(self) -> str:
        if not self.bars:
            return "No days to show."
        first, last = self.bars[0].day, self.bars[-1].day
        span = f"from {first:%-d %b} to {last:%-d %b}"
        if not self.total:
            return f"No registrations {span}."
        busiest = max(self.bars, key=lambda bar: bar.count)
        return (
            f"{self.total} registration(s) {span}; the busiest day was {busiest.day:%-d %b} "
            f"with {busiest.count}."
        )


def bookings_chart(by_day: list[tuple[date, int]]) -> Chart:
    most = max((count for _, count in by_day), default=0) or 1
    slot = WIDTH / max(len(by_day), 1)
    bars = []
    for index, (day, count) in enumerate(by_day):
        height = HEIGHT * count / most
        bars.append(
            Bar(
                day=day,
                count=count,
                x=round(index * slot + slot * 0.15, 1),
                y=round(LABEL_SPACE + HEIGHT - height, 1),
                width=round(slot * 0.7, 1),
                height=round(height, 1),
            )
        )
    return Chart(bars)

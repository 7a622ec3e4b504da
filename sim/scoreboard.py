"""In-order scoreboard shared by the engine testbenches: expected beats against received beats."""

from __future__ import annotations

from hwgen.hdl.payload import unpack

__all__ = ["InOrderScoreboard", "MAX_REPORTED_MISMATCHES"]

MAX_REPORTED_MISMATCHES = 10


class InOrderScoreboard:
    """Expected payloads (from a golden model) checked in order against received transfers.

    Engine testbenches subclass it with an ``expect`` method that turns golden-model output into
    :meth:`add` calls; ``where`` says which stimulus a beat belongs to, for mismatch reports.
    """

    def __init__(self, layout, log):
        self.layout, self.log = layout, log
        self.expected: list[tuple[dict, str]] = []     # (payload, where it comes from)
        self.errors = 0
        self.checked = 0

    def add(self, payload: dict, where: str) -> None:
        self.expected.append((payload, where))

    def check(self, received) -> None:
        """Compare the transfers received since the last call; beats nobody expected are errors."""
        for transfer in received[self.checked:len(self.expected)]:
            want, where = self.expected[self.checked]
            got = unpack(self.layout, transfer.bits)
            if got != want:
                self.errors += 1
                if self.errors <= MAX_REPORTED_MISMATCHES:
                    self.log.error("mismatch at %s: got %s, expected %s", where, got, want)
            self.checked += 1
        extra = len(received) - len(self.expected)
        if extra > 0 and self.checked == len(self.expected):
            self.errors += extra
            self.checked += extra
            self.log.error("%d output beats more than expected", extra)

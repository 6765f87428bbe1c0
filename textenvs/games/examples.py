"""A game defined the way a user would: one small class (the ``game`` family's default).

Race to ten: a running total starts at 0; the players take turns adding 1 or 2 to it, and
whoever brings it to exactly 10 wins. (A first-player win: leave the total at 1, 4 or 7.)
"""

from __future__ import annotations

from dataclasses import dataclass

from textenvs.games.base import LOSS, Game


@dataclass(frozen=True)
class Total:
    """The running total and whose turn it is."""

    total: int
    to_move: int


@dataclass(frozen=True)
class RaceToTen(Game[Total]):
    """Add 1 or 2 in turn; reaching ``target`` exactly wins."""

    target: int = 10
    title = "Race to ten"

    def initial(self) -> Total:
        return Total(0, 0)

    def legal_moves(self, position: Total) -> tuple[str, ...]:
        if self.result(position) is not None:
            return ()
        return tuple(f"+{n}" for n in (1, 2) if position.total + n <= self.target)

    def play(self, position: Total, move: str) -> Total:
        return Total(position.total + int(move), 1 - position.to_move)

    def result(self, position: Total) -> int | None:
        return LOSS if position.total == self.target else None  # the other player just won

    def to_move(self, position: Total) -> int:
        return position.to_move

    def rules_text(self) -> str:
        return (f"{self.title}: a running total starts at 0. The two players take turns adding 1 or 2 to it "
                f"(never going past {self.target}). Whoever brings the total to exactly {self.target} wins. "
                "A move is written +1 or +2.")

    def render(self, position: Total) -> str:
        return f"The total is {position.total}."

    def record(self, position: Total) -> dict:
        return {"total": position.total}

    def parameters(self) -> dict:
        return {"target": self.target}

"""Keep rules: which labeled tasks train the Solver, declared by the recipe and checked by the gate.

A recipe declares its rule as data (`Recipe.keep_rule(cfg)`): a band per
question kind on one column (the majority share `c` by default) and,
optionally, that a kind is kept only when a sibling of the same item was
kept (MM-Zero: a hard question only when its render's easy question passed).
The loop applies the rule (`decide`); the great-expectations gate checks the
kept rows against the same declared bands (`recipes.core.validation`), so a
recipe can never keep tasks its own gate then rejects, and a labeling bug
that keeps a row outside its band fails the gate.

    >>> rule = KeepRule.band(0.3, 0.8)
    >>> [rule.decide_one({"c": c, "meta": {}}) for c in (0.2, 0.5, 0.9)]
    ['too_hard', 'kept', 'too_easy']
    >>> mm = KeepRule({"easy": (0.5, 1.0), "hard": (0.25, 0.75)}, requires={"hard": "easy"}, group_key="item")
    >>> mm.decide([{"c": 0.6, "meta": {"question_kind": "easy", "item": 0}},
    ...            {"c": 0.5, "meta": {"question_kind": "hard", "item": 0}},
    ...            {"c": 0.4, "meta": {"question_kind": "easy", "item": 1}},
    ...            {"c": 0.5, "meta": {"question_kind": "hard", "item": 1}}])
    ['kept', 'kept', 'too_hard', 'easy_failed']
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from recipes.core.voting import band_reason

ANY = ""  # the band of rows whose kind has no band of its own


@dataclass(frozen=True)
class KeepRule:
    """Bands per question kind (`meta[kind_key]`) on `column`; `requires[kind]` names a sibling kind that must be kept."""

    bands: Mapping[str, tuple[float, float]]
    column: str = "c"
    kind_key: str = "question_kind"
    requires: Mapping[str, str] = field(default_factory=dict)
    group_key: str = "item"  # meta key shared by the rows of one item (siblings)

    @classmethod
    def band(cls, low: float, high: float) -> KeepRule:
        """The consistency band of V-Zero, Active-Zero and R-Zero: keep c in [low, high]."""
        return cls({ANY: (low, high)})

    @staticmethod
    def meta(row: Mapping) -> Mapping:
        """The row's recipe fields: a dict while labeling, JSON text once stored in the task set."""
        meta = row.get("meta") or {}
        return json.loads(meta) if isinstance(meta, str) else meta

    def kind(self, row: Mapping) -> str:
        return str(self.meta(row).get(self.kind_key, ANY))

    def has_band(self, row: Mapping) -> bool:
        return self.kind(row) in self.bands or ANY in self.bands

    def band_of(self, row: Mapping) -> tuple[float, float]:
        kind = self.kind(row)
        if kind in self.bands:
            return self.bands[kind]
        if ANY in self.bands:
            return self.bands[ANY]
        raise KeyError(f"keep rule has no band for question kind {kind!r} (bands: {sorted(self.bands)})")

    def decide_one(self, row: Mapping) -> str:
        lo, hi = self.band_of(row)
        return band_reason(float(row[self.column]), lo, hi)

    def decide(self, rows: Sequence[Mapping]) -> list[str]:
        """A reason per row ("kept" or why not); sibling requirements see every row of the batch.

        Rows without a majority are not passed in, so a sibling that had none counts as not kept.
        """
        first = [self.decide_one(r) for r in rows]
        kept_kinds: dict[tuple, bool] = {}
        for r, reason in zip(rows, first):
            kept_kinds[(self.group(r), self.kind(r))] = reason == "kept"
        out = []
        for r, reason in zip(rows, first):
            need = self.requires.get(self.kind(r))
            if need and not kept_kinds.get((self.group(r), need), False):  # the sibling decides first
                reason = f"{need}_failed"
            out.append(reason)
        return out

    def group(self, row: Mapping):
        return self.meta(row).get(self.group_key)

    def drop_reasons(self) -> tuple[str, ...]:
        """Every reason `decide` can give besides "kept"."""
        return ("too_hard", "too_easy", *sorted({f"{k}_failed" for k in self.requires.values()}))

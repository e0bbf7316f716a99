"""Active-Zero: a Searcher fetches images at the Solver's frontier, a Questioner asks, the Solver learns.

`config` (typed config and profiles), `search` (the Searcher's format and the
pool search), `rewards` (Searcher and Questioner rewards), `diversity` (BLEU
and image-embedding cluster penalties), `report` (the curriculum table),
`recipe` (the registered recipes "activezero" and its passive control
"activezero_passive").
"""

from recipes.activezero.recipe import ActiveZero, ActiveZeroPassive  # noqa: F401  (registers both)

"""V-Zero: a Questioner and a Solver on unlabeled images (recipes.md, "V-Zero").

`config` (typed config and profiles), `rewards` (the dual-track reward),
`recipe` (the registered recipe). Importing the package registers "vzero".
"""

from recipes.vzero.recipe import VZero  # noqa: F401  (registers "vzero")

"""Vision-Zero: "who is the spy" games with Iterative-SPO (recipes.md, "Vision-Zero").

`config` (typed config with the game's knobs, and profiles), `game` (prompts,
parsers, published rewards, role baseline, Iterative-SPO, batched rollout),
`report` (transcripts and a contact sheet), `recipe` (the registered recipe
"visionzero").
"""

from recipes.visionzero.recipe import VisionZero  # noqa: F401  (registers "visionzero")

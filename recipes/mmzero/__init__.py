"""MM-Zero: Proposer + Coder + Solver from zero data (recipes.md, "MM-Zero").

`config` (typed config with MM-Zero's own knobs, and profiles), `formats`
(the Proposer's and Coder's formats and parsers), `render` (sandboxed
rendering of the Coder's programs and the Solver's scores on a render),
`rewards` (the published Coder and Proposer rewards), `report` (the
curriculum audit), `recipe` (the registered recipe "mmzero").
"""

from recipes.mmzero.recipe import MMZero  # noqa: F401  (registers "mmzero")

"""The core every recipe runs on: one loop, one vote, one gate, the warm start, and the recipe contract.

Nothing in here names a recipe: the loop receives the recipe object and
calls what it declares (`recipes.core.recipe.Recipe`). Modules: `loop` (label,
keep, train), `voting` (the one majority-vote primitive), `keep` (declared
keep rules), `validation` (the great-expectations gate), `questioner` (the
Questioner format several recipes share), `rewards` (the shared reward
pieces), `config` (typed configs, profiles, resolution), `context` (what a
step works with), `bootstrap` (the warm start and the embedded base),
`audit` (pseudo-label and self-consistency audit), `registry`.
Plain library code: no dagster imports.
"""

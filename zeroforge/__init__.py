"""zeroforge: self-evolving vision-language models as a Dagster workflow.

This small package holds what every layer shares and nothing else: the
torchvision compatibility shim (`zeroforge.compat`) and the `zeroforge`
command line (`zeroforge.cli`). The real code lives in the top-level packages
`models`, `retrieval`, `evaluation` (plain libraries), `assets` (Dagster
software-defined assets) and `orchestration` (jobs, sensors, Definitions).
"""

__version__ = "0.1.0"

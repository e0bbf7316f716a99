"""zeroforge.orchestration: jobs, schedules, sensors and the one `Definitions` object.

`orchestration.definitions` is the code location that `workspace.yaml`, the
`zeroforge` CLI and the tests load.
"""

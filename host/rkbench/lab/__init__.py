"""A lab of boards: the inventory, regression suites, and the nightly that runs them.

inventory.py  boards.toml: named boards, addresses, SoCs, tags, selectors
suite.py      suite.toml: models x configs x boards x core masks, thresholds, [measure]
nightly.py    Nightly: builds once per (model, config, SoC), boards concurrently, verdicts
"""

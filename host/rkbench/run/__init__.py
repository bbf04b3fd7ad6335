"""`rkbench run`: one model on one board, from the source model to a verdict.

pipeline.py  run_model(): board SoC -> build -> simulator side -> measure -> compare ->
             per-layer -> thresholds -> store (RunRequest in, RunReport out)
session.py   one runner session on a board: deploy, start, read its events, fetch outputs
perlayer.py  per-layer board error through debug builds (no rknn_server needed)
compare.py   board outputs against fp32 and the simulator; thresholds
"""

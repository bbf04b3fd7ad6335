"""rknn-toolkit2 at arm's length: it runs in a worker process of its own.

worker.py  run_toolkit(): starts job.py with the toolkit's interpreter, reads its step
           events, maps crashes, hangs and refusals to rkbench errors
job.py     the script the worker runs: the only host module that imports rknn.api
           (standard library otherwise, so another venv can run it: --toolkit-python)
"""

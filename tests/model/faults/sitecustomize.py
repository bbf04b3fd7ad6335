"""Loaded by the toolkit worker in fault tests only (its PYTHONPATH points here): makes the
real rknn-toolkit2 crash or hang inside a chosen step, as it is known to do."""

import os
import signal
import time

FAULT = os.environ.get("RKBENCH_TEST_TOOLKIT_FAULT")
if FAULT:
    from rknn.api import RKNN

    def fault(self, *args, **kwargs):
        if FAULT == "segfault":
            os.kill(os.getpid(), signal.SIGSEGV)
        time.sleep(3600)

    RKNN.build = fault

"""rkbench board-side runner: Python 3.8+, standard library + numpy only.

Backend libraries (rknnlite, onnxruntime, rknn-toolkit2's rknn.api, psutil) are
imported lazily, only by the backend that needs them.
"""

__version__ = "0.1.0"

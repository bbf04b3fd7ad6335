"""What quantization does to a model, measured on the simulator against fp32.

layers.py    error_analysis.txt parsed into per-layer records, combined and ranked
analyze.py   the `rkbench analyze` job: accuracy analysis over N samples + fp32 agreement
evalset.py   evaluation samples prepared once; simulator outputs against the fp32 golden
golden.py    the fp32 reference (onnxruntime on the source model)
metrics.py   cosine, euclidean, max abs error, top-1 agreement
hybrid/      hybrid quantization: the search, the cfg format, which tensors float together
"""

"""The model before it meets a board: what it is, how to build it, and the build cache.

config.py    BuildConfig: build options or a vendor rknn_convert YAML -> the toolkit recipe
info.py      ModelInfo: a source model's inputs (ONNX/TFLite), readable-file checks
dataset.py   calibration / measurement data: checked against the model, prepared as .npy
build.py     prepare() + build(): one cached build (BuildOptions, Prepared, BuildResult)
cache.py     the content-addressed cache of builds and analyses (BuildCache)
examples.py  the bundled real models and their rendered calibration sets
rknn_file.py what an .rknn file says (targets, toolkit version, inputs/outputs), read without the toolkit
compat.py    whether a model fits a board (SoC family, toolkit vs librknnrt version), before any push
"""

from pathlib import Path

import pytest

from rkbench.accuracy.layers import ParseError, parse_error_analysis, rank, summarize

HERE = Path(__file__).parent
REAL = (HERE / "error_analysis_cls_rk3588.txt").read_text()

BOARD = """\
# simulator_error: ...
# runtime_error: ...
#
layer_name      simulator_error                      runtime_error
                entire            single             entire            single_sim
                cos      euc      cos      euc       cos      euc      cos      euc
-----------------------------------------------------------------------------------
[Input] images  1.00000 | 0.0     1.00000 | 0.0      1.00000 | 0.0     1.00000 | 0.0
[Conv] conv_a
[Relu] relu_a   0.99000 | 3.5     0.99500 | 1.2      0.98000 | 4.0     0.97000 | 2.0
[Add] add_b     q_nan | q_nan     0.90000 | 9.0      rt_nan | rt_nan   0.50000 | 7.0
"""


def test_real_file_rows_and_fused_layers():
    rows = parse_error_analysis(REAL)
    worst = min((r for r in rows if r.single_cos is not None), key=lambda r: r.single_cos)
    assert worst.tensor == "conv2d_88.tmp_1"
    assert worst.single_cos == pytest.approx(0.95441, abs=1e-6)
    fused = [r for r in rows if r.fused]
    assert fused and all(r.entire_cos is None for r in fused)
    assert rows[0].op == "Input" and rows[0].tensor == "x"
    assert rows[-1].tensor == "save_infer_model/scale_0.tmp_1"


def test_board_columns_and_nan_markers():
    rows = parse_error_analysis(BOARD)
    relu = next(r for r in rows if r.tensor == "relu_a")
    assert (relu.runtime_entire_cos, relu.runtime_single_cos) == (0.98, 0.97)
    add = next(r for r in rows if r.tensor == "add_b")
    assert add.entire_cos is None and add.single_cos == 0.9
    assert set(add.markers) == {"q_nan", "rt_nan"}
    ranked = rank(summarize([rows]))
    assert ranked[0].tensor == "add_b"  # a NaN marker outranks everything
    assert "conv_a" not in [layer.tensor for layer in ranked]  # fused rows are not ranked


def test_summary_over_samples_takes_mean_and_worst():
    a = parse_error_analysis(BOARD)
    b = parse_error_analysis(BOARD.replace("0.99500 | 1.2", "0.80000 | 1.2"))
    relu = next(s for s in summarize([a, b]) if s.tensor == "relu_a")
    assert relu.samples == 2
    assert relu.single_cos_min == pytest.approx(0.8)
    assert relu.single_cos_mean == pytest.approx((0.995 + 0.8) / 2)


def test_ranking_by_single_error_not_entire():
    rows = parse_error_analysis(REAL)
    ranked = rank(summarize([rows]))
    singles = [layer.single_loss for layer in ranked if not layer.markers]
    assert singles == sorted(singles, reverse=True)


def test_not_a_report():
    with pytest.raises(ParseError):
        parse_error_analysis("hello\nworld\n")


def test_colour_codes_of_the_console_copy_are_ignored():
    coloured = BOARD.replace("0.90000", "\x1b[1;33m0.90000\x1b[0m")
    add = next(r for r in parse_error_analysis(coloured) if r.tensor == "add_b")
    assert add.single_cos == 0.9


def test_a_wide_euclidean_running_into_the_next_cosine_is_two_values():
    """rknn-toolkit2 2.5 prints fixed-width columns: on an outlier layer the euclidean
    distance outgrows its column and touches the next cosine (seen on a real detector)."""
    text = BOARD.split("[Input]")[0] + (
        "[Conv] 886                             0.97813 | 13815.800780.98377 | 11638.80957   \n"
        "[Conv] 895                             0.20818 | 637.77673 0.24781 | 631.41071     \n"
    )
    conv, other = parse_error_analysis(text)
    assert (conv.entire_cos, conv.entire_euc, conv.single_cos, conv.single_euc) == (
        0.97813,
        pytest.approx(13815.80078),
        0.98377,
        pytest.approx(11638.80957),
    )
    assert conv.markers == () and other.single_cos == 0.24781

# LESRCNN-S (multiscale_lesrcnn_div2k.py) tested at x2 only: Set5, Set14, BSD100, Urban100.
#   python tools/test.py configs/lesrcnn/multiscale_lesrcnn_div2k_test_x2.py CHECKPOINT
_base_ = './multiscale_lesrcnn_div2k.py'

test_dataloader = _base_.benchmark_test_loaders['x2']
test_evaluator = _base_.benchmark_test_evaluators['x2']

# LESRCNN x4 (Tian et al., "Lightweight Image Super-Resolution with Enhanced CNN", KBS 2020) on DIV2K:
# train with tools/train.py, test on Set5/Set14/BSD100/Urban100 x4 with tools/test.py (docs/mmagic.md).
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/schedules/lesrcnn_600k.py',
    '../_base_/datasets/div2k_lmdb.py',
    '../_base_/datasets/sr_benchmarks.py',
]

scale = 4
experiment_name = 'lesrcnn_x4_div2k'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='BaseEditModel',
    generator=dict(type='LESRCNN', upscale=scale),
    pixel_loss=dict(type='MSELoss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(),
    test_cfg=dict(),
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))

# Raw storage, read without decoding (docs/data.md): _base_.div2k_raw_train_datasets[f'x{scale}']
train_dataloader = dict(dataset=_base_.div2k_train_datasets[f'x{scale}'])
val_dataloader = _base_.set5_val_loaders[f'x{scale}']
val_evaluator = _base_.set5_val_evaluators[f'x{scale}']
test_dataloader = _base_.benchmark_test_loaders[f'x{scale}']
test_evaluator = _base_.benchmark_test_evaluators[f'x{scale}']

default_hooks = dict(checkpoint=dict(save_best=f'Set5x{scale}/PSNR', rule='greater'))

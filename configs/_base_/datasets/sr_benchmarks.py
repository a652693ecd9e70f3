# The four SR benchmarks, as lesrcnn-prepare-testsets writes them:
#   datasets/benchmark/{Set5,Set14,BSD100,Urban100}/X{k}/HR/<name>.png   (HR cropped to LR*k)
#   datasets/benchmark/{Set5,Set14,BSD100,Urban100}/X{k}/LR/<name>.png   (same file name)
# Metrics as in the SR literature (and BasicSR): PSNR and SSIM on the Y channel (BT.601), `k` pixels
# cropped from every border. Unlike BasicSR, MMagic does not round the output to uint8 before the
# metric, so its figures are a little higher (see docs/mmagic.md).
#
# `benchmark_test_loaders['x{k}']` / `benchmark_test_evaluators['x{k}']` hold the four sets at scale k
# with metric prefixes '<Set>x<k>' (e.g. 'Urban100x4/PSNR'); `set5_val_loaders['x{k}']` /
# `set5_val_evaluators['x{k}']` are the validation during training. CropGTToInput makes the same
# loaders work on folders whose HR images are not cropped (EDSR layout).
benchmark_dir = 'datasets/benchmark'
benchmark_names = ['Set5', 'Set14', 'BSD100', 'Urban100']


def _loader(name, scale):
    return dict(
        batch_size=1,
        num_workers=2,
        persistent_workers=False,
        drop_last=False,
        sampler=dict(type='DefaultSampler', shuffle=False),
        dataset=dict(
            type='BasicImageDataset',
            metainfo=dict(dataset_type=name.lower(), task_name='sisr'),
            data_root=f'{benchmark_dir}/{name}/X{scale}',
            data_prefix=dict(img='LR', gt='HR'),
            pipeline=[
                dict(type='LoadImageFromFile', key='img', channel_order='rgb', imdecode_backend='cv2'),
                dict(type='LoadImageFromFile', key='gt', channel_order='rgb', imdecode_backend='cv2'),
                dict(type='SetValues', dictionary=dict(scale=scale)),
                dict(type='CropGTToInput'),
                dict(type='PackInputs', meta_keys=['scale']),
            ]))


def _evaluator(name, scale):
    return dict(type='Evaluator', metrics=[
        dict(type='PSNR', crop_border=scale, convert_to='Y', prefix=f'{name}x{scale}'),
        dict(type='SSIM', crop_border=scale, convert_to='Y', prefix=f'{name}x{scale}'),
    ])


benchmark_test_loaders = {f'x{k}': [_loader(name, k) for name in benchmark_names] for k in (2, 3, 4)}
benchmark_test_evaluators = {f'x{k}': [_evaluator(name, k) for name in benchmark_names] for k in (2, 3, 4)}
set5_val_loaders = {f'x{k}': _loader('Set5', k) for k in (2, 3, 4)}
set5_val_evaluators = {f'x{k}': _evaluator('Set5', k) for k in (2, 3, 4)}

# LESRCNN-S: one network, one upsampler per scale (lesrcnn_plugin.archs.MultiScaleLESRCNN), trained on
# DIV2K x2, x3 and x4 at once. Each batch holds patches of one scale (GroupByDatasetBatchSampler over
# the three datasets concatenated), the scale being random from batch to batch; MultiScaleEditModel
# passes the batch's 'scale' metainfo to the generator. Same recipe as LESRCNN otherwise.
#
# Testing: this config evaluates the four benchmarks at all three scales (metric prefixes Set5x2 ...
# Urban100x4); multiscale_lesrcnn_div2k_test_x{2,3,4}.py evaluate one scale each.
_base_ = [
    '../_base_/default_runtime.py',
    '../_base_/schedules/lesrcnn_600k.py',
    '../_base_/datasets/div2k_lmdb.py',
    '../_base_/datasets/sr_benchmarks.py',
]

scales = [2, 3, 4]
experiment_name = 'multiscale_lesrcnn_div2k'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(
    type='MultiScaleEditModel',
    generator=dict(type='MultiScaleLESRCNN', scales=scales, default_scale=scales[0]),
    pixel_loss=dict(type='MSELoss', loss_weight=1.0, reduction='mean'),
    train_cfg=dict(),
    test_cfg=dict(),
    data_preprocessor=dict(type='DataPreprocessor', mean=[0., 0., 0.], std=[255., 255., 255.]))
# A batch uses one upsampler; in distributed training the others get no gradient on that rank.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)


def _share_lmdb_handles(dataset):
    # The three datasets read the same HR LMDB from one worker process, and LMDB refuses a second
    # handle on a database: LoadImageFromSharedFile (a LoadImageFromFile) shares one.
    pipeline = [dict(step, type='LoadImageFromSharedFile') if step['type'] == 'LoadImageFromFile' else step
                for step in dataset['pipeline']]
    return dict(dataset, pipeline=pipeline)


# Replaces the base loader settings: drop_last belongs to the batch sampler now. Raw storage, read
# without decoding (docs/data.md): _base_.div2k_raw_train_datasets instead of div2k_train_datasets.
train_dataloader = dict(
    _delete_=True,
    batch_size=64,
    num_workers=8,
    persistent_workers=False,
    sampler=dict(type='InfiniteSampler', shuffle=True),
    batch_sampler=dict(type='GroupByDatasetBatchSampler', drop_last=True),
    dataset=dict(type='ConcatDataset',
                 datasets=[_share_lmdb_handles(_base_.div2k_train_datasets[f'x{k}']) for k in scales]))
val_dataloader = [_base_.set5_val_loaders[f'x{k}'] for k in scales]
val_evaluator = [_base_.set5_val_evaluators[f'x{k}'] for k in scales]
test_dataloader = [loader for k in scales for loader in _base_.benchmark_test_loaders[f'x{k}']]
test_evaluator = [evaluator for k in scales for evaluator in _base_.benchmark_test_evaluators[f'x{k}']]

default_hooks = dict(checkpoint=dict(save_best='Set5x2/PSNR', rule='greater'))

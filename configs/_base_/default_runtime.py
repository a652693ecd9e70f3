# Runtime shared by every LESRCNN config: MMagic's scope, this plugin's registrations, hooks, logging.
default_scope = 'mmagic'
# Registers LESRCNN, MultiScaleLESRCNN, DualKernelLESRCNN, MultiScaleEditModel, CropGTToInput and
# GroupByDatasetBatchSampler in MMagic's registries.
custom_imports = dict(imports=['lesrcnn_plugin.mmagic'], allow_failed_imports=False)

default_hooks = dict(
    timer=dict(type='IterTimerHook'),
    # Validation metrics logged at the training iteration they were computed at (as MMagic's own
    # runtime does): by epoch, an iteration-based run would log every validation at step 0.
    logger=dict(type='LoggerHook', interval=100, log_metric_by_epoch=False),
    param_scheduler=dict(type='ParamSchedulerHook'),
    # Every 5k iterations, with the optimizer so that --resume continues exactly; the experiment
    # configs add save_best on their Set5 validation PSNR.
    checkpoint=dict(type='CheckpointHook', interval=5000, by_epoch=False, save_optimizer=True, max_keep_ckpts=10),
    sampler_seed=dict(type='DistSamplerSeedHook'),
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    # tools/train.py switches nccl to gloo on machines without CUDA.
    dist_cfg=dict(backend='nccl'),
)

log_level = 'INFO'
log_processor = dict(type='LogProcessor', window_size=100, by_epoch=False)

load_from = None
resume = False

# Scalars (losses, learning rate, PSNR/SSIM) go to <work_dir>/<timestamp>/vis_data/scalars.json. For
# TensorBoard as well (event files in the same folder), train with `lesrcnn-mmagic-train CONFIG
# --tensorboard`; with MMagic's own tools (mim train), which have no such flag, switch the backend:
#   --cfg-options visualizer.vis_backends.0.type=TensorboardVisBackend
# (--cfg-options cannot add a list item: values are parsed as numbers, strings and lists, never dicts.)
# To also save every validation/test image (gt | input | output), add
#   custom_hooks = [dict(type='BasicVisualizationHook', interval=1)]
visualizer = dict(
    type='ConcatImageVisualizer',
    vis_backends=[dict(type='LocalVisBackend')],
    fn_key='gt_path',
    img_keys=['gt_img', 'input', 'pred_img'],
    bgr2rgb=True)

# The LESRCNN recipe (Tian et al. 2020; same as options/ for BasicSR): MSE loss (set in the model),
# Adam lr 1e-4, halved at 400k iterations, 600k iterations of batch 64, gradients clipped at norm 10.
train_cfg = dict(type='IterBasedTrainLoop', max_iters=600000, val_interval=5000)
val_cfg = dict(type='MultiValLoop')
test_cfg = dict(type='MultiTestLoop')

optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='Adam', lr=1e-4, betas=(0.9, 0.999), eps=1e-8, weight_decay=0),
    clip_grad=dict(max_norm=10))

param_scheduler = dict(type='MultiStepLR', by_epoch=False, milestones=[400000], gamma=0.5)

# Speed switches, off by default because they change the arithmetic a little (docs/benchmarks.md,
# "Training throughput"): `--amp` (tools/train.py) turns optim_wrapper into AmpOptimWrapper, fp16
# autocast with dynamic loss scaling (add optim_wrapper.dtype='bfloat16' for bf16);
# custom_hooks = [dict(type='ChannelsLastHook')] trains in channels_last memory format; compile = True
# compiles the train step with torch.compile (mmengine's Runner).
compile = False

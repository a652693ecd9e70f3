# The upgraded LESRCNN (dual-kernel 3x3 + 5x5 IEEB layers, lesrcnn_plugin.archs.DualKernelLESRCNN) x2,
# trained and tested exactly as LESRCNN x2.
_base_ = './lesrcnn_x2_div2k.py'

experiment_name = 'dual_kernel_lesrcnn_x2_div2k'
work_dir = f'./work_dirs/{experiment_name}'

model = dict(generator=dict(_delete_=True, type='DualKernelLESRCNN', upscale=2))

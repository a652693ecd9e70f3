# DIV2K training patches read from the LMDBs that lesrcnn-prepare-div2k writes (BasicSR's layout, so
# one LMDB serves BasicSR and MMagic): datasets/DIV2K/DIV2K_train_HR_sub.lmdb and
# datasets/DIV2K/DIV2K_train_LR_bicubic_X{k}_sub.lmdb, keys '0001_s001' (no extension) in every one.
#
# How the keys come out right: BasicImageDataset reads the names from the HR LMDB's meta_info.txt
# ('0001_s001.png (480,480,3) 1': the first field) and builds '<data_root>/<prefix>/0001_s001.png';
# LoadImageFromFile, given an lmdb backend, looks up the basename without extension, '0001_s001', in
# the database named by its own db_path. The dataset itself keeps the default (disk) backend: it only
# reads meta_info.txt, and mmengine's LmdbBackend cannot read text files.
#
# `div2k_train_datasets['x2' | 'x3' | 'x4']` are picked by the experiment configs; LR patches are
# 64x64 (GT 64*k), with random horizontal/vertical flips and transposition.
div2k_dir = 'datasets/DIV2K'
div2k_train_datasets = {
    f'x{scale}': dict(
        type='BasicImageDataset',
        ann_file='DIV2K_train_HR_sub.lmdb/meta_info.txt',
        metainfo=dict(dataset_type='div2k', task_name='sisr'),
        data_root=div2k_dir,
        data_prefix=dict(img=f'DIV2K_train_LR_bicubic_X{scale}_sub.lmdb', gt='DIV2K_train_HR_sub.lmdb'),
        pipeline=[
            dict(type='LoadImageFromFile', key='img', channel_order='rgb', imdecode_backend='cv2',
                 backend_args=dict(backend='lmdb', db_path=f'{div2k_dir}/DIV2K_train_LR_bicubic_X{scale}_sub.lmdb')),
            dict(type='LoadImageFromFile', key='gt', channel_order='rgb', imdecode_backend='cv2',
                 backend_args=dict(backend='lmdb', db_path=f'{div2k_dir}/DIV2K_train_HR_sub.lmdb')),
            dict(type='SetValues', dictionary=dict(scale=scale)),
            dict(type='PairedRandomCrop', gt_patch_size=64 * scale),
            dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
            dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
            dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
            # 'scale' travels with the batch so that MultiScaleEditModel picks the upsampler.
            dict(type='PackInputs', meta_keys=['scale']),
        ])
    for scale in (2, 3, 4)
}

train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))

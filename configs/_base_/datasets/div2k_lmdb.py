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
# `div2k_raw_train_datasets` are the same datasets on the raw-pixel copies that
# `lesrcnn-prepare-div2k --storage raw` writes (*_sub_raw.lmdb, read with LoadImageFromRawLMDB): the
# same samples, and the same patches for a seed, without decoding PNGs (docs/data.md). To train on
# them, add to an experiment config (or a config of your own with it as _base_):
#   train_dataloader = dict(dataset=_base_.div2k_raw_train_datasets[f'x{scale}'])
div2k_dir = 'datasets/DIV2K'


def _div2k_train_dataset(scale, storage):
    suffix, loader = {'png': ('', 'LoadImageFromFile'), 'raw': ('_raw', 'LoadImageFromRawLMDB')}[storage]
    hr_db, lr_db = f'DIV2K_train_HR_sub{suffix}.lmdb', f'DIV2K_train_LR_bicubic_X{scale}_sub{suffix}.lmdb'
    return dict(
        type='BasicImageDataset',
        ann_file=f'{hr_db}/meta_info.txt',
        metainfo=dict(dataset_type='div2k', task_name='sisr'),
        data_root=div2k_dir,
        data_prefix=dict(img=lr_db, gt=hr_db),
        pipeline=[
            dict(type=loader, key='img', channel_order='rgb', imdecode_backend='cv2',
                 backend_args=dict(backend='lmdb', db_path=f'{div2k_dir}/{lr_db}')),
            dict(type=loader, key='gt', channel_order='rgb', imdecode_backend='cv2',
                 backend_args=dict(backend='lmdb', db_path=f'{div2k_dir}/{hr_db}')),
            dict(type='SetValues', dictionary=dict(scale=scale)),
            dict(type='PairedRandomCrop', gt_patch_size=64 * scale),
            dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='horizontal'),
            dict(type='Flip', keys=['img', 'gt'], flip_ratio=0.5, direction='vertical'),
            dict(type='RandomTransposeHW', keys=['img', 'gt'], transpose_ratio=0.5),
            # 'scale' travels with the batch so that MultiScaleEditModel picks the upsampler.
            dict(type='PackInputs', meta_keys=['scale']),
        ])


div2k_train_datasets = {f'x{scale}': _div2k_train_dataset(scale, 'png') for scale in (2, 3, 4)}
div2k_raw_train_datasets = {f'x{scale}': _div2k_train_dataset(scale, 'raw') for scale in (2, 3, 4)}

# Loader switches that do not change what is trained on, except persistent_workers: true keeps the
# workers, and their random state, from epoch to epoch (InfiniteSampler has one epoch anyway).
# pin_memory=True speeds up copies to a GPU.
train_dataloader = dict(
    batch_size=64,
    num_workers=8,
    persistent_workers=False,
    pin_memory=False,
    drop_last=True,
    sampler=dict(type='InfiniteSampler', shuffle=True))

# JHMDB-Sentences: evaluation only (the A2D-Sentences model is tested on it).
_base_ = './a2d_sentences.py'

dataset_type = 'JHMDBSentencesDataset'
data_root = 'data/jhmdb_sentences/'

train_dataloader = None
val_dataloader = dict(
    dataset=dict(
        _delete_=True,
        type=dataset_type,
        data_root=data_root,
        ann_file='jhmdb_sentences_samples_metadata.json',
        test_mode=True,
        pipeline={{_base_.test_pipeline}}))
test_dataloader = val_dataloader

"""mmrvos.datasets: RVOS datasets (registered in mmdet's ``DATASETS``), video pipelines
(``transforms``, registered in mmdet's ``TRANSFORMS``); the synthetic toy benchmark's generator
is :mod:`mmrvos.datasets.synthetic`."""
from . import transforms  # noqa: F401  (registration)
from .a2d_sentences import A2DSentencesDataset
from .base_rvos import BaseRVOSDataset, DatasetRepairWarning, load_json
from .jhmdb_sentences import JHMDBSentencesDataset
from .mevis import MeViSDataset
from .ref_davis import RefDAVISDataset
from .ref_youtube_vos import RefYouTubeVOSDataset
from .refcoco_clips import RefCOCOClipDataset

__all__ = [
    'BaseRVOSDataset', 'DatasetRepairWarning', 'load_json', 'RefYouTubeVOSDataset',
    'RefDAVISDataset', 'MeViSDataset', 'A2DSentencesDataset', 'JHMDBSentencesDataset',
    'RefCOCOClipDataset'
]

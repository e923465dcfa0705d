"""Decoders for the per-frame annotation references that RVOS datasets put in ``mask_ref``.

A dataset describes where the target's mask of one frame lives with a small dict (or ``None``
when the frame carries no annotation for the target); :func:`decode_mask_ref` turns it into a
binary mask. Keeping this out of the datasets lets one loading transform serve every format.

Reference types (``mask_ref['type']``):

* ``'palette'``: ``path`` to a palette PNG (pixel = object id), ``obj_ids`` (list[int]), ``sparse``
  (bool), optionally ``video_obj_ids`` (every object of the video, for 0/255 masks).
  The target is the union of ``obj_ids``. With ``sparse=True`` (Ref-YouTube-VOS convention
  for sparsely annotated videos) a PNG that contains none of the ids does *not* annotate the target
  on that frame; with ``sparse=False`` (dense annotation) it means the target is absent.
* ``'rle'``: ``rles`` (list of COCO RLE dicts or ``None`` per object; MeViS ``mask_dict.json``).
  ``None`` = the object is absent on this frame (annotated). ``source`` names the file for errors.
* ``'h5'``: ``path`` to an A2D-Sentences per-frame h5 (keys ``instance``, ``reMask``) and
  ``instance_id``.
* ``'mat'``: ``path`` to a JHMDB ``puppet_mask.mat`` (``part_mask``, (H, W, T)) and ``index``.
* ``'coco'``: ``segmentations`` (list of COCO polygons / RLE, united), ``height``, ``width``,
  ``source`` (RefCOCO).

A decoder returns ``(mask, annotated)``; ``mask`` may be ``None`` for "annotated, target absent"
when the size is not known from the source (all MeViS RLEs of the frame are null).
"""
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from mmrvos.evaluation.functional.mask_io import decode_rle as decode_rle_mask
from mmrvos.evaluation.functional.mask_io import read_index_png

Decoded = Tuple[Optional[np.ndarray], bool]  # (bool mask (H, W) or None, annotated)


def decode_palette(ref: dict) -> Decoded:
    """Palette / index PNG -> union of ``obj_ids`` (the shared reader
    :func:`~mmrvos.evaluation.functional.mask_io.read_index_png`: bad modes, truncated files
    and ambiguous 0/255 masks raise naming the file; a 0/255 mask of a one-object video is read
    as that object with a warning). ``video_obj_ids`` (all objects the video refers to)
    decides whether a 0/255 mask is unambiguous; without it, the expression's ``obj_ids``."""
    obj_ids = [int(i) for i in ref['obj_ids']]
    ids = read_index_png(ref['path'], ref.get('video_obj_ids') or obj_ids)
    mask = np.isin(ids, obj_ids)
    annotated = bool(mask.any()) if ref.get('sparse', True) else True
    return mask, annotated


def decode_rle(ref: dict) -> Decoded:
    mask = None
    for rle in ref['rles']:
        m = decode_rle_mask(rle, source=ref.get('source', 'RLE'))
        if m is None:
            continue
        if mask is not None and m.shape != mask.shape:
            raise ValueError(f'{ref.get("source", "RLE")}: the objects of one frame have RLEs of '
                             f'different sizes {mask.shape} and {m.shape}')
        mask = m if mask is None else (mask | m)
    return mask, True  # mask None: every object absent on this frame (annotated)


def decode_h5(ref: dict) -> Decoded:
    import h5py
    path = ref['path']
    try:
        with h5py.File(path, 'r') as f:
            instances = [int(i) for i in np.asarray(f['instance']).reshape(-1)]
            masks = np.asarray(f['reMask'])
    except FileNotFoundError:
        raise FileNotFoundError(f'A2D mask file not found: {path}') from None
    except (OSError, KeyError) as e:
        raise OSError(f'cannot read A2D mask file {path}: {e}') from e
    iid = int(ref['instance_id'])
    if iid not in instances:
        raise KeyError(f'{path}: unknown instance id {iid}; the file holds {instances}')
    if masks.ndim == 2:
        masks = masks[None]
    # A2D stores masks transposed: (N, W, H)
    return masks[instances.index(iid)].T > 0, True


def decode_mat(ref: dict) -> Decoded:
    import scipy.io
    path = ref['path']
    try:
        part = scipy.io.loadmat(path)[ref.get('key', 'part_mask')]
    except FileNotFoundError:
        raise FileNotFoundError(f'JHMDB mask file not found: {path}') from None
    except (KeyError, ValueError, OSError) as e:
        raise OSError(f'cannot read JHMDB mask file {path}: {e}') from e
    index = int(ref['index'])
    if not 0 <= index < part.shape[-1]:
        raise IndexError(f'{path}: frame {index} out of range, the file has {part.shape[-1]} '
                         'masks')
    return part[..., index] > 0, True


def _coco_segm_to_mask(segm, h: int, w: int) -> np.ndarray:
    from pycocotools import mask as mask_utils
    if isinstance(segm, list):  # polygons
        rle = mask_utils.merge(mask_utils.frPyObjects(segm, h, w))
    elif isinstance(segm.get('counts'), list):  # uncompressed RLE
        rle = mask_utils.frPyObjects(segm, h, w)
    else:
        rle = dict(segm)
        if isinstance(rle['counts'], str):
            rle['counts'] = rle['counts'].encode('ascii')
    return mask_utils.decode(rle).astype(bool)


def decode_coco(ref: dict) -> Decoded:
    h, w = int(ref['height']), int(ref['width'])
    mask = np.zeros((h, w), dtype=bool)
    for segm in ref['segmentations']:
        try:
            mask |= _coco_segm_to_mask(segm, h, w)
        except Exception as e:
            raise ValueError(
                f'{ref.get("source", "COCO annotation")}: bad segmentation: {e}') from e
    return mask, True


DECODERS: Dict[str, Callable[[dict], Decoded]] = {
    'palette': decode_palette,
    'rle': decode_rle,
    'h5': decode_h5,
    'mat': decode_mat,
    'coco': decode_coco,
}


def decode_mask_ref(ref: Optional[dict]) -> Optional[Decoded]:
    """Decode one frame's reference; ``None`` (frame not annotated for the target) gives None.

    Returns:
        tuple | None: (bool mask (H, W), annotated flag).
    """
    if ref is None:
        return None
    kind = ref.get('type')
    if kind not in DECODERS:
        raise KeyError(f'unknown mask reference type {kind!r}; expected one of {list(DECODERS)}')
    return DECODERS[kind](ref)


def describe_ref(ref: dict) -> str:
    """A file name (or source) for messages about this reference."""
    return str(ref.get('path', ref.get('source', ref.get('type'))))

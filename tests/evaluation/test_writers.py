"""Palette PNG writer, overwrite protection and server zip layout."""
import zipfile

import numpy as np
import pytest
from PIL import Image

from mmrvos.evaluation.writers import (RVOSResultWriter, make_submission_zip, prepare_output_dir,
                                       voc_palette)


def test_palette_is_the_davis_one():
    pal = voc_palette()
    assert len(pal) == 768
    # DAVIS / VOC: 0 black, 1 dark red, 2 dark green, 3 olive, 4 navy
    assert pal[:15] == [0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128]


def test_write_roundtrip_and_overwrite(tmp_path):
    out = tmp_path / 'res'
    w = RVOSResultWriter(str(out))
    m = np.zeros((6, 7), bool)
    m[1:4, 2:5] = True
    p = w.write('vid', '3', '00005', m)
    assert p == str(out / 'vid' / '3' / '00005.png')
    img = Image.open(p)
    assert img.mode == 'P' and img.size == (7, 6)
    np.testing.assert_array_equal(np.array(img), m.astype(np.uint8))
    with pytest.raises(FileExistsError, match='--overwrite'):
        RVOSResultWriter(str(out))
    RVOSResultWriter(str(out), overwrite=True)
    assert not (out / 'vid').exists()  # replaced by an empty folder
    # an existing empty folder is fine
    prepare_output_dir(str(out))


@pytest.mark.parametrize('preset,prefix', [('ref_youtube_vos', 'Annotations/'), ('mevis', '')])
def test_zip_layout(tmp_path, preset, prefix):
    w = RVOSResultWriter(str(tmp_path / 'res'))
    for f in ('00000', '00005'):
        w.write('v1', '0', f, np.ones((2, 2), bool))
    z = make_submission_zip(w.out_dir, str(tmp_path / 'sub.zip'), preset)
    with zipfile.ZipFile(z) as zf:
        assert sorted(zf.namelist()) == [f'{prefix}v1/0/00000.png', f'{prefix}v1/0/00005.png']
    with pytest.raises(FileExistsError):
        make_submission_zip(w.out_dir, z, preset)
    make_submission_zip(w.out_dir, z, preset, overwrite=True)

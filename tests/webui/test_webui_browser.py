"""The web demo in a real browser: ``python demo/webui.py`` started as a user starts it (a
subprocess from the repository root, 127.0.0.1, a free port), driven by headless Chromium
(Debian's ``chromium`` + ``chromium-driver``, through selenium): an empty request is refused in
the status box, then the first 4 DAVIS judo frames uploaded as an mp4 with two expressions give
a zip whose masks (downloaded by the browser) equal :class:`RVOSInferencer`'s for the same
video and checkpoint.

Skipped, with the reason, where selenium, gradio, Chromium, its driver or the judo fixture is
missing (a failure instead of a skip for the browser parts with ``MMRVOS_REQUIRE_BROWSER=1``, as
``.ci/run`` sets). ``MMRVOS_WEBUI_SCREENSHOT=docs/en/_static/webui.png`` also saves a
screenshot of the page after the run (how the one in docs/en/webui.md was taken).
"""
import glob
import json
import os
import os.path as osp
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile

import numpy as np
import pytest
from rvos_shell import JUDO_FRAMES, TOY_CONFIG, describe
from webui_helpers import encode_video, make_tiny_checkpoint

from mmrvos.apis.webui_backend import read_masks_zip
from rvos_test_utils import REPO_ROOT

TEXTS = ['the judoka in white in the middle', 'the referee']
BROWSERS = ('chromium', 'chromium-browser', 'google-chrome')
DRIVERS = ('chromedriver', '/usr/lib/chromium/chromedriver')


def _which(names):
    for name in names:
        path = shutil.which(name) or (name if osp.isfile(name) else None)
        if path:
            return path
    return None


def _missing(reason):
    """Skip, or fail where ``MMRVOS_REQUIRE_BROWSER=1`` (CI: .ci/run sets it)."""
    if os.environ.get('MMRVOS_REQUIRE_BROWSER') == '1':
        pytest.fail(f'{reason} (MMRVOS_REQUIRE_BROWSER=1)')
    pytest.skip(reason)


@pytest.fixture(scope='module')
def browser_tools():
    """(chromium, chromedriver) paths, or a skip naming what is missing."""
    for module in ('selenium', 'gradio'):
        try:
            __import__(module)
        except ImportError:
            _missing(f'{module} not installed (pip install -r requirements/demo.txt)')
    chromium, driver = _which(BROWSERS), _which(DRIVERS)
    if chromium is None or driver is None:
        _missing('no headless browser: install Debian\'s chromium and chromium-driver '
                 '(apt-get install chromium chromium-driver; .ci/run does)')
    return chromium, driver


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def wait_for_server(proc, url, timeout=180.0):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if proc.poll() is not None:
            out, err = proc.communicate()
            done = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
            pytest.fail(f'demo/webui.py exited before serving:\n{describe(done)}')
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f'demo/webui.py did not serve {url} within {timeout:.0f} s')


def start_browser(chromium, driver, download_dir):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service
    opts = Options()
    opts.binary_location = chromium
    for arg in ('--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
                '--window-size=1280,900', '--lang=en-US'):
        opts.add_argument(arg)
    opts.add_experimental_option('prefs', {
        'download.default_directory': download_dir,
        'download.prompt_for_download': False
    })
    browser = webdriver.Chrome(service=Service(driver), options=opts)
    browser.execute_cdp_cmd('Page.setDownloadBehavior', {
        'behavior': 'allow',
        'downloadPath': download_dir
    })
    return browser


def wait_until(what, predicate, timeout):
    t0 = time.time()
    while time.time() - t0 < timeout:
        value = predicate()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f'timed out after {timeout:.0f} s waiting for {what}')


def test_browser_upload_two_expressions_masks_equal_inferencer(browser_tools, tmp_path, judo_root):
    from selenium.webdriver.common.by import By

    from mmrvos.apis import RVOSInferencer
    chromium, driver = browser_tools
    frames = sorted(glob.glob(osp.join(REPO_ROOT, JUDO_FRAMES, '*.jpg')))[:4]
    assert len(frames) == 4
    video = encode_video(frames, str(tmp_path / 'judo4.mp4'))
    ckpt = make_tiny_checkpoint(str(tmp_path / 'tiny.pth'))

    import torch
    port = free_port()
    url = f'http://127.0.0.1:{port}/'
    env = {k: v for k, v in os.environ.items() if k != 'MMRVOS_DEBUG'}
    # the same thread count as this process: the same float sums, the same masks
    env.update(
        HF_HUB_OFFLINE='1',
        TRANSFORMERS_OFFLINE='1',
        GRADIO_ANALYTICS_ENABLED='False',
        OMP_NUM_THREADS=str(torch.get_num_threads()))
    log = open(tmp_path / 'server.log', 'w+')
    server = subprocess.Popen([
        sys.executable, 'demo/webui.py', '--config', TOY_CONFIG, '--checkpoint', ckpt, '--host',
        '127.0.0.1', '--port',
        str(port), '--device', 'cpu', '--work-dir',
        str(tmp_path / 'runs')
    ],
                              cwd=REPO_ROOT,
                              env=env,
                              stdout=log,
                              stderr=subprocess.STDOUT,
                              text=True)
    browser = None
    try:
        # the reference while the server starts
        ref = RVOSInferencer(
            osp.join(REPO_ROOT, TOY_CONFIG), weights=ckpt, device='cpu',
            show_progress=False)(video, TEXTS)['predictions']
        wait_for_server(server, url)
        downloads = str(tmp_path / 'downloads')
        os.makedirs(downloads)
        browser = start_browser(chromium, driver, downloads)
        browser.get(url)
        find = browser.find_element
        wait_until('the page', lambda: browser.find_elements(By.CSS_SELECTOR, '#run-button'), 60)

        def status():
            return find(By.CSS_SELECTOR, '#status textarea').get_attribute('value')

        # nothing typed: refused with a clear message in the status box
        find(By.CSS_SELECTOR, '#run-button').click()
        assert wait_until(
            'the refusal', status,
            60) == ('error: no expression: type at least one referring expression (one per line)')

        find(By.CSS_SELECTOR, '#video-input input[type=file]').send_keys(video)
        wait_until('the upload',
                   lambda: browser.find_elements(By.CSS_SELECTOR, '#video-input video'), 60)
        find(By.CSS_SELECTOR, '#expressions textarea').send_keys('\n'.join(TEXTS))
        find(By.CSS_SELECTOR, '#run-button').click()
        done = wait_until('the result', lambda: 'frames of' in status() and status(), 180)
        assert done.startswith('judo4.mp4: 4 frames of 854x480, 2 expression(s)'), done
        assert 'error' not in done and 'warning' not in done, done

        overlay = wait_until(
            'the overlay', lambda: [
                v.get_attribute('src')
                for v in browser.find_elements(By.CSS_SELECTOR, '#overlay video')
            ], 30)
        assert overlay[0].endswith('overlay.webm'), overlay

        # the browser downloads the zip as a user does (click on its link)
        link = find(By.CSS_SELECTOR, '#masks-zip a[download]')
        name = link.get_attribute('download')
        assert name.endswith('.zip'), name
        link.click()
        path = osp.join(downloads, name)
        wait_until(
            'the download', lambda: osp.isfile(path) and not glob.glob(
                osp.join(downloads, '*.crdownload')) and zipfile.is_zipfile(path), 60)

        if os.environ.get('MMRVOS_WEBUI_SCREENSHOT'):
            save_screenshot(browser, os.environ['MMRVOS_WEBUI_SCREENSHOT'])
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    masks = read_masks_zip(path)
    assert sorted(masks) == ['exp0', 'exp1']
    for i, pred in enumerate(ref):
        assert pred['masks'].shape == (4, 480, 854)
        assert sorted(masks[f'exp{i}']) == pred['frame_names'] == [f'{t:05d}' for t in range(4)]
        got = np.stack([masks[f'exp{i}'][f] for f in pred['frame_names']])
        np.testing.assert_array_equal(got, pred['masks'])
    with zipfile.ZipFile(path) as zf:
        summary = json.loads(zf.read('results.json'))
    assert [e['text'] for e in summary['expressions']] == TEXTS
    assert summary['frames'] == 4


def save_screenshot(browser, dst):
    """The page as it is (toasts closed), as a palette PNG under 300 KB."""
    from PIL import Image
    from selenium.webdriver.common.by import By
    for button in browser.find_elements(By.CSS_SELECTOR, '.toast-close'):
        try:
            button.click()
        except Exception:  # noqa: B902  a toast that went away meanwhile
            pass
    browser.execute_script('window.scrollTo(0, 0)')
    height = browser.execute_script('return Math.max(document.documentElement.scrollHeight, '
                                    'document.body.scrollHeight)')
    browser.execute_cdp_cmd(
        'Emulation.setDeviceMetricsOverride', {
            'width': 1280,
            'height': min(max(int(height), 600), 1600),
            'deviceScaleFactor': 1,
            'mobile': False
        })
    time.sleep(1.0)
    raw = dst + '.raw.png'
    browser.save_screenshot(raw)
    img = Image.open(raw).convert('RGB')
    os.remove(raw)
    img.quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(dst, optimize=True)
    assert osp.getsize(dst) < 300_000, osp.getsize(dst)

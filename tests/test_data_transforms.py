"""ImageTransform: resize, 180-degree flip, augmentation."""

import numpy as np
import pytest
import torch

from vggt_vla.data.transforms import ImageTransform

RNG = np.random.default_rng(0)
FRAMES = RNG.integers(0, 256, size=(2, 48, 48, 3), dtype=np.uint8)


def test_native_size_is_an_exact_conversion():
    x = ImageTransform(48)(FRAMES)
    assert x.shape == (2, 3, 48, 48) and x.dtype == torch.float32
    np.testing.assert_allclose(x.numpy(), FRAMES.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)


@pytest.mark.parametrize("size", [32, 64, 224])
def test_resize(size):
    x = ImageTransform(size)(FRAMES)
    assert x.shape == (2, 3, size, size)
    assert 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    flat = np.full((1, 48, 48, 3), 200, dtype=np.uint8)
    np.testing.assert_allclose(ImageTransform(size)(flat).numpy(), 200 / 255.0, atol=1e-6)


def test_flip_rotates_180_degrees():
    x = ImageTransform(48, flip=True)(FRAMES)
    rotated = np.rot90(FRAMES, k=2, axes=(1, 2))
    np.testing.assert_allclose(x.numpy(), rotated.transpose(0, 3, 1, 2) / 255.0, atol=1e-7)


def test_single_camera_input():
    assert ImageTransform(32)(FRAMES[0]).shape == (1, 3, 32, 32)


def test_augmentation_is_random_but_seeded_and_in_range():
    t = ImageTransform(32, augment=True, crop_scale=0.5, color_jitter=0.4)
    torch.manual_seed(0)
    a = t(FRAMES)
    torch.manual_seed(0)
    b = t(FRAMES)
    torch.manual_seed(1)
    c = t(FRAMES)
    assert a.shape == (2, 3, 32, 32)
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert 0.0 <= float(a.min()) and float(a.max()) <= 1.0
    assert not torch.equal(a, ImageTransform(32)(FRAMES))


def test_crop_scale_one_and_no_jitter_is_a_plain_resize():
    t = ImageTransform(32, augment=True, crop_scale=1.0, color_jitter=0.0)
    np.testing.assert_allclose(t(FRAMES).numpy(), ImageTransform(32)(FRAMES).numpy(), atol=1e-6)


def test_rejects_non_uint8():
    with pytest.raises(ValueError, match="uint8"):
        ImageTransform(32)(FRAMES.astype(np.float32))

"""V: the paper's convolutional VAE (4,348,547 parameters for z = 32), its loss, training by
streaming frames from the rollout files, and encoding of the series for M."""

from __future__ import annotations

import itertools
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from keras import layers
from tqdm import tqdm

from worldmodels.config import FRAME_SIZE, VaeConfig
from worldmodels.core import checkpoint
from worldmodels.core.artifacts import atomic_path, write_csv
from worldmodels.data.store import (
    SeriesWriter,
    episode_length,
    episode_source,
    read_episode,
    reusable_rows,
    stream_frames,
)
from worldmodels.model.training import Loop, run_epochs

REFERENCE_PARAMETERS = 4_348_547


class ConvVAE(keras.Model):
    """Encoder: four 4x4 stride-2 convolutions (32, 64, 128, 256) and dense heads for mu and
    logvar. Decoder: dense 1024, then transposed convolutions back to 64x64x3 in [0, 1]."""

    def __init__(self, z_size: int = 32, **kwargs):
        super().__init__(**kwargs)
        self.z_size = z_size
        self.encoder_convs = [
            layers.Conv2D(filters, 4, strides=2, activation="relu", name=f"enc_conv{i}")
            for i, filters in enumerate((32, 64, 128, 256))
        ]
        self.flatten = layers.Flatten()
        self.mu_head = layers.Dense(z_size, name="enc_mu")
        self.logvar_head = layers.Dense(z_size, name="enc_logvar")
        self.decoder_dense = layers.Dense(1024, name="dec_dense")
        self.reshape = layers.Reshape((1, 1, 1024))
        specs = ((128, 5, "relu"), (64, 5, "relu"), (32, 6, "relu"), (3, 6, "sigmoid"))
        self.decoder_deconvs = [
            layers.Conv2DTranspose(f, k, strides=2, activation=a, name=f"dec_deconv{i}")
            for i, (f, k, a) in enumerate(specs)
        ]
        self.build((None, FRAME_SIZE, FRAME_SIZE, 3))

    def build(self, input_shape):
        x = keras.KerasTensor(input_shape)
        mu, _ = self.encode(x)
        self.decode(mu)
        self.built = True

    def encode(self, x):
        """Frames in [0, 1] -> (mu, logvar)."""
        for conv in self.encoder_convs:
            x = conv(x)
        x = self.flatten(x)
        return self.mu_head(x), self.logvar_head(x)

    def decode(self, z):
        """Latents -> frames in [0, 1]."""
        x = self.reshape(self.decoder_dense(z))
        for deconv in self.decoder_deconvs:
            x = deconv(x)
        return x

    def call(self, x, training=False):
        mu, logvar = self.encode(x)
        z = sample_latent(mu, logvar)
        return self.decode(z), mu, logvar


def sample_latent(mu, logvar, seed=None):
    """z = mu + sigma * eps."""
    eps = tf.random.normal(tf.shape(mu), seed=seed)
    return mu + tf.exp(0.5 * logvar) * eps


def kl_divergence(mu, logvar):
    """KL(N(mu, sigma^2) || N(0, 1)) per example, summed over latent dimensions."""
    return -0.5 * tf.reduce_sum(1.0 + logvar - tf.square(mu) - tf.exp(logvar), axis=-1)


def vae_loss(frames, reconstruction, mu, logvar, z_size: int, kl_tolerance: float) -> dict:
    """Summed squared error over pixels plus the KL floored at kl_tolerance * z_size."""
    reconstruction_loss = tf.reduce_mean(
        tf.reduce_sum(tf.square(frames - reconstruction), axis=[1, 2, 3])
    )
    kl = tf.reduce_mean(kl_divergence(mu, logvar))
    kl_floored = tf.reduce_mean(tf.maximum(kl_divergence(mu, logvar), kl_tolerance * z_size))
    return {
        "loss": reconstruction_loss + kl_floored,
        "reconstruction": reconstruction_loss,
        "kl": kl,
    }


def to_unit(frames):
    """uint8 frames -> float32 in [0, 1]."""
    return tf.cast(frames, tf.float32) / 255.0


def frame_dataset(paths, config: VaeConfig, seed: int, skip_batches: int = 0) -> tf.data.Dataset:
    """Batches of frames streamed from the episode files in an order fixed by ``seed``; the
    first ``skip_batches`` batches are skipped (resuming inside an epoch)."""
    rng = np.random.default_rng(seed)

    def generate():
        # Whole batches cross into TensorFlow (one hand-over per batch, not per frame).
        frames = stream_frames(paths, config.shuffle_episodes, rng)
        frames = itertools.islice(frames, skip_batches * config.batch_size, None)
        while batch := list(itertools.islice(frames, config.batch_size)):
            yield np.stack(batch)

    signature = tf.TensorSpec((None, FRAME_SIZE, FRAME_SIZE, 3), tf.uint8)
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    return dataset.prefetch(2)


def make_train_step(model: ConvVAE, optimizer, config: VaeConfig):
    """The compiled training step: uint8 frames -> losses. XLA makes it about 3x faster on
    CPU (1.7 s -> 0.5 s for a batch of 100)."""

    @tf.function(jit_compile=True)
    def train_step(frames):
        x = to_unit(frames)
        with tf.GradientTape() as tape:
            reconstruction, mu, logvar = model(x, training=True)
            losses = vae_loss(x, reconstruction, mu, logvar, model.z_size, config.kl_tolerance)
        gradients = tape.gradient(losses["loss"], model.trainable_variables)
        optimizer.apply_gradients(zip(gradients, model.trainable_variables))
        return losses

    return train_step


def train_vae(model: ConvVAE, paths, config: VaeConfig, seed: int, directory: Path,
              total_frames: int, progress: bool = True) -> list[dict]:
    """Train V for ``config.epochs`` epochs, resuming from the checkpoint in ``directory`` if
    there is one; writes metrics.csv and weights each epoch, a checkpoint every
    ``config.checkpoint_every`` batches, and TensorBoard events (each loss term per batch and
    per epoch, real frames of the first episode over their reconstructions per epoch). Stops
    on a non-finite loss, keeping the last good checkpoint."""
    optimizer = keras.optimizers.Adam(config.learning_rate)
    shown = shown_frames(paths)
    loop = Loop("V", config.epochs, -(-total_frames // config.batch_size),
                config.checkpoint_every)

    def end_of_epoch(epoch, history, board):
        write_csv(directory / "metrics.csv", history)
        board.image("V/reconstructions", reconstruction_strip(model, shown), epoch + 1)
        checkpoint.save_weights(model, directory / "vae.weights.h5")

    return run_epochs(loop, directory, model, optimizer,
                      lambda epoch, skip: frame_dataset(paths, config, seed + epoch, skip),
                      make_train_step(model, optimizer, config), end_of_epoch, progress)


def shown_frames(paths, count: int = 8) -> np.ndarray:
    """``count`` frames spread over the first episode: the frames V's TensorBoard images
    show every epoch."""
    frames = read_episode(paths[0])["frames"]
    return frames[:: max(1, len(frames) // count)][:count]


def reconstruction_strip(model: ConvVAE, frames: np.ndarray) -> np.ndarray:
    """Frames (uint8) side by side over their reconstructions (decoded from mu), in [0, 1]."""
    mu, _ = model.encode(to_unit(frames))
    rows = (frames / 255.0, model.decode(mu).numpy())
    return np.concatenate([np.concatenate(list(row), axis=1) for row in rows], axis=0)


def load_vae(directory: Path, z_size: int) -> ConvVAE:
    model = ConvVAE(z_size)
    checkpoint.load_weights(model, Path(directory) / "vae.weights.h5", "train-vae")
    return model


def make_encoder(model: ConvVAE):
    """A compiled uint8 frames -> (mu, logvar) function, traced once for any batch size."""
    return tf.function(lambda x: model.encode(to_unit(x)), reduce_retracing=True)


def encode_frames(model: ConvVAE, frames: np.ndarray, batch_size: int = 500, encode=None):
    """mu and logvar of uint8 frames, in batches."""
    encode = encode or make_encoder(model)
    mus, logvars = [], []
    for start in range(0, len(frames), batch_size):
        mu, logvar = encode(frames[start : start + batch_size])
        mus.append(mu.numpy())
        logvars.append(logvar.numpy())
    return np.concatenate(mus), np.concatenate(logvars)


def encode_series(model: ConvVAE, paths, series_path: Path, vae_run_id: str,
                  progress: bool = True, action_size: int = 3, reuse: bool = False) -> dict:
    """Write mu/logvar of every frame of every episode (the series M trains on), continuing a
    killed run from the last episode it finished. With ``reuse``, rows that the series
    already at ``series_path`` holds for the same episode files and the same V are copied
    from it, not encoded again (`iterate` adds episodes to an encoded set)."""
    paths = [Path(path) for path in paths]
    lengths = [episode_length(path) for path in paths]
    sources = [episode_source(path) for path in paths]
    encode = make_encoder(model)
    writer = SeriesWriter(series_path, len(paths), max(lengths), model.z_size, action_size,
                          vae_run_id=vae_run_id)  # first: it refuses a planted link
    reuse = reusable_rows(series_path, vae_run_id, sources, lengths) if reuse else 0
    complete, copied = False, 0
    try:
        start = writer.encoded
        if start < reuse:
            writer.copy_rows(series_path, range(start, reuse), sources)
            start, copied = reuse, reuse - start
        bar = tqdm(range(start, len(paths)), initial=start, total=len(paths), desc="encode",
                   unit="ep", disable=not progress)
        for index in bar:
            episode = read_episode(paths[index])
            mu, logvar = encode_frames(model, episode["frames"], encode=encode)
            writer.write(index, mu, logvar, episode["actions"], episode["rewards"],
                         episode["terminations"], sources[index])
        complete = True
    finally:
        writer.close(complete)
    return {"episodes": len(paths), "frames": int(sum(lengths) + len(lengths)),
            "copied": copied}


def reconstruction_grid(model: ConvVAE, frames: np.ndarray, path: Path) -> None:
    """A PNG with real frames on the top row and their reconstructions below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mu, _ = model.encode(to_unit(frames))
    reconstructions = model.decode(mu).numpy()
    n = len(frames)
    figure, axes = plt.subplots(2, n, figsize=(1.6 * n, 3.4))
    for i in range(n):
        for row, image in enumerate((frames[i] / 255.0, reconstructions[i])):
            axes[row, i].imshow(np.clip(image, 0, 1))
            axes[row, i].axis("off")
    axes[0, 0].set_title("real", loc="left", fontsize=9)
    axes[1, 0].set_title("reconstructed", loc="left", fontsize=9)
    figure.tight_layout()
    try:
        with atomic_path(path) as tmp:
            figure.savefig(tmp, dpi=100)
    finally:
        plt.close(figure)

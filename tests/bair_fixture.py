"""Write small BAIR TFRecord files with TensorFlow's own writer and the real feature keys.

Imported by tests/tensorflow_worker.py only (TensorFlow and PyTorch in one process can crash):
write_root(OUT_DIR, ["SPLIT:NAME:N_SEQ", ...]) writes OUT_DIR/softmotion30_44k/SPLIT/NAME.tfrecords and
OUT_DIR/truth.npz with the frames.
"""
import os

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import tensorflow as tf  # noqa: E402


def write_records(path, n_seq, rng):
    seqs = []
    with tf.io.TFRecordWriter(path) as w:
        for _ in range(n_seq):
            frames = rng.integers(0, 256, (30, 64, 64, 3), dtype=np.uint8)
            feats = {}
            for t in range(30):
                feats[f"{t}/image_aux1/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[frames[t].tobytes()]))
                feats[f"{t}/image_main/encoded"] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[frames[t, ::-1].tobytes()]))
                feats[f"{t}/endeffector_pos"] = tf.train.Feature(float_list=tf.train.FloatList(value=rng.random(3).tolist()))
                feats[f"{t}/action"] = tf.train.Feature(float_list=tf.train.FloatList(value=rng.random(4).tolist()))
            w.write(tf.train.Example(features=tf.train.Features(feature=feats)).SerializeToString())
            seqs.append(frames)
    return np.stack(seqs)


def write_root(out, specs):
    rng = np.random.default_rng(0)
    truth = {}
    for spec in specs:
        split, name, n = spec.split(":")
        os.makedirs(os.path.join(out, "softmotion30_44k", split), exist_ok=True)
        truth[f"{split}/{name}"] = write_records(os.path.join(out, "softmotion30_44k", split, f"{name}.tfrecords"),
                                                 int(n), rng)
    np.savez(os.path.join(out, "truth.npz"), **truth)

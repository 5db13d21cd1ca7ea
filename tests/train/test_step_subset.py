import numpy as np

from scaling_lab.train.step import strided_subset


def test_strided_subset_spans_the_whole_eval_set_not_a_prefix():
    # Two "sources" stored as blocks: 0s then 1s. A prefix would see only 0s; a stride sees both equally.
    sequences = np.concatenate([np.zeros((64, 9), dtype=np.int64), np.ones((64, 9), dtype=np.int64)])
    subset = strided_subset(sequences, 16 * 8, sequence_length=8)
    assert len(subset) == 16
    assert subset[:, 0].mean() == 0.5


def test_strided_subset_none_or_larger_is_the_whole_set():
    sequences = np.arange(40).reshape(10, 4)
    assert strided_subset(sequences, None, sequence_length=3) is sequences
    assert strided_subset(sequences, 10_000, sequence_length=3) is sequences

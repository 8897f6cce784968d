"""Huffman code lengths: optimal on known examples."""

import numpy as np

from sparsa.sw.compress.huffman import TABLE_BITS_PER_SYMBOL, code_lengths, coded_bits


def test_textbook_example():
    # Frequencies a:45 b:13 c:12 d:16 e:9 f:5 (CLRS 16.3): lengths 1,3,3,3,4,4, cost 224.
    f = [45, 13, 12, 16, 9, 5]
    lengths = code_lengths(f)
    assert list(lengths) == [1, 3, 3, 3, 4, 4]
    assert int(np.dot(f, lengths)) == 224


def test_dyadic_frequencies_give_log2_lengths():
    # By hand: probabilities 1/2, 1/4, 1/8, 1/8 -> lengths 1, 2, 3, 3.
    assert list(code_lengths([4, 2, 1, 1])) == [1, 2, 3, 3]


def test_absent_and_single_symbols():
    assert list(code_lengths([0, 7, 0])) == [0, 1, 0]
    assert list(code_lengths([0, 0])) == [0, 0]
    assert list(code_lengths([0, 3, 0, 3])) == [0, 1, 0, 1]


def test_optimal_against_brute_force_over_all_prefix_codes():
    # Any prefix code's lengths satisfy Kraft (sum 2**-l <= 1) and any such lengths have a
    # prefix code, so the cheapest Kraft-valid length vector is the optimum to match.
    seed = 7
    print("seed", seed)
    rng = np.random.default_rng(seed)
    for _ in range(5):
        f = rng.integers(1, 100, size=5)
        grid = np.stack(np.meshgrid(*[np.arange(1, 5)] * 5, indexing="ij"), -1).reshape(-1, 5)
        ok = np.sum(2.0 ** -grid, axis=1) <= 1
        best = int(np.min(grid[ok] @ f))
        lengths = code_lengths(f)
        assert int(lengths @ f) == best
        assert np.sum(2.0 ** -lengths) == 1.0


def test_coded_bits_counts_stream_and_table():
    symbols = np.array([0] * 4 + [1] * 2 + [2, 3])
    assert coded_bits(symbols, 16) == 4 * 1 + 2 * 2 + 3 + 3 + 16 * TABLE_BITS_PER_SYMBOL

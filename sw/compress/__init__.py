"""Deep Compression: pruning, weight sharing, retraining, Huffman coding and the MLP pipeline.

* :mod:`.prune` -- magnitude pruning and ESE load-balance-aware pruning (equal work per PE).
* :mod:`.share` -- weight sharing: linear-initialised 1-D k-means codebooks (4-bit indices).
* :mod:`.retrain` -- prune/share with retraining for the numpy MLPs of the demo.
* :mod:`.huffman` -- Huffman coding of the index and pointer streams (compression ratio only).
* :mod:`.mlp` -- the MLP pipeline: prune, share, fixed point, the sparsa-compressed file.
"""

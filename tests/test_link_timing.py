"""The link time the simulated board's report gives (:mod:`sparsa.sim.board.timing`), on byte
times worked out by hand: bytes on either line count, the board's gaps before it sends count,
the host's gaps before it sends are left out."""

from sparsa.sim.board.timing import link_cycles, split_phases

DIV = 8
BYTE = 10 * DIV         # 8N1: ten bit times


def test_back_to_back_bytes_count_their_wire_time_only():
    assert link_cycles([100, 100 + BYTE, 100 + 2 * BYTE], [], DIV) == (3 * BYTE, 0)


def test_the_boards_pause_before_answering_counts_the_hosts_does_not():
    # Host sends 2 bytes (100..260); the board answers after 40 idle cycles (300..380); the
    # host thinks for 500 cycles and sends one more byte (880..960).
    rx, tx = [100, 100 + BYTE, 880], [300]
    assert link_cycles(rx, tx, DIV) == (2 * BYTE + 40 + BYTE + BYTE, 500)


def test_overlapping_bytes_on_both_lines_count_once():
    # A board byte starting half-way through a host byte: 100..180 and 140..220 cover 120 cycles.
    assert link_cycles([100], [140], DIV) == (120, 0)


def test_nothing_sent_is_no_time():
    assert link_cycles([], [], DIV) == (0, 0)


def test_phases_split_at_the_hosts_byte_counts():
    times = {"divisor": DIV, "rx": [1, 2, 3, 4], "tx": [10, 20, 30]}
    assert split_phases(times, 3, 1) == (([1, 2, 3], [10]), ([4], [20, 30]))

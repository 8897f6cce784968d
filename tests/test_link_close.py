"""Closing a board backend closes the serial port it opened (a pseudo-terminal stands in for the
board's USB UART), and leaves alone a transport the caller passed in and still owns."""

import os

import pytest

from sparsa.link import cnn_link_backend, link_backend


class _Transport:
    name = "stand-in"

    def __init__(self):
        self.closed = False

    def close(self):
        self.closed = True


@pytest.mark.parametrize("make", [link_backend, cnn_link_backend])
def test_close_closes_the_serial_port_the_backend_opened(make):
    master, slave = os.openpty()
    try:
        backend = make(os.ttyname(slave), 115200)
        port = backend.regs.link.transport.serial
        assert port.is_open
        backend.close()
        assert not port.is_open
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize("make", [link_backend, cnn_link_backend])
def test_close_leaves_a_transport_passed_in_open(make):
    t = _Transport()
    make(None, transport=t).close()
    assert not t.closed

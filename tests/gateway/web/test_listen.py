"""Taking the port before anything starts: a taken port is one clear error, nothing bound."""

from __future__ import annotations

import socket

import pytest

from gateway.web.listen import ListenError, bind, off_loopback


def test_bind_listens_on_the_port():
    sockets = bind("127.0.0.1", 0)
    try:
        port = sockets[0].getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            pass  # accepted into the backlog before any server runs
    finally:
        for sock in sockets:
            sock.close()


def test_a_taken_port_is_a_listen_error_naming_it():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ListenError) as error:
            bind("127.0.0.1", port)
    assert error.value.detail == f"cannot listen on 127.0.0.1:{port}: Address already in use"


def test_an_unknown_host_is_a_listen_error():
    with pytest.raises(ListenError, match=r"^cannot listen on no-such-host\.invalid:8080: "):
        bind("no-such-host.invalid", 8080)


@pytest.mark.parametrize(("host", "exposed"), [("127.0.0.1", []), ("0.0.0.0", ["0.0.0.0"])])
def test_off_loopback_names_the_addresses_other_machines_reach(host, exposed):
    sockets = bind(host, 0)
    try:
        assert off_loopback(sockets) == exposed
    finally:
        for sock in sockets:
            sock.close()

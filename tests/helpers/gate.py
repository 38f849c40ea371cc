"""A gate a function waits at: it connects to the test's port and blocks until the test opens the gate, so a test
can see what a call sends before it ends (streamed chunks, say) without guessing at times. Works under every
isolation: the function's network is the host's by default."""
import socket

# A streaming function for the tests: yields 1, waits at the gate on `port`, yields 2.
GATED_GENERATOR = """
import socket

def main(port):
    yield 1
    with socket.create_connection(("127.0.0.1", port), timeout=30) as gate:
        gate.recv(1)
    yield 2
"""


class Gate:
    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]

    def open(self, timeout=30):
        """Lets the waiting function through (waits for it to arrive)."""
        self.listener.settimeout(timeout)
        connection, _ = self.listener.accept()
        with connection:
            connection.sendall(b"x")

    def close(self):
        self.listener.close()

"""CoAP messages built and read byte by byte (RFC 7252, section 3), for tests that need what a client library
hides: a chosen message id (retransmissions), truncated or malformed datagrams, floods of non-confirmable
requests."""
import socket
import struct

CON, NON, ACK, RST = 0, 1, 2, 3
GET, POST, PUT, DELETE = 1, 2, 3, 4
URI_PATH, CONTENT_FORMAT, MAX_AGE, BLOCK2, ECHO = 11, 12, 14, 23, 252


def code(text):
    """"2.05" → 69."""
    major, minor = text.split(".")
    return int(major) << 5 | int(minor)


def _extended(value):
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes([value - 13])
    return 14, struct.pack("!H", value - 269)


def encode(type_, method, mid, token=b"", path="", payload=b"", options=()):
    """A request: `path` becomes Uri-Path options; `options` are more (number, bytes) pairs."""
    all_options = [(URI_PATH, part.encode()) for part in path.strip("/").split("/") if part] + list(options)
    out = bytearray([0x40 | type_ << 4 | len(token), method]) + struct.pack("!H", mid) + token
    last = 0
    for number, value in sorted(all_options, key=lambda o: o[0]):
        delta, delta_ext = _extended(number - last)
        length, length_ext = _extended(len(value))
        out += bytes([delta << 4 | length]) + delta_ext + length_ext + value
        last = number
    if payload:
        out += b"\xff" + payload
    return bytes(out)


def decode(datagram):
    """(type, code, mid, token, {option number: [values]}, payload) of a message."""
    first, code_, mid = datagram[0], datagram[1], struct.unpack("!H", datagram[2:4])[0]
    token_length = first & 0x0F
    token, rest = datagram[4:4 + token_length], datagram[4 + token_length:]
    options, number = {}, 0
    while rest and rest[0] != 0xFF:
        delta, length, rest = rest[0] >> 4, rest[0] & 0x0F, rest[1:]
        for which in ("delta", "length"):
            value = delta if which == "delta" else length
            if value == 13:
                value, rest = rest[0] + 13, rest[1:]
            elif value == 14:
                value, rest = struct.unpack("!H", rest[:2])[0] + 269, rest[2:]
            if which == "delta":
                delta = value
            else:
                length = value
        number += delta
        options.setdefault(number, []).append(rest[:length])
        rest = rest[length:]
    payload = rest[1:] if rest else b""
    return (first >> 4) & 0x03, code_, mid, token, options, payload


class Client:
    """One UDP socket to a CoAP server that answers with separate responses: the empty ACK, then the answer
    (acknowledged here when it came confirmable)."""

    def __init__(self, port, host="127.0.0.1"):
        self.address = (host, port)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(5)
        self.next_mid = 0xF000  # prove()'s own message ids, apart from those the tests choose

    def send(self, datagram):
        self.sock.sendto(datagram, self.address)

    def receive(self, timeout=5):
        """The next message that is not an empty ACK, acknowledging it if confirmable."""
        self.sock.settimeout(timeout)
        while True:
            message = decode(self.sock.recv(65536))
            type_, code_, mid = message[0], message[1], message[2]
            if type_ == CON:
                self.send(bytes([0x60, 0]) + struct.pack("!H", mid))  # empty ACK
            if code_ != 0:
                return message

    def prove(self, path, payload=b"{}"):
        """Proves this socket's address to the server (RFC 9175 Echo): a request, its 4.01 challenge, the request
        again with the Echo. Returns the answer to the second one (or to the first, from an address proved already)."""
        self.next_mid += 2
        self.send(encode(CON, POST, self.next_mid, b"\xf0", path, payload))
        challenge = self.receive()
        if challenge[1] != code("4.01") or ECHO not in challenge[4]:
            return challenge
        self.send(encode(CON, POST, self.next_mid + 1, b"\xf1", path, payload, options=[(ECHO, challenge[4][ECHO][0])]))
        return self.receive()

    def close(self):
        self.sock.close()

#!/usr/bin/python3
"""HTTP/2 uploads on one TLS connection, some streams reset half-way (t/abuse_http2.t).

    h2_uploads.py PORT BODY_FILE BOUNDARY PLAN

PLAN is a comma-separated list, one entry per stream, all opened at once on one connection:
"full" sends the whole body, "reset:N" sends N body bytes and then RST_STREAM (CANCEL),
"close:N" sends N body bytes and then closes the whole connection (no GOAWAY). Prints one line
per stream: "<index> <status or reset or none>". Needs python3-h2.
"""
import socket
import ssl
import sys

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings


def main():
    port, body_file, boundary, plan = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split(",")
    with open(body_file, "rb") as f:
        body = f.read()
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.set_alpn_protocols(["h2"])
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    assert sock.selected_alpn_protocol() == "h2", "no h2 from ALPN"
    conn = h2.connection.H2Connection(config=h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 1 << 24})
    sock.sendall(conn.data_to_send())

    streams = []
    for i, entry in enumerate(plan):
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, [(":method", "POST"), (":path", "/postimages"), (":scheme", "https"),
                                (":authority", "localhost"),
                                ("content-type", "multipart/form-data; boundary=" + boundary),
                                ("content-length", str(len(body)))])
        kind, _, n = entry.partition(":")
        limit = len(body) if kind == "full" else int(n)
        streams.append({"i": i, "sid": sid, "kind": kind, "limit": limit, "sent": 0, "status": "none", "done": False})
    sock.sendall(conn.data_to_send())
    by_sid = {s["sid"]: s for s in streams}

    closed = False
    sock.settimeout(15)
    while not closed and not all(s["done"] for s in streams):
        # Send what each stream may send, a window at a time, in turns.
        for s in streams:
            if s["done"] or s["sent"] >= s["limit"] and s["kind"] != "full":
                continue
            while s["sent"] < s["limit"]:
                window = min(conn.local_flow_control_window(s["sid"]), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk = body[s["sent"]:s["sent"] + min(window, s["limit"] - s["sent"], 16384)]
                conn.send_data(s["sid"], chunk)
                s["sent"] += len(chunk)
            if s["sent"] >= s["limit"]:
                if s["kind"] == "full":
                    if not s.get("ended"):
                        conn.end_stream(s["sid"])
                        s["ended"] = True
                elif s["kind"] == "reset":
                    conn.reset_stream(s["sid"], error_code=h2.errors.ErrorCodes.CANCEL)
                    s["status"] = "reset"
                    s["done"] = True
                elif s["kind"] == "close":
                    sock.sendall(conn.data_to_send())
                    sock.close()
                    closed = True
                    for t in streams:
                        if not t["done"]:
                            t["status"] = t["status"] if t["status"] != "none" else "closed"
                            t["done"] = True
                    break
        if closed:
            break
        sock.sendall(conn.data_to_send())
        try:
            data = sock.recv(65536)
        except socket.timeout:
            break
        if not data:
            break
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                s = by_sid.get(event.stream_id)
                if s:
                    s["status"] = dict(event.headers).get(b":status", b"?").decode()
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, (h2.events.StreamEnded, h2.events.StreamReset)):
                s = by_sid.get(event.stream_id)
                if s:
                    s["done"] = True
        sock.sendall(conn.data_to_send())
    if not closed:
        sock.close()
    for s in streams:
        print(s["i"], s["status"])


if __name__ == "__main__":
    main()

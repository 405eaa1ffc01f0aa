"""A real RTSP server for tests and benchmarks: GStreamer's gst-rtsp-server.

Run with Debian's /usr/bin/python3 (python3-gi). Each --mount is PATH=SOURCE where SOURCE is
`synthetic[:WxH@FPS[:KBPS[:GOP]]]`, `synthetic-alaw[...]`, `synthetic-aac[...]` or
`synthetic-opus[...]` (adds a G.711 A-law, AAC or Opus track),
`file:/abs/path.mp4` (stream copy of an H.264 MP4/MKV) or `launch:(...)` (a raw launch line).
Prints `serving rtsp://127.0.0.1:PORT` once listening, then `client +` / `client -` as RTSP
clients connect and leave; stops on SIGTERM/SIGINT.
"""

import argparse
import signal
import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

VIDEO = (
    "videotestsrc is-live=true pattern={pattern} ! video/x-raw,width={w},height={h},framerate={fps}/1"
    " ! x264enc tune=zerolatency speed-preset=ultrafast bitrate={kbps} key-int-max={gop} threads=1"
    " ! video/x-h264,profile=baseline ! h264parse config-interval=-1 ! rtph264pay name=pay0 pt=96 config-interval=0"
)
ALAW = " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=8000,channels=1 ! alawenc ! rtppcmapay name=pay1 pt=8"
AAC = (
    " audiotestsrc is-live=true wave=sine ! audio/x-raw,rate=16000,channels=1 ! audioconvert"
    " ! voaacenc bitrate=32000 ! aacparse ! rtpmp4gpay name=pay1 pt=97"
)
OPUS = " audiotestsrc is-live=true wave=sine ! audioconvert ! opusenc ! rtpopuspay name=pay1 pt=98"


def launch_line(source: str) -> str:
    """Turn a mount SOURCE into a gst-launch line."""
    if source.startswith("launch:"):
        return source[len("launch:") :]
    if source.startswith("file:"):
        path = source[len("file:") :]
        demux = "matroskademux" if path.endswith(".mkv") else "qtdemux"
        return (
            f"( filesrc location={path} ! {demux} ! h264parse config-interval=-1"
            " ! rtph264pay name=pay0 pt=96 config-interval=0 )"
        )
    kind, _, spec = source.partition(":")
    w, h, fps, kbps, gop, pattern = 640, 360, 25, 1000, 50, "ball"
    if spec:
        parts = spec.split(":")
        size, _, rate = parts[0].partition("@")
        w, h = (int(v) for v in size.split("x"))
        fps = int(rate or fps)
        if len(parts) > 1:
            kbps = int(parts[1])
        if len(parts) > 2:
            gop = int(parts[2])
    line = VIDEO.format(pattern=pattern, w=w, h=h, fps=fps, kbps=kbps, gop=gop)
    if kind == "synthetic-alaw":
        line += ALAW
    elif kind == "synthetic-aac":
        line += AAC
    elif kind == "synthetic-opus":
        line += OPUS
    elif kind != "synthetic":
        raise SystemExit(f"unknown source {source}")
    return f"( {line} )"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", default="0")
    parser.add_argument("--mount", action="append", default=[])
    parser.add_argument("--auth", help="user:password required from clients")
    args = parser.parse_args()
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(args.port)
    mounts = server.get_mount_points()
    if args.auth:
        user, _, password = args.auth.partition(":")
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string(GstRtspServer.RTSP_TOKEN_MEDIA_FACTORY_ROLE, "user")
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(user, password), token)
        server.set_auth(auth)
    for spec in args.mount or ["/cam=synthetic"]:
        path, _, source = spec.partition("=")
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch_line(source))
        factory.set_shared(True)
        if args.auth:
            permissions = GstRtspServer.RTSPPermissions()
            permissions.add_permission_for_role("user", "media.factory.access", True)
            permissions.add_permission_for_role("user", "media.factory.construct", True)
            factory.set_permissions(permissions)
        mounts.add_factory(path, factory)

    def client_connected(_server: object, client: GstRtspServer.RTSPClient) -> None:
        # The test side counts the camera's connections from these lines.
        print("client +", flush=True)
        client.connect("closed", lambda _client: print("client -", flush=True))

    server.connect("client-connected", client_connected)
    if server.attach(None) == 0:
        raise SystemExit("could not bind")
    loop = GLib.MainLoop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_HIGH, sig, loop.quit)
    print(f"serving rtsp://127.0.0.1:{server.get_bound_port()}", flush=True)
    loop.run()
    sys.exit(0)


if __name__ == "__main__":
    main()

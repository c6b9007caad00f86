"""A camera on the network for the runtime tests: GStreamer's RTSP server (Debian's
gir1.2-gst-rtsp-server-1.0 with python3-gi) serving a moving test pattern as Motion-JPEG over RTP at
rtsp://127.0.0.1:PORT/cam. Run with Debian's /usr/bin/python3, which has the GObject bindings:

    /usr/bin/python3 tests/rtsp_camera.py PORT     (0: any free port; prints "ready PORT")
"""

import sys

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402

# Moving (horizontal-speed) and bright, so the daemon's frozen and black checks pass it.
PIPELINE = ("( videotestsrc is-live=true pattern=smpte horizontal-speed=3 ! "
            "video/x-raw,format=I420,width=160,height=120,framerate=15/1 ! jpegenc quality=85 ! rtpjpegpay name=pay0 pt=26 )")


def main(port: str) -> None:
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(PIPELINE)
    factory.set_shared(True)
    server.get_mount_points().add_factory("/cam", factory)
    if server.attach(None) == 0:
        sys.exit(f"cannot serve RTSP on 127.0.0.1:{port}")
    print(f"ready {server.get_bound_port()}", flush=True)
    GLib.MainLoop().run()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "0")

"""Local web viewer for hand meshes: ``halohand view FILE...`` (see ``docs/viewer.md``).

Every input is read and converted to GLB before the server starts, so the page needs only
three.js's GLTFLoader (vendored under ``static/vendor``) and bad input fails at once.
"""

from halohand.apps.viewer.server import Frame, ViewerServer, load_frames

__all__ = ["Frame", "ViewerServer", "load_frames"]

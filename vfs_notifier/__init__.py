"""vfs-notifier: registers finished video files under watched trees as rows of a `videos` table."""

__version__ = "1.2.0"

"""Music generation (text-to-music, reference-audio-to-music) as asynchronous tasks."""
